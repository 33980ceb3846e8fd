// Zod issues rendered as one line that names each offending key path and what was expected
// (zod keeps issues as data; this is the only place that turns them into text).
import type { z } from 'zod';
import { RingrlError } from '../errors.ts';

export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new RingrlError(`${what}: ${result.error.issues.map(describeIssue).join('; ')}`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${path ? `${path}.` : ''}${k}: unknown key`).join('; ');
  }
  const input = (issue as { input?: unknown }).input;
  const got = input === undefined || typeof input === 'object' ? '' : ` (got ${JSON.stringify(input)})`;
  return `${path || '(config)'}: ${issue.message}${got}`;
}

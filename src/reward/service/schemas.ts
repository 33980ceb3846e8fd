// Request bodies of the reward service, validated with zod. A bad body answers 400 with one line
// naming the field and what was expected (formatIssue).
import { z } from 'zod';
import { MAX_LIMITS, type Limits } from '../sandbox/types.ts';

const MAX_CODE = 1 << 20;

export const limitsSchema = z
  .object({
    wall_ms: z.number().positive().max(MAX_LIMITS.wallMs),
    cpu_ms: z.number().positive().max(MAX_LIMITS.cpuMs),
    memory_mb: z.number().positive().max(MAX_LIMITS.memoryMb),
    output_bytes: z.number().int().positive().max(MAX_LIMITS.outputBytes),
    file_bytes: z.number().int().positive().max(MAX_LIMITS.fileBytes),
    processes: z.number().int().positive().max(MAX_LIMITS.processes),
  })
  .partial()
  .strict();

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64 content');
const fileName = z.string().min(1).max(255).regex(/^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[^\0]+$/, 'expected a relative path inside the working directory');

export const testsSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('io'), cases: z.array(z.object({ stdin: z.string(), expected: z.string() }).strict()).min(1).max(256) }).strict(),
  z.object({ kind: z.literal('assert'), code: z.string().max(MAX_CODE) }).strict(),
]);

export const runSchema = z
  .object({
    language: z.enum(['python', 'javascript']),
    code: z.string().max(MAX_CODE),
    stdin: z.string().max(MAX_CODE).optional(),
    files: z.record(fileName, base64).optional(),
    fetch_files: z.array(fileName).max(64).optional(),
    limits: limitsSchema.optional(),
    tests: testsSchema.optional(),
  })
  .strict();

export const mathSchema = z
  .object({
    completion: z.string().max(MAX_CODE),
    answer: z.string().max(1 << 16),
    fallback: z.enum(['none', 'last_number']).optional(),
  })
  .strict();

export const batchSchema = z
  .object({
    items: z
      .array(z.discriminatedUnion('type', [runSchema.extend({ type: z.literal('run') }), mathSchema.extend({ type: z.literal('math') })]))
      .min(1)
      .max(256),
  })
  .strict();

/** SandboxFusion's /run_code request (unknown keys are ignored, as SandboxFusion does). */
export const runCodeSchema = z.object({
  code: z.string().max(MAX_CODE),
  language: z.string().min(1),
  compile_timeout: z.number().positive().optional(),
  run_timeout: z.number().positive().max(MAX_LIMITS.wallMs / 1000).optional(),
  memory_limit_MB: z.number().positive().max(MAX_LIMITS.memoryMb).optional(),
  stdin: z.string().max(MAX_CODE).nullable().optional(),
  files: z.record(fileName, z.union([base64, z.null()])).optional(),
  fetch_files: z.array(fileName).max(64).optional(),
});

export type RunBody = z.infer<typeof runSchema>;
export type MathBody = z.infer<typeof mathSchema>;

/** zod's first issue as one line: `body.limits.wall_ms: expected number, received string`. */
export function formatIssue(error: z.ZodError, root = 'body'): string {
  const issue = error.issues[0]!;
  const path = [root, ...issue.path.map(String)].join('.');
  // A bad record key (a file name) carries the reason one level down.
  const inner = issue.code === 'invalid_key' ? (issue as unknown as { issues?: { message: string }[] }).issues?.[0]?.message : undefined;
  const message = inner ? `bad key: ${inner}` : issue.message;
  return `${path}: ${message.replace(/^Invalid input: /, '')}`;
}

export function toLimits(l: z.infer<typeof limitsSchema> | undefined): Partial<Limits> {
  if (!l) return {};
  return { wallMs: l.wall_ms, cpuMs: l.cpu_ms, memoryMb: l.memory_mb, outputBytes: l.output_bytes, fileBytes: l.file_bytes, processes: l.processes };
}

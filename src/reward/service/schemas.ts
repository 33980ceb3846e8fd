// Request bodies of the reward service, validated with zod. A bad body answers 400 with one line
// naming the field and what was expected (formatIssue).
import { z } from 'zod';
import { MAX_LIMITS, LANGUAGES, LANGUAGE_ALIASES, type Language, type Limits } from '../sandbox/types.ts';

const MAX_CODE = 1 << 20;
/** Most files a request may send, and ask back. */
export const MAX_FILES = 64;

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
// Relative to the working directory, or absolute (mapped into the sandbox: see docs/sandbox.md); never '..'.
const fileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!.*(?:^|\/)\.\.(?:\/|$))[^\0]+$/, "expected a file path without '..'");
const fileCount = (o: Record<string, unknown>) => Object.keys(o).length <= MAX_FILES;
const fileMap = <T extends z.ZodType>(value: T) =>
  z.record(fileName, value).refine(fileCount, `expected at most ${MAX_FILES} files`);

/** A language name or alias (nodejs, python3, ...) → the sandbox's language. */
export const languageSchema = z.string().transform((name, ctx): Language => {
  const language = (LANGUAGES as readonly string[]).includes(name) ? (name as Language) : LANGUAGE_ALIASES[name];
  if (!language) {
    ctx.addIssue({
      code: 'custom',
      message: `expected one of ${LANGUAGES.join(', ')} (or ${Object.keys(LANGUAGE_ALIASES).join(', ')}), got '${name}'`,
    });
    return z.NEVER;
  }
  return language;
});

export const testsSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('io'),
      cases: z
        .array(z.object({ stdin: z.string(), expected: z.string() }).strict())
        .min(1)
        .max(256),
    })
    .strict(),
  z.object({ kind: z.literal('assert'), code: z.string().max(MAX_CODE) }).strict(),
]);

export const runSchema = z
  .object({
    language: languageSchema,
    code: z.string().max(MAX_CODE),
    stdin: z.string().max(MAX_CODE).optional(),
    files: fileMap(base64).optional(),
    fetch_files: z.array(fileName).max(MAX_FILES).optional(),
    limits: limitsSchema.optional(),
    compile_timeout_ms: z.number().positive().max(MAX_LIMITS.wallMs).optional(),
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
      .array(
        z.discriminatedUnion('type', [
          runSchema.extend({ type: z.literal('run') }),
          mathSchema.extend({ type: z.literal('math') }),
        ]),
      )
      .min(1)
      .max(256),
  })
  .strict();

/**
 * SandboxFusion's /run_code request (unknown keys are ignored, as SandboxFusion does). Values it
 * accepts are accepted: timeouts of any size (clamped to the sandbox's ceiling; 0 means the
 * default), memory_limit_MB -1 (its default: the sandbox's default limit), absolute file paths.
 */
export const runCodeSchema = z.object({
  code: z.string().max(MAX_CODE),
  language: z.string().min(1).max(64),
  compile_timeout: z.number().nonnegative().nullable().optional(),
  run_timeout: z.number().nonnegative().nullable().optional(),
  memory_limit_MB: z.number().nullable().optional(),
  stdin: z.string().max(MAX_CODE).nullable().optional(),
  files: fileMap(z.union([base64, z.null()]))
    .nullable()
    .optional(),
  fetch_files: z.array(fileName).max(MAX_FILES).nullable().optional(),
});

export type RunBody = z.infer<typeof runSchema>;
export type MathBody = z.infer<typeof mathSchema>;

/** zod's first issue as one line: `body.limits.wall_ms: expected number, received string`. */
export function formatIssue(error: z.ZodError, root = 'body'): string {
  const issue = error.issues[0]!;
  const path = [root, ...issue.path.map(String)].join('.');
  // A bad record key (a file name) carries the reason one level down.
  const inner =
    issue.code === 'invalid_key'
      ? (issue as unknown as { issues?: { message: string }[] }).issues?.[0]?.message
      : undefined;
  const message = inner ? `bad key: ${inner}` : issue.message;
  return `${path}: ${message.replace(/^Invalid input: /, '')}`;
}

export function toLimits(l: z.infer<typeof limitsSchema> | undefined): Partial<Limits> {
  if (!l) return {};
  return {
    wallMs: l.wall_ms,
    cpuMs: l.cpu_ms,
    memoryMb: l.memory_mb,
    outputBytes: l.output_bytes,
    fileBytes: l.file_bytes,
    processes: l.processes,
  };
}

// The reward client the RL loop scores through (reward/scorer.ts): local (an in-process sandbox pool) or remote (a list of
// reward-service URLs, round-robin, retrying overload answers on the next URL). Chosen by config.
import { z } from 'zod';
import { ProcessSandbox } from './sandbox/pool.ts';
import { runCodeTests, type CodeTests, type CodeVerdict } from './code.ts';
import { verifyMath, type MathVerdict } from './math/verify.ts';
import { Limiter } from './service/limiter.ts';
import { RingrlError } from '../errors.ts';
import type { Language, Limits, RunResult, RunSpec } from './sandbox/types.ts';

export const rewardClientConfigSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('local'),
      /** Runs in parallel in this process (default: the sandbox's Python workers). */
      concurrency: z.number().int().positive().optional(),
      /** Pre-started interpreters (default true). */
      warm: z.boolean().default(true),
      /** Fail when bubblewrap isolation is unavailable instead of falling back to limits only. */
      requireIsolation: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      kind: z.literal('remote'),
      urls: z.array(z.string().url()).min(1),
      /** Attempts per request across URLs on 429/503/504 or connection errors. */
      retries: z.number().int().min(0).default(4),
      /** Per-attempt HTTP timeout, ms. */
      timeoutMs: z.number().int().positive().default(120_000),
      /** The services' API key (`ringrl sandbox serve --api-key`), sent as a Bearer token; default $RINGRL_SANDBOX_API_KEY. */
      apiKey: z.string().min(1).optional(),
    })
    .strict(),
]);
export type RewardClientConfig = z.input<typeof rewardClientConfigSchema>;

/** What a remote client tells about its replicas (the scorer logs it). */
export interface ReplicaEvents {
  /** A request to `url` got no answer (connection error, timeout) and goes to `retryOn` next (null: no attempt left). */
  failed(url: string, reason: string, retryOn: string | null): void;
  /** `url` answered. */
  answered(url: string): void;
}

export interface RewardClient {
  run(spec: RunSpec): Promise<RunResult>;
  runTests(language: Language, code: string, tests: CodeTests, limits?: Partial<Limits>): Promise<CodeVerdict>;
  verifyMath(completion: string, answer: string): Promise<MathVerdict>;
  close(): Promise<void>;
}

export class LocalRewardClient implements RewardClient {
  readonly sandbox: ProcessSandbox;
  private readonly limiter: Limiter;

  constructor(config: Extract<z.output<typeof rewardClientConfigSchema>, { kind: 'local' }>) {
    this.sandbox = new ProcessSandbox({
      warm: config.warm,
      requireIsolation: config.requireIsolation,
      pythonWorkers: config.concurrency,
    });
    const concurrency = config.concurrency ?? this.sandbox.pythonWorkers;
    this.limiter = new Limiter(concurrency, Number.MAX_SAFE_INTEGER, 2 ** 31 - 1);
  }

  run(spec: RunSpec): Promise<RunResult> {
    return this.limiter.run(() => this.sandbox.run(spec));
  }

  runTests(language: Language, code: string, tests: CodeTests, limits?: Partial<Limits>): Promise<CodeVerdict> {
    return this.limiter.run(() => runCodeTests(this.sandbox, language, code, tests, limits));
  }

  async verifyMath(completion: string, answer: string): Promise<MathVerdict> {
    return verifyMath(completion, answer);
  }

  close(): Promise<void> {
    return this.sandbox.close();
  }
}

function toWireLimits(l?: Partial<Limits>) {
  if (!l) return undefined;
  return {
    wall_ms: l.wallMs,
    cpu_ms: l.cpuMs,
    memory_mb: l.memoryMb,
    output_bytes: l.outputBytes,
    file_bytes: l.fileBytes,
    processes: l.processes,
  };
}

export class RemoteRewardClient implements RewardClient {
  private next = 0;
  private readonly config: Extract<z.output<typeof rewardClientConfigSchema>, { kind: 'remote' }>;
  private readonly headers: Record<string, string>;
  private readonly events: ReplicaEvents | undefined;

  constructor(config: Extract<z.output<typeof rewardClientConfigSchema>, { kind: 'remote' }>, events?: ReplicaEvents) {
    this.config = config;
    this.events = events;
    const apiKey = config.apiKey ?? process.env.RINGRL_SANDBOX_API_KEY;
    this.headers = { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    const { urls, retries, timeoutMs } = this.config;
    let lastError = '';
    // Round-robin over requests; a request's retries go to the replicas after its first, so a
    // dead or hung replica is never tried twice in a row while another is there.
    const first = this.next++;
    const replica = (attempt: number) => urls[(first + attempt) % urls.length]!.replace(/\/$/, '');
    for (let attempt = 0; attempt <= retries; attempt++) {
      const url = replica(attempt) + path;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: this.headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (response.status === 401)
          throw new RingrlError(
            `reward service ${url}: HTTP 401: wrong or missing API key (set reward apiKey or RINGRL_SANDBOX_API_KEY)`,
          );
        if (response.status === 429 || response.status === 503 || response.status === 504) {
          lastError = `${url}: HTTP ${response.status}`;
          await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
          continue;
        }
        this.events?.answered(replica(attempt));
        const json = (await response.json()) as T & { error?: string };
        if (!response.ok)
          throw new RingrlError(`reward service ${url}: HTTP ${response.status}: ${json.error ?? 'error'}`);
        return json;
      } catch (e) {
        if (e instanceof RingrlError) throw e;
        lastError = `${url}: ${(e as Error).message}`;
        const reason =
          (e as Error).name === 'TimeoutError' ? `timeout after ${timeoutMs / 1000} s` : connectionError(e);
        this.events?.failed(replica(attempt), reason, attempt < retries ? replica(attempt + 1) : null);
      }
    }
    throw new RingrlError(`reward service: no answer after ${retries + 1} attempts (last: ${lastError})`);
  }

  run(spec: RunSpec): Promise<RunResult> {
    if (spec.epilogue)
      throw new RingrlError('remote reward client: use runTests for tests (epilogues are not sent over HTTP)');
    return this.post('/run', {
      language: spec.language,
      code: spec.code,
      stdin: spec.stdin,
      files: spec.files,
      fetch_files: spec.fetchFiles,
      limits: toWireLimits(spec.limits),
      compile_timeout_ms: spec.compileTimeoutMs,
    });
  }

  runTests(language: Language, code: string, tests: CodeTests, limits?: Partial<Limits>): Promise<CodeVerdict> {
    return this.post('/run', { language, code, tests, limits: toWireLimits(limits) });
  }

  verifyMath(completion: string, answer: string): Promise<MathVerdict> {
    return this.post('/verify/math', { completion, answer });
  }

  async close(): Promise<void> {}
}

/** The cause of a failed fetch in a few words (undici hides it in `cause`). */
function connectionError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

/** A reward client from config; a bad config is a one-line error naming the field. */
export function createRewardClient(config: RewardClientConfig, events?: ReplicaEvents): RewardClient {
  const parsed = rewardClientConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RingrlError(`reward client config: ${['reward', ...issue.path.map(String)].join('.')}: ${issue.message}`);
  }
  return parsed.data.kind === 'local'
    ? new LocalRewardClient(parsed.data)
    : new RemoteRewardClient(parsed.data, events);
}

// The reward service (fastify): POST /run, /verify/math, /batch, SandboxFusion-compatible
// /run_code; GET /health, /metrics. Scale out by running more copies behind a URL list
// (src/reward/client.ts); each copy bounds its own work with a Limiter. With an API key every
// endpoint but /health wants `Authorization: Bearer <key>`.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual, createHash } from 'node:crypto';
import os from 'node:os';
import type { z } from 'zod';
import { ProcessSandbox, type SandboxOptions } from '../sandbox/pool.ts';
import {
  LANGUAGES,
  LANGUAGE_ALIASES,
  MAX_LIMITS,
  type CodeSandbox,
  type Language,
  type RunResult,
} from '../sandbox/types.ts';
import { runCodeTests } from '../code.ts';
import { verifyMath } from '../math/verify.ts';
import { RingrlError } from '../../errors.ts';
import { Limiter, Overloaded } from './limiter.ts';
import {
  runSchema,
  mathSchema,
  batchSchema,
  runCodeSchema,
  formatIssue,
  toLimits,
  type RunBody,
  type MathBody,
} from './schemas.ts';

export interface ServiceOptions {
  /** Runs executing at once (default: the sandbox's zygotes, 2 × CPUs, at least 8). */
  concurrency?: number;
  /** Requests allowed to wait (default: 8 × concurrency, at least 64); more answer 429 (/run_code: 504). */
  queue?: number;
  /** Longest wait in the queue before answering 503 (/run_code: 504) (default 120 s). */
  queueTimeoutMs?: number;
  /** Require `Authorization: Bearer <apiKey>` on every endpoint but /health. */
  apiKey?: string;
  /** Largest request body, bytes (default 16 MiB); larger answers 413. */
  bodyLimit?: number;
  sandbox?: CodeSandbox;
  sandboxOptions?: SandboxOptions;
  /** Log requests (fastify's logger); off by default. */
  logger?: boolean;
}

class Metrics {
  private readonly counters = new Map<string, number>();
  private latencySum = 0;
  private latencyCount = 0;
  inc(name: string, labels: Record<string, string>, by = 1): void {
    const key = `${name}{${Object.entries(labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }
  observeRun(ms: number): void {
    this.latencySum += ms;
    this.latencyCount++;
  }
  render(gauges: Record<string, number>): string {
    const lines = [...this.counters].map(([k, v]) => `ringrl_${k} ${v}`);
    lines.push(`ringrl_run_wall_ms_sum ${this.latencySum.toFixed(1)}`, `ringrl_run_wall_ms_count ${this.latencyCount}`);
    for (const [k, v] of Object.entries(gauges)) lines.push(`ringrl_${k} ${v}`);
    return lines.join('\n') + '\n';
  }
}

function parse<S extends z.ZodType>(schema: S, body: unknown, reply: FastifyReply): z.infer<S> | null {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  void reply.code(400).send({ error: formatIssue(result.error) });
  return null;
}

export async function buildService(
  options: ServiceOptions = {},
): Promise<{ app: FastifyInstance; sandbox: CodeSandbox; limiter: Limiter }> {
  const sandbox = options.sandbox ?? new ProcessSandbox(options.sandboxOptions);
  await sandbox.warmup();
  const concurrency =
    options.concurrency ?? options.sandboxOptions?.pythonWorkers ?? Math.max(8, 2 * os.availableParallelism());
  const limiter = new Limiter(
    concurrency,
    options.queue ?? Math.max(64, 8 * concurrency),
    options.queueTimeoutMs ?? 120_000,
  );
  const metrics = new Metrics();
  // Closing ends every connection at once (runs in flight are cancelled with them: their clients see the connection drop).
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 16 << 20,
    requestTimeout: 300_000,
    forceCloseConnections: true,
  });

  const execute = async (body: RunBody, admitted = false, signal?: AbortSignal) => {
    const limits = toLimits(body.limits);
    return limiter.run(
      async () => {
        if (body.tests) {
          const verdict = await runCodeTests(
            sandbox,
            body.language,
            body.code,
            body.tests,
            limits,
            body.compile_timeout_ms,
            signal,
          );
          verdict.runs.forEach(countRun);
          return verdict;
        }
        const result = await sandbox.run({
          language: body.language,
          code: body.code,
          stdin: body.stdin,
          files: body.files,
          fetchFiles: body.fetch_files,
          limits,
          compileTimeoutMs: body.compile_timeout_ms,
          signal,
        });
        countRun(result);
        return result;
      },
      admitted,
      signal,
    );
  };
  const countRun = (r: RunResult) => {
    metrics.inc('runs_total', { status: r.status, warm: String(r.warm) });
    metrics.observeRun(r.wall_ms);
  };
  const overloaded = (reply: FastifyReply, e: Overloaded) => {
    metrics.inc('rejected_total', { reason: e.reason });
    const code = e.reason === 'queue_full' ? 429 : 503;
    return reply.code(code).header('retry-after', '1').send({ error: e.message, reason: e.reason });
  };

  if (options.apiKey !== undefined) {
    const expected = createHash('sha256').update(`Bearer ${options.apiKey}`).digest();
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/health' || request.url.startsWith('/health?')) return;
      const given = createHash('sha256')
        .update(request.headers.authorization ?? '')
        .digest();
      if (!timingSafeEqual(given, expected)) {
        metrics.inc('unauthorized_total', {});
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({ error: 'unauthorized: send the API key as `Authorization: Bearer <key>`' });
      }
    });
  }

  app.addHook('onResponse', async (request, reply) => {
    metrics.inc('http_requests_total', {
      route: request.routeOptions.url ?? 'unknown',
      code: String(reply.statusCode),
    });
  });
  app.setErrorHandler((error, _request, reply) => {
    const e = error as Error & { statusCode?: number };
    if (e instanceof Overloaded) return overloaded(reply, e);
    if (e instanceof RingrlError) return reply.code(400).send({ error: e.message });
    if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ error: e.message.split('\n')[0] });
    return reply.code(500).send({ error: `internal error: ${e.message.split('\n')[0]}` });
  });

  app.post('/run', async (request, reply) => {
    const body = parse(runSchema, request.body, reply);
    if (!body) return reply;
    return execute(body, false, clientGone(request, reply));
  });

  app.post('/verify/math', async (request, reply) => {
    const body = parse(mathSchema, request.body, reply);
    if (!body) return reply;
    metrics.inc('math_total', {});
    return verifyMath(body.completion, body.answer, { fallback: body.fallback });
  });

  app.post('/batch', async (request, reply) => {
    const body = parse(batchSchema, request.body, reply);
    if (!body) return reply;
    // A batch is admitted as a whole (or refused with 429); its items then share the run slots.
    if (limiter.full()) throw new Overloaded('queue_full');
    const results = await Promise.all(
      body.items.map(async (item) => {
        try {
          if (item.type === 'math')
            return verifyMath((item as MathBody).completion, (item as MathBody).answer, {
              fallback: (item as MathBody).fallback,
            });
          const { type: _type, ...run } = item;
          return await execute(run as RunBody, true);
        } catch (e) {
          return { error: (e as Error).message.split('\n')[0] };
        }
      }),
    );
    return { results };
  });

  app.post('/run_code', async (request, reply) => {
    const body = parse(runCodeSchema, request.body, reply);
    if (!body) return reply;
    const language = fusionLanguage(body.language);
    if (!language)
      return fusionError(`unsupported language '${body.language}'; this sandbox runs ${FUSION_NAMES.join(', ')}`);
    const files: Record<string, string> = {};
    for (const [name, content] of Object.entries(body.files ?? {})) if (content !== null) files[name] = content;
    // SandboxFusion's accepted values: any timeout (0 or none: the default of 10 s; over the
    // ceiling: the ceiling), memory_limit_MB -1 or 0 (its default, "no limit": the sandbox's own limit).
    const seconds = (value: number | null | undefined) =>
      Math.min(MAX_LIMITS.wallMs, value ? Math.max(1, Math.round(value * 1000)) : 10_000);
    const wallMs = seconds(body.run_timeout);
    const memory =
      body.memory_limit_MB && body.memory_limit_MB > 0
        ? { memoryMb: Math.min(MAX_LIMITS.memoryMb, Math.max(16, body.memory_limit_MB)) }
        : {};
    const signal = clientGone(request, reply);
    let result: RunResult;
    try {
      const spec = {
        language,
        code: body.code,
        stdin: body.stdin ?? '',
        files,
        fetchFiles: body.fetch_files ?? [],
        limits: { wallMs, cpuMs: wallMs, ...memory },
        compileTimeoutMs: seconds(body.compile_timeout),
        signal,
      };
      result = await limiter.run(() => sandbox.run(spec), false, signal);
    } catch (e) {
      // SandboxFusion clients (verl's among them) retry on 504: overload is the case to retry.
      if (e instanceof Overloaded) {
        metrics.inc('rejected_total', { reason: e.reason });
        return reply.code(504).send({ ...fusionError(e.message), status: 'SandboxError' });
      }
      return fusionError(`sandbox failure: ${(e as Error).message.split('\n')[0]}`);
    }
    countRun(result);
    return toFusion(result);
  });

  app.get('/health', async () => {
    const { available, unavailable } = sandbox.languages();
    return {
      status: 'ok',
      isolation: sandbox.isolation,
      languages: available,
      unavailable,
      active: limiter.active,
      queued: limiter.queued,
      concurrency: limiter.concurrency,
      queue: limiter.queue,
    };
  });

  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', 'text/plain; version=0.0.4');
    return metrics.render({
      active_runs: limiter.active,
      queued_runs: limiter.queued,
      concurrency: limiter.concurrency,
      queue_capacity: limiter.queue,
      isolation_bwrap: sandbox.isolation === 'bwrap' ? 1 : 0,
    });
  });

  app.addHook('onClose', async () => {
    limiter.shutdown();
    await sandbox.close();
  });
  return { app, sandbox, limiter };
}

/** SandboxFusion's language names that ringrl runs (ringrl's own names and aliases are accepted too). */
const FUSION_NAMES = ['python', 'pytest', 'cpp', 'c', 'nodejs', 'typescript', 'bash', 'go', 'java', 'rust'];

function fusionLanguage(name: string): Language | undefined {
  return (LANGUAGES as readonly string[]).includes(name) ? (name as Language) : LANGUAGE_ALIASES[name];
}

/** An AbortSignal that fires when the client disconnects before its answer is sent. */
function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  request.raw.socket?.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

function fusionError(message: string) {
  return {
    status: 'SandboxError',
    message,
    compile_result: null,
    run_result: null,
    executor_pod_name: os.hostname(),
    files: {},
  };
}

/** A process's exit as SandboxFusion reports it: the exit code, or minus the signal number. */
function returnCode(exitCode: number | null, signal: string | null): number | null {
  if (exitCode !== null) return exitCode;
  const n = signal ? (os.constants.signals as Record<string, number>)[signal] : undefined;
  return n === undefined ? null : -n;
}

/**
 * A RunResult in SandboxFusion's response shape. As SandboxFusion reports them: a timeout is
 * `TimeLimitExceeded`; every other ending is `Finished` with the return code — minus the signal
 * number for a program killed by one (memory, output over the cap and signals: rc -9 when the
 * sandbox killed it). `message` names ringrl's status when the run did not succeed.
 */
export function toFusion(r: RunResult) {
  if (r.status === 'sandbox_error') return fusionError(r.message ?? 'sandbox error');
  const compile = r.compile
    ? {
        status: r.compile.status === 'timeout' ? 'TimeLimitExceeded' : 'Finished',
        execution_time: r.compile.wall_ms / 1000,
        return_code: r.compile.status === 'timeout' ? null : returnCode(r.compile.exit_code, r.compile.signal),
        stdout: r.compile.stdout,
        stderr: r.compile.stderr,
      }
    : null;
  const run =
    r.status === 'compile_error'
      ? null
      : {
          status: r.status === 'timeout' ? 'TimeLimitExceeded' : 'Finished',
          execution_time: r.wall_ms / 1000,
          return_code: r.status === 'timeout' ? null : returnCode(r.exit_code, r.signal),
          stdout: r.stdout,
          stderr: r.stderr,
        };
  return {
    status: r.status === 'ok' ? 'Success' : 'Failed',
    message: r.status === 'ok' ? '' : r.status,
    compile_result: compile,
    run_result: run,
    executor_pod_name: os.hostname(),
    files: r.files ?? {},
  };
}

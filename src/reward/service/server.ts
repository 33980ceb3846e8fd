// The reward service (fastify): POST /run, /verify/math, /batch, SandboxFusion-compatible
// /run_code; GET /health, /metrics. Scale out by running more copies behind a URL list
// (src/reward/client.ts); each copy bounds its own work with a Limiter.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import os from 'node:os';
import type { z } from 'zod';
import { ProcessSandbox, type SandboxOptions } from '../sandbox/pool.ts';
import type { CodeSandbox, RunResult } from '../sandbox/types.ts';
import { runCodeTests } from '../code.ts';
import { verifyMath } from '../math/verify.ts';
import { RingrlError } from '../../errors.ts';
import { Limiter, Overloaded } from './limiter.ts';
import { runSchema, mathSchema, batchSchema, runCodeSchema, formatIssue, toLimits, type RunBody, type MathBody } from './schemas.ts';

export interface ServiceOptions {
  /** Runs executing at once (default: the sandbox's Python workers, 2 × CPUs, at least 4). */
  concurrency?: number;
  /** Requests allowed to wait (default 8 × concurrency); more answer 429. */
  queue?: number;
  /** Longest wait in the queue before answering 503 (default 30 s). */
  queueTimeoutMs?: number;
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

export async function buildService(options: ServiceOptions = {}): Promise<{ app: FastifyInstance; sandbox: CodeSandbox; limiter: Limiter }> {
  const sandbox = options.sandbox ?? new ProcessSandbox(options.sandboxOptions);
  await sandbox.warmup();
  const concurrency = options.concurrency ?? options.sandboxOptions?.pythonWorkers ?? Math.max(4, 2 * os.availableParallelism());
  const limiter = new Limiter(concurrency, options.queue ?? 8 * concurrency, options.queueTimeoutMs ?? 30_000);
  const metrics = new Metrics();
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 16 << 20, requestTimeout: 300_000 });

  const execute = async (body: RunBody, admitted = false) => {
    const limits = toLimits(body.limits);
    return limiter.run(async () => {
      if (body.tests) {
        const verdict = await runCodeTests(sandbox, body.language, body.code, body.tests, limits);
        verdict.runs.forEach(countRun);
        return verdict;
      }
      const result = await sandbox.run({ language: body.language, code: body.code, stdin: body.stdin, files: body.files, fetchFiles: body.fetch_files, limits });
      countRun(result);
      return result;
    }, admitted);
  };
  const countRun = (r: RunResult) => {
    metrics.inc('runs_total', { status: r.status, warm: String(r.warm) });
    metrics.observeRun(r.wall_ms);
  };
  const overloaded = (reply: FastifyReply, e: Overloaded) => {
    metrics.inc('rejected_total', { reason: e.reason });
    const code = e.reason === 'queue_full' ? 429 : 503;
    return reply
      .code(code)
      .header('retry-after', '1')
      .send({ error: e.message, reason: e.reason });
  };

  app.addHook('onResponse', async (request, reply) => {
    metrics.inc('http_requests_total', { route: request.routeOptions.url ?? 'unknown', code: String(reply.statusCode) });
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
    return execute(body);
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
          if (item.type === 'math') return verifyMath((item as MathBody).completion, (item as MathBody).answer, { fallback: (item as MathBody).fallback });
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
    const language = FUSION_LANGUAGES[body.language];
    if (!language) return fusionError(`unsupported language '${body.language}'; this sandbox runs ${Object.keys(FUSION_LANGUAGES).join(', ')}`);
    const files: Record<string, string> = {};
    for (const [name, content] of Object.entries(body.files ?? {})) if (content !== null) files[name] = content;
    const limits = { wallMs: (body.run_timeout ?? 10) * 1000, ...(body.memory_limit_MB ? { memoryMb: body.memory_limit_MB } : {}) };
    limits.wallMs = Math.max(1, limits.wallMs);
    let result: RunResult;
    try {
      result = await limiter.run(() => sandbox.run({ language, code: body.code, stdin: body.stdin ?? '', files, fetchFiles: body.fetch_files, limits: { ...limits, cpuMs: limits.wallMs } }));
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

  app.get('/health', async () => ({ status: 'ok', isolation: sandbox.isolation, active: limiter.active, queued: limiter.queued, concurrency: limiter.concurrency, queue: limiter.queue }));

  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', 'text/plain; version=0.0.4');
    return metrics.render({ active_runs: limiter.active, queued_runs: limiter.queued, concurrency: limiter.concurrency, queue_capacity: limiter.queue, isolation_bwrap: sandbox.isolation === 'bwrap' ? 1 : 0 });
  });

  app.addHook('onClose', async () => {
    limiter.shutdown();
    await sandbox.close();
  });
  return { app, sandbox, limiter };
}

const FUSION_LANGUAGES: Record<string, 'python' | 'javascript'> = { python: 'python', python3: 'python', nodejs: 'javascript', javascript: 'javascript', js: 'javascript' };

function fusionError(message: string) {
  return { status: 'SandboxError', message, compile_result: null, run_result: null, executor_pod_name: os.hostname(), files: {} };
}

/** A RunResult in SandboxFusion's response shape. */
export function toFusion(r: RunResult) {
  if (r.status === 'sandbox_error') return fusionError(r.message ?? 'sandbox error');
  const runStatus = r.status === 'timeout' ? 'TimeLimitExceeded' : r.exit_code === null ? 'Error' : 'Finished';
  return {
    status: r.status === 'ok' ? 'Success' : 'Failed',
    message: r.status === 'ok' ? '' : r.status,
    compile_result: null,
    run_result: { status: runStatus, execution_time: r.wall_ms / 1000, return_code: r.exit_code, stdout: r.stdout, stderr: r.stderr },
    executor_pod_name: os.hostname(),
    files: r.files ?? {},
  };
}

// `ringrl serve`: the local engine behind HTTP (fastify), speaking SGLang's native RL protocol
// (sglang.ts) and the OpenAI API (openai.ts), with continuous batching across concurrent requests
// (loop.ts). Bad input answers 400 with one line naming the field; with an API key every endpoint
// but /health wants `Authorization: Bearer KEY` (401 otherwise).
import Fastify, { type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LocalEngine } from '../engine/local.ts';
import type { Precision } from '../engine/precision.ts';
import { SnapshotLoader } from '../engine/snapshot.ts';
import { RingrlError } from '../errors.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import { type ServeContext, BadRequest } from './context.ts';
import { ServingLoop } from './loop.ts';
import { ServeMetrics } from './metrics.ts';
import { openaiRoutes } from './openai.ts';
import { sglangRoutes } from './sglang.ts';

export interface ServeOptions {
  modelDir: string;
  /** Sequences decoded concurrently. Default 64. */
  capacity?: number;
  /** Sequences prefilled together. Default 8. */
  prefillBatch?: number;
  precision?: Precision;
  /** Seed of requests that bring none. Default 0. */
  seed?: number;
  /** Require `Authorization: Bearer <apiKey>` on every endpoint but /health. */
  apiKey?: string;
  /** The name of the weights loaded at start (SGLang's --weight-version). Default 'default'. */
  weightVersion?: string;
  /** Streamed /generate chunks carry only the tokens since the previous chunk (SGLang's --incremental-streaming-output). */
  incrementalStreaming?: boolean;
  /** The model name /v1/models lists. Default: the model dir's name. */
  servedModelName?: string;
  runtime?: RuntimeOptions;
  logger?: boolean;
}

export interface Server {
  app: FastifyInstance;
  ctx: ServeContext;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Refuse a server reachable from other machines without a key. */
export function checkExposure(host: string, apiKey: string | undefined): void {
  if (!LOOPBACK.has(host) && !apiKey)
    throw new RingrlError(
      `--host ${host}: a server reachable from other machines needs an API key; give --api-key KEY (or set RINGRL_API_KEY), or listen on 127.0.0.1`,
    );
}

export async function buildServer(options: ServeOptions): Promise<Server> {
  const weights = new SnapshotLoader();
  const snapshot = await weights.load(options.modelDir);
  const config = snapshot.config;
  const tokenizer = existsSync(join(options.modelDir, 'tokenizer.json')) ? loadTokenizer(options.modelDir) : null;
  const engine = new LocalEngine(config, {
    capacity: options.capacity ?? 64,
    prefillBatch: options.prefillBatch ?? 8,
    precision: options.precision ?? 'fp32',
    ...(options.runtime ? { runtime: options.runtime } : {}),
  });
  await engine.updateWeights(snapshot.weights, 0, true);
  weights.commit(snapshot);
  const loop = new ServingLoop(engine, options.weightVersion ?? 'default', options.seed ?? 0);
  let counter = 0;
  const ctx: ServeContext = {
    loop,
    config,
    tokenizer,
    modelDir: options.modelDir,
    modelName: options.servedModelName ?? basename(resolve(options.modelDir)),
    metrics: new ServeMetrics(loop),
    weights,
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    incrementalStreaming: options.incrementalStreaming ?? false,
    nextId: (prefix) => `${prefix}-${process.pid.toString(36)}-${(counter++).toString(36)}`,
  };
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 << 20, forceCloseConnections: true });

  // JSON bodies: an empty body is {} (clients post /pause_generation and the like without one);
  // malformed JSON is a one-line 400.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '' || body === undefined) return done(null, {});
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      done(new BadRequest(`body: malformed JSON (${(error as Error).message.split('\n')[0]})`), undefined);
    }
  });

  if (options.apiKey) {
    const expected = `Bearer ${options.apiKey}`;
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/health') return;
      const got = request.headers.authorization;
      if (got !== expected) {
        const message = got
          ? 'wrong API key (Authorization: Bearer KEY)'
          : 'missing API key: send Authorization: Bearer KEY';
        return reply
          .code(401)
          .send(isOpenAi(request.url) ? openAiError(message, 'authentication_error') : { error: message });
      }
    });
  }
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.requests.inc({ route: request.routeOptions.url ?? 'unknown', code: String(reply.statusCode) });
  });
  app.setErrorHandler((error, request, reply) => {
    const e = error as Error & { statusCode?: number };
    const status = e instanceof RingrlError ? 400 : e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
    const line = e.message.split('\n')[0]!;
    const message = status === 500 ? `internal error: ${line}` : line;
    return reply
      .code(status)
      .send(
        isOpenAi(request.url)
          ? openAiError(message, status === 500 ? 'server_error' : 'invalid_request_error')
          : { error: message },
      );
  });
  app.setNotFoundHandler((request, reply) => {
    const message = `no endpoint ${request.method} ${request.url.split('?')[0]}`;
    return reply
      .code(404)
      .send(isOpenAi(request.url) ? openAiError(message, 'invalid_request_error') : { error: message });
  });

  // Closing ends every request in flight (finish_reason abort) rather than decoding them out.
  app.addHook('preClose', async () => void (await loop.pause('abort')));
  app.get('/metrics', async (_request, reply) =>
    reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );
  sglangRoutes(app, ctx);
  openaiRoutes(app, ctx);
  return { app, ctx };
}

const isOpenAi = (url: string) => url.startsWith('/v1/');
const openAiError = (message: string, type: string) => ({ error: { message, type, param: null, code: null } });

/** Build and listen; resolves with the URL. Port 0 picks a free port. */
export async function startServer(
  options: ServeOptions & { host?: string; port?: number },
): Promise<Server & { url: string }> {
  const host = options.host ?? '127.0.0.1';
  checkExposure(host, options.apiKey);
  const server = await buildServer(options);
  await server.app.listen({ host, port: options.port ?? 30000 });
  const address = server.app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { ...server, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}` };
}

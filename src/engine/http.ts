// HttpEngine: the RolloutEngine interface over SGLang's native /generate, against a list of
// servers — `ringrl serve` or SGLang itself. Each sequence is one /generate request pinned to the
// least-loaded server; the server batches concurrent requests continuously. The policy log-probs
// come from meta_info.output_token_logprobs (SGLang's: log softmax at the temperature over the whole
// vocabulary); ringrl's server also sends the behaviour log-probs (after top-k/top-p) and a version
// per token (elsewhere the behaviour log-prob is taken to be the policy one, which it equals without
// truncation, and the version is meta_info.weight_version).
//
// pause() is /pause_generation {mode: "abort"} on every server: in-flight requests come back with
// what they generated so far; resuming one re-submits prompt + generated with max_new_tokens
// reduced by it and concatenates the per-token records (as AReaL's client and slime's partial
// rollouts do). updateWeights() publishes the weights as an HF model dir (weights.ts) and calls
// /update_weights_from_disk on every server in parallel, then checks each reports the new version.
import http from 'node:http';
import { resolve } from 'node:path';
import { RingrlError } from '../errors.ts';
import type { Weights } from '../model/checkpoint.ts';
import {
  cloneSequence,
  type EngineStats,
  emptySequence,
  type GeneratedSequence,
  type GenerationRequest,
  type RolloutEngine,
} from './types.ts';
import type { WeightPublisher } from './weights.ts';

export interface HttpEngineOptions {
  /** Base URLs of SGLang-protocol servers, e.g. http://127.0.0.1:30000. */
  servers: string[];
  /** Writes each version as a model dir the servers can read (same machine or shared storage); without one, updateWeights is refused. */
  publisher?: WeightPublisher;
  /** Sent as `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Sequences in flight at most over all servers; more wait here. Default 64 per server. */
  capacity?: number;
  /** step() returns (possibly empty) after this long without a sequence finishing. Default 1000 ms. */
  stepMs?: number;
  /** Attempts per request on connection errors and 5xx answers (with backoff). Default 3. */
  retries?: number;
  /** What the servers were given as, for error messages. Default 'rollout.servers'. */
  origin?: string;
}

interface Flight {
  request: GenerationRequest;
  server: number;
  /** Tokens and records generated before this request (a resumed partial). */
  base: GeneratedSequence;
}

interface SglangOutput {
  output_ids?: number[];
  meta_info: {
    finish_reason: { type: string; message?: string } | null;
    output_token_logprobs?: [number, number, string | null][];
    behavior_logprobs?: number[];
    output_token_weight_versions?: string[];
    weight_version?: string;
  };
}

export class HttpEngine implements RolloutEngine {
  version = 0;
  readonly servers: string[];
  private readonly publisher: WeightPublisher | undefined;
  private readonly headers: Record<string, string>;
  private readonly capacity: number;
  private readonly stepMs: number;
  private readonly retries: number;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly load: number[];
  private readonly flights = new Map<string, Flight>();
  private waiting: GenerationRequest[] = [];
  private ready: GeneratedSequence[] = [];
  private paused: GeneratedSequence[] = [];
  private pausing = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private counters = { decodeSteps: 0, generatedTokens: 0, prefillTokens: 0, busySeconds: 0 };

  constructor(options: HttpEngineOptions) {
    const origin = options.origin ?? 'rollout.servers';
    if (!options.servers.length) throw new RingrlError(`${origin}: give at least one server URL`);
    for (const [i, url] of options.servers.entries()) {
      if (!/^https?:\/\/[^/]+\/?$/.test(url))
        throw new RingrlError(`${origin}[${i}]: expected a base URL like http://127.0.0.1:30000, got '${url}'`);
    }
    this.servers = options.servers.map((u) => u.replace(/\/$/, ''));
    this.publisher = options.publisher;
    this.headers = {
      'content-type': 'application/json',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    };
    this.capacity = options.capacity ?? 64 * this.servers.length;
    this.stepMs = options.stepMs ?? 1000;
    this.retries = options.retries ?? 3;
    this.load = this.servers.map(() => 0);
  }

  /** Wait until every server answers /health (servers starting up), at most `timeoutMs`. */
  async waitReady(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(
      this.servers.map(async (url) => {
        for (;;) {
          try {
            await this.call(url, 'GET', '/health', undefined, 1);
            return;
          } catch (error) {
            if (error instanceof HttpError && error.status === 401)
              throw new RingrlError(`${url}: ${error.message}; check rollout.api_key`);
            if (Date.now() > deadline)
              throw new RingrlError(
                `${url}: no answer to /health within ${timeoutMs / 1000} s (${(error as Error).message})`,
              );
            await sleep(200);
          }
        }
      }),
    );
  }

  submit(requests: GenerationRequest[]): void {
    for (const r of requests) {
      if (!Array.isArray(r.prompt) || !r.prompt.length)
        throw new RingrlError(`request '${r.id}': prompt must be a non-empty array of token ids`);
      if (this.flights.has(r.id) || this.waiting.some((w) => w.id === r.id))
        throw new RingrlError(`request '${r.id}': already submitted`);
    }
    this.waiting.push(...requests);
    this.launch();
  }

  busy(): boolean {
    return this.flights.size > 0 || this.waiting.length > 0 || this.ready.length > 0;
  }

  async step(): Promise<GeneratedSequence[]> {
    const started = performance.now();
    this.launch();
    if (!this.ready.length && this.flights.size) {
      await new Promise<void>((done) => {
        const timer = setTimeout(done, this.stepMs);
        this.wake = () => (clearTimeout(timer), done());
      });
      this.wake = null;
    }
    this.throwFailure();
    this.counters.decodeSteps++;
    this.counters.busySeconds += (performance.now() - started) / 1000;
    const finished = this.ready;
    this.ready = [];
    this.launch();
    return finished;
  }

  async pause(): Promise<GeneratedSequence[]> {
    const started = performance.now();
    const partial = this.waiting.map((r) => r.resumeFrom ?? emptySequence(r));
    this.waiting = [];
    if (this.flights.size) {
      this.pausing = true;
      try {
        await this.everyServer('POST', '/pause_generation', { mode: 'abort' });
        // A request still on its way when the pause arrived is held by the server, not aborted:
        // abort everything again until every request has answered.
        while (this.flights.size) {
          await Promise.race([this.settled(), sleep(200)]);
          if (this.flights.size) await this.everyServer('POST', '/abort_request', { abort_all: true });
        }
      } finally {
        this.pausing = false;
        await this.everyServer('POST', '/continue_generation', {});
      }
    }
    this.throwFailure();
    partial.push(...this.paused);
    this.paused = [];
    this.counters.busySeconds += (performance.now() - started) / 1000;
    return partial.map((s) => ({ ...s, finishReason: null }));
  }

  async updateWeights(weights: Weights, version: number): Promise<void> {
    if (this.flights.size)
      throw new RingrlError(
        `engine: updateWeights with ${this.flights.size} sequences decoding; pause() first so they resume under the new weights`,
      );
    if (!this.publisher)
      throw new RingrlError(
        'engine: this HttpEngine has no weight publisher (a directory the servers read); it cannot update weights',
      );
    const path = resolve(this.publisher.publish(weights, version));
    const name = String(version);
    await Promise.all(
      this.servers.map(async (url) => {
        const answer = (await this.call(url, 'POST', '/update_weights_from_disk', {
          model_path: path,
          weight_version: name,
          abort_all_requests: false,
        })) as { success?: boolean; message?: string };
        if (answer.success === false)
          throw new RingrlError(`${url}/update_weights_from_disk: ${answer.message ?? 'failed'}`);
        const reported = (await this.call(url, 'GET', '/get_weight_version', undefined)) as { weight_version?: string };
        if (reported.weight_version !== name)
          throw new RingrlError(
            `${url}: loaded ${path} but reports weight_version '${reported.weight_version}', expected '${name}'`,
          );
      }),
    );
    this.version = version;
  }

  interrupt(): void {
    this.wake?.();
  }

  /** Each server's own decode seconds (ringrl serve's /server_info busy_seconds; NaN where a server does not say). */
  async busySecondsPerEngine(): Promise<number[]> {
    return Promise.all(
      this.servers.map(async (url) => {
        const info = (await this.call(url, 'GET', '/server_info', undefined, 1)) as { busy_seconds?: unknown };
        return typeof info.busy_seconds === 'number' ? info.busy_seconds : NaN;
      }),
    );
  }

  stats(): EngineStats {
    return { active: this.flights.size, waiting: this.waiting.length, capacity: this.capacity, ...this.counters };
  }

  /** Close idle keep-alive connections (the servers are not stopped). */
  close(): void {
    this.agent.destroy();
  }

  // ---- internals ---------------------------------------------------------------------------

  private throwFailure(): void {
    if (!this.failure) return;
    const error = this.failure;
    this.failure = null;
    throw error;
  }

  private launch(): void {
    while (this.waiting.length && this.flights.size < this.capacity && !this.pausing) this.start(this.waiting.shift()!);
  }

  private start(request: GenerationRequest): void {
    const server = this.load.indexOf(Math.min(...this.load));
    const base = request.resumeFrom ? cloneSequence(request.resumeFrom) : emptySequence(request);
    const remaining = request.params.maxNewTokens - base.tokens.length;
    const last = base.tokens.at(-1);
    if (last !== undefined && request.params.stopTokens?.includes(last)) {
      this.ready.push({ ...base, finishReason: 'stop' });
      return;
    }
    if (remaining <= 0) {
      this.ready.push({ ...base, finishReason: 'length' });
      return;
    }
    this.flights.set(request.id, { request, server, base });
    this.load[server]!++;
    const p = request.params;
    const stop = p.stopTokens ?? [];
    const body = {
      input_ids: [...request.prompt, ...base.tokens],
      sampling_params: {
        max_new_tokens: remaining,
        temperature: p.temperature,
        top_p: p.topP ?? 1,
        top_k: p.topK ? p.topK : -1,
        // SGLang checks stop_token_ids only while ignore_eos is false; without stop tokens the
        // engine interface stops at none, so EOS is ignored then.
        stop_token_ids: stop,
        ignore_eos: stop.length === 0,
        skip_special_tokens: false,
        no_stop_trim: true,
        ...(p.seed !== undefined ? { sampling_seed: p.seed } : {}),
      },
      return_logprob: true,
      rid: request.id,
    };
    this.counters.prefillTokens += body.input_ids.length;
    void this.call(this.servers[server]!, 'POST', '/generate', body).then(
      (out) => this.land(request.id, out as SglangOutput),
      (error: Error) => this.crash(request.id, error),
    );
  }

  private land(id: string, out: SglangOutput): void {
    const flight = this.flights.get(id);
    if (!flight) return;
    this.flights.delete(id);
    this.load[flight.server]!--;
    const seq = flight.base;
    const meta = out.meta_info;
    const records = meta.output_token_logprobs ?? [];
    const fallback = Number(meta.weight_version);
    records.forEach(([logprob, token], i) => {
      seq.tokens.push(token);
      seq.behaviorLogprobs.push(meta.behavior_logprobs?.[i] ?? logprob);
      seq.policyLogprobs.push(logprob);
      const v = Number(meta.output_token_weight_versions?.[i] ?? fallback);
      seq.versions.push(Number.isFinite(v) ? v : this.version);
    });
    this.counters.generatedTokens += records.length;
    const type = meta.finish_reason?.type;
    if (this.pausing) {
      // Finished or not, it goes back with the pause, as the local engine's would (its step() had
      // handed it out before): a sequence that ended is ended again at once when resubmitted.
      this.paused.push(seq);
    } else if (type === 'abort') {
      this.waiting.unshift({ ...flight.request, resumeFrom: seq }); // aborted by someone else: carry on
    } else {
      seq.finishReason = type === 'stop' ? 'stop' : 'length';
      this.ready.push(seq);
    }
    this.launch();
    this.wake?.();
  }

  private crash(id: string, error: Error): void {
    const flight = this.flights.get(id);
    if (!flight) return;
    this.flights.delete(id);
    this.load[flight.server]!--;
    this.failure ??=
      error instanceof RingrlError
        ? error
        : new RingrlError(`${this.servers[flight.server]}/generate (request '${id}'): ${error.message}`);
    this.wake?.();
  }

  private settled(): Promise<void> {
    return new Promise((done) => {
      const check = () => (this.flights.size === 0 ? done() : setTimeout(check, 20));
      check();
    });
  }

  private everyServer(method: string, path: string, body: unknown): Promise<unknown[]> {
    return Promise.all(this.servers.map((url) => this.call(url, method, path, body)));
  }

  /** One JSON request, retried on connection errors and 5xx; 4xx answers throw at once. */
  private async call(
    url: string,
    method: string,
    path: string,
    body: unknown,
    attempts = this.retries,
  ): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await requestJson(this.agent, `${url}${path}`, method, this.headers, body);
      } catch (error) {
        const retry = !(error instanceof HttpError) || error.status >= 500;
        if (!retry || attempt >= attempts) throw error;
        await sleep(100 * 2 ** attempt);
      }
    }
  }
}

export class HttpError extends RingrlError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** JSON over node:http (no request timeout: a long generation may take minutes before its headers). */
function requestJson(
  agent: http.Agent,
  url: string,
  method: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<unknown> {
  return new Promise((done, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      { method, agent, headers: payload === undefined ? withoutContentType(headers) : headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : {};
          } catch {
            // plain-text answers (/flush_cache) stay text
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const error = (json as { error?: unknown })?.error;
            const message =
              typeof error === 'string'
                ? error
                : ((error as { message?: string })?.message ??
                  (typeof json === 'string' ? json : JSON.stringify(json)));
            return fail(new HttpError(status, `${url}: HTTP ${status}: ${String(message).split('\n')[0]}`));
          }
          done(json);
        });
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

function withoutContentType(headers: Record<string, string>): Record<string, string> {
  const { 'content-type': _, ...rest } = headers;
  return rest;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

// HttpEngine: the RolloutEngine interface over SGLang's native /generate, against a list of
// servers — `ringrl serve` or SGLang itself. Each sequence is one streamed /generate request
// (`stream: true`, cumulative SSE chunks) pinned to the least-loaded server; the server batches
// concurrent requests continuously. The policy log-probs come from meta_info.output_token_logprobs
// (SGLang's: log softmax at the temperature over the whole vocabulary); ringrl's server also sends
// the behaviour log-probs (after top-k/top-p) and a version per token (elsewhere the behaviour
// log-prob is taken to be the policy one, which it equals without truncation, and the version is
// meta_info.weight_version).
//
// pause() is /pause_generation {mode: "abort"} on every busy server: in-flight requests come back
// with what they generated so far; resuming one re-submits prompt + generated with max_new_tokens
// reduced by it and concatenates the per-token records (as AReaL's client and slime's partial
// rollouts do). updateWeights() publishes the weights as an HF model dir (weights.ts) and calls
// /update_weights_from_disk on every server in parallel, then checks each reports the new version.
//
// Faults (the peers' habits: slime heart-beats /health_generate and restarts dead engines, SGLang's
// router retries 5xx with backoff behind a circuit breaker). A server is lost when it stops
// answering: a connection error its /health probe confirms, a stall (requests in flight and not a
// byte from it for `timeoutMs`), a failed heartbeat, or `breakerFailures` 5xx answers in a row. Its
// sequences resume at once on the others from the last streamed chunk (tokens, log-probs and
// versions kept; nothing is lost or run twice), and it is out of rotation until it is back: a
// supervised worker is restarted, a remote server is probed every `breakerCooldownMs`; either way it
// loads the newest published weights before it gets work. With no server up for `giveUpMs`, step()
// throws EnginesLost. The wire (JSON and SSE requests) is http-transport.ts.
import http from 'node:http';
import { RingrlError } from '../errors.ts';
import { HttpError, ServerError, firstLine, requestJson, streamJson, transportFailure } from './http-transport.ts';
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
  /** Attempts per request on 5xx answers (and per control call on connection errors), with backoff. Default 3. */
  retries?: number;
  /** The servers stream incremental chunks (SGLang's and ringrl serve's --incremental-streaming-output): each has only the new tokens. Default false (cumulative, SGLang's default). */
  incrementalStream?: boolean;
  /** Fault handling (rollout.faults); defaults as there. */
  faults?: Partial<FaultOptions>;
  /** Servers this process started and can restart (rollout.engine_workers). */
  supervisor?: ServerSupervisor;
  /** Where fault lines go (a lost engine, where its sequences resumed, an engine back). Default: nowhere. */
  log?: (message: string, level: 'info' | 'warn') => void;
  /** What the servers were given as, for error messages. Default 'rollout.servers'. */
  origin?: string;
}

export interface FaultOptions {
  /** A server with requests in flight that sends nothing for this long is stalled (lost); every other call waits this long at most. */
  timeoutMs: number;
  /** 5xx answers in a row that open a server's circuit breaker (it is lost). */
  breakerFailures: number;
  /** A lost remote server is probed with /health_generate this often; it is back when it answers. */
  breakerCooldownMs: number;
  /** An idle server is checked with /health_generate after this long without hearing from it; 0 = never. */
  healthIntervalMs: number;
  /** With no server up for this long, step() throws EnginesLost. */
  giveUpMs: number;
  /** Restarts of one supervised worker at most; after that it is gone for good. */
  maxRestarts: number;
}

export const faultDefaults: FaultOptions = {
  timeoutMs: 60_000,
  breakerFailures: 5,
  breakerCooldownMs: 30_000,
  healthIntervalMs: 10_000,
  giveUpMs: 60_000,
  maxRestarts: 3,
};

/** What a run that started its own servers can do about a lost one. */
export interface ServerSupervisor {
  /** Why server `index` is unreachable, if its process says (e.g. 'exited with SIGKILL'). */
  why(index: number): string | undefined;
  /** Replace server `index`: kill what is left of it, start a fresh one; resolves with its URL once it listens. */
  restart(index: number): Promise<string>;
  /** Call `listener` when a server's process ends unasked (the engine loses it before any request fails). */
  onExit(listener: (index: number, why: string) => void): void;
}

/** Every server is lost and none came back in time: the run cannot roll out. */
export class EnginesLost extends RingrlError {
  override name = 'EnginesLost';
}

type ServerState = 'up' | 'suspect' | 'down' | 'gone';

interface Server {
  index: number;
  url: string;
  /** up: in rotation; suspect: a connection failed, its /health probe is out; down: lost, recovering; gone: for good. */
  state: ServerState;
  /** Sequences in flight on it. */
  load: number;
  /** 5xx answers in a row. */
  failures: number;
  /** When a byte last came from it (or it last turned busy). */
  lastHeard: number;
  /** Why it was lost. */
  reason: string;
  /** The weight version name it has loaded. */
  weights: string | null;
  restarts: number;
  checking: boolean;
  /** Sequences whose connection to it failed, waiting for its /health probe to say where they resume. */
  orphans: GenerationRequest[];
}

interface Flight {
  request: GenerationRequest;
  server: Server;
  /** Tokens and records generated before this request (a resumed partial). */
  base: GeneratedSequence;
  /** Cumulative streams: the newest chunk (raw JSON, parsed only when needed). */
  latest: string | null;
  /** Incremental streams: the newest chunk, parsed (its tokens are in `base` already). */
  tail: SglangOutput | null;
  cancel: () => void;
}

interface SglangOutput {
  output_ids?: number[];
  error?: string;
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
  private readonly slots: Server[];
  private readonly publisher: WeightPublisher | undefined;
  private readonly headers: Record<string, string>;
  private readonly capacity: number;
  private readonly stepMs: number;
  private readonly retries: number;
  private readonly incremental: boolean;
  private readonly faults: FaultOptions;
  private readonly supervisor: ServerSupervisor | undefined;
  private readonly log: (message: string, level: 'info' | 'warn') => void;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly flights = new Map<string, Flight>();
  /** 5xx answers in a row per sequence (reset by progress). */
  private readonly strikes = new Map<string, number>();
  /** Sequences waiting out a retry backoff. */
  private readonly delayed = new Map<string, { request: GenerationRequest; timer: NodeJS.Timeout }>();
  private waiting: GenerationRequest[] = [];
  private ready: GeneratedSequence[] = [];
  private paused: GeneratedSequence[] = [];
  private pausing = false;
  private closed = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  /** The newest weights published (what a server loads before it gets work). */
  private published: { version: number; name: string } | null = null;
  private noneUpSince: number | null = null;
  private launches = 0;
  private readonly watchdog: NodeJS.Timeout;
  private counters = { decodeSteps: 0, generatedTokens: 0, prefillTokens: 0, busySeconds: 0 };

  constructor(options: HttpEngineOptions) {
    const origin = options.origin ?? 'rollout.servers';
    if (!options.servers.length) throw new RingrlError(`${origin}: give at least one server URL`);
    for (const [i, url] of options.servers.entries()) {
      if (!/^https?:\/\/[^/]+\/?$/.test(url))
        throw new RingrlError(`${origin}[${i}]: expected a base URL like http://127.0.0.1:30000, got '${url}'`);
    }
    this.slots = options.servers.map((u, index) => ({
      index,
      url: u.replace(/\/$/, ''),
      state: 'up',
      load: 0,
      failures: 0,
      lastHeard: Date.now(),
      reason: '',
      weights: null,
      restarts: 0,
      checking: false,
      orphans: [],
    }));
    this.publisher = options.publisher;
    this.headers = {
      'content-type': 'application/json',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    };
    this.capacity = options.capacity ?? 64 * this.slots.length;
    this.stepMs = options.stepMs ?? 1000;
    this.retries = options.retries ?? 3;
    this.incremental = options.incrementalStream ?? false;
    this.faults = { ...faultDefaults, ...options.faults };
    this.supervisor = options.supervisor;
    this.supervisor?.onExit((i, why) => this.slots[i] && this.lose(this.slots[i], why));
    this.log = options.log ?? (() => {});
    this.watchdog = setInterval(() => this.watch(), Math.max(20, Math.min(1000, this.faults.timeoutMs / 4)));
    this.watchdog.unref();
  }

  /** The servers' base URLs now (a restarted worker has a new one). */
  get servers(): string[] {
    return this.slots.map((s) => s.url);
  }

  /** Wait until every server answers /health (servers starting up), at most `timeoutMs`. */
  async waitReady(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(
      this.slots.map(async ({ url }) => {
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
      if (this.flights.has(r.id) || this.delayed.has(r.id) || this.waiting.some((w) => w.id === r.id))
        throw new RingrlError(`request '${r.id}': already submitted`);
    }
    this.waiting.push(...requests);
    this.launch();
  }

  busy(): boolean {
    return (
      this.flights.size > 0 ||
      this.waiting.length > 0 ||
      this.ready.length > 0 ||
      this.delayed.size > 0 ||
      this.slots.some((s) => s.orphans.length > 0)
    );
  }

  async step(): Promise<GeneratedSequence[]> {
    const started = performance.now();
    this.launch();
    this.checkEngines();
    if (!this.ready.length && this.busy()) {
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
    // Sequences that ended since the last step() go back with the paused ones, as the local
    // engine's would (it hands out only what ended in a step): resubmitted, they end again at once.
    const partial = [
      ...this.waiting,
      ...[...this.delayed.values()].map((d) => d.request),
      ...this.slots.flatMap((s) => s.orphans.splice(0)),
    ].map((r) => r.resumeFrom ?? emptySequence(r));
    partial.push(...this.ready);
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.waiting = [];
    this.ready = [];
    if (this.flights.size) {
      this.pausing = true;
      const held = this.busyServers();
      try {
        await this.onServers(held, 'POST', '/pause_generation', { mode: 'abort' });
        // A request still on its way when the pause arrived is held by the server, not aborted:
        // abort everything again until every request has answered (a lost server's are released).
        while (this.flights.size) {
          await Promise.race([this.settled(), sleep(200)]);
          if (this.flights.size)
            await this.onServers(this.busyServers(), 'POST', '/abort_request', { abort_all: true });
        }
      } finally {
        this.pausing = false;
        await this.onServers(held, 'POST', '/continue_generation', {});
      }
    }
    this.throwFailure();
    partial.push(...this.paused);
    this.paused = [];
    this.strikes.clear();
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
    await this.publisher.publish(weights, version);
    const name = String(version);
    this.published = { version, name };
    // A server lost meanwhile loads the newest version when it is back (recover).
    await Promise.all(
      this.slots
        .filter((s) => s.state === 'up')
        .map((s) =>
          this.loadWeights(s, version, name).catch((error: Error) => {
            if (!transportFailure(error)) throw error;
            this.lose(s, `/update_weights_from_disk: ${firstLine(error.message)}`);
          }),
        ),
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

  /** Close idle keep-alive connections and stop watching (the servers are not stopped). */
  close(): void {
    this.closed = true;
    clearInterval(this.watchdog);
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.agent.destroy();
  }

  // ---- internals: sequences ----------------------------------------------------------------

  private throwFailure(): void {
    if (!this.failure) return;
    const error = this.failure;
    this.failure = null;
    throw error;
  }

  private launch(): void {
    while (this.waiting.length && this.flights.size < this.capacity && !this.pausing) {
      const server = this.pick();
      if (!server) return;
      this.start(this.waiting.shift()!, server);
    }
  }

  /** The least-loaded server in rotation (the first of equals). */
  private pick(): Server | undefined {
    let best: Server | undefined;
    for (const s of this.slots) if (s.state === 'up' && (!best || s.load < best.load)) best = s;
    return best;
  }

  private start(request: GenerationRequest, server: Server): void {
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
      stream: true,
      // Each attempt has its own rid: a server that ran an earlier one may still hold it.
      rid: `${request.id}#${this.launches++}`,
    };
    if (server.load++ === 0) server.lastHeard = Date.now();
    this.counters.prefillTokens += body.input_ids.length;
    const flight: Flight = { request, server, base, latest: null, tail: null, cancel: () => {} };
    const stream = streamJson(this.agent, `${server.url}/generate`, this.headers, body, (data) => {
      if (this.flights.get(request.id) !== flight) return;
      server.lastHeard = Date.now();
      this.strikes.delete(request.id);
      if (!this.incremental) {
        flight.latest = data; // cumulative: only the newest chunk matters, parsed when needed
        return;
      }
      try {
        flight.tail = JSON.parse(data) as SglangOutput;
      } catch {
        return; // not JSON: no progress
      }
      if (flight.tail.meta_info) this.absorb(base, flight.tail.meta_info);
    });
    flight.cancel = stream.cancel;
    this.flights.set(request.id, flight);
    stream.done.then(
      (complete) => (complete ? this.land(flight) : this.fail(flight, new Error('the stream ended without [DONE]'))),
      (error: Error) => this.fail(flight, error),
    );
  }

  /** The stream ended with [DONE]: its last chunk is the result (or the server's error). */
  private land(flight: Flight): void {
    const id = flight.request.id;
    if (this.flights.get(id) !== flight) return;
    const out = flight.tail ?? (flight.latest === null ? null : (JSON.parse(flight.latest) as SglangOutput));
    if (!out?.meta_info?.finish_reason) {
      const error = out?.error ?? 'the stream ended without a finished result';
      this.fail(flight, new ServerError(`${flight.server.url}/generate: ${error}`));
      return;
    }
    this.detach(flight);
    flight.server.failures = 0;
    this.strikes.delete(id);
    const seq = this.progress(flight, out);
    const type = out.meta_info.finish_reason.type;
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

  /** The request failed: resume the sequence from its last chunk, here or elsewhere. */
  private fail(flight: Flight, error: Error): void {
    const id = flight.request.id;
    if (this.flights.get(id) !== flight) return;
    this.detach(flight);
    const server = flight.server;
    const seq = this.progress(flight);
    if (error instanceof HttpError && error.status < 500) {
      this.failure ??= new RingrlError(`${server.url}/generate (request '${id}'): ${error.message}`);
    } else if (this.pausing) {
      this.paused.push(seq);
      if (!(error instanceof HttpError || error instanceof ServerError)) this.suspect(server, error);
    } else if (error instanceof HttpError || error instanceof ServerError) {
      // The server answered, with an error: a strike for the sequence and for the server.
      const strikes = (this.strikes.get(id) ?? 0) + 1;
      this.strikes.set(id, strikes);
      if (strikes >= this.retries)
        this.failure ??= new RingrlError(
          `${server.url}/generate (request '${id}', ${strikes} attempts): ${error.message}`,
        );
      else {
        if (++server.failures >= this.faults.breakerFailures)
          this.lose(server, `${server.failures} failed requests in a row, the last: ${firstLine(error.message)}`);
        this.retryLater({ ...flight.request, resumeFrom: seq }, 100 * 2 ** strikes);
      }
    } else {
      // No answer: the sequence waits for the server's /health probe (lost → it resumes elsewhere).
      server.orphans.push({ ...flight.request, resumeFrom: seq });
      this.suspect(server, error);
    }
    this.launch();
    this.wake?.();
  }

  private detach(flight: Flight): void {
    this.flights.delete(flight.request.id);
    flight.server.load--;
  }

  /** The flight's base plus what its newest chunk (or `out`) says was generated. */
  private progress(flight: Flight, out?: SglangOutput): GeneratedSequence {
    const seq = flight.base;
    if (this.incremental) return { ...seq }; // each chunk was absorbed as it came
    let chunk = out;
    if (!chunk && flight.latest !== null) {
      try {
        chunk = JSON.parse(flight.latest) as SglangOutput;
      } catch {
        // only whole SSE events are kept; an unparsable one carries no progress
      }
    }
    if (chunk?.meta_info) this.absorb(seq, chunk.meta_info);
    return { ...seq };
  }

  /** Append a chunk's tokens, log-probs and versions to `seq`. */
  private absorb(seq: GeneratedSequence, meta: SglangOutput['meta_info']): void {
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
  }

  private retryLater(request: GenerationRequest, ms: number): void {
    const timer = setTimeout(() => {
      this.delayed.delete(request.id);
      this.waiting.push(request);
      this.launch();
      this.wake?.();
    }, ms);
    this.delayed.set(request.id, { request, timer });
  }

  private settled(): Promise<void> {
    return new Promise((done) => {
      const check = () => (this.flights.size === 0 ? done() : setTimeout(check, 20));
      check();
    });
  }

  // ---- internals: servers ------------------------------------------------------------------

  private busyServers(): Server[] {
    return this.slots.filter((s) => s.load > 0 && (s.state === 'up' || s.state === 'suspect'));
  }

  /** A control call on each server; a server that does not answer is lost, a refusal is an error. */
  private async onServers(servers: Server[], method: string, path: string, body: unknown): Promise<void> {
    const live = (s: Server) => s.state === 'up' || s.state === 'suspect';
    await Promise.all(
      servers.filter(live).map(async (s) => {
        // Retried while the server is still in rotation: one the watchdog lost meanwhile is not waited for again.
        for (let attempt = 1; ; attempt++) {
          try {
            await this.call(s.url, method, path, body, 1);
            return;
          } catch (error) {
            if (!transportFailure(error as Error)) throw error;
            if (!live(s) || attempt >= this.retries)
              return this.lose(s, `${path}: ${firstLine((error as Error).message)}`);
            await sleep(100 * 2 ** attempt);
          }
        }
      }),
    );
  }

  /** A connection to `server` failed: it stays in rotation if /health still answers, else it is lost. */
  private suspect(server: Server, error: Error): void {
    if (server.state !== 'up') return;
    server.state = 'suspect';
    this.call(server.url, 'GET', '/health', undefined, 1)
      .then(
        async () => {
          if (server.state !== 'suspect') return;
          server.failures++;
          if (server.weights !== this.published?.name) await this.syncWeights(server);
          if (server.state !== 'suspect') return;
          server.state = 'up';
          this.waiting.unshift(...server.orphans.splice(0));
          this.launch();
          this.wake?.();
        },
        () => this.lose(server, this.supervisor?.why(server.index) ?? `connection failed: ${firstLine(error.message)}`),
      )
      .catch((e: Error) => this.lose(server, firstLine(e.message)));
  }

  /** Stalls and heartbeats, every quarter of the timeout (at most 1 s). */
  private watch(): void {
    const now = Date.now();
    for (const s of this.slots) {
      if (s.state !== 'up') continue;
      const quiet = now - s.lastHeard;
      if (s.load > 0 && quiet > this.faults.timeoutMs) this.lose(s, `timeout after ${this.faults.timeoutMs / 1000} s`);
      else if (
        s.load === 0 &&
        this.faults.healthIntervalMs > 0 &&
        quiet > this.faults.healthIntervalMs &&
        !s.checking
      ) {
        s.checking = true;
        this.call(s.url, 'GET', '/health_generate', undefined, 1)
          .then(
            () => void (s.lastHeard = Date.now()),
            (error: Error) =>
              this.lose(s, this.supervisor?.why(s.index) ?? `/health_generate: ${firstLine(error.message)}`),
          )
          .finally(() => (s.checking = false));
      }
    }
  }

  /**
   * Take `server` out of rotation: its sequences resume at once on the others from their last
   * chunks (or go back with a pause in progress), and its recovery starts.
   */
  private lose(server: Server, reason: string): void {
    if (server.state === 'down' || server.state === 'gone' || this.closed) return;
    server.state = 'down';
    server.reason = reason;
    this.publisher?.release(server.url); // a lost engine keeps no weight version alive
    const flights = [...this.flights.values()].filter((f) => f.server === server);
    for (const f of flights) {
      this.detach(f);
      f.cancel();
    }
    const moved = [
      ...server.orphans.splice(0),
      ...flights.map((f) => ({ ...f.request, resumeFrom: this.progress(f) })),
    ];
    const lost = `engine ${server.url} lost (${reason})`;
    if (this.pausing) {
      this.paused.push(...moved.map((r) => r.resumeFrom!));
      this.log(`${lost}: ${plural(moved.length, 'sequence')} returned to the pool (paused)`, 'warn');
    } else {
      this.waiting.unshift(...moved);
      this.launch();
      const where = new Map<string, number>();
      for (const { id } of moved) {
        const to = this.flights.get(id)?.server.url ?? (this.ready.some((s) => s.id === id) ? 'ended' : 'waiting');
        where.set(to, (where.get(to) ?? 0) + 1);
      }
      const list = [...where].map(([to, n]) => `${to} (${n})`).join(', ');
      this.log(`${lost}: ${plural(moved.length, 'sequence')} resumed${moved.length ? ` on ${list}` : ''}`, 'warn');
    }
    if (!this.slots.some((s) => s.state === 'up' || s.state === 'suspect')) this.noneUpSince ??= Date.now();
    void this.recover(server);
    this.wake?.();
  }

  /** Bring a lost server back: restart it (a supervised worker) or probe it until it answers; then sync its weights. */
  private async recover(server: Server): Promise<void> {
    const lostUrl = server.url;
    while (!this.closed && server.state === 'down') {
      try {
        if (this.supervisor) {
          if (server.restarts >= this.faults.maxRestarts) {
            server.state = 'gone';
            server.reason += `; restarted ${server.restarts} times already (rollout.faults.max_restarts)`;
            this.log(`engine ${server.url} is gone for good: ${server.reason}`, 'warn');
            this.wake?.();
            return;
          }
          server.restarts++;
          server.url = await this.supervisor.restart(server.index);
        } else await sleep(this.faults.breakerCooldownMs, true);
        if (this.closed) return;
        await this.call(server.url, 'GET', '/health_generate', undefined, 1);
        await this.syncWeights(server);
        if (this.closed) return;
        server.state = 'up';
        server.failures = 0;
        server.lastHeard = Date.now();
        this.noneUpSince = null;
        const how = server.url === lostUrl ? 'back' : `restarted as ${server.url}`;
        this.log(`engine ${lostUrl} ${how} at weight version ${server.weights ?? 'as started'}`, 'info');
        this.launch();
        this.wake?.();
      } catch (error) {
        if (this.supervisor && !this.closed)
          this.log(`engine ${lostUrl}: restart failed: ${firstLine((error as Error).message)}`, 'warn');
      }
    }
  }

  /** Load the newest published weights, again if a newer version was published meanwhile. */
  private async syncWeights(server: Server): Promise<void> {
    for (let target = this.published; target && server.weights !== target.name; target = this.published)
      await this.loadWeights(server, target.version, target.name);
  }

  private async loadWeights(server: Server, version: number, name: string): Promise<void> {
    const url = server.url;
    // The publisher keeps a version while a server loads or serves it (its garbage collection).
    const publisher = this.publisher!;
    const path = publisher.locate(url, version);
    publisher.assign(url, version);
    try {
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
    } catch (error) {
      publisher.release(url, true);
      throw error;
    }
    publisher.acknowledge(url, version);
    server.weights = name;
  }

  /** step() with no server up: wait for one to come back, up to giveUpMs, then EnginesLost. */
  private checkEngines(): void {
    if (this.slots.some((s) => s.state === 'up' || s.state === 'suspect')) {
      this.noneUpSince = null;
      return;
    }
    const since = (this.noneUpSince ??= Date.now());
    const allGone = this.slots.every((s) => s.state === 'gone');
    if (allGone || Date.now() - since > this.faults.giveUpMs) {
      const why = this.slots.map((s) => `${s.url}: ${s.reason}`).join('; ');
      throw new EnginesLost(
        `every rollout engine is lost (${why})${allGone ? '' : ` and none came back within ${this.faults.giveUpMs / 1000} s (rollout.faults.give_up_s)`}`,
      );
    }
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
        return await requestJson(this.agent, `${url}${path}`, method, this.headers, body, this.faults.timeoutMs);
      } catch (error) {
        const retry = !(error instanceof HttpError) || error.status >= 500;
        if (!retry || attempt >= attempts || this.closed) throw error;
        await sleep(100 * 2 ** attempt);
      }
    }
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A timer; `unref` ones do not keep the process alive (background recovery). */
function sleep(ms: number, unref = false): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    if (unref) timer.unref();
  });
}

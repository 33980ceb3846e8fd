// The local rollout engine: KV-cached, continuously batched decoding on onnxruntime.
//
// Each active sequence owns one row of a host KV cache split by position into segments
// (kv-cache.ts), so a step reads about each row's own length and feeds zero-copy slices. A decode
// step feeds every active row's newest token and gets back one token per row plus that token's
// keys and values, which the host appends. A finished row's place is taken by another row and
// waiting sequences are prefilled into free rows at the next step: continuous batching.
import { type Tensor, input, quantizedWeight, scalar, where } from '../graph/index.ts';
import { CompiledGraph, type HostTensor, type RuntimeOptions, compileCached } from '../runtime/index.ts';
import { RingrlError } from '../errors.ts';
import { type ModelConfig, sparseLayerCount } from '../model/config.ts';
import type { Weights } from '../model/checkpoint.ts';
import {
  type CacheSegment,
  type LayerCache,
  type Params,
  decodeStep,
  parameterShapes,
  prefill,
} from '../model/llama.ts';
import { SegmentedKvCache } from './kv-cache.ts';
import {
  type PackedLayout,
  type Precision,
  packWeight,
  packedLayout,
  precisions,
  quantizeWeights,
} from './precision.ts';
import { sampleFromLogits, samplerInputs, uniformAt } from './sampling.ts';
import {
  cloneSequence,
  type EngineStats,
  emptySequence,
  type GeneratedSequence,
  type GenerationRequest,
  type RolloutEngine,
  type SamplingParams,
} from './types.ts';

export interface LocalEngineOptions {
  /** Sequences decoded concurrently (batch rows). Default 64. */
  capacity?: number;
  /** Rollout weight precision; the trainer stays fp32. Default fp32. */
  precision?: Precision;
  /** Sequences prefilled together (right-padded) when slots free up. Default 8. */
  prefillBatch?: number;
  /** Seed for requests that bring none. Default 0. */
  seed?: number;
  /**
   * Keep a paused sequence's keys and values until it is resubmitted (`resumeFrom`), so it resumes
   * without re-prefilling, across a weight update too: the tokens after the update attend to keys
   * and values computed under the old weights (PipelineRL's in-flight update). That is cheaper
   * where prefill costs about what decode did (a CPU), and adds a train/rollout mismatch that the
   * trainer's recompute sees and IcePop bounds. Default false: resumed sequences are re-prefilled
   * under the current weights, so every token's log-prob is exactly the new policy's.
   */
  keepPausedCache?: boolean;
  /**
   * First positions of the KV cache's segments after the first (kv-cache.ts): a row reads only the
   * segments it reaches. Default 64, 128, 256, … below the model's context; [] is one dense cache
   * where every row reads the longest row's length.
   */
  kvSegments?: number[];
  runtime?: RuntimeOptions;
}

interface Slot {
  request: GenerationRequest;
  seq: GeneratedSequence;
  cacheLength: number; // tokens whose keys/values are in the cache
  pending: number; // the newest token, fed at the next decode step
  seed: number;
}

/**
 * Segment starts doubling from 64: a row pads at most to twice its length (to the longest row of
 * its last segment), and a step pays a few graph nodes per layer for each segment some row reaches.
 */
export function defaultKvSegments(maxPositions: number): number[] {
  const starts: number[] = [];
  for (let start = 64; start < maxPositions; start *= 2) starts.push(start);
  return starts;
}

export async function createLocalEngine(
  config: ModelConfig,
  weights: Weights,
  options: LocalEngineOptions = {},
): Promise<RolloutEngine> {
  const engine = new LocalEngine(config, options);
  await engine.updateWeights(weights, 0);
  return engine;
}

export class LocalEngine implements RolloutEngine {
  version = 0;
  readonly capacity: number;
  /** Rollout weight precision; a change takes effect at the next updateWeights. */
  precision: Precision;
  /** See LocalEngineOptions.keepPausedCache; a change takes effect at the next pause. */
  keepPausedCache: boolean;
  private readonly shapes: Map<string, number[]>;
  private readonly packed: Map<string, PackedLayout>; // int8/int4: the weights the integer kernels read
  private readonly signature: string;
  private weightFeeds: Record<string, HostTensor> = {};
  /**
   * int8/int4: the packed weights, compiled into this engine's own sessions as constants (so
   * onnxruntime pre-packs them for its integer kernels; fed as inputs, MatMulNBits re-expands the
   * 4-bit weights on every run). A weight update recompiles: `sessions` is cleared and released.
   */
  private packedConstants: Record<string, HostTensor> = {};
  private sessions = new Map<string, Promise<CompiledGraph>>();
  private waiting: GenerationRequest[] = [];
  private readonly cache: SegmentedKvCache<Slot>;
  private readonly kvSegments: number[];
  private parked = false; // every active row is paused with its cache kept (keepPausedCache) until the next step
  private submitted = 0;
  private counters = {
    decodeSteps: 0,
    generatedTokens: 0,
    prefillTokens: 0,
    busySeconds: 0,
    prefillSeconds: 0,
    prefillPaddedTokens: 0,
  };

  constructor(
    readonly config: ModelConfig,
    private readonly options: LocalEngineOptions = {},
  ) {
    this.capacity = options.capacity ?? 64;
    this.precision = options.precision ?? 'fp32';
    this.keepPausedCache = options.keepPausedCache ?? false;
    if (!Number.isInteger(this.capacity) || this.capacity < 1)
      throw new RingrlError(`engine: capacity must be a positive integer, got ${this.capacity}`);
    const prefillBatch = options.prefillBatch ?? 8;
    if (!Number.isInteger(prefillBatch) || prefillBatch < 1)
      throw new RingrlError(`engine: prefillBatch must be a positive integer, got ${prefillBatch}`);
    if (!precisions.includes(this.precision))
      throw new RingrlError(
        `engine: precision '${this.precision}' is unknown; expected one of ${precisions.join(', ')}`,
      );
    this.shapes = parameterShapes(config);
    this.packed = packedLayout(config, this.shapes, this.precision);
    this.signature = JSON.stringify(config) + (this.packed.size ? `:${this.precision}` : '');
    this.kvSegments = options.kvSegments ?? defaultKvSegments(config.maxPositions);
    this.cache = new SegmentedKvCache(
      config.numLayers,
      config.numKvHeads,
      config.headDim,
      this.capacity,
      this.kvSegments,
    );
  }

  /** Active sequences, in cache-row order. */
  private get active(): Slot[] {
    return this.cache.rows;
  }

  /** Allocated cache positions per row, over all segments. */
  get cacheSlots(): number {
    return this.cache.slots;
  }

  /**
   * Load `weights` as `version`. fp32 weights are copied (the trainer updates its arrays in place
   * while we keep decoding) unless `owned`: arrays nobody else writes, such as a snapshot the engine
   * loaded itself (snapshot.ts), are fed to onnxruntime as they are (its inputs are zero-copy).
   */
  async updateWeights(weights: Weights, version: number, owned = false): Promise<void> {
    if (this.active.length > 0 && !this.parked)
      throw new RingrlError(
        `engine: updateWeights with ${this.active.length} sequences decoding; pause() first so they resume under the new weights`,
      );
    const engineWeights = quantizeWeights(weights, this.shapes, this.precision);
    const constants: Record<string, HostTensor> = {};
    for (const [name, layout] of this.packed) {
      const w = weights.get(layout.source);
      if (!w) throw new RingrlError(`engine: updateWeights is missing '${layout.source}'`);
      Object.assign(constants, packWeight(w, layout, name));
    }
    const feeds: Record<string, HostTensor> = {};
    for (const [name, shape] of this.shapes) {
      if (this.packed.has(name)) continue;
      const w = engineWeights.get(name);
      if (!w) throw new RingrlError(`engine: updateWeights is missing '${name}'`);
      // slice copies memory at once; Float32Array.from iterates (~20 s at 0.6B).
      feeds[name] = { dtype: 'float32', data: this.precision === 'fp32' && !owned ? w.slice() : w, dims: shape };
    }
    const stale = [...this.sessions.values()];
    this.sessions = new Map();
    await Promise.all(stale.map(async (g) => (await g.catch(() => null))?.release()));
    this.weightFeeds = feeds;
    this.packedConstants = constants;
    this.version = version;
  }

  submit(requests: GenerationRequest[]): void {
    for (const r of requests) this.validate(r);
    for (const r of requests) {
      const seed = r.params.seed ?? mix(this.options.seed ?? 0, this.submitted++);
      this.waiting.push({ ...r, params: { ...r.params, seed } });
    }
  }

  busy(): boolean {
    return (this.active.length > 0 && !this.parked) || this.waiting.length > 0;
  }

  stats(): EngineStats {
    return {
      active: this.parked ? 0 : this.active.length,
      waiting: this.waiting.length,
      capacity: this.capacity,
      ...this.counters,
    };
  }

  async step(): Promise<GeneratedSequence[]> {
    const started = performance.now();
    const finished: GeneratedSequence[] = [];
    if (this.parked) this.unpark();
    while (this.waiting.length && this.active.length < this.capacity) {
      const take = Math.min(this.capacity - this.active.length, this.options.prefillBatch ?? 8, this.waiting.length);
      finished.push(...(await this.prefill(this.waiting.splice(0, take))));
    }
    this.counters.prefillSeconds += (performance.now() - started) / 1000;
    if (this.active.length) finished.push(...(await this.decode()));
    this.counters.busySeconds += (performance.now() - started) / 1000;
    return finished;
  }

  async pause(): Promise<GeneratedSequence[]> {
    const partial = [...this.active.map((s) => s.seq), ...this.waiting.map((r) => r.resumeFrom ?? emptySequence(r))];
    this.waiting = [];
    if (this.keepPausedCache && this.active.length) this.parked = true;
    else this.cache.clear();
    return partial.map((s) => ({ ...s, finishReason: null }));
  }

  /** The sequences decoding now: live records each step extends (a server streams from them). */
  running(): readonly GeneratedSequence[] {
    return this.parked ? [] : this.active.map((s) => s.seq);
  }

  /** Stop one sequence (decoding or waiting) and hand it back unfinished; null if the engine does not hold it. */
  cancel(id: string): GeneratedSequence | null {
    const row = this.parked ? -1 : this.active.findIndex((s) => s.seq.id === id);
    if (row >= 0) {
      const seq = this.active[row]!.seq;
      this.cache.remove(row);
      return { ...seq, finishReason: null };
    }
    const at = this.waiting.findIndex((r) => r.id === id);
    if (at < 0) return null;
    const [request] = this.waiting.splice(at, 1);
    return { ...(request!.resumeFrom ?? emptySequence(request!)), finishReason: null };
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * Before the first step after a pause: a parked row whose sequence was resubmitted (same id, same
   * tokens) continues from its cache; the others are released, and the resubmission of a released
   * one is prefilled as usual.
   */
  private unpark(): void {
    const resumed = new Map(this.waiting.filter((r) => r.resumeFrom).map((r) => [r.id, r]));
    const claimed = new Set<GenerationRequest>();
    for (let row = this.active.length - 1; row >= 0; row--) {
      const slot = this.active[row]!;
      const request = resumed.get(slot.seq.id);
      if (request && request.resumeFrom!.tokens.length === slot.seq.tokens.length) {
        claimed.add(request);
        Object.assign(slot, { request, seq: cloneSequence(request.resumeFrom!), seed: request.params.seed! });
      } else this.cache.remove(row);
    }
    this.waiting = this.waiting.filter((r) => !claimed.has(r));
    this.parked = false;
  }

  private validate(r: GenerationRequest): void {
    const label = `request '${r.id}'`;
    const { vocabSize, maxPositions } = this.config;
    if (!Array.isArray(r.prompt) || r.prompt.length === 0)
      throw new RingrlError(`${label}: prompt must be a non-empty array of token ids`);
    const bad = r.prompt.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
    if (bad >= 0)
      throw new RingrlError(`${label}: prompt[${bad}] = ${r.prompt[bad]} is outside the vocabulary [0, ${vocabSize})`);
    const context = r.prompt.length + (r.resumeFrom?.tokens.length ?? 0);
    if (context >= maxPositions)
      throw new RingrlError(
        `${label}: prompt of ${r.prompt.length} tokens (+${r.resumeFrom?.tokens.length ?? 0} resumed) does not fit the model's context of ${maxPositions}`,
      );
    validateParams(r.params, label, vocabSize);
  }

  private async prefill(requests: GenerationRequest[]): Promise<GeneratedSequence[]> {
    // A resumed sequence re-prefills prompt + all but its newest token; that token is fed next.
    const contexts = requests.map((r) => {
      const generated = r.resumeFrom?.tokens ?? [];
      return generated.length ? [...r.prompt, ...generated.slice(0, -1)] : r.prompt;
    });
    const B = requests.length;
    const T = Math.max(...contexts.map((c) => c.length));
    this.counters.prefillTokens += contexts.reduce((a, c) => a + c.length, 0);
    this.counters.prefillPaddedTokens += B * T;
    const tokens = new BigInt64Array(B * T);
    contexts.forEach((c, b) => c.forEach((t, i) => (tokens[b * T + i] = BigInt(t))));
    const seqs = requests.map((r) => (r.resumeFrom ? cloneSequence(r.resumeFrom) : emptySequence(r)));
    const graph = await this.prefillGraph(requests.some((r) => this.truncates(r.params)));
    const out = await graph.run({
      ...this.weightFeeds,
      tokens: { dtype: 'int64', data: tokens, dims: [B, T] },
      last_index: { dtype: 'int64', data: BigInt64Array.from(contexts, (c) => BigInt(c.length - 1)), dims: [B] },
      ...this.samplerFeeds(
        requests.map((r, b) => ({ params: r.params, seed: r.params.seed!, index: seqs[b]!.tokens.length })),
      ),
    });
    const K = this.config.numKvHeads,
      hd = this.config.headDim;
    requests.forEach((request, b) => {
      const length = contexts[b]!.length;
      const seq = seqs[b]!;
      const slot: Slot = {
        request,
        seq,
        cacheLength: length,
        pending: seq.tokens.at(-1) ?? -1,
        seed: request.params.seed!,
      };
      this.cache.add(slot, (row) => {
        for (let l = 0; l < this.config.numLayers; l++) {
          const k = out[`k${l}`]!.data as Float32Array,
            v = out[`v${l}`]!.data as Float32Array;
          for (let h = 0; h < K; h++) this.cache.write(row, l, h, 0, length, k, v, (b * K + h) * T * hd);
        }
      });
      if (this.config.moe) seq.routes = this.routesAt(out, b, T, 0, length);
      if (!request.resumeFrom?.tokens.length) this.accept(slot, out, b);
    });
    return this.retireFinished();
  }

  private async decode(): Promise<GeneratedSequence[]> {
    const B = this.active.length;
    const K = this.config.numKvHeads,
      hd = this.config.headDim;
    this.cache.fit();
    const feeds: Record<string, HostTensor> = {
      ...this.weightFeeds,
      tokens: { dtype: 'int64', data: BigInt64Array.from(this.active, (s) => BigInt(s.pending)), dims: [B, 1] },
      positions: { dtype: 'int64', data: BigInt64Array.from(this.active, (s) => BigInt(s.cacheLength)), dims: [B] },
      ...this.samplerFeeds(
        this.active.map((s) => ({ params: s.request.params, seed: s.seed, index: s.seq.tokens.length })),
      ),
    };
    const segments = this.cache.feeds(); // only those some row reaches
    segments.forEach((segment, j) => {
      const { rows, slots } = segment;
      feeds[`past_mask${j}`] = { dtype: 'float32', data: segment.mask, dims: [rows, slots] };
      if (j > 0) {
        feeds[`rows${j}`] = {
          dtype: 'int64',
          data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)),
          dims: [rows],
        };
        const spread = BigInt64Array.from({ length: B }, (_, b) => BigInt(Math.min(b, rows - 1)));
        feeds[`spread${j}`] = { dtype: 'int64', data: spread, dims: [B] };
        const reached = Float32Array.from({ length: B }, (_, b) => (b < rows ? 1 : 0));
        feeds[`reached${j}`] = { dtype: 'float32', data: reached, dims: [B] };
      }
      for (let l = 0; l < this.config.numLayers; l++) {
        feeds[`past_k${l}_${j}`] = { dtype: 'float32', data: segment.k[l]!, dims: [rows, K, 1, slots, hd] };
        feeds[`past_v${l}_${j}`] = { dtype: 'float32', data: segment.v[l]!, dims: [rows, K, 1, slots, hd] };
      }
    });
    const truncation = this.active.some((slot) => this.truncates(slot.request.params));
    const out = await (await this.decodeGraph(segments.length, truncation)).run(feeds);
    const grown: Slot[] = []; // rows whose newest position opened a segment: they move up in the cache order
    const layers = Array.from({ length: this.config.numLayers }, (_, l) => l);
    this.cache.append(
      layers.map((l) => out[`k${l}`]!.data as Float32Array),
      layers.map((l) => out[`v${l}`]!.data as Float32Array),
    );
    this.active.forEach((slot, b) => {
      if (this.config.moe) (slot.seq.routes ??= []).push(...this.routesAt(out, b, 1, 0, 1));
      const reach = this.cache.reach(slot);
      slot.cacheLength++;
      if (this.cache.reach(slot) > reach) grown.push(slot);
      this.accept(slot, out, b);
    });
    for (const slot of grown) this.cache.settle(this.active.indexOf(slot));
    this.counters.decodeSteps++;
    return this.retireFinished();
  }

  /** Record row b's sampled token and decide whether the sequence is done. */
  private accept(slot: Slot, out: Record<string, HostTensor>, b: number): void {
    const token = Number(out.token!.data[b]);
    const greedy = slot.request.params.temperature === 0;
    slot.seq.tokens.push(token);
    slot.seq.behaviorLogprobs.push(greedy ? 0 : Number(out.behavior_logprob!.data[b]));
    slot.seq.policyLogprobs.push(Number(out.policy_logprob!.data[b]));
    slot.seq.versions.push(this.version);
    slot.pending = token;
    this.counters.generatedTokens++;
    const { stopTokens = [], maxNewTokens } = slot.request.params;
    if (stopTokens.includes(token)) slot.seq.finishReason = 'stop';
    else if (slot.seq.tokens.length >= maxNewTokens || slot.cacheLength + 1 >= this.config.maxPositions)
      slot.seq.finishReason = 'length';
  }

  /** Row b's routes at positions [from, to) of the graph's `route{l}` outputs [B, T, k], flattened [position][layer][k]. */
  private routesAt(out: Record<string, HostTensor>, b: number, T: number, from: number, to: number): number[] {
    const L = sparseLayerCount(this.config);
    const k = this.config.moe!.topK;
    const routes: number[] = [];
    for (let t = from; t < to; t++) {
      for (let l = 0; l < L; l++) {
        const data = out[`route${l}`]!.data as BigInt64Array;
        for (let j = 0; j < k; j++) routes.push(Number(data[(b * T + t) * k + j]));
      }
    }
    return routes;
  }

  /** Remove finished rows (the cache refills their places) and return their sequences. */
  private retireFinished(): GeneratedSequence[] {
    const finished: GeneratedSequence[] = [];
    for (let row = this.active.length - 1; row >= 0; row--) {
      if (!this.active[row]!.seq.finishReason) continue;
      finished.push(this.active[row]!.seq);
      this.cache.remove(row);
    }
    return finished;
  }

  private samplerFeeds(rows: { params: SamplingParams; seed: number; index: number }[]): Record<string, HostTensor> {
    const B = rows.length,
      V = this.config.vocabSize;
    const greedy = (p: SamplingParams) => p.temperature === 0;
    return {
      inv_temperature: {
        dtype: 'float32',
        data: Float32Array.from(rows, (r) => (greedy(r.params) ? 1 : 1 / r.params.temperature)),
        dims: [B],
      },
      top_k: {
        dtype: 'int64',
        data: BigInt64Array.from(rows, (r) => BigInt(greedy(r.params) ? 1 : r.params.topK || V)),
        dims: [B],
      },
      top_p: {
        dtype: 'float32',
        data: Float32Array.from(rows, (r) => (greedy(r.params) ? 1 : (r.params.topP ?? 1))),
        dims: [B],
      },
      uniform: { dtype: 'float32', data: Float32Array.from(rows, (r) => uniformAt(r.seed, r.index)), dims: [B] },
    };
  }

  private traceParams(): { params: Params; list: Tensor[] } {
    const params: Params = {};
    const list: Tensor[] = [];
    for (const [name, shape] of this.shapes) {
      if (this.packed.has(name)) continue;
      params[name] = input(name, 'float32', shape);
      list.push(params[name]);
    }
    for (const [name, { shape, bits, blockSize }] of this.packed) {
      const [out, inFeatures] = shape;
      const packed =
        bits === 8
          ? input(`${name}.q`, 'int8', [inFeatures, out])
          : input(`${name}.q`, 'uint8', [out, inFeatures / blockSize, blockSize / 2]);
      const scales = input(`${name}.scales`, 'float32', [bits === 8 ? out : out * (inFeatures / blockSize)]);
      params[name] = quantizedWeight(packed, scales, shape, bits, blockSize);
      list.push(packed, scales);
    }
    return { params, list };
  }

  /**
   * A graph of this engine: from the process-wide cache when every weight is fed (fp32, bf16, fp8),
   * else compiled here with the packed weights as constants, until the next weight update.
   */
  private compile(key: string, trace: () => { inputs: Tensor[]; outputs: Record<string, Tensor> }) {
    if (!this.packed.size) return compileCached(key, trace, this.options.runtime);
    let entry = this.sessions.get(key);
    if (!entry) {
      const { inputs, outputs } = trace();
      entry = CompiledGraph.create(inputs, outputs, this.options.runtime, this.packedConstants);
      this.sessions.set(key, entry);
    }
    return entry;
  }

  /** Whether a request samples from a truncated distribution (1 < top-k < V or top-p < 1): those need the ranked vocabulary. */
  private truncates(p: SamplingParams): boolean {
    if (p.temperature === 0) return false;
    const k = p.topK ?? 0;
    return (k > 1 && k < this.config.vocabSize) || (p.topP ?? 1) < 1;
  }

  /** Graphs come in two kinds: with `truncation` (top-k/top-p, which rank the vocabulary) and without (sampling.ts). */
  private prefillGraph(truncation: boolean): Promise<CompiledGraph> {
    return this.compile(`engine-prefill:${this.signature}:${truncation ? 'truncation' : 'full'}`, () => {
      const { params, list } = this.traceParams();
      const tokens = input('tokens', 'int64', ['B', 'T']);
      const lastIndex = input('last_index', 'int64', ['B']);
      const sampler = samplerInputs();
      const { logits, cache, routes } = prefill(this.config, params, tokens, lastIndex);
      return {
        inputs: [...list, tokens, lastIndex, ...Object.values(sampler)],
        outputs: { ...sampledOutputs(logits, sampler, truncation), ...cacheOutputs(cache), ...routeOutputs(routes) },
      };
    });
  }

  /** The decode graph over the first `segments` cache segments (one graph per count, compiled once). */
  private decodeGraph(segments: number, truncation: boolean): Promise<CompiledGraph> {
    const key = `engine-decode:${this.signature}:${this.kvSegments.slice(0, segments - 1)}:${truncation ? 'truncation' : 'full'}`;
    return this.compile(key, () => {
      const { params, list } = this.traceParams();
      const K = this.config.numKvHeads,
        hd = this.config.headDim;
      const tokens = input('tokens', 'int64', ['B', 1]);
      const positions = input('positions', 'int64', ['B']);
      const extra: Tensor[] = [];
      const parts = Array.from({ length: segments }, (_, j) => {
        const n = j === 0 ? 'B' : `B${j}`,
          S = `S${j}`;
        const mask = input(`past_mask${j}`, 'float32', [n, S]);
        const bias = where(mask.greater(0.5), scalar(0), -1e30).reshape([n, 1, 1, 1, S]);
        extra.push(mask);
        if (j === 0) return { n, S, bias };
        // The segment's rows (0..n-1) and, for each of the B rows, its row there (any if it does not reach it).
        const rows = input(`rows${j}`, 'int64', [n]),
          spread = input(`spread${j}`, 'int64', ['B']),
          reached = input(`reached${j}`, 'float32', ['B']);
        extra.push(rows, spread, reached);
        return { n, S, bias, rows, spread, reached: reached.greater(0.5).reshape(['B', 1, 1, 1, 1]) };
      });
      const past: CacheSegment[][] = Array.from({ length: this.config.numLayers }, (_, l) =>
        parts.map(({ n, S, ...segment }, j) => ({
          k: input(`past_k${l}_${j}`, 'float32', [n, K, 1, S, hd]),
          v: input(`past_v${l}_${j}`, 'float32', [n, K, 1, S, hd]),
          ...segment,
        })),
      );
      const sampler = samplerInputs();
      const { logits, cache, routes } = decodeStep(this.config, params, tokens, positions, past);
      const pastInputs = past.flatMap((layer) => layer.flatMap((s) => [s.k, s.v]));
      return {
        inputs: [...list, tokens, positions, ...extra, ...pastInputs, ...Object.values(sampler)],
        outputs: { ...sampledOutputs(logits, sampler, truncation), ...cacheOutputs(cache), ...routeOutputs(routes) },
      };
    });
  }
}

function sampledOutputs(
  logits: Tensor,
  sampler: ReturnType<typeof samplerInputs>,
  truncation: boolean,
): Record<string, Tensor> {
  const s = sampleFromLogits(logits, sampler, truncation);
  return { token: s.token, behavior_logprob: s.behaviorLogprob, policy_logprob: s.policyLogprob };
}

function cacheOutputs(cache: LayerCache[]): Record<string, Tensor> {
  return Object.fromEntries(
    cache.flatMap((c, l) => [
      [`k${l}`, c.k],
      [`v${l}`, c.v],
    ]),
  );
}

/** MoE: each layer's expert choice per position, int64 [B, T, k] (recorded for routing replay). */
function routeOutputs(routes: Tensor[] | undefined): Record<string, Tensor> {
  return Object.fromEntries((routes ?? []).map((r, l) => [`route${l}`, r]));
}

function mix(a: number, b: number): number {
  return (Math.imul(a ^ 0x5bd1e995, 0x27d4eb2d) + Math.imul(b + 1, 0x165667b1)) >>> 0;
}

/** Check sampling params; errors name the request and the field. */
export function validateParams(p: SamplingParams, label: string, vocabSize: number): void {
  const fail = (field: string, expected: string, got: unknown) => {
    throw new RingrlError(`${label}: ${field} must be ${expected}, got ${JSON.stringify(got)}`);
  };
  if (typeof p.temperature !== 'number' || !(p.temperature >= 0) || !Number.isFinite(p.temperature))
    fail('temperature', 'a number >= 0', p.temperature);
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) fail('top_p', 'in (0, 1]', p.topP);
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 0))
    fail('top_k', `an integer >= 0 (0 = off; at most ${vocabSize} matter)`, p.topK);
  if (!Number.isInteger(p.maxNewTokens) || p.maxNewTokens < 1)
    fail('max_new_tokens', 'an integer >= 1', p.maxNewTokens);
  if (p.stopTokens && !p.stopTokens.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize))
    fail('stop_tokens', `token ids in [0, ${vocabSize})`, p.stopTokens);
  if (p.seed !== undefined && !Number.isInteger(p.seed)) fail('seed', 'an integer', p.seed);
}

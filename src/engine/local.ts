// The local rollout engine: KV-cached, continuously batched decoding on onnxruntime.
//
// Each active sequence owns one row of a host KV cache ([capacity, K, S, hd] per layer, rows
// 0..active-1 in use, so the rows fed to a step are one contiguous, zero-copy slice). A decode step
// feeds every active row's newest token and gets back one token per row plus that token's keys and
// values, which the host appends. A finished row is replaced by the last row (swap-remove) and
// waiting sequences are prefilled into free rows at the next step: continuous batching.
import { type Tensor, input } from '../graph/index.ts';
import { type CompiledGraph, type HostTensor, type RuntimeOptions, compileCached } from '../runtime/index.ts';
import { RingrlError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Weights } from '../model/checkpoint.ts';
import { type LayerCache, type Params, decodeStep, parameterShapes, prefill } from '../model/llama.ts';
import { type Precision, precisions, quantizeWeights } from './precision.ts';
import { sampleFromLogits, samplerInputs, uniformAt } from './sampling.ts';
import type { EngineStats, GeneratedSequence, GenerationRequest, RolloutEngine, SamplingParams } from './types.ts';

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
  runtime?: RuntimeOptions;
}

interface Slot {
  request: GenerationRequest;
  seq: GeneratedSequence;
  cacheLength: number; // tokens whose keys/values are in the cache
  pending: number; // the newest token, fed at the next decode step
  seed: number;
}

const CACHE_BLOCK = 64;

export async function createLocalEngine(config: ModelConfig, weights: Weights, options: LocalEngineOptions = {}): Promise<RolloutEngine> {
  const engine = new LocalEngine(config, options);
  await engine.updateWeights(weights, 0);
  return engine;
}

export class LocalEngine implements RolloutEngine {
  version = 0;
  readonly capacity: number;
  readonly precision: Precision;
  private readonly shapes: Map<string, number[]>;
  private readonly signature: string;
  private weightFeeds: Record<string, HostTensor> = {};
  private waiting: GenerationRequest[] = [];
  private active: Slot[] = [];
  private cacheK: Float32Array[] = [];
  private cacheV: Float32Array[] = [];
  private cacheSlots = 0; // S: cached positions per row
  private parked = false; // every active row is paused with its cache kept (keepPausedCache) until the next step
  private submitted = 0;
  private counters = { decodeSteps: 0, generatedTokens: 0, prefillTokens: 0, busySeconds: 0 };

  constructor(readonly config: ModelConfig, private readonly options: LocalEngineOptions = {}) {
    this.capacity = options.capacity ?? 64;
    this.precision = options.precision ?? 'fp32';
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RingrlError(`engine: capacity must be a positive integer, got ${this.capacity}`);
    if (!precisions.includes(this.precision)) throw new RingrlError(`engine: precision '${this.precision}' is unknown; expected one of ${precisions.join(', ')}`);
    this.shapes = parameterShapes(config);
    this.signature = JSON.stringify(config);
  }

  async updateWeights(weights: Weights, version: number): Promise<void> {
    if (this.active.length > 0 && !this.parked) throw new RingrlError(`engine: updateWeights with ${this.active.length} sequences decoding; pause() first so they resume under the new weights`);
    const engineWeights = quantizeWeights(weights, this.shapes, this.precision);
    const feeds: Record<string, HostTensor> = {};
    for (const [name, shape] of this.shapes) {
      const w = engineWeights.get(name);
      if (!w) throw new RingrlError(`engine: updateWeights is missing '${name}'`);
      // Copy fp32 weights too: the trainer updates its arrays in place while we keep decoding.
      feeds[name] = { dtype: 'float32', data: this.precision === 'fp32' ? Float32Array.from(w) : w, dims: shape };
    }
    this.weightFeeds = feeds;
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
    return { active: this.parked ? 0 : this.active.length, waiting: this.waiting.length, capacity: this.capacity, ...this.counters };
  }

  async step(): Promise<GeneratedSequence[]> {
    const started = performance.now();
    const finished: GeneratedSequence[] = [];
    if (this.parked) this.unpark();
    while (this.waiting.length && this.active.length < this.capacity) {
      const take = Math.min(this.capacity - this.active.length, this.options.prefillBatch ?? 8, this.waiting.length);
      finished.push(...(await this.prefill(this.waiting.splice(0, take))));
    }
    if (this.active.length) finished.push(...(await this.decode()));
    this.counters.busySeconds += (performance.now() - started) / 1000;
    return finished;
  }

  async pause(): Promise<GeneratedSequence[]> {
    const partial = [...this.active.map((s) => s.seq), ...this.waiting.map((r) => r.resumeFrom ?? emptySequence(r))];
    this.waiting = [];
    if (this.options.keepPausedCache && this.active.length) this.parked = true;
    else {
      this.active = [];
      this.resizeCache(0);
    }
    return partial.map((s) => ({ ...s, finishReason: null }));
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
      } else this.removeRow(row);
    }
    this.waiting = this.waiting.filter((r) => !claimed.has(r));
    this.parked = false;
  }

  private validate(r: GenerationRequest): void {
    const where = `request '${r.id}'`;
    const { vocabSize, maxPositions } = this.config;
    if (!Array.isArray(r.prompt) || r.prompt.length === 0) throw new RingrlError(`${where}: prompt must be a non-empty array of token ids`);
    const bad = r.prompt.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
    if (bad >= 0) throw new RingrlError(`${where}: prompt[${bad}] = ${r.prompt[bad]} is outside the vocabulary [0, ${vocabSize})`);
    const context = r.prompt.length + (r.resumeFrom?.tokens.length ?? 0);
    if (context >= maxPositions) throw new RingrlError(`${where}: prompt of ${r.prompt.length} tokens (+${r.resumeFrom?.tokens.length ?? 0} resumed) does not fit the model's context of ${maxPositions}`);
    validateParams(r.params, where, vocabSize);
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
    const tokens = new BigInt64Array(B * T);
    contexts.forEach((c, b) => c.forEach((t, i) => (tokens[b * T + i] = BigInt(t))));
    const seqs = requests.map((r) => (r.resumeFrom ? cloneSequence(r.resumeFrom) : emptySequence(r)));
    const graph = await this.prefillGraph();
    const out = await graph.run({
      ...this.weightFeeds,
      tokens: { dtype: 'int64', data: tokens, dims: [B, T] },
      last_index: { dtype: 'int64', data: BigInt64Array.from(contexts, (c) => BigInt(c.length - 1)), dims: [B] },
      ...this.samplerFeeds(requests.map((r, b) => ({ params: r.params, seed: r.params.seed!, index: seqs[b]!.tokens.length }))),
    });
    this.resizeCache(T + 1);
    const K = this.config.numKvHeads, hd = this.config.headDim, S = this.cacheSlots;
    requests.forEach((request, b) => {
      const row = this.active.length;
      const length = contexts[b]!.length;
      for (let l = 0; l < this.config.numLayers; l++) {
        const k = out[`k${l}`]!.data as Float32Array, v = out[`v${l}`]!.data as Float32Array;
        for (let h = 0; h < K; h++) {
          const src = (b * K + h) * T * hd, dst = (row * K + h) * S * hd;
          this.cacheK[l]!.set(k.subarray(src, src + length * hd), dst);
          this.cacheV[l]!.set(v.subarray(src, src + length * hd), dst);
        }
      }
      const seq = seqs[b]!;
      const slot: Slot = { request, seq, cacheLength: length, pending: seq.tokens.at(-1) ?? -1, seed: request.params.seed! };
      this.active.push(slot);
      if (!request.resumeFrom?.tokens.length) this.accept(slot, out, b);
    });
    return this.retireFinished();
  }

  private async decode(): Promise<GeneratedSequence[]> {
    const B = this.active.length;
    const needed = Math.max(...this.active.map((s) => s.cacheLength)) + 1;
    // Attention reads all S cached positions of every row, so S follows the longest active row
    // down as well as up (a long sequence that finished must not slow every later step).
    this.resizeCache(needed, needed * 2 <= this.cacheSlots);
    const S = this.cacheSlots, K = this.config.numKvHeads, hd = this.config.headDim;
    const mask = new Float32Array(B * S);
    this.active.forEach((s, b) => mask.fill(1, b * S, b * S + s.cacheLength));
    const feeds: Record<string, HostTensor> = {
      ...this.weightFeeds,
      tokens: { dtype: 'int64', data: BigInt64Array.from(this.active, (s) => BigInt(s.pending)), dims: [B, 1] },
      positions: { dtype: 'int64', data: BigInt64Array.from(this.active, (s) => BigInt(s.cacheLength)), dims: [B] },
      past_mask: { dtype: 'float32', data: mask, dims: [B, S] },
      ...this.samplerFeeds(this.active.map((s) => ({ params: s.request.params, seed: s.seed, index: s.seq.tokens.length }))),
    };
    const rowSize = K * S * hd;
    for (let l = 0; l < this.config.numLayers; l++) {
      feeds[`past_k${l}`] = { dtype: 'float32', data: this.cacheK[l]!.subarray(0, B * rowSize), dims: [B, K, S, hd] };
      feeds[`past_v${l}`] = { dtype: 'float32', data: this.cacheV[l]!.subarray(0, B * rowSize), dims: [B, K, S, hd] };
    }
    const out = await (await this.decodeGraph()).run(feeds);
    this.active.forEach((slot, b) => {
      for (let l = 0; l < this.config.numLayers; l++) {
        const k = out[`k${l}`]!.data as Float32Array, v = out[`v${l}`]!.data as Float32Array;
        for (let h = 0; h < K; h++) {
          const src = (b * K + h) * hd, dst = ((b * K + h) * S + slot.cacheLength) * hd;
          this.cacheK[l]!.set(k.subarray(src, src + hd), dst);
          this.cacheV[l]!.set(v.subarray(src, src + hd), dst);
        }
      }
      slot.cacheLength++;
      this.accept(slot, out, b);
    });
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
    else if (slot.seq.tokens.length >= maxNewTokens || slot.cacheLength + 1 >= this.config.maxPositions) slot.seq.finishReason = 'length';
  }

  /** Remove finished rows (the last row moves into each freed one) and return their sequences. */
  private retireFinished(): GeneratedSequence[] {
    const finished: GeneratedSequence[] = [];
    for (let row = this.active.length - 1; row >= 0; row--) {
      if (!this.active[row]!.seq.finishReason) continue;
      finished.push(this.active[row]!.seq);
      this.removeRow(row);
    }
    if (this.active.length === 0 && this.waiting.length === 0) this.resizeCache(0);
    return finished;
  }

  /** Free a row: the last row (cache and slot) moves into it, keeping rows contiguous. */
  private removeRow(row: number): void {
    const last = this.active.length - 1;
    if (row !== last) {
      const size = this.config.numKvHeads * this.cacheSlots * this.config.headDim;
      for (let l = 0; l < this.config.numLayers; l++) {
        this.cacheK[l]!.copyWithin(row * size, last * size, (last + 1) * size);
        this.cacheV[l]!.copyWithin(row * size, last * size, (last + 1) * size);
      }
      this.active[row] = this.active[last]!;
    }
    this.active.pop();
  }

  /**
   * Make room for `slots` cached positions per row, keeping contents: grows geometrically (×1.5,
   * in blocks) only when more is needed, or with `shrink` reallocates to 1.5 × `slots` (callers
   * pass a `slots` that covers every active row); `slots` 0 releases the cache.
   */
  private resizeCache(slots: number, shrink = false): void {
    if (slots !== 0 && slots <= this.cacheSlots && !shrink) return;
    const target = slots === 0 ? 0 : shrink ? slots * 1.5 : Math.max(slots, this.cacheSlots * 1.5);
    const S = Math.ceil(target / CACHE_BLOCK) * CACHE_BLOCK;
    if (S === this.cacheSlots) return;
    const K = this.config.numKvHeads, hd = this.config.headDim, old = this.cacheSlots, kept = Math.min(old, S) * hd;
    const grow = (prev: Float32Array | undefined) => {
      const next = new Float32Array(this.capacity * K * S * hd);
      if (prev && S > 0) for (let r = 0; r < this.active.length * K; r++) next.set(prev.subarray(r * old * hd, r * old * hd + kept), r * S * hd);
      return next;
    };
    this.cacheK = Array.from({ length: this.config.numLayers }, (_, l) => grow(this.cacheK[l]));
    this.cacheV = Array.from({ length: this.config.numLayers }, (_, l) => grow(this.cacheV[l]));
    this.cacheSlots = S;
  }

  private samplerFeeds(rows: { params: SamplingParams; seed: number; index: number }[]): Record<string, HostTensor> {
    const B = rows.length, V = this.config.vocabSize;
    const greedy = (p: SamplingParams) => p.temperature === 0;
    return {
      inv_temperature: { dtype: 'float32', data: Float32Array.from(rows, (r) => (greedy(r.params) ? 1 : 1 / r.params.temperature)), dims: [B] },
      top_k: { dtype: 'int64', data: BigInt64Array.from(rows, (r) => BigInt(greedy(r.params) ? 1 : r.params.topK || V)), dims: [B] },
      top_p: { dtype: 'float32', data: Float32Array.from(rows, (r) => (greedy(r.params) ? 1 : r.params.topP ?? 1)), dims: [B] },
      uniform: { dtype: 'float32', data: Float32Array.from(rows, (r) => uniformAt(r.seed, r.index)), dims: [B] },
    };
  }

  private traceParams(): { params: Params; list: Tensor[] } {
    const params: Params = {};
    for (const [name, shape] of this.shapes) params[name] = input(name, 'float32', shape);
    return { params, list: Object.values(params) };
  }

  private prefillGraph(): Promise<CompiledGraph> {
    return compileCached(`engine-prefill:${this.signature}`, () => {
      const { params, list } = this.traceParams();
      const tokens = input('tokens', 'int64', ['B', 'T']);
      const lastIndex = input('last_index', 'int64', ['B']);
      const sampler = samplerInputs();
      const { logits, cache } = prefill(this.config, params, tokens, lastIndex);
      return { inputs: [...list, tokens, lastIndex, ...Object.values(sampler)], outputs: { ...sampledOutputs(logits, sampler), ...cacheOutputs(cache) } };
    }, this.options.runtime);
  }

  private decodeGraph(): Promise<CompiledGraph> {
    return compileCached(`engine-decode:${this.signature}`, () => {
      const { params, list } = this.traceParams();
      const K = this.config.numKvHeads, hd = this.config.headDim;
      const tokens = input('tokens', 'int64', ['B', 1]);
      const positions = input('positions', 'int64', ['B']);
      const pastMask = input('past_mask', 'float32', ['B', 'S']);
      const past: LayerCache[] = Array.from({ length: this.config.numLayers }, (_, l) => ({
        k: input(`past_k${l}`, 'float32', ['B', K, 'S', hd]),
        v: input(`past_v${l}`, 'float32', ['B', K, 'S', hd]),
      }));
      const sampler = samplerInputs();
      const { logits, cache } = decodeStep(this.config, params, tokens, positions, past, pastMask);
      const pastInputs = past.flatMap((c) => [c.k, c.v]);
      return { inputs: [...list, tokens, positions, pastMask, ...pastInputs, ...Object.values(sampler)], outputs: { ...sampledOutputs(logits, sampler), ...cacheOutputs(cache) } };
    }, this.options.runtime);
  }
}

function sampledOutputs(logits: Tensor, sampler: ReturnType<typeof samplerInputs>): Record<string, Tensor> {
  const s = sampleFromLogits(logits, sampler);
  return { token: s.token, behavior_logprob: s.behaviorLogprob, policy_logprob: s.policyLogprob };
}

function cacheOutputs(cache: LayerCache[]): Record<string, Tensor> {
  return Object.fromEntries(cache.flatMap((c, l) => [[`k${l}`, c.k], [`v${l}`, c.v]]));
}

function emptySequence(r: GenerationRequest): GeneratedSequence {
  return { id: r.id, prompt: r.prompt, tokens: [], behaviorLogprobs: [], policyLogprobs: [], versions: [], finishReason: null };
}

function cloneSequence(s: GeneratedSequence): GeneratedSequence {
  return { ...s, tokens: [...s.tokens], behaviorLogprobs: [...s.behaviorLogprobs], policyLogprobs: [...s.policyLogprobs], versions: [...s.versions], finishReason: null };
}

function mix(a: number, b: number): number {
  return (Math.imul(a ^ 0x5bd1e995, 0x27d4eb2d) + Math.imul(b + 1, 0x165667b1)) >>> 0;
}

/** Check sampling params; errors name the request and the field. */
export function validateParams(p: SamplingParams, where: string, vocabSize: number): void {
  const fail = (field: string, expected: string, got: unknown) => {
    throw new RingrlError(`${where}: ${field} must be ${expected}, got ${JSON.stringify(got)}`);
  };
  if (typeof p.temperature !== 'number' || !(p.temperature >= 0) || !Number.isFinite(p.temperature)) fail('temperature', 'a number >= 0', p.temperature);
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) fail('top_p', 'in (0, 1]', p.topP);
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 0)) fail('top_k', `an integer >= 0 (0 = off; at most ${vocabSize} matter)`, p.topK);
  if (!Number.isInteger(p.maxNewTokens) || p.maxNewTokens < 1) fail('max_new_tokens', 'an integer >= 1', p.maxNewTokens);
  if (p.stopTokens && !p.stopTokens.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize)) fail('stop_tokens', `token ids in [0, ${vocabSize})`, p.stopTokens);
  if (p.seed !== undefined && !Number.isInteger(p.seed)) fail('seed', 'an integer', p.seed);
}

// A trainable policy: a model config, its float32 weights on the host, and the compiled graphs
// that score sequences and compute loss gradients. Weights are graph inputs, so the optimizer
// updates them in place and the next run sees the new values without recompiling.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type DType, type Tensor, grad, input } from '../graph/index.ts';
import { type HostTensor, type RuntimeOptions, compileCached } from '../runtime/index.ts';
import { RingrlError } from '../errors.ts';
import { type ModelConfig, sparseLayerCount } from '../model/config.ts';
import { type Weights, loadModelDir, saveModelDir } from '../model/checkpoint.ts';
import { type Params, forward, forwardSegment, parameterShapes } from '../model/llama.ts';
import { initWeights, presetConfig } from '../model/presets.ts';
import { type TokenStats, nextTokenStats } from './logprobs.ts';

/**
 * A loss over per-token statistics. Extra inputs are per-token ([B, T], aligned with targets)
 * or scalars; `build` returns the scalar to differentiate and any metrics to report.
 * `key` must name everything `build` depends on (it keys the compiled-graph cache).
 */
export interface LossSpec {
  key: string;
  tokenInputs: string[];
  scalarInputs: string[];
  build(
    stats: TokenStats & { auxLoss?: Tensor },
    inputs: Record<string, Tensor>,
  ): { loss: Tensor; metrics?: Record<string, Tensor> };
}

/**
 * A right-padded batch of whole sequences: inputs [B, T] (T = longest sequence), targets
 * [B, T] (inputs shifted left by one), `mask` of positions with a real target and
 * `tokenMask` of real tokens.
 */
export interface PackedBatch {
  B: number;
  T: number;
  inputs: BigInt64Array;
  targets: BigInt64Array;
  mask: Float32Array;
  tokenMask: Float32Array;
  lengths: number[]; // targets per sequence (sequence length - 1)
}

export function packSequences(sequences: readonly (readonly number[])[], vocabSize: number): PackedBatch {
  if (sequences.length === 0) throw new RingrlError('batch is empty; expected at least one sequence');
  const lengths = sequences.map((s, i) => {
    if (s.length < 2) throw new RingrlError(`sequence ${i}: has ${s.length} token(s); expected at least 2 to score`);
    return s.length - 1;
  });
  const B = sequences.length;
  const T = Math.max(...lengths) + 1;
  const inputs = new BigInt64Array(B * T);
  const targets = new BigInt64Array(B * T);
  const mask = new Float32Array(B * T);
  const tokenMask = new Float32Array(B * T);
  sequences.forEach((s, b) => {
    s.forEach((tok, t) => {
      if (!Number.isInteger(tok) || tok < 0 || tok >= vocabSize)
        throw new RingrlError(`sequence ${b}, token ${t}: id ${tok} is out of the vocabulary [0, ${vocabSize})`);
    });
    for (let t = 0; t < s.length; t++) {
      inputs[b * T + t] = BigInt(s[t]!);
      tokenMask[b * T + t] = 1;
      if (t + 1 < s.length) {
        targets[b * T + t] = BigInt(s[t + 1]!);
        mask[b * T + t] = 1;
      }
    }
  });
  return { B, T, inputs, targets, mask, tokenMask, lengths };
}

/**
 * Routing-replay feeds for a packed batch: per layer, int64 [B, T, k] from each sequence's recorded
 * routes (flattened [position][layer][k], as the engine records them). Positions without a record
 * (a sequence's last token, which the engine never fed back, and padding) get experts 0..k-1: under
 * causal attention they reach no scored position.
 */
export function packRoutes(
  routes: readonly (readonly number[])[],
  batch: PackedBatch,
  config: ModelConfig,
): BigInt64Array[] {
  const L = sparseLayerCount(config),
    k = config.moe?.topK ?? 0,
    E = config.moe?.numExperts ?? 0;
  if (!config.moe) throw new RingrlError('routing replay needs an MoE model (config.moe); this model is dense');
  if (routes.length !== batch.B)
    throw new RingrlError(`routing replay: ${routes.length} route records for ${batch.B} sequences`);
  const feeds = Array.from({ length: L }, () => new BigInt64Array(batch.B * batch.T * k));
  routes.forEach((record, b) => {
    const recorded = Math.min(Math.floor(record.length / (L * k)), batch.lengths[b]! + 1);
    if (recorded < batch.lengths[b]!)
      throw new RingrlError(
        `routing replay: sequence ${b} has routes for ${recorded} positions; expected at least ${batch.lengths[b]} (every position but the last)`,
      );
    for (let t = 0; t < batch.T; t++) {
      for (let l = 0; l < L; l++) {
        for (let j = 0; j < k; j++) {
          const e = t < recorded ? record[(t * L + l) * k + j]! : j;
          if (!Number.isInteger(e) || e < 0 || e >= E)
            throw new RingrlError(
              `routing replay: sequence ${b}, position ${t}, layer ${l}: expert ${e} is outside [0, ${E})`,
            );
          feeds[l]![(b * batch.T + t) * k + j] = BigInt(e);
        }
      }
    }
  });
  return feeds;
}

/** Split a flat [B, T] array into per-sequence rows of their real lengths. */
export function unpackRows(data: ArrayLike<number>, batch: PackedBatch): number[][] {
  return batch.lengths.map((len, b) => Array.from({ length: len }, (_, t) => data[b * batch.T + t]!));
}

export class Policy {
  readonly paramShapes: Map<string, number[]>;
  private readonly signature: string;
  /**
   * Training recomputes the forward in this many segments of layers (activation recomputation,
   * dense models without routing replay): one forward records the residual stream at the segment
   * boundaries, then each segment from the top down reruns its forward and its backward, so a run
   * holds one segment's activations and intermediate gradients. The price is one more forward of
   * the layers below the top segment. Default: 2 above 1 GiB of weights (at 0.6B: 11.3 GiB peak
   * against 12.7 in one graph, which is above PyTorch's 12.1; 7 segments: 10.4 GiB, recomputing 24
   * of the 28 layers' forward instead of 14), else 1 (one graph, fastest).
   */
  recomputeSegments: number;
  private spareGrads: Map<string, Float32Array> | null = null;

  constructor(
    readonly config: ModelConfig,
    readonly weights: Weights,
    readonly runtime: RuntimeOptions = {},
  ) {
    this.paramShapes = parameterShapes(config);
    this.signature = JSON.stringify(config);
    this.recomputeSegments = this.largeModel && !config.moe ? 2 : 1;
    for (const [name, shape] of this.paramShapes) {
      const w = weights.get(name);
      const n = shape.reduce((a, b) => a * b, 1);
      if (!w || w.length !== n)
        throw new RingrlError(`model: weight '${name}' is missing or not of shape [${shape.join(', ')}]`);
    }
  }

  static load(dir: string, runtime?: RuntimeOptions): Policy {
    const { config, weights } = loadModelDir(dir);
    return new Policy(config, weights, runtime);
  }

  static fromPreset(name: string, seed = 0, runtime?: RuntimeOptions): Policy {
    const config = presetConfig(name);
    return new Policy(config, initWeights(config, seed), runtime);
  }

  save(dir: string): void {
    saveModelDir(dir, this.config, this.weights);
  }

  get numParameters(): number {
    let n = 0;
    for (const w of this.weights.values()) n += w.length;
    return n;
  }

  /**
   * Give a step's gradient arrays back once done with them (after the optimizer's update): the next
   * lossAndGrads computes into them instead of into new ones. At 0.6B that saves allocating and
   * faulting in 2.4 GB a step, and onnxruntime writes the gradients in place instead of into memory
   * of its own that is then copied.
   */
  recycle(grads: Map<string, Float32Array>): void {
    this.spareGrads = new Map(grads);
  }

  /** Where each parameter's gradient is computed (named `grad:NAME`): the recycled arrays, or new ones. */
  private gradTargets(): (names: string[]) => Record<string, HostTensor> {
    const spare = this.spareGrads;
    this.spareGrads = null;
    return (names) => {
      const into: Record<string, HostTensor> = {};
      for (const name of names) {
        const dims = this.paramShapes.get(name)!;
        const size = dims.reduce((a, b) => a * b, 1);
        const recycled = spare?.get(name);
        into[`grad:${name}`] = {
          dtype: 'float32',
          data: recycled?.length === size ? recycled : new Float32Array(size),
          dims,
        };
      }
      return into;
    };
  }

  /**
   * Above 1 GiB of weights the training graph runs without onnxruntime's memory arena: the arena
   * would keep the last run's gradients and activations (about the model again) through the
   * optimizer step. Measured at 0.6B in docs/models.md.
   */
  private get largeModel(): boolean {
    return this.numParameters * 4 > 2 ** 30;
  }

  private traceParams(dtype: DType = 'float32'): { params: Params; list: Tensor[] } {
    const params: Params = {};
    for (const [name, shape] of this.paramShapes) params[name] = input(name, dtype, shape);
    return { params, list: Object.values(params) };
  }

  private weightFeeds(): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    for (const [name, shape] of this.paramShapes)
      feeds[name] = { dtype: 'float32', data: this.weights.get(name)!, dims: shape };
    return feeds;
  }

  private batchFeeds(batch: PackedBatch, routes?: readonly (readonly number[])[]): Record<string, HostTensor> {
    const dims = [batch.B, batch.T];
    const feeds: Record<string, HostTensor> = {
      inputs: { dtype: 'int64', data: batch.inputs, dims },
      targets: { dtype: 'int64', data: batch.targets, dims },
      ...(this.config.moe ? { token_mask: { dtype: 'float32', data: batch.tokenMask, dims } } : {}),
    };
    if (routes)
      packRoutes(routes, batch, this.config).forEach(
        (data, l) => (feeds[`routes${l}`] = { dtype: 'int64', data, dims: [...dims, this.config.moe!.topK] }),
      );
    return feeds;
  }

  private checkReplay(replayRoutes: unknown): boolean {
    if (replayRoutes !== undefined && !this.config.moe)
      throw new RingrlError('routing replay needs an MoE model (config.moe); this model is dense');
    return replayRoutes !== undefined;
  }

  /** The model graph; with `replay`, MoE layers take their experts from `routes{l}` inputs (routing replay). */
  private traceModel(replay = false) {
    const { params, list } = this.traceParams();
    const inputs = input('inputs', 'int64', ['B', 'T']);
    const targets = input('targets', 'int64', ['B', 'T']);
    const invTemperature = input('inv_temperature', 'float32', []);
    const tokenMask = this.config.moe ? input('token_mask', 'float32', ['B', 'T']) : undefined;
    const routeInputs = replay
      ? Array.from({ length: sparseLayerCount(this.config) }, (_, l) =>
          input(`routes${l}`, 'int64', ['B', 'T', this.config.moe!.topK]),
        )
      : [];
    const { logits, auxLoss, routes } = forward(
      this.config,
      params,
      inputs,
      tokenMask,
      replay ? routeInputs : undefined,
    );
    const stats = nextTokenStats(logits, targets, invTemperature);
    return {
      params,
      list,
      graphInputs: [...list, inputs, targets, invTemperature, ...(tokenMask ? [tokenMask] : []), ...routeInputs],
      stats,
      auxLoss,
      routes,
    };
  }

  /**
   * log p(token[t] | token[<t]) and the entropy at each position t >= 1, per sequence. With
   * `replayRoutes` (one record per sequence; see packRoutes) MoE layers use those experts. An MoE
   * model also returns the routes it used, flattened [position][layer][k] per sequence.
   */
  async score(
    sequences: readonly (readonly number[])[],
    temperature = 1,
    replayRoutes?: readonly (readonly number[])[],
  ): Promise<{ logprobs: number[][]; entropy: number[][]; routes?: number[][] }> {
    if (!(temperature > 0)) throw new RingrlError(`temperature must be > 0 to score, got ${temperature}`);
    const replay = this.checkReplay(replayRoutes);
    const compiled = await compileCached(
      `score:${this.signature}${replay ? ':replay' : ''}`,
      () => {
        const { graphInputs, stats, routes } = this.traceModel(replay);
        const routeOutputs = Object.fromEntries((routes ?? []).map((r, l) => [`route${l}`, r]));
        return { inputs: graphInputs, outputs: { logprobs: stats.logprobs, entropy: stats.entropy, ...routeOutputs } };
      },
      this.runtime,
    );
    const batch = packSequences(sequences, this.config.vocabSize);
    const out = await compiled.run({
      ...this.weightFeeds(),
      ...this.batchFeeds(batch, replayRoutes),
      inv_temperature: scalarFeed(1 / temperature),
    });
    const result = {
      logprobs: unpackRows(out.logprobs!.data as Float32Array, batch),
      entropy: unpackRows(out.entropy!.data as Float32Array, batch),
    };
    return this.config.moe ? { ...result, routes: unpackRoutes(out, batch, this.config) } : result;
  }

  /**
   * The loss and its gradient with respect to every parameter for one (micro-)batch.
   * Losses should be sums scaled by a caller-fed normaliser so micro-batch gradients add up.
   */
  async lossAndGrads(
    spec: LossSpec,
    batch: PackedBatch,
    tokenFeeds: Record<string, Float32Array>,
    scalarFeeds: Record<string, number>,
    temperature = 1,
    replayRoutes?: readonly (readonly number[])[],
  ): Promise<{ loss: number; metrics: Record<string, number>; grads: Map<string, Float32Array> }> {
    const replay = this.checkReplay(replayRoutes);
    if (this.largeModel) collectGarbage();
    const segments = Math.min(this.recomputeSegments, this.config.numLayers);
    if (segments > 1 && !this.config.moe)
      return this.segmentedLossAndGrads(spec, batch, tokenFeeds, scalarFeeds, temperature, segments);
    const compiled = await compileCached(
      `loss:${spec.key}:${this.signature}${replay ? ':replay' : ''}`,
      () => {
        const { list, graphInputs, stats, auxLoss } = this.traceModel(replay);
        const extra: Record<string, Tensor> = {};
        for (const name of spec.tokenInputs) extra[name] = input(name, 'float32', ['B', 'T']);
        for (const name of spec.scalarInputs) extra[name] = input(name, 'float32', []);
        const { loss, metrics = {} } = spec.build({ ...stats, auxLoss }, extra);
        const grads = grad(loss, list);
        const outputs: Record<string, Tensor> = { loss };
        for (const [name, t] of Object.entries(metrics)) outputs[`metric:${name}`] = t;
        list.forEach((p, i) => (outputs[`grad:${p.attrs.name}`] = grads[i]!));
        return { inputs: [...graphInputs, ...Object.values(extra)], outputs };
      },
      { memoryArena: !this.largeModel, ...this.runtime },
    );
    const feeds: Record<string, HostTensor> = {
      ...this.weightFeeds(),
      ...this.batchFeeds(batch, replayRoutes),
      inv_temperature: scalarFeed(1 / temperature),
    };
    this.addLossFeeds(spec, batch, tokenFeeds, scalarFeeds, feeds);
    const out = await compiled.run(feeds, this.gradTargets()([...this.paramShapes.keys()]));
    const grads = new Map<string, Float32Array>();
    const metrics: Record<string, number> = {};
    for (const [name, t] of Object.entries(out)) {
      if (name.startsWith('grad:')) grads.set(name.slice(5), t.data as Float32Array);
      else if (name.startsWith('metric:')) metrics[name.slice(7)] = Number(t.data[0]);
    }
    return { loss: Number(out.loss!.data[0]), metrics, grads };
  }

  /**
   * lossAndGrads with the forward recomputed in `segments` segments of layers (see
   * recomputeSegments). Segment s holds layers [bounds[s], bounds[s+1]); the last also the final
   * norm, LM head and loss. Below the top, a segment's backward is driven by the surrogate
   * Σ hidden_out · grad_out, whose gradient is the chain rule's product. The embedding lookup and
   * its gradient (a scatter-add of the first segment's input gradient into the table's rows) run on
   * the host: in a graph, the table's gradient would be one more model-vocabulary-sized output.
   */
  private async segmentedLossAndGrads(
    spec: LossSpec,
    batch: PackedBatch,
    tokenFeeds: Record<string, Float32Array>,
    scalarFeeds: Record<string, number>,
    temperature: number,
    segments: number,
  ): Promise<{ loss: number; metrics: Record<string, number>; grads: Map<string, Float32Array> }> {
    const L = this.config.numLayers,
      D = this.config.hiddenSize;
    const bounds = Array.from({ length: segments + 1 }, (_, s) => Math.round((s * L) / segments));
    const hiddenFeed = (data: Float32Array): HostTensor => ({ dtype: 'float32', data, dims: [batch.B, batch.T, D] });
    const options = { memoryArena: !this.largeModel, ...this.runtime };
    const key = `${this.signature}:segments ${bounds}`;
    const weights = this.weightFeeds();
    const into = this.gradTargets();
    const paramFeeds = (from: number, to: number, head: boolean) =>
      Object.fromEntries(this.segmentParamNames(from, to, head).map((n) => [n, weights[n]!]));
    const table = this.weights.get('model.embed_tokens.weight')!;
    const embedded = new Float32Array(batch.B * batch.T * D); // [B, T, D]
    batch.inputs.forEach((token, i) => embedded.set(table.subarray(Number(token) * D, (Number(token) + 1) * D), i * D));

    // 1. The forward, keeping the residual stream at each boundary.
    const boundaryGraph = await compileCached(
      `segments-forward:${key}`,
      () => {
        const { params, list } = this.traceSegmentParams(0, bounds[segments - 1]!, false);
        const embeddings = input('hidden_in', 'float32', ['B', 'T', D]);
        const outputs: Record<string, Tensor> = {};
        let hidden = embeddings;
        for (let s = 0; s < segments - 1; s++) {
          hidden = forwardSegment(this.config, params, hidden, bounds[s]!, bounds[s + 1]!).hidden;
          outputs[`hidden${s + 1}`] = hidden;
        }
        return { inputs: [...list, embeddings], outputs };
      },
      options,
    );
    const boundary = await boundaryGraph.run({
      ...paramFeeds(0, bounds[segments - 1]!, false),
      hidden_in: hiddenFeed(embedded),
    });
    const hiddenAt = (s: number) => (s === 0 ? embedded : (boundary[`hidden${s}`]!.data as Float32Array));

    // 2. The top segment: its forward from the last boundary, the loss, and its backward.
    const top = segments - 1;
    const topGraph = await compileCached(
      `segments-top:${spec.key}:${key}`,
      () => {
        const { params, list } = this.traceSegmentParams(bounds[top]!, L, true);
        const hiddenIn = input('hidden_in', 'float32', ['B', 'T', D]);
        const targets = input('targets', 'int64', ['B', 'T']);
        const invTemperature = input('inv_temperature', 'float32', []);
        const { logits } = forwardSegment(this.config, params, hiddenIn, bounds[top]!, L);
        const stats = nextTokenStats(logits!, targets, invTemperature);
        const extra: Record<string, Tensor> = {};
        for (const name of spec.tokenInputs) extra[name] = input(name, 'float32', ['B', 'T']);
        for (const name of spec.scalarInputs) extra[name] = input(name, 'float32', []);
        const { loss, metrics = {} } = spec.build(stats, extra);
        const wrt = [...list, hiddenIn];
        const topGrads = grad(loss, wrt);
        const outputs: Record<string, Tensor> = { loss };
        for (const [name, t] of Object.entries(metrics)) outputs[`metric:${name}`] = t;
        wrt.forEach((p, i) => (outputs[`grad:${p.attrs.name}`] = topGrads[i]!));
        return { inputs: [...wrt, targets, invTemperature, ...Object.values(extra)], outputs };
      },
      options,
    );
    const topFeeds: Record<string, HostTensor> = {
      ...paramFeeds(bounds[top]!, L, true),
      hidden_in: hiddenFeed(hiddenAt(top)),
      targets: { dtype: 'int64', data: batch.targets, dims: [batch.B, batch.T] },
      inv_temperature: scalarFeed(1 / temperature),
    };
    this.addLossFeeds(spec, batch, tokenFeeds, scalarFeeds, topFeeds);
    const out = await topGraph.run(topFeeds, into(this.segmentParamNames(bounds[top]!, L, true)));
    const grads = new Map<string, Float32Array>();
    const metrics: Record<string, number> = {};
    let upstream: Float32Array = new Float32Array(0);
    const collect = (result: Record<string, HostTensor>) => {
      for (const [name, t] of Object.entries(result)) {
        if (name === 'grad:hidden_in') upstream = t.data as Float32Array;
        else if (name.startsWith('grad:')) grads.set(name.slice(5), t.data as Float32Array);
        else if (name.startsWith('metric:')) metrics[name.slice(7)] = Number(t.data[0]);
      }
    };
    collect(out);

    // 3. Each lower segment, top down: forward from its boundary, backward from `upstream`.
    for (let s = top - 1; s >= 0; s--) {
      const graph = await compileCached(
        `segments-${s}:${key}`,
        () => {
          const { params, list } = this.traceSegmentParams(bounds[s]!, bounds[s + 1]!, false);
          const hiddenIn = input('hidden_in', 'float32', ['B', 'T', D]);
          const gradOut = input('grad_out', 'float32', ['B', 'T', D]);
          const { hidden } = forwardSegment(this.config, params, hiddenIn, bounds[s]!, bounds[s + 1]!);
          const wrt = [...list, hiddenIn];
          const segmentGrads = grad(hidden.mul(gradOut).sum(), wrt);
          const outputs: Record<string, Tensor> = {};
          wrt.forEach((p, i) => (outputs[`grad:${p.attrs.name}`] = segmentGrads[i]!));
          return { inputs: [...wrt, gradOut], outputs };
        },
        options,
      );
      collect(
        await graph.run(
          {
            ...paramFeeds(bounds[s]!, bounds[s + 1]!, false),
            hidden_in: hiddenFeed(hiddenAt(s)),
            grad_out: hiddenFeed(upstream),
          },
          into(this.segmentParamNames(bounds[s]!, bounds[s + 1]!, false)),
        ),
      );
    }

    // 4. The lookup's gradient: each position's input gradient added to its token's row (to the LM head's when tied).
    const name = 'model.embed_tokens.weight';
    const tableGrad = grads.get(name) ?? (into([name])[`grad:${name}`]!.data as Float32Array).fill(0);
    batch.inputs.forEach((token, i) => {
      const row = Number(token) * D;
      for (let d = 0; d < D; d++) tableGrad[row + d]! += upstream[i * D + d]!;
    });
    grads.set(name, tableGrad);
    return { loss: Number(out.loss!.data[0]), metrics, grads };
  }

  /** Parameter names of layers [from, to), with the final norm and LM head (the table, when tied) if `head`. */
  private segmentParamNames(from: number, to: number, head: boolean): string[] {
    return [...this.paramShapes.keys()].filter((name) => {
      const layer = /^model\.layers\.(\d+)\./.exec(name);
      if (layer) return Number(layer[1]) >= from && Number(layer[1]) < to;
      if (name === 'model.embed_tokens.weight') return head && this.config.tieEmbeddings;
      return head; // model.norm.weight, lm_head.weight
    });
  }

  private traceSegmentParams(from: number, to: number, head: boolean): { params: Params; list: Tensor[] } {
    const params: Params = {};
    for (const name of this.segmentParamNames(from, to, head))
      params[name] = input(name, 'float32', this.paramShapes.get(name)!);
    return { params, list: Object.values(params) };
  }

  private addLossFeeds(
    spec: LossSpec,
    batch: PackedBatch,
    tokenFeeds: Record<string, Float32Array>,
    scalarFeeds: Record<string, number>,
    feeds: Record<string, HostTensor>,
  ): void {
    for (const name of spec.tokenInputs) {
      const data = tokenFeeds[name];
      if (!data || data.length !== batch.B * batch.T)
        throw new Error(`lossAndGrads: token input '${name}' needs ${batch.B * batch.T} values`);
      feeds[name] = { dtype: 'float32', data, dims: [batch.B, batch.T] };
    }
    for (const name of spec.scalarInputs) {
      if (scalarFeeds[name] === undefined) throw new Error(`lossAndGrads: scalar input '${name}' missing`);
      feeds[name] = scalarFeed(scalarFeeds[name]);
    }
  }
}

/** Each sequence's routes over its real positions, flattened [position][layer][k]. */
function unpackRoutes(out: Record<string, HostTensor>, batch: PackedBatch, config: ModelConfig): number[][] {
  const L = sparseLayerCount(config),
    k = config.moe!.topK;
  return batch.lengths.map((len, b) => {
    const record: number[] = [];
    for (let t = 0; t <= len; t++)
      for (let l = 0; l < L; l++)
        for (let j = 0; j < k; j++) record.push(Number(out[`route${l}`]!.data[(b * batch.T + t) * k + j]));
    return record;
  });
}

let gc: (() => void) | undefined;

/**
 * A full garbage collection, before a large model's backward. The previous step's gradients (2.4 GB
 * at 0.6B) are garbage by then, but V8 frees array memory only when it collects, and it rarely
 * does while onnxruntime runs: left to itself it holds them through the next backward, measured as
 * 2.2 GiB more peak RSS at 0.6B. (V8 exposes its collector only behind a flag.)
 */
function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

function scalarFeed(value: number): HostTensor {
  return { dtype: 'float32', data: Float32Array.of(value), dims: [] };
}

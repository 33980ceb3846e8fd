// AdamW on host Float32Arrays with decoupled weight decay, global grad-norm clipping and
// gradient accumulation. Host-side: it keeps the optimizer state out of every compiled graph, and
// a few ms for millions of parameters; at hundreds of millions a second thread takes half of the
// tensors (update-worker.ts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { readJsonFile } from '../util/files.ts';
import type { Weights } from '../model/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';
import { type AdamwKernel, adamwKernel, adamwModule } from './adamw-simd.ts';
import { adamwTensor, type LentTensor, sumOfSquares, UpdateWorker, worthAWorker } from './update-worker.ts';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global L2 norm of the gradient to this (0 = no clipping). */
  maxGradNorm: number;
}

export const adamWDefaults: AdamWConfig = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1.0,
};

/** The learning-rate schedule: linear warmup, then constant or cosine decay. */
export interface ScheduleConfig {
  warmupSteps: number;
  schedule: 'constant' | 'cosine';
  /** Final lr as a fraction of the peak (cosine). */
  minLrRatio: number;
}

/** Everything a training loop needs to build its optimizer and schedule. */
export type OptimizerConfig = AdamWConfig & ScheduleConfig;

/** The AdamW fields of an optimizer config (what AdamW itself keeps and checkpoints). */
export function adamWOf(o: AdamWConfig): AdamWConfig {
  return {
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weightDecay,
    maxGradNorm: o.maxGradNorm,
  };
}

/** The learning rate of optimizer step `step` (0-based) of `steps`. */
export function learningRate(step: number, steps: number, o: OptimizerConfig): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === 'constant') return o.lr;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, steps - o.warmupSteps));
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Parameters that take no weight decay (norm gains and biases), as in HF and nanoGPT. */
export function decays(name: string): boolean {
  return !name.endsWith('norm.weight') && !name.endsWith('.bias');
}

/** Sums gradients over micro-batches; the losses feeding it must already be normalised. */
export class GradAccumulator {
  readonly sums = new Map<string, Float32Array>();

  /**
   * Add one micro-batch's gradients. The first arrays added are kept and summed into, not copied
   * (a model-sized copy: 2.4 GB at 0.6B): pass arrays nobody else holds, as lossAndGrads returns.
   */
  add(grads: Map<string, Float32Array>): void {
    for (const [name, g] of grads) {
      const s = this.sums.get(name);
      if (!s) this.sums.set(name, g);
      else for (let i = 0; i < g.length; i++) s[i]! += g[i]!;
    }
  }

  clear(): void {
    this.sums.clear();
  }
}

/** An update refused because its loss or gradient is not finite; the weights and moments are untouched. */
export class NonFiniteUpdate extends RingrlError {
  override name = 'NonFiniteUpdate';
}

export interface AdamWOptions {
  /**
   * Parameters (values, all tensors together) from which a second thread updates about half of
   * the tensors. Default 4M: below it a pass takes a few ms, less than handing tensors over.
   */
  parallelFrom?: number;
}

export class AdamW {
  step = 0;
  private m = new Map<string, Float32Array<SharedArrayBuffer>>();
  private v = new Map<string, Float32Array<SharedArrayBuffer>>();
  private readonly parallelFrom: number;
  private worker: UpdateWorker | null = null;
  private kernel: AdamwKernel | null = null;

  constructor(
    public config: AdamWConfig = adamWDefaults,
    options: AdamWOptions = {},
  ) {
    this.parallelFrom = options.parallelFrom ?? 1 << 22;
  }

  /**
   * One update of `weights` in place. Resolves with the gradient norm before clipping.
   * `lr` overrides the configured rate (for schedules). With a second thread (see AdamWOptions),
   * some of `weights`' and `grads`' arrays are lent to it while the update runs and replaced in
   * the maps by arrays over the same memory when it returns: hold the maps, not their arrays,
   * across an update, and touch neither before it resolves.
   */
  async update(
    weights: Weights,
    grads: Map<string, Float32Array>,
    lr = this.config.lr,
  ): Promise<{ gradNorm: number; clipped: boolean }> {
    const { beta1, beta2, eps, weightDecay, maxGradNorm } = this.config;
    const tensors = [...grads].map(([name, g]) => {
      const w = weights.get(name);
      if (!w) throw new Error(`optimizer: gradient for unknown parameter '${name}'`);
      if (w.length !== g.length)
        throw new Error(`optimizer: gradient for '${name}' has ${g.length} values, the parameter ${w.length}`);
      return { name, w, g, ...this.moments(name, w.length), decay: decays(name) ? 1 - lr * weightDecay : 1 };
    });
    const lent = this.lend(tensors);
    const worker = lent.length > 0 ? (this.worker ??= new UpdateWorker()) : null;
    const lentSums = worker ? worker.take(lent.map((t) => tensors[t]!).map(lendable)) : Promise.resolve([]);
    const sums = tensors.map((t, i) => (lent.includes(i) ? 0 : sumOfSquares(t.g)));
    (await lentSums).forEach((sq, j) => (sums[lent[j]!] = sq));
    const gradNorm = Math.sqrt(sums.reduce((a, b) => a + b, 0));
    const clip = maxGradNorm > 0 && gradNorm > maxGradNorm ? maxGradNorm / (gradNorm + 1e-6) : 1;
    // The kernels' constants (adamwTensor); none when the norm is not finite: nothing is updated.
    const k = Number.isFinite(gradNorm)
      ? [clip, beta1, beta2, 1 / Math.sqrt(1 - beta2 ** (this.step + 1)), lr / (1 - beta1 ** (this.step + 1)), eps]
      : null;
    const returned = worker ? worker.update(k) : Promise.resolve([]);
    if (k) {
      const kernel = (this.kernel ??= adamwKernel(adamwModule()));
      tensors.forEach((t, i) => lent.includes(i) || adamwTensor(kernel, t.w, t.g, t.m, t.v, k, t.decay));
    }
    (await returned).forEach((back, j) => {
      const { name } = tensors[lent[j]!]!;
      weights.set(name, new Float32Array(back.w));
      grads.set(name, new Float32Array(back.g));
    });
    if (!k)
      throw new NonFiniteUpdate(
        `optimizer: gradient norm is ${gradNorm}; refusing to update the weights (last good weights kept)`,
      );
    this.step++;
    return { gradNorm, clipped: clip < 1 };
  }

  /** The moments of a parameter (zeros the first time), in memory the update worker shares. */
  private moments(
    name: string,
    length: number,
  ): { m: Float32Array<SharedArrayBuffer>; v: Float32Array<SharedArrayBuffer> } {
    let m = this.m.get(name);
    let v = this.v.get(name);
    if (!m || !v) {
      m = new Float32Array(new SharedArrayBuffer(4 * length));
      v = new Float32Array(new SharedArrayBuffer(4 * length));
      this.m.set(name, m);
      this.v.set(name, v);
    }
    return { m, v };
  }

  /**
   * Indices of the tensors the worker updates: about half of the values, largest tensors first,
   * among those whose weight and gradient each own their whole buffer (what can be transferred).
   */
  private lend(tensors: { w: Float32Array; g: Float32Array }[]): number[] {
    const total = tensors.reduce((a, t) => a + t.w.length, 0);
    if (!worthAWorker(total, this.parallelFrom)) return [];
    const seen = new Set<ArrayBufferLike>();
    const owns = (a: Float32Array) =>
      a.buffer instanceof ArrayBuffer &&
      a.byteOffset === 0 &&
      a.byteLength === a.buffer.byteLength &&
      !seen.has(a.buffer);
    const order = tensors.map((_, i) => i).sort((a, b) => tensors[b]!.w.length - tensors[a]!.w.length);
    const lent: number[] = [];
    let here = 0,
      there = 0;
    for (const i of order) {
      const { w, g } = tensors[i]!;
      if (there <= here && w.buffer !== g.buffer && owns(w) && owns(g)) {
        seen.add(w.buffer).add(g.buffer);
        lent.push(i);
        there += w.length;
      } else here += w.length;
    }
    return lent.sort((a, b) => a - b);
  }

  /** Save moments (safetensors) and step/config (JSON) into `dir`. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, m] of this.m) {
      tensors.set(`m.${name}`, { shape: [m.length], data: m });
      tensors.set(`v.${name}`, { shape: [m.length], data: this.v.get(name)! });
    }
    writeSafetensors(join(dir, 'optimizer.safetensors'), tensors);
    writeFileSync(
      join(dir, 'optimizer.json'),
      JSON.stringify({ step: this.step, config: this.config }, null, 2) + '\n',
    );
  }

  static load(dir: string, weights: Weights, options: AdamWOptions = {}): AdamW {
    const jsonPath = join(dir, 'optimizer.json');
    if (!existsSync(jsonPath))
      throw new RingrlError(`${jsonPath}: missing; expected optimizer state saved by AdamW.save`);
    const state = readJsonFile(jsonPath, 'optimizer state saved by AdamW.save') as {
      step: number;
      config: AdamWConfig;
    };
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new RingrlError(`${jsonPath}: field 'step' must be a non-negative integer`);
    const opt = new AdamW({ ...adamWDefaults, ...state.config }, options);
    opt.step = state.step;
    const tensors = readSafetensors(join(dir, 'optimizer.safetensors'));
    for (const [key, t] of tensors) {
      const [kind, ...rest] = key.split('.');
      const name = rest.join('.');
      const w = weights.get(name);
      if (!w || w.length !== t.data.length)
        throw new RingrlError(
          `${join(dir, 'optimizer.safetensors')}: tensor '${key}' does not match parameter '${name}' of this model`,
        );
      const shared = new Float32Array(new SharedArrayBuffer(t.data.byteLength));
      shared.set(t.data);
      (kind === 'm' ? opt.m : opt.v).set(name, shared);
    }
    return opt;
  }
}

function lendable(t: {
  w: Float32Array;
  g: Float32Array;
  m: Float32Array<SharedArrayBuffer>;
  v: Float32Array<SharedArrayBuffer>;
  decay: number;
}): LentTensor {
  return { w: t.w.buffer as ArrayBuffer, g: t.g.buffer as ArrayBuffer, m: t.m.buffer, v: t.v.buffer, decay: t.decay };
}

// AdamW on host Float32Arrays with decoupled weight decay, global grad-norm clipping and
// gradient accumulation. Host-side because it measured fast enough (a few ms for millions of
// parameters) and keeps the optimizer state out of every compiled graph.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { readJsonFile } from '../util/files.ts';
import type { Weights } from '../model/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../model/safetensors.ts';

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

export function globalGradNorm(grads: Map<string, Float32Array>): number {
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  return Math.sqrt(sq);
}

/** An update refused because its loss or gradient is not finite; the weights and moments are untouched. */
export class NonFiniteUpdate extends RingrlError {
  override name = 'NonFiniteUpdate';
}

export class AdamW {
  step = 0;
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();

  constructor(public config: AdamWConfig = adamWDefaults) {}

  /**
   * One update of `weights` in place. Returns the gradient norm before clipping.
   * `lr` overrides the configured rate (for schedules).
   */
  update(
    weights: Weights,
    grads: Map<string, Float32Array>,
    lr = this.config.lr,
  ): { gradNorm: number; clipped: boolean } {
    const { beta1, beta2, eps, weightDecay, maxGradNorm } = this.config;
    const gradNorm = globalGradNorm(grads);
    if (!Number.isFinite(gradNorm))
      throw new NonFiniteUpdate(
        `optimizer: gradient norm is ${gradNorm}; refusing to update the weights (last good weights kept)`,
      );
    const clip = maxGradNorm > 0 && gradNorm > maxGradNorm ? maxGradNorm / (gradNorm + 1e-6) : 1;
    this.step++;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    const stepSize = lr / bc1;
    for (const [name, g] of grads) {
      const w = weights.get(name);
      if (!w) throw new Error(`optimizer: gradient for unknown parameter '${name}'`);
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        m = new Float32Array(w.length);
        v = new Float32Array(w.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const decay = decays(name) ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]! * clip;
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
        w[i] = w[i]! * decay - (stepSize * mi) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    return { gradNorm, clipped: clip < 1 };
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

  static load(dir: string, weights: Weights): AdamW {
    const jsonPath = join(dir, 'optimizer.json');
    if (!existsSync(jsonPath))
      throw new RingrlError(`${jsonPath}: missing; expected optimizer state saved by AdamW.save`);
    const state = readJsonFile(jsonPath, 'optimizer state saved by AdamW.save') as {
      step: number;
      config: AdamWConfig;
    };
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new RingrlError(`${jsonPath}: field 'step' must be a non-negative integer`);
    const opt = new AdamW({ ...adamWDefaults, ...state.config });
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
      (kind === 'm' ? opt.m : opt.v).set(name, t.data);
    }
    return opt;
  }
}

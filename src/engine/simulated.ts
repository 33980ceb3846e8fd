// A simulated rollout engine: the real engine interface over a virtual clock, so the real
// scheduler code can be run at cluster scale (thousands of slots, 64K-token tails) in seconds.
//
// Cost model: a decode step costs `stepFixedMs + stepPerSeqMs × active` (GPUs: nearly flat in the
// batch; a CPU: nearly linear) plus `stepPerCachedMs` per cached position attention reads, a prefill
// `prefillPerTokenMs` per token (resumed sequences pay it again for prompt + generated tokens,
// unless keepPausedCache). Each sequence's length is drawn once
// from a lognormal keyed by its id, so a paused and resumed sequence ends where it would have.
import {
  cloneSequence,
  type EngineStats,
  emptySequence,
  type GeneratedSequence,
  type GenerationRequest,
  type RolloutEngine,
} from './types.ts';
import { normal, rng } from '../util/random.ts';

export interface StepCostModel {
  stepFixedMs: number;
  stepPerSeqMs: number;
  prefillPerTokenMs: number;
  /** Per cached position attention reads in a decode step (keys and values of every layer); default 0. */
  stepPerCachedMs?: number;
  /**
   * Which positions a step reads: `ragged` each row its own (paged attention, as GPU engines do);
   * `padded` every row the longest row's (a dense [B, S] cache), or with `segments` the longest
   * row's within each segment a row reaches (the local engine's segmented cache).
   */
  attention?: 'ragged' | 'padded';
  /** First positions of the cache segments after the first (LocalEngineOptions.kvSegments). */
  segments?: number[];
}

/** A decode step's cost under `cost` with one row per entry of `lengths` (its cached positions). */
export function decodeStepMs(cost: StepCostModel, lengths: readonly number[]): number {
  const batch = cost.stepFixedMs + cost.stepPerSeqMs * lengths.length;
  return cost.stepPerCachedMs ? batch + cost.stepPerCachedMs * cachedPositionsRead(cost, lengths) : batch;
}

/** Positions a decode step's attention reads (see StepCostModel.attention). */
function cachedPositionsRead(cost: StepCostModel, lengths: readonly number[]): number {
  const { attention, segments = [] } = cost;
  if (attention !== 'padded') return lengths.reduce((a, b) => a + b, 0);
  const starts = [0, ...segments],
    longest = Math.max(...lengths);
  return starts.reduce((read, start, j) => {
    const slots = Math.min(starts[j + 1] ?? Infinity, longest) - start;
    return slots > 0 ? read + lengths.filter((l) => l > start).length * slots : read;
  }, 0);
}

export interface LengthModel {
  /** Median response length in tokens. */
  median: number;
  /** Lognormal σ: 1 gives a long tail (p99 ≈ 10× median). */
  sigma: number;
}

export interface SimulatedEngineOptions {
  capacity: number;
  cost: StepCostModel;
  lengths: LengthModel;
  seed?: number;
  /** Resumed sequences keep their cache (LocalEngineOptions.keepPausedCache): no re-prefill cost. */
  keepPausedCache?: boolean;
}

interface Slot {
  request: GenerationRequest;
  seq: GeneratedSequence;
  target: number;
}

export class SimulatedEngine implements RolloutEngine {
  version = 0;
  private waiting: GenerationRequest[] = [];
  private active: Slot[] = [];
  private counters = { decodeSteps: 0, generatedTokens: 0, prefillTokens: 0, busySeconds: 0, prefillSeconds: 0 };

  constructor(private readonly options: SimulatedEngineOptions) {}

  /** The length this sequence would reach (before max_new_tokens) — a pure function of its id. */
  targetLength(id: string): number {
    let h = this.options.seed ?? 0;
    for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
    const z = normal(rng(h))();
    return Math.max(1, Math.round(this.options.lengths.median * Math.exp(this.options.lengths.sigma * z)));
  }

  submit(requests: GenerationRequest[]): void {
    this.waiting.push(...requests);
  }

  busy(): boolean {
    return this.active.length > 0 || this.waiting.length > 0;
  }

  async step(): Promise<GeneratedSequence[]> {
    const { capacity, cost } = this.options;
    let ms = 0;
    while (this.waiting.length && this.active.length < capacity) {
      const r = this.waiting.shift()!;
      const seq = r.resumeFrom ? cloneSequence(r.resumeFrom) : emptySequence(r);
      const context = r.resumeFrom && this.options.keepPausedCache ? 0 : r.prompt.length + seq.tokens.length;
      this.counters.prefillTokens += context;
      ms += cost.prefillPerTokenMs * context;
      this.counters.prefillSeconds += (cost.prefillPerTokenMs * context) / 1000;
      this.active.push({ request: r, seq, target: Math.min(this.targetLength(r.id), r.params.maxNewTokens) });
    }
    const finished: GeneratedSequence[] = [];
    if (this.active.length) {
      ms += decodeStepMs(
        cost,
        this.active.map((s) => s.request.prompt.length + s.seq.tokens.length),
      );
      this.counters.decodeSteps++;
      for (const slot of this.active) {
        slot.seq.tokens.push(1);
        slot.seq.behaviorLogprobs.push(0);
        slot.seq.policyLogprobs.push(0);
        slot.seq.versions.push(this.version);
        this.counters.generatedTokens++;
        if (slot.seq.tokens.length >= slot.target) {
          slot.seq.finishReason = slot.target < slot.request.params.maxNewTokens ? 'stop' : 'length';
          finished.push(slot.seq);
        }
      }
      this.active = this.active.filter((s) => !s.seq.finishReason);
    }
    this.counters.busySeconds += ms / 1000;
    return finished;
  }

  async pause(): Promise<GeneratedSequence[]> {
    const partial = [...this.active.map((s) => s.seq), ...this.waiting.map((r) => r.resumeFrom ?? emptySequence(r))];
    this.active = [];
    this.waiting = [];
    return partial;
  }

  async updateWeights(_weights: Map<string, Float32Array>, version: number): Promise<void> {
    this.version = version;
  }

  stats(): EngineStats {
    return {
      active: this.active.length,
      waiting: this.waiting.length,
      capacity: this.options.capacity,
      ...this.counters,
    };
  }
}

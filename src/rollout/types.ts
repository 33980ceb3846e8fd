// Records and interfaces shared by the rollout schedulers (C3PO++, sync, async) and the controller.
import type { FinishReason, GeneratedSequence, SamplingParams } from '../engine/types.ts';

/** A prompt as the scheduler sees it: ids plus whatever the reward needs (answer, task, ...). */
export interface Prompt {
  id: string;
  tokens: number[];
  /** Opaque to the scheduler; handed to the reward function with the trajectory. */
  meta?: Record<string, unknown>;
}

/** Where prompts come from. The cursor is checkpointed so a resumed run continues the stream. */
export interface PromptSource {
  next(): Prompt;
  cursor(): number;
  seek(cursor: number): void;
}

/** One sampled response with its provenance (per-token log-probs and versions: docs/engine.md). */
export interface Trajectory {
  promptId: string;
  groupId: string;
  sampleIndex: number;
  prompt: number[];
  response: number[];
  behaviorLogprobs: number[];
  policyLogprobs: number[];
  versions: number[];
  /** MoE: the engine's expert choice per context position (GeneratedSequence.routes), for routing replay. */
  routes?: number[];
  finishReason: FinishReason | 'dropped';
  /** Policy updates this trajectory's generation spanned while unfinished (C3PO++ retention). */
  retention: number;
  meta?: Record<string, unknown>;
  reward?: number;
  rewardBreakdown?: Record<string, number>;
  /** Why this trajectory could not be scored (it is then left out of training, never scored 0). */
  unscored?: string;
}

/** A GRPO group: G samples of one prompt, handed to training only when every member has ended. */
export interface Group {
  id: string;
  prompt: Prompt;
  members: Trajectory[];
}

export type RolloutMode = 'c3po' | 'sync' | 'async';

export interface RolloutConfig {
  mode: RolloutMode;
  /** Φ: tokens of finished trajectories that end an iteration. */
  tokenBudget: number;
  /** Ω_infer: concurrent sequences in the inference pool (submitted to the engine). */
  poolCapacity: number;
  /** σ (c3po): a partial rollout whose retention exceeds this is dropped. */
  retention: number;
  /** η (async): members whose first token is more than η versions old are dropped when their group completes. */
  staleness: number;
  /** G: samples per prompt. */
  groupSize: number;
  sampling: SamplingParams;
}

export interface IterationStats {
  'rollout/finished_tokens': number;
  'rollout/generated_tokens': number;
  'rollout/tokens_per_s': number;
  'rollout/pool_occupancy': number;
  'rollout/decode_steps': number;
  'rollout/prefill_tokens': number;
  'time/rollout_s': number;
  /** The engine's own busy seconds this iteration (time/rollout_s becomes the step's wall-clock lap in the controller). */
  'rollout/engine_s': number;
  /** Of the engine's busy seconds this iteration, those spent prefilling (NaN where the engine does not time it). */
  'rollout/prefill_s': number;
  /** Prefilled positions including the padding of prefill batches (NaN where the engine does not pad or count). */
  'rollout/prefill_padded_tokens': number;
  'c3po/retained': number;
  'c3po/dropped': number;
  'c3po/dropped_len_mean': number;
  'c3po/kept_len_mean': number;
  'c3po/groups': number;
  'c3po/groups_discarded': number;
}

/** What a scheduler hands the trainer for one step. */
export interface RolloutBatch {
  groups: Group[];
  /** Groups that ended with fewer than 2 surviving members (not trained on; kept for the record). */
  discarded: Group[];
  stats: IterationStats;
}

/** Everything needed to continue rollouts after a restart (checkpointed with the model). */
export interface SchedulerState {
  version: number;
  cursor: number;
  nextGroup: number;
  /** Unfinished trajectories in the pool, and finished members of groups still waiting for siblings. */
  groups: {
    id: string;
    prompt: Prompt;
    members: (Trajectory & { seed: number; partial: GeneratedSequence | null })[];
  }[];
}

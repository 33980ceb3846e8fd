// The policy loss's inputs on the host: one row per sequence, one entry per response token.
import type { PolicyLossConfigInput } from '../config.ts';

export interface PolicyLossBatch {
  /** log pi_theta: the current policy's log-probs (what the loss is differentiated against). */
  logprobs: number[][];
  /** log pi_train(theta_old): the trainer's recompute before the update (not needed with bypass). */
  oldLogprobs?: number[][];
  /** log pi_infer: the rollout engine's policy log-prob of each sampled token. */
  rolloutLogprobs: number[][];
  /** A per token (usually one value per sequence, broadcast). */
  advantages: number[][];
  /** 1 for response tokens that count, 0 for padding, prompt and filtered tokens. */
  mask: number[][];
  /** log pi_ref, needed when kl.coef > 0. */
  refLogprobs?: number[][];
  /** Entropy of pi_theta at each position: the bonus (entropy.coef > 0) and entropy metrics. */
  entropy?: number[][];
  /** Aggregation weights computed over a larger step; default: from `mask` and the config. */
  lossWeights?: number[][];
}

export interface PolicyLossResult {
  loss: number;
  /** d loss / d logprobs per token. */
  gradLogprobs: number[][];
  /** The correction weight w per token (1 for none, min(k, C) for tis, M(k) for icepop; 0 off-mask). */
  tokenWeights: number[][];
  metrics: Record<string, number>;
}

export type { PolicyLossConfigInput };

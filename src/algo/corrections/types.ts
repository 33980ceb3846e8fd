// A train/inference mismatch correction: the per-token weight w applied to the PPO surrogate,
// as a function of log k = log pi_train(theta_old) - log pi_infer. Each correction is given twice,
// on the host (the reference) and as a graph function (the training loss); tests hold them equal.
// Thresholds are compared in log space so "k exactly at alpha" means the same on both sides.
import type { Tensor } from '../../graph/index.ts';
import type { PolicyLossConfig } from '../config.ts';

export interface Correction {
  /** w for one token. */
  weight(logK: number, config: PolicyLossConfig): number;
  /** w for every token; the caller detaches it (no gradient flows through a correction weight). */
  graphWeight(logK: Tensor, config: PolicyLossConfig): Tensor;
}

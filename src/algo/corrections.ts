// Train/inference mismatch corrections: the per-token weight w applied to the PPO surrogate, as
// a function of log k = log pi_train(theta_old) - log pi_infer. Each correction is given twice,
// on the host (the reference) and as a graph function (the training loss); tests hold them
// equal. Thresholds are compared in log space so "k exactly at alpha" means the same on both
// sides. Registered by name; the config's `correction` key picks one.
import { type Tensor, scalar, where } from '../graph/index.ts';
import type { CorrectionName, PolicyLossConfig } from './config.ts';

export interface Correction {
  /** Tokens given w = 0 also leave the aggregation's token count (rejection sampling), not only the gradient. */
  rejects?: boolean;
  /** w for one token. */
  weight(logK: number, config: PolicyLossConfig): number;
  /** w for every token; the caller detaches it (no gradient flows through a correction weight). */
  graphWeight(logK: Tensor, config: PolicyLossConfig): Tensor;
}

/** No correction: the trainer trusts the rollout tokens as if sampled from pi_train (w = 1). */
const none: Correction = {
  weight: () => 1,
  graphWeight: (logK) => scalar(1, logK.dtype),
};

/**
 * Truncated importance sampling: w = min(k, C). Stable in the paper's runs but plateaus lower
 * than IcePop, because tokens with huge k still push with weight C.
 */
const tis: Correction = {
  weight: (logK, config) => Math.min(Math.exp(logK), config.tis.cap),
  graphWeight: (logK, config) => logK.exp().minimum(config.tis.cap),
};

/**
 * IcePop (Ring-1T): w = k inside the band [alpha, beta] (both edges included), 0 outside. Not a
 * 0/1 mask: in-band tokens are importance-weighted by k, out-of-band tokens get no gradient.
 */
const icepop: Correction = {
  weight(logK, { icepop: { alpha, beta } }) {
    return logK < Math.log(alpha) || logK > Math.log(beta) ? 0 : Math.exp(logK);
  },
  graphWeight(logK, { icepop: { alpha, beta } }) {
    return where(logK.less(Math.log(alpha)), 0, where(logK.greater(Math.log(beta)), 0, logK.exp()));
  },
};

/**
 * Masked importance sampling (verl's token-level rollout_is + rollout_rs at the IcePop band): the
 * weight is IcePop's, but a rejected token also leaves the loss denominator, where IcePop keeps
 * it (its weight 0, its count 1). With token-mean the surviving tokens then weigh a little more.
 */
const mis: Correction = { ...icepop, rejects: true };

export const corrections: Record<CorrectionName, Correction> = { none, tis, icepop, mis };

/**
 * The response mask the aggregation counts: `mask`, less the tokens a rejecting correction zeroes.
 * `logK` rows are aligned with `mask` (log pi_train_old - log pi_infer per response token).
 */
export function countedMask(
  mask: readonly (readonly number[])[],
  logK: readonly (readonly number[])[],
  config: PolicyLossConfig,
): number[][] {
  const correction = corrections[config.correction];
  if (!correction.rejects) return mask.map((row) => [...row]);
  return mask.map((row, i) => row.map((m, t) => (m > 0 && correction.weight(logK[i]![t]!, config) !== 0 ? m : 0)));
}

// The policy-loss metrics (the dotted names of docs/report.md). The graph returns them per micro-batch as
// additive partial sums (each token counted with 1/N, N = response tokens in the whole step) or
// maxima; `combineMetrics` merges micro-batches and `finishPolicyMetrics` forms the ratios.
//
//   mismatch/kl               k3 estimate of KL(pi_infer || pi_train) = mean of k - 1 - log k
//   mismatch/logp_diff_mean   mean |log pi_train - log pi_infer|      (_max: the largest)
//   icepop/masked_frac        fraction of response tokens outside [alpha, beta] (_low_frac: k < alpha,
//                             _high_frac: k > beta); icepop/masked_entropy_mean: their mean entropy
//   tis/clipped_frac          fraction of tokens with k > tis.cap
//   ppo/clip_frac             fraction of tokens whose ratio is clipped (_low: A < 0 and r < 1 - low,
//                             _high: A > 0 and r > 1 + high); ppo/ratio_mean: mean r
//   entropy/mean              mean entropy of pi_theta over response tokens
//   kl/ref                    mean KL estimate against the reference model (when kl.coef > 0)
//   loss/policy, loss/kl, loss/entropy   the aggregated terms of the loss
// The mismatch and IcePop fractions are logged under every correction (and, with bypass, use the
// current log-probs as the trainer side), so a run without IcePop still shows what it would mask.

/** Partial sums whose ratio is a metric; removed by finishPolicyMetrics. */
export const maskedEntropyPartial = 'partial/icepop_masked_entropy';

const maxima = new Set(['mismatch/logp_diff_max']);

/** Merge per-micro-batch metrics: maxima by max, everything else by sum. */
export function combineMetrics(parts: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of parts) {
    for (const [name, value] of Object.entries(part)) {
      const prev = out[name];
      out[name] = prev === undefined ? value : maxima.has(name) ? Math.max(prev, value) : prev + value;
    }
  }
  return out;
}

export function finishPolicyMetrics(raw: Record<string, number>): Record<string, number> {
  const out = { ...raw };
  out['icepop/masked_frac'] = (raw['icepop/masked_low_frac'] ?? 0) + (raw['icepop/masked_high_frac'] ?? 0);
  out['ppo/clip_frac'] = (raw['ppo/clip_frac_low'] ?? 0) + (raw['ppo/clip_frac_high'] ?? 0);
  const partial = raw[maskedEntropyPartial];
  delete out[maskedEntropyPartial];
  // No masked token, no mean: the key is left out rather than reported as a misleading 0.
  if (partial !== undefined && out['icepop/masked_frac']! > 0)
    out['icepop/masked_entropy_mean'] = partial / out['icepop/masked_frac']!;
  return out;
}

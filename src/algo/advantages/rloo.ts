// RLOO (Ahmadian et al.): A_i = r_i - mean of the other samples' rewards, i.e.
// n/(n-1) (r_i - mean(r)); a sample is never its own baseline.
import type { AdvantageEstimator } from './types.ts';

export const rloo: AdvantageEstimator = (rewards) => {
  const n = rewards.length;
  if (n < 2) return rewards.map(() => 0);
  const total = rewards.reduce((a, b) => a + b, 0);
  return rewards.map((r) => r - (total - r) / (n - 1));
};

// Dr. GRPO (Liu et al., "Understanding R1-Zero-Like Training"): A_i = r_i - mean(r), without the
// std division that up-weights near-unanimous groups.
import type { AdvantageEstimator } from './types.ts';
import { mean } from '../../util/stats.ts';

export const drGrpo: AdvantageEstimator = (rewards) => {
  const mu = mean(rewards);
  return rewards.map((r) => r - mu);
};

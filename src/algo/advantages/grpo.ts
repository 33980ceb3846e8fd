// GRPO (DeepSeekMath): A_i = (r_i - mean(r)) / (std(r) + epsilon), std with Bessel's correction
// (torch.std's default, as verl and TRL use). A zero-variance group gets A = 0.
import type { AdvantageEstimator } from './types.ts';
import { mean } from '../../util/stats.ts';

export const grpo: AdvantageEstimator = (rewards, { epsilon }) => {
  if (rewards.length < 2) return rewards.map(() => 0);
  const mu = mean(rewards);
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mu) ** 2, 0) / (rewards.length - 1));
  return rewards.map((r) => (r - mu) / (std + epsilon));
};

// Advantages from per-sample rewards and group ids (GRPO-style: a group is the samples of one
// prompt), broadcast to every response token. The estimators sit together here, registered by
// name, so their differences read side by side (as verl's core_algos.py keeps them).
import { z } from 'zod';
import { RingrlError } from '../errors.ts';
import { mean } from '../util/stats.ts';
import { parseConfig } from './config-error.ts';

/**
 * An advantage estimator maps the rewards of one group (the samples of one prompt) to one
 * advantage per sample. A group of one has no baseline: every estimator gives it 0.
 */
export type AdvantageEstimator = (rewards: readonly number[], config: { epsilon: number }) => number[];

/**
 * GRPO (DeepSeekMath): A_i = (r_i - mean(r)) / (std(r) + epsilon), std with Bessel's correction
 * (torch.std's default, as verl and TRL use). A zero-variance group gets A = 0.
 */
const grpo: AdvantageEstimator = (rewards, { epsilon }) => {
  if (rewards.length < 2) return rewards.map(() => 0);
  const mu = mean(rewards);
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mu) ** 2, 0) / (rewards.length - 1));
  return rewards.map((r) => (r - mu) / (std + epsilon));
};

/**
 * Dr. GRPO (Liu et al., "Understanding R1-Zero-Like Training"): A_i = r_i - mean(r), without the
 * std division that up-weights near-unanimous groups.
 */
const drGrpo: AdvantageEstimator = (rewards) => {
  const mu = mean(rewards);
  return rewards.map((r) => r - mu);
};

/**
 * RLOO (Ahmadian et al.): A_i = r_i - mean of the other samples' rewards, i.e.
 * n/(n-1) (r_i - mean(r)); a sample is never its own baseline.
 */
const rloo: AdvantageEstimator = (rewards) => {
  const n = rewards.length;
  if (n < 2) return rewards.map(() => 0);
  const total = rewards.reduce((a, b) => a + b, 0);
  return rewards.map((r) => r - (total - r) / (n - 1));
};

export const advantageEstimators = { grpo, dr_grpo: drGrpo, rloo } satisfies Record<string, AdvantageEstimator>;
export type AdvantageEstimatorName = keyof typeof advantageEstimators;

export const advantageSchema = z.strictObject({
  estimator: z
    .enum(Object.keys(advantageEstimators) as [AdvantageEstimatorName, ...AdvantageEstimatorName[]])
    .default('grpo')
    .describe('grpo: (r - mean) / (std + epsilon); dr_grpo: r - mean; rloo: r - mean of the others'),
  epsilon: z
    .number()
    .positive()
    .default(1e-6)
    .describe('added to the group std (grpo) so a zero-variance group divides by epsilon, not 0'),
});
export type AdvantageConfigInput = z.input<typeof advantageSchema>;
export type AdvantageConfig = z.output<typeof advantageSchema>;

export interface AdvantageInput {
  rewards: readonly number[];
  /** Samples with the same id form one group. */
  groupIds: readonly (string | number)[];
  /** Per-sample response mask; when given, advantages are broadcast to its tokens. */
  responseMask?: readonly (readonly number[])[];
}

export interface AdvantageResult {
  /** One advantage per sample. */
  advantages: number[];
  /** The sample's advantage at each response token (mask 1), 0 elsewhere; [] rows without a mask. */
  tokenAdvantages: number[][];
  /** advantage/mean|std (over response tokens when a mask is given), reward/mean, reward/zero_std_group_frac. */
  metrics: Record<string, number>;
}

export function computeAdvantages(input: AdvantageInput, configInput: AdvantageConfigInput = {}): AdvantageResult {
  const config = parseConfig(advantageSchema, configInput, 'advantage config');
  const { rewards, groupIds, responseMask } = input;
  if (groupIds.length !== rewards.length)
    throw new RingrlError(`advantages: groupIds has ${groupIds.length} entries, rewards has ${rewards.length}`);
  if (responseMask && responseMask.length !== rewards.length)
    throw new RingrlError(`advantages: responseMask has ${responseMask.length} rows, rewards has ${rewards.length}`);
  rewards.forEach((r, i) => {
    if (!Number.isFinite(r)) throw new RingrlError(`advantages: rewards[${i}] is ${r}; expected a finite number`);
  });

  const groups = new Map<string | number, number[]>();
  groupIds.forEach((id, i) => groups.set(id, [...(groups.get(id) ?? []), i]));
  const advantages = new Array<number>(rewards.length).fill(0);
  const estimate = advantageEstimators[config.estimator];
  let zeroStd = 0;
  for (const members of groups.values()) {
    const groupRewards = members.map((i) => rewards[i]!);
    if (groupRewards.every((r) => r === groupRewards[0])) zeroStd++;
    estimate(groupRewards, config).forEach((a, j) => (advantages[members[j]!] = a));
  }

  const tokenAdvantages = responseMask ? broadcastToTokens(advantages, responseMask) : advantages.map(() => []);
  const counted = responseMask
    ? tokenAdvantages.flatMap((row, i) => row.filter((_, t) => responseMask[i]![t]! > 0))
    : advantages;
  return {
    advantages,
    tokenAdvantages,
    metrics: {
      'advantage/mean': mean(counted),
      'advantage/std': stdOf(counted),
      'reward/mean': mean(rewards),
      'reward/zero_std_group_frac': groups.size > 0 ? zeroStd / groups.size : 0,
    },
  };
}

/** Each sample's advantage at its response tokens (mask > 0), 0 at the others. */
export function broadcastToTokens(
  advantages: readonly number[],
  responseMask: readonly (readonly number[])[],
): number[][] {
  return responseMask.map((row, i) => row.map((m) => (m > 0 ? advantages[i]! : 0)));
}

function stdOf(xs: readonly number[]): number {
  const mu = mean(xs);
  return xs.length ? Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / xs.length) : 0;
}

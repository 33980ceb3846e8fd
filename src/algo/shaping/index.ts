// Batch shaping before advantages: cap response lengths, add the overlong penalty to rewards,
// and build the response masks (0 for truncated responses under `truncated: 'mask'`).
import type { RlSample } from '../sample.ts';
import { type ShapingConfig, type ShapingConfigInput, parseShapingConfig } from './config.ts';
import { capResponseLength, overlongPenalty } from './overlong.ts';

export { DynamicSampler, filterInformativeGroups, isInformative, type RewardGroup } from './dynamic-sampling.ts';
export { capResponseLength, overlongPenalty } from './overlong.ts';
export { parseShapingConfig, shapingSchema, type ShapingConfig, type ShapingConfigInput } from './config.ts';

export interface ShapedBatch<S extends RlSample> {
  /** Samples with capped responses and shaped rewards (reward + overlong penalty). */
  samples: S[];
  /** Per response token: 1 to train on, 0 not to. */
  responseMasks: number[][];
  metrics: Record<string, number>;
}

export function shapeBatch<S extends RlSample>(
  input: readonly S[],
  configInput: ShapingConfigInput | ShapingConfig = {},
): ShapedBatch<S> {
  const config = parseShapingConfig(configInput);
  let truncated = 0;
  let penaltySum = 0;
  const samples = input.map((original) => {
    // The penalty sees the length the model produced, before the cut.
    const penalty = overlongPenalty(original.response.length, config);
    const sample = capResponseLength(original, config.max_response_length);
    if (sample.finishReason === 'length') truncated++;
    penaltySum += penalty;
    return { ...sample, reward: sample.reward + penalty };
  });
  const responseMasks = samples.map((s) =>
    s.response.map(() => (config.truncated === 'mask' && s.finishReason === 'length' ? 0 : 1)),
  );
  const n = samples.length;
  return {
    samples,
    responseMasks,
    metrics: {
      'response_length/mean': n ? samples.reduce((a, s) => a + s.response.length, 0) / n : 0,
      'response_length/clip_frac': n ? truncated / n : 0,
      'reward/overlong_penalty_mean': n ? penaltySum / n : 0,
    },
  };
}

// No correction: the trainer trusts the rollout tokens as if sampled from pi_train (w = 1).
import { scalar } from '../../graph/index.ts';
import type { Correction } from './types.ts';

export const none: Correction = {
  weight: () => 1,
  graphWeight: (logK) => scalar(1, logK.dtype),
};

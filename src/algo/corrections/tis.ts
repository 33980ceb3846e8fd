// Truncated importance sampling: w = min(k, C). Stable in the paper's runs but plateaus lower
// than IcePop, because tokens with huge k still push with weight C.
import type { Correction } from './types.ts';

export const tis: Correction = {
  weight: (logK, config) => Math.min(Math.exp(logK), config.tis.cap),
  graphWeight: (logK, config) => logK.exp().minimum(config.tis.cap),
};

// IcePop (Ring-1T): w = k inside the band [alpha, beta] (both edges included), 0 outside. Not a
// 0/1 mask: in-band tokens are importance-weighted by k, out-of-band tokens get no gradient.
import { where } from '../../graph/index.ts';
import type { Correction } from './types.ts';

export const icepop: Correction = {
  weight(logK, { icepop: { alpha, beta } }) {
    return logK < Math.log(alpha) || logK > Math.log(beta) ? 0 : Math.exp(logK);
  },
  graphWeight(logK, { icepop: { alpha, beta } }) {
    return where(logK.less(Math.log(alpha)), 0, where(logK.greater(Math.log(beta)), 0, logK.exp()));
  },
};

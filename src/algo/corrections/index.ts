// Corrections registered by name; the config's `correction` key picks one.
import type { CorrectionName } from '../config.ts';
import { icepop } from './icepop.ts';
import { none } from './none.ts';
import { tis } from './tis.ts';
import type { Correction } from './types.ts';

export type { Correction } from './types.ts';

export const corrections: Record<CorrectionName, Correction> = { none, tis, icepop };

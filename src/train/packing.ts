// Packing SFT examples into fixed-budget rows. Several prompt+response sequences are laid end
// to end in one row (first-fit over the examples in order) so a step wastes few padded
// positions on mixed lengths. The loss mask keeps only response tokens (and their EOS): the
// model is never trained to predict prompts. Attention is causal over the whole row, as in
// HF TRL's and nanoGPT's packing; each example starts with BOS, and the model sees
// neighbouring examples only as earlier context.
import { RingrlError } from '../errors.ts';
import { type PackedBatch, packSequences } from './policy.ts';

export interface EncodedExample {
  prompt: number[];
  response: number[];
}

export interface PackedRow {
  tokens: number[];
  /** lossMask[t] = 1 when tokens[t + 1] is a response token (length tokens.length - 1). */
  lossMask: number[];
}

/** First-fit packing into rows of at most `maxLength` tokens (no packing when `pack` is false). */
export function packRows(examples: EncodedExample[], maxLength: number, pack = true): PackedRow[] {
  const rows: PackedRow[] = [];
  for (const ex of examples) {
    const length = ex.prompt.length + ex.response.length;
    if (length > maxLength)
      throw new RingrlError(
        `an example has ${length} tokens; it does not fit a packed row of ${maxLength} (raise the pack length or the model context)`,
      );
    const mask = [...ex.prompt.map(() => 0), ...ex.response.map(() => 1)];
    let row = pack ? rows.find((r) => r.tokens.length + length <= maxLength) : undefined;
    if (!row) rows.push((row = { tokens: [], lossMask: [] }));
    // The mask is over targets: the target of position t is token t + 1.
    if (row.tokens.length > 0) row.lossMask.push(mask[0]!);
    row.tokens.push(...ex.prompt, ...ex.response);
    row.lossMask.push(...mask.slice(1));
  }
  return rows;
}

/** A packed batch of rows plus the [B, T] loss mask aligned with its targets. */
export function rowsToBatch(
  rows: PackedRow[],
  vocabSize: number,
): { batch: PackedBatch; lossMask: Float32Array; targets: number } {
  const batch = packSequences(
    rows.map((r) => r.tokens),
    vocabSize,
  );
  const lossMask = new Float32Array(batch.B * batch.T);
  let targets = 0;
  rows.forEach((r, b) =>
    r.lossMask.forEach((m, t) => {
      lossMask[b * batch.T + t] = m;
      targets += m;
    }),
  );
  return { batch, lossMask, targets };
}

// Loss aggregation as per-token weights: loss = sum_t weight_t * loss_t. Computing the weights on
// the host over the whole step (not inside each micro-batch's graph) makes the result independent
// of how the step is split into micro-batches: the micro-batch losses and gradients simply add
// (OpenRLHF's aggregate_loss makes the same point about shards). Registered by name.
import type { AggregationName, PolicyLossConfig } from './config.ts';

/** Per-token weights (0 where mask is 0) for response masks given row by row. */
export type Aggregation = (mask: readonly (readonly number[])[], config: PolicyLossConfig) => number[][];

const responseTokens = (row: readonly number[]) => row.reduce((a, m) => a + (m > 0 ? 1 : 0), 0);
const scaled = (mask: readonly (readonly number[])[], weight: (row: number) => number) =>
  mask.map((row, i) => row.map((m) => (m > 0 ? weight(i) : 0)));

/**
 * token-mean: sum over response tokens / number of response tokens in the step. Tokens that
 * IcePop zeroes stay in the denominator (as in verl and AReaL): their weight is 0, their count 1.
 */
const tokenMean: Aggregation = (mask) => {
  const total = mask.reduce((a, row) => a + responseTokens(row), 0);
  return scaled(mask, () => 1 / total);
};

/**
 * seq-mean-token-mean: (1/G) sum_i (1/|y_i|) sum_t, the paper's objective. G counts the sequences
 * that have at least one response token (an empty response has no token mean to average).
 */
const seqMeanTokenMean: Aggregation = (mask) => {
  const lengths = mask.map(responseTokens);
  const sequences = lengths.filter((n) => n > 0).length;
  return scaled(mask, (i) => 1 / (lengths[i]! * sequences));
};

/** budget (C3PO): sum over response tokens / Phi, a fixed token budget, whatever the lengths. */
const budget: Aggregation = (mask, config) => scaled(mask, () => 1 / config.budget!);

export const aggregations: Record<AggregationName, Aggregation> = {
  'token-mean': tokenMean,
  'seq-mean-token-mean': seqMeanTokenMean,
  budget,
};

export function aggregationWeights(mask: readonly (readonly number[])[], config: PolicyLossConfig): number[][] {
  return aggregations[config.aggregation](mask, config);
}

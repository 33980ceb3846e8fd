// Sampling inside the graph, so only token ids and two log-probs per sequence leave it (never the
// [B, V] logits). Per-row temperature, top-k and top-p are inputs: one compiled graph serves every
// mix of sampling settings in a batch. Uniforms come from the host (a counter-based generator per
// sequence), so a sequence's samples do not depend on what else is in the batch.
import { type Tensor, arange, input, scalar, where } from '../graph/index.ts';

export interface SamplerInputs {
  invTemperature: Tensor; // [B] float: 1/T (hosts feed 1 for greedy rows, with topK 1)
  topK: Tensor; // [B] int64: tokens kept by rank (V = off)
  topP: Tensor; // [B] float: nucleus mass (1 = off)
  uniform: Tensor; // [B] float in [0, 1)
}

export function samplerInputs(): SamplerInputs {
  return {
    invTemperature: input('inv_temperature', 'float32', ['B']),
    topK: input('top_k', 'int64', ['B']),
    topP: input('top_p', 'float32', ['B']),
    uniform: input('uniform', 'float32', ['B']),
  };
}

export interface Sampled {
  token: Tensor; // [B] int64
  behaviorLogprob: Tensor; // [B]: log q(token), q = truncated, renormalised distribution
  policyLogprob: Tensor; // [B]: log p(token), p = full softmax at the temperature
}

/**
 * Sample one token per row. A row with top-k 1 takes the argmax. A row without truncation (top-k
 * off or ≥ V, top-p 1) inverts the CDF of the full distribution in vocabulary order, which needs no
 * sort. Only rows that truncate (1 < k < V or p < 1) need the tokens ranked, and a graph built with
 * `truncation: false` (for batches without such rows) leaves the sort of the whole vocabulary out —
 * at V = 152K it cost more per decode step than every layer's attention. A row's token depends only
 * on its own logits, settings and uniform, so it is the same in either graph.
 */
export function sampleFromLogits(logits: Tensor, s: SamplerInputs, truncation = true): Sampled {
  const [B, V] = logits.shape as [Tensor['shape'][number], number];
  const logp = logits.mul(s.invTemperature.unsqueeze(-1)).logSoftmax(-1); // [B, V]
  const p = logp.exp();
  // Inverse CDF in vocabulary order: the first token whose cumulative mass exceeds u · total, which
  // is the count of positions at or below it, capped at the last token with mass (the first
  // position of the largest cumulative value) against rounding.
  const cdf = p.cumsum(-1); // [B, V]
  const total = p.sum(-1, true); // [B, 1]
  const atOrBelow = where(cdf.greater(s.uniform.unsqueeze(-1).mul(total)), scalar(0), 1).sum(-1, true);
  const lastWithMass = cdf.argmax(-1, true).cast(logits.dtype);
  let token = atOrBelow.minimum(lastWithMass).cast('int64'); // [B, 1]
  let mass = total;
  const greedy = s.topK.equal(1).unsqueeze(-1); // [B, 1]
  if (truncation) {
    const sorted = sampleTruncated(logp, p, s, V);
    const byRank = where(s.topK.greater(1).and(s.topK.less(V)), scalar(1), 0);
    const truncates = byRank
      .add(where(s.topP.less(1), scalar(1), 0))
      .greater(0)
      .unsqueeze(-1); // [B, 1]
    token = where(truncates, sorted.token, token);
    mass = where(truncates, sorted.mass, mass);
  }
  token = where(greedy, logp.argmax(-1, true), token);
  const chosenLogp = logp.gatherElements(token, -1); // [B, 1]
  mass = where(greedy, chosenLogp.exp(), mass);
  return {
    token: token.reshape([B]),
    policyLogprob: chosenLogp.reshape([B]),
    behaviorLogprob: chosenLogp.sub(mass.log()).reshape([B]),
  };
}

/** Top-k then top-p over the ranked vocabulary, renormalised; inverse CDF in rank order. Token and kept mass, [B, 1]. */
function sampleTruncated(logp: Tensor, p: Tensor, s: SamplerInputs, V: number): { token: Tensor; mass: Tensor } {
  const order = logp.topkIndices(V); // [B, V], most probable first
  const sortedP = p.gatherElements(order, -1);
  // Keep rank < k, and tokens whose preceding mass is still below p: the smallest prefix reaching p.
  const withinK = arange(V).unsqueeze(0).less(s.topK.unsqueeze(-1));
  const withinP = sortedP.cumsum(-1, { exclusive: true }).less(s.topP.unsqueeze(-1));
  const kept = where(withinK.and(withinP), sortedP, scalar(0)); // [B, V]
  const mass = kept.sum(-1, true); // [B, 1]
  // Inverse CDF: the first kept rank whose cumulative (renormalised) mass exceeds u.
  const cdf = kept.cumsum(-1).div(mass);
  const below = where(cdf.less(s.uniform.unsqueeze(-1)).and(kept.greater(0)), scalar(1), 0).sum(-1, true); // [B, 1]
  const keptCount = where(kept.greater(0), scalar(1), 0).sum(-1, true);
  const rank = below.minimum(keptCount.sub(1)).cast('int64'); // guard u ≥ cdf[last] from rounding
  return { token: order.gatherElements(rank, -1), mass };
}

/**
 * The i-th uniform in [0, 1) of the stream `seed`: a stateless hash (splitmix32-style), so a
 * sequence resumed after a pause continues its stream exactly where it stopped.
 */
export function uniformAt(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return z / 4294967296;
}

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

export function sampleFromLogits(logits: Tensor, s: SamplerInputs): Sampled {
  const [B, V] = logits.shape as [Tensor['shape'][number], number];
  const logp = logits.mul(s.invTemperature.unsqueeze(-1)).logSoftmax(-1); // [B, V]
  const order = logp.topkIndices(V); // [B, V], most probable first
  const sortedLogp = logp.gatherElements(order, -1);
  const sortedP = sortedLogp.exp();
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
  const token = order.gatherElements(rank, -1).reshape([B]);
  const chosenLogp = sortedLogp.gatherElements(rank, -1); // [B, 1]
  return {
    token,
    policyLogprob: chosenLogp.reshape([B]),
    behaviorLogprob: chosenLogp.sub(mass.log()).reshape([B]),
  };
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

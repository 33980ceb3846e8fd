// Per-token log-probabilities and entropies as graph functions.
// The model reads whole sequences `inputs` [B, T]; `targets` [B, T] holds the next token at each
// position (tokens shifted left by one, the last position padded and masked out), so both share
// one symbolic length and the forward sees every token, as Hugging Face's does.
import type { Tensor } from '../graph/index.ts';

export interface TokenStats {
  logprobs: Tensor; // [B, T]: log p(targets[t] | inputs[<=t]) at the given temperature
  entropy: Tensor; // [B, T]: entropy of that full softmax
}

/** `invTemperature` is a scalar input so one compiled graph serves every temperature. */
export function nextTokenStats(logits: Tensor, targets: Tensor, invTemperature: Tensor): TokenStats {
  const logp = logits.mul(invTemperature).logSoftmax(-1); // [B, T, V]
  const logprobs = logp.gatherElements(targets.unsqueeze(-1), -1).squeeze(-1); // [B, T]
  const entropy = logp.exp().mul(logp).sum(-1).neg();
  return { logprobs, entropy };
}

// Per-token log-probabilities and entropies as graph functions.
// Like nanoGPT's (x, y): the model reads `inputs` = tokens[:, :-1] and is scored on
// `targets` = tokens[:, 1:], both [B, T], so every length stays one symbolic dim.
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

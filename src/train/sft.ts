// Supervised fine-tuning: masked next-token cross-entropy.
import type { LossSpec } from './policy.ts';

/**
 * Σ_t mask_t · (−log p(target_t)) · scale, plus the MoE load-balancing loss weighted by
 * `aux_weight`. Feeding scale = 1 / (target tokens in the whole step) makes micro-batch
 * gradients add up to the token-mean over the step.
 */
export const maskedCrossEntropy: LossSpec = {
  key: 'sft-ce',
  tokenInputs: ['loss_mask'],
  scalarInputs: ['scale', 'aux_weight'],
  build({ logprobs, auxLoss }, { loss_mask, scale, aux_weight }) {
    const nll = logprobs.neg().mul(loss_mask!).sum().mul(scale!);
    const loss = auxLoss ? nll.add(auxLoss.mul(aux_weight!)) : nll;
    return { loss, metrics: { nll, ...(auxLoss ? { aux_loss: auxLoss } : {}) } };
  },
};

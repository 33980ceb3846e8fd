// The policy loss as a graph (a LossSpec for Policy.lossAndGrads): the same loss as
// reference.ts, built from tensors so autodiff carries it back to the weights. The aggregation
// weights and the metric scale are fed from the host (computed over the whole step), so
// micro-batch losses, gradients and metrics add up.
import { type Tensor, scalar, where } from '../../graph/index.ts';
import type { LossSpec } from '../../train/policy.ts';
import { type PolicyLossConfig, type PolicyLossConfigInput, parsePolicyLossConfig } from '../config.ts';
import { corrections } from '../corrections.ts';
import { klEstimators } from './kl.ts';
import { maskedEntropyPartial } from './metrics.ts';

/** Per-token inputs ([B, T], aligned with the targets) the policy loss reads. */
export function policyLossTokenInputs(config: PolicyLossConfig): string[] {
  return [
    'rollout_logprobs',
    'advantages',
    'response_mask',
    'loss_weight',
    ...(config.bypass ? [] : ['old_logprobs']),
    ...(config.kl.coef > 0 ? ['ref_logprobs'] : []),
  ];
}

/**
 * Token inputs: see policyLossTokenInputs; `loss_weight` holds the aggregation weights.
 * Scalar input `metric_scale`: 1 / (response tokens in the whole step).
 */
export function policyLossSpec(configInput: PolicyLossConfigInput | PolicyLossConfig = {}): LossSpec {
  const config = parsePolicyLossConfig(configInput);
  return {
    key: `policy-loss:${JSON.stringify(config)}`,
    tokenInputs: policyLossTokenInputs(config),
    scalarInputs: ['metric_scale'],
    build: ({ logprobs, entropy }, inputs) => buildPolicyLoss(config, logprobs, entropy, inputs),
  };
}

export function buildPolicyLoss(
  config: PolicyLossConfig,
  logprobs: Tensor,
  entropy: Tensor,
  inputs: Record<string, Tensor>,
): { loss: Tensor; metrics: Record<string, Tensor> } {
  const infer = inputs.rollout_logprobs!;
  const advantages = inputs.advantages!;
  const mask = inputs.response_mask!;
  const weight = inputs.loss_weight!;
  const scale = inputs.metric_scale!;
  const old = config.bypass ? infer : inputs.old_logprobs!;
  const { low, high } = config.clip;

  const logK = old.sub(infer); // [B, T]; 0 under bypass
  const w = corrections[config.correction].graphWeight(logK, config).detach();
  const ratio = logprobs.sub(old).exp();
  const surrogate = ratio.mul(advantages).minimum(ratio.clamp(1 - low, 1 + high).mul(advantages));
  const policyTerm = w.mul(surrogate).neg();
  const aggregate = (perToken: Tensor) => perToken.mul(weight).sum();
  const policyLoss = aggregate(policyTerm);
  let loss = policyLoss;
  const metrics: Record<string, Tensor> = { 'loss/policy': policyLoss };
  const tokenMean = (perToken: Tensor) => perToken.mul(mask).sum().mul(scale);
  const one = scalar(1, logprobs.dtype);
  const indicator = (cond: Tensor) => where(cond, one, 0);
  const fraction = (cond: Tensor) => tokenMean(indicator(cond));

  if (config.kl.coef > 0) {
    const kl = klEstimators[config.kl.estimator].graph(logprobs, inputs.ref_logprobs!);
    const klLoss = aggregate(kl.mul(config.kl.coef));
    loss = loss.add(klLoss);
    metrics['loss/kl'] = klLoss;
    metrics['kl/ref'] = tokenMean(kl.detach());
  }
  if (config.entropy.coef > 0) {
    const entropyLoss = aggregate(entropy.mul(-config.entropy.coef));
    loss = loss.add(entropyLoss);
    metrics['loss/entropy'] = entropyLoss;
  }

  // Metrics (no gradient): see metrics.ts for the definitions.
  const h = entropy.detach();
  const r = ratio.detach();
  const trainerLogK = config.bypass ? logprobs.detach().sub(infer) : logK;
  const below = trainerLogK.less(Math.log(config.icepop.alpha));
  const above = trainerLogK.greater(Math.log(config.icepop.beta));
  const outside = indicator(below).add(indicator(above));
  Object.assign(metrics, {
    'mismatch/kl': tokenMean(trainerLogK.exp().sub(trainerLogK).sub(1)),
    'mismatch/logp_diff_mean': tokenMean(trainerLogK.abs()),
    'mismatch/logp_diff_max': trainerLogK.abs().mul(mask).max(),
    'icepop/masked_low_frac': fraction(below),
    'icepop/masked_high_frac': fraction(above),
    [maskedEntropyPartial]: tokenMean(outside.mul(h)),
    'tis/clipped_frac': fraction(trainerLogK.greater(Math.log(config.tis.cap))),
    'ppo/clip_frac_low': fraction(advantages.less(0).and(r.less(1 - low))),
    'ppo/clip_frac_high': fraction(advantages.greater(0).and(r.greater(1 + high))),
    'ppo/ratio_mean': tokenMean(r),
    'entropy/mean': tokenMean(h),
  });
  return { loss, metrics };
}

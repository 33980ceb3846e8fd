// The policy loss on the host, token by token, with its gradient written out by hand. It is the
// reference the training graph (graph.ts) is tested against, and readable documentation of the
// loss. Per response token (mask 1), with old = rollout log-prob under bypass:
//   k = exp(old - infer)              w = correction(k), a constant
//   r = exp(logp - old)               s = min(r A, clip(r, 1 - low, 1 + high) A)
//   loss_t = -w s + kl.coef * KL_t - entropy.coef * H_t
//   loss = sum_t a_t loss_t           a_t from the aggregation (see aggregation.ts)
import { RingrlError } from '../../errors.ts';
import { aggregationWeights } from '../aggregation.ts';
import { type PolicyLossConfig, parsePolicyLossConfig } from '../config.ts';
import { corrections, countedMask } from '../corrections.ts';
import { klEstimators, mismatchKl } from './kl.ts';
import { finishPolicyMetrics, maskedEntropyPartial } from './metrics.ts';
import type { PolicyLossBatch, PolicyLossConfigInput, PolicyLossResult } from './types.ts';

/** Metrics reported even for a batch without response tokens (as 0). */
const alwaysLogged = [
  'mismatch/kl',
  'mismatch/logp_diff_mean',
  'icepop/masked_low_frac',
  'icepop/masked_high_frac',
  'tis/clipped_frac',
  'ppo/clip_frac_low',
  'ppo/clip_frac_high',
  'ppo/ratio_mean',
];

export function computePolicyLoss(
  batch: PolicyLossBatch,
  configInput: PolicyLossConfigInput | PolicyLossConfig = {},
): PolicyLossResult {
  const config = parsePolicyLossConfig(configInput);
  checkBatch(batch, config);
  const { logprobs, rolloutLogprobs, advantages, mask, refLogprobs, entropy } = batch;
  const old = config.bypass ? rolloutLogprobs : batch.oldLogprobs!;
  const logKRows = logprobs.map((row, i) => row.map((_, t) => old[i]![t]! - rolloutLogprobs[i]![t]!));
  const weights = batch.lossWeights ?? aggregationWeights(countedMask(mask, logKRows, config), config);
  const correction = corrections[config.correction];
  const kl = klEstimators[config.kl.estimator];
  const { low, high } = config.clip;
  const logAlpha = Math.log(config.icepop.alpha);
  const logBeta = Math.log(config.icepop.beta);
  const logCap = Math.log(config.tis.cap);

  let loss = 0;
  let tokens = 0;
  // Per-token metrics are summed and divided by the token count at the end; loss terms are
  // already aggregated (weighted by a_t).
  const perToken: Record<string, number> = Object.fromEntries(alwaysLogged.map((name) => [name, 0]));
  const lossTerms: Record<string, number> = { 'loss/policy': 0 };
  const add = (name: string, value: number) => (perToken[name] = (perToken[name] ?? 0) + value);
  const addLoss = (name: string, value: number) => (lossTerms[name] = (lossTerms[name] ?? 0) + value);
  let logpDiffMax = 0;
  let maskedEntropy = 0;
  const gradLogprobs = logprobs.map((row) => row.map(() => 0));
  const tokenWeights = logprobs.map((row) => row.map(() => 0));

  logprobs.forEach((row, i) =>
    row.forEach((logp, t) => {
      if (!(mask[i]![t]! > 0)) return;
      tokens++;
      const a = weights[i]![t]!;
      const A = advantages[i]![t]!;
      const logK = old[i]![t]! - rolloutLogprobs[i]![t]!;
      const w = correction.weight(logK, config);
      tokenWeights[i]![t] = w;

      // Clipped surrogate, case by case: for A >= 0 the min picks 1 + high once r exceeds it, for
      // A < 0 it picks 1 - low once r falls below it; a clipped token gets no gradient.
      const r = Math.exp(logp - old[i]![t]!);
      const clippedHigh = A > 0 && r > 1 + high;
      const clippedLow = A < 0 && r < 1 - low;
      const surrogate = clippedHigh ? (1 + high) * A : clippedLow ? (1 - low) * A : r * A;
      const dSurrogate = clippedHigh || clippedLow ? 0 : r * A;
      let tokenLoss = -w * surrogate;
      let tokenGrad = -w * dSurrogate;
      addLoss('loss/policy', -a * w * surrogate);
      if (refLogprobs) {
        const k = kl.host(logp, refLogprobs[i]![t]!);
        add('kl/ref', k.value);
        tokenLoss += config.kl.coef * k.value;
        tokenGrad += config.kl.coef * k.grad;
        if (config.kl.coef > 0) addLoss('loss/kl', a * config.kl.coef * k.value);
      }
      if (entropy) {
        const h = entropy[i]![t]!;
        tokenLoss -= config.entropy.coef * h;
        add('entropy/mean', h);
        if (config.entropy.coef > 0) addLoss('loss/entropy', -a * config.entropy.coef * h);
      }
      loss += a * tokenLoss;
      gradLogprobs[i]![t] = a * tokenGrad;

      // Mismatch metrics: trainer side = the recomputed old log-prob, or the current one under bypass.
      const trainerLogK = (config.bypass ? logp : old[i]![t]!) - rolloutLogprobs[i]![t]!;
      add('mismatch/kl', mismatchKl(trainerLogK));
      add('mismatch/logp_diff_mean', Math.abs(trainerLogK));
      logpDiffMax = Math.max(logpDiffMax, Math.abs(trainerLogK));
      const below = trainerLogK < logAlpha;
      const above = trainerLogK > logBeta;
      add('icepop/masked_low_frac', below ? 1 : 0);
      add('icepop/masked_high_frac', above ? 1 : 0);
      if (entropy && (below || above)) maskedEntropy += entropy[i]![t]!;
      add('tis/clipped_frac', trainerLogK > logCap ? 1 : 0);
      add('ppo/clip_frac_low', clippedLow ? 1 : 0);
      add('ppo/clip_frac_high', clippedHigh ? 1 : 0);
      add('ppo/ratio_mean', r);
    }),
  );

  const metrics: Record<string, number> = { ...lossTerms, 'mismatch/logp_diff_max': logpDiffMax };
  for (const [name, value] of Object.entries(perToken)) metrics[name] = tokens > 0 ? value / tokens : 0;
  if (entropy) metrics[maskedEntropyPartial] = tokens > 0 ? maskedEntropy / tokens : 0;
  return { loss, gradLogprobs, tokenWeights, metrics: finishPolicyMetrics(metrics) };
}

function checkBatch(batch: PolicyLossBatch, config: PolicyLossConfig): void {
  const rows = batch.logprobs;
  if (!Array.isArray(rows)) throw new RingrlError('policy loss batch: logprobs must be an array of rows (number[][])');
  const fields: [keyof PolicyLossBatch, boolean][] = [
    ['rolloutLogprobs', true],
    ['advantages', true],
    ['mask', true],
    ['oldLogprobs', !config.bypass],
    ['refLogprobs', config.kl.coef > 0],
    ['entropy', config.entropy.coef > 0],
    ['lossWeights', false],
  ];
  for (const [name, required] of fields) {
    const value = batch[name];
    if (value === undefined) {
      if (required)
        throw new RingrlError(
          `policy loss batch: ${name} is required${name === 'oldLogprobs' ? ' (or set bypass: true)' : name === 'refLogprobs' ? ' when kl.coef > 0' : name === 'entropy' ? ' when entropy.coef > 0' : ''}`,
        );
      continue;
    }
    if (value.length !== rows.length)
      throw new RingrlError(`policy loss batch: ${name} has ${value.length} rows, logprobs has ${rows.length}`);
    value.forEach((row, i) => {
      if (row.length !== rows[i]!.length)
        throw new RingrlError(
          `policy loss batch: ${name}[${i}] has ${row.length} tokens, logprobs[${i}] has ${rows[i]!.length}`,
        );
    });
  }
}

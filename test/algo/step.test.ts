// policyGradientStep: the step's loss, gradient norm and metrics do not depend on the
// micro-batch split (aggregation weights and metric scale come from the whole step), every
// metric the issue names is reported, and the graph step agrees with the host reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW,
  Policy,
  type PolicyLossConfigInput,
  computePolicyLoss,
  policyGradientStep,
  responseLogprobs,
} from '../../src/index.ts';
import { rng } from '../helpers.ts';

const prompt = [5, 6];
const responses = [[7, 8, 9], [10, 11], [12, 13, 14, 15], [16], [17, 18]];

async function stepWith(config: PolicyLossConfigInput, microBatchSize: number) {
  const policy = Policy.fromPreset('tiny', 4, { threads: 1 });
  const optimizer = new AdamW({ lr: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 });
  const old = await responseLogprobs(
    policy,
    responses.map((response) => ({ prompt, response })),
  );
  const noise = rng(9);
  const samples = responses.map((response, i) => ({
    prompt,
    response,
    rolloutLogprobs: old[i]!.map((lp) => lp + (noise() - 0.5) * 3),
    advantages: response.map(() => (i % 2 ? -1 : 1) * (0.5 + i / 4)),
    responseMask: response.map((_, t) => (i === 2 && t === 1 ? 0 : 1)),
  }));
  const result = await policyGradientStep(policy, optimizer, samples, config, { microBatchSize });
  return { ...result, samples, old };
}

for (const config of [
  { correction: 'icepop' },
  { correction: 'tis', aggregation: 'seq-mean-token-mean' },
  { correction: 'none', aggregation: 'budget', budget: 32 },
] as PolicyLossConfigInput[]) {
  test(`policy step: micro-batches of 2 and of 5 give the same loss, gradient norm and metrics (${JSON.stringify(config)})`, async () => {
    const whole = await stepWith(config, 5);
    const split = await stepWith(config, 2);
    assert.ok(Math.abs(whole.loss - split.loss) <= 1e-6, `loss ${whole.loss} vs ${split.loss}`);
    for (const [name, value] of Object.entries(whole.metrics)) {
      assert.ok(
        Math.abs(split.metrics[name]! - value) <= 1e-5 * Math.max(1, Math.abs(value)),
        `${name}: ${value} vs ${split.metrics[name]}`,
      );
    }
    // The graph step equals the host reference on the trainer's log-probs (theta = theta_old here).
    const reference = computePolicyLoss(
      {
        logprobs: whole.old,
        oldLogprobs: whole.old,
        rolloutLogprobs: whole.samples.map((s) => s.rolloutLogprobs),
        advantages: whole.samples.map((s) => s.advantages),
        mask: whole.samples.map((s) => s.responseMask),
      },
      config,
    );
    assert.ok(Math.abs(reference.loss - whole.loss) <= 1e-5, `reference loss ${reference.loss} vs graph ${whole.loss}`);
    for (const name of [
      'mismatch/kl',
      'mismatch/logp_diff_max',
      'icepop/masked_frac',
      'tis/clipped_frac',
      'ppo/ratio_mean',
    ]) {
      assert.ok(
        Math.abs(reference.metrics[name]! - whole.metrics[name]!) <= 1e-5,
        `${name}: reference ${reference.metrics[name]} vs graph ${whole.metrics[name]}`,
      );
    }
  });
}

test('policy step reports every metric the paper logs', async () => {
  const { metrics } = await stepWith({ correction: 'icepop' }, 5);
  for (const name of [
    'mismatch/kl',
    'mismatch/logp_diff_mean',
    'mismatch/logp_diff_max',
    'icepop/masked_frac',
    'icepop/masked_low_frac',
    'icepop/masked_high_frac',
    'icepop/masked_entropy_mean',
    'tis/clipped_frac',
    'ppo/clip_frac',
    'ppo/clip_frac_low',
    'ppo/clip_frac_high',
    'ppo/ratio_mean',
    'grad/norm',
    'entropy/mean',
    'loss/policy',
  ]) {
    assert.ok(Number.isFinite(metrics[name]), `${name} = ${metrics[name]}`);
  }
  assert.ok(
    metrics['icepop/masked_frac']! > 0 && metrics['grad/norm']! > 0 && metrics['entropy/mean']! > 3,
    JSON.stringify(metrics),
  );
});

test('policy step: bad samples name the sample and field', async () => {
  const policy = Policy.fromPreset('tiny', 4, { threads: 1 });
  const optimizer = new AdamW();
  await assert.rejects(
    policyGradientStep(policy, optimizer, [{ prompt, response: [1, 2], rolloutLogprobs: [0], advantages: [1, 1] }]),
    /sample 0: rolloutLogprobs has 1 values for 2 response tokens/,
  );
  await assert.rejects(
    policyGradientStep(policy, optimizer, [{ prompt, response: [1], rolloutLogprobs: [0], advantages: [1] }], {
      kl: { coef: 0.1 },
    }),
    /sample 0: refLogprobs is required when kl.coef > 0/,
  );
});

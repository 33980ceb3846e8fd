// A short RL run with the real tiny model: one prompt, a fixed group of responses, fixed rewards
// (1 for responses made of the rewarded tokens, 0 for the others), GRPO advantages and AdamW.
// The rollout log-probs are the trainer's plus engine-like noise (with a few large outliers), so
// the corrections have mismatch to act on. Under every correction mode the policy must move
// toward the rewarded tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW,
  Policy,
  type PolicyLossConfigInput,
  computeAdvantages,
  policyGradientStep,
  responseLogprobs,
} from '../../src/index.ts';
import { normal } from '../../src/util/random.ts';
import { rng } from '../helpers.ts';

const prompt = [1, 2, 3];
const rewarded = [10, 11];
const responses = [
  [10, 11, 10, 11],
  [11, 10, 11, 11],
  [10, 10, 11, 10],
  [11, 11, 10, 10],
  [20, 21, 20, 21],
  [21, 20, 21, 21],
  [20, 20, 21, 20],
  [21, 21, 20, 20],
];
const rewards = responses.map((r) => r.filter((t) => rewarded.includes(t)).length / r.length);
const { tokenAdvantages } = computeAdvantages({
  rewards,
  groupIds: responses.map(() => 0),
  responseMask: responses.map((r) => r.map(() => 1)),
});

const modes: [string, PolicyLossConfigInput][] = [
  ['none', { correction: 'none' }],
  ['tis', { correction: 'tis' }],
  ['icepop', { correction: 'icepop' }],
  ['bypass', { correction: 'none', bypass: true }],
];

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const [mode, config] of modes) {
  test(`tiny model, fixed rewards: the policy moves toward the rewarded tokens (${mode})`, async () => {
    const policy = Policy.fromPreset('tiny', 11, { threads: 1 });
    const optimizer = new AdamW({ lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
    const gauss = normal(rng(23));
    const logprobsOf = async () =>
      responseLogprobs(
        policy,
        responses.map((response) => ({ prompt, response })),
      );
    const firstTokenMass = async () => {
      const { logprobs } = await policy.score([
        [...prompt, 10],
        [...prompt, 11],
        [...prompt, 20],
        [...prompt, 21],
      ]);
      const p = logprobs.map((row) => Math.exp(row.at(-1)!));
      return { rewarded: p[0]! + p[1]!, other: p[2]! + p[3]! };
    };
    const massBefore = await firstTokenMass();
    const before = await logprobsOf();
    let current = before;
    let masked = 0;
    for (let step = 0; step < 6; step++) {
      // The engine's log-probs: the trainer's, plus noise; one token in eight far off (|log k| = 2.5).
      const rollout = current.map((row) =>
        row.map((lp, t) => lp + 0.2 * gauss() + (t % 8 === step % 8 ? (step % 2 ? 2.5 : -2.5) : 0)),
      );
      const samples = responses.map((response, i) => ({
        prompt,
        response,
        rolloutLogprobs: rollout[i]!,
        advantages: tokenAdvantages[i]!,
        oldLogprobs: current[i]!,
      }));
      const { metrics } = await policyGradientStep(policy, optimizer, samples, config, { microBatchSize: 4 });
      assert.ok(
        Number.isFinite(metrics['grad/norm']!) && metrics['grad/norm']! > 0,
        `step ${step}: gradient norm ${metrics['grad/norm']}`,
      );
      masked += metrics['icepop/masked_frac']!;
      current = await logprobsOf();
    }
    const gain = (i: number) => mean(current[i]!) - mean(before[i]!);
    const rewardedGain = mean([0, 1, 2, 3].map(gain));
    const otherGain = mean([4, 5, 6, 7].map(gain));
    assert.ok(
      rewardedGain > 0.2,
      `${mode}: rewarded responses' mean token log-prob rose by ${rewardedGain.toFixed(3)}`,
    );
    assert.ok(otherGain < -0.1, `${mode}: unrewarded responses' mean token log-prob fell by ${otherGain.toFixed(3)}`);
    // The first response token: the rewarded tokens gain on the unrewarded ones.
    const mass = await firstTokenMass();
    const preference = (m: typeof mass) => m.rewarded / m.other;
    assert.ok(
      preference(mass) > 3 * preference(massBefore),
      `${mode}: p(10 or 11) / p(20 or 21) at the first response token went from ${preference(massBefore).toFixed(3)} to ${preference(mass).toFixed(3)}`,
    );
    assert.ok(
      mass.other < massBefore.other,
      `${mode}: p(20) + p(21) went from ${massBefore.other.toFixed(4)} to ${mass.other.toFixed(4)}`,
    );
    if (mode !== 'bypass') assert.ok(masked > 0, `${mode}: the outliers show up in icepop/masked_frac`);
  });
}

// The host reference policy loss against hand-computed values: every (correction x aggregation)
// pair, the IcePop band edges, clip-higher, bypass, KL and entropy terms, and the edge cases
// (all tokens masked, empty response). With logprobs = oldLogprobs the ratio is 1, so each
// token's loss is -w * A and its gradient a * (-w * A * r) = a * (-w * A).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PolicyLossConfigInput, computePolicyLoss } from '../../src/index.ts';
import { assertClose } from '../helpers.ts';

const ln = Math.log;
// Two sequences: three response tokens with k = 2, 0.25, 1 (A = 1); one token with k = 8
// (A = -2) and a padded position.
const old = [
  [-1, -2, -0.5],
  [-1.5, 0],
];
const base = {
  logprobs: old,
  oldLogprobs: old,
  rolloutLogprobs: [
    [-1 - ln(2), -2 - ln(0.25), -0.5],
    [-1.5 - ln(8), 0],
  ],
  advantages: [
    [1, 1, 1],
    [-2, 0],
  ],
  mask: [
    [1, 1, 1],
    [1, 0],
  ],
};

// w per token and the per-token loss -w * A (the padded position is 0).
const weights = {
  none: [
    [1, 1, 1],
    [1, 0],
  ],
  tis: [
    [2, 0.25, 1],
    [2, 0],
  ], // min(k, 2)
  icepop: [
    [2, 0, 1],
    [0, 0],
  ], // k inside [0.5, 5], else 0
};
// Aggregation weight per token: token-mean 1/4; seq-mean-token-mean 1/(3*2) and 1/(1*2); budget 1/8.
const aggregationWeights = {
  'token-mean': [
    [1 / 4, 1 / 4, 1 / 4],
    [1 / 4, 0],
  ],
  'seq-mean-token-mean': [
    [1 / 6, 1 / 6, 1 / 6],
    [1 / 2, 0],
  ],
  budget: [
    [1 / 8, 1 / 8, 1 / 8],
    [1 / 8, 0],
  ],
};
// Hand sums: none: seq0 -3, seq1 +2; tis: seq0 -3.25, seq1 +4; icepop: seq0 -3, seq1 0.
const expectedLoss: Record<string, number> = {
  'none/token-mean': (-3 + 2) / 4,
  'none/seq-mean-token-mean': -3 / 6 + 2 / 2,
  'none/budget': (-3 + 2) / 8,
  'tis/token-mean': (-3.25 + 4) / 4,
  'tis/seq-mean-token-mean': -3.25 / 6 + 4 / 2,
  'tis/budget': (-3.25 + 4) / 8,
  'icepop/token-mean': -3 / 4,
  'icepop/seq-mean-token-mean': -3 / 6,
  'icepop/budget': -3 / 8,
};

for (const correction of ['none', 'tis', 'icepop'] as const) {
  for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'budget'] as const) {
    test(`hand-computed: ${correction} x ${aggregation}`, () => {
      const config: PolicyLossConfigInput = {
        correction,
        aggregation,
        ...(aggregation === 'budget' ? { budget: 8 } : {}),
      };
      const out = computePolicyLoss(base, config);
      const w = weights[correction];
      const a = aggregationWeights[aggregation];
      assertClose([out.loss], [expectedLoss[`${correction}/${aggregation}`]!], 1e-12, 'loss');
      assertClose(out.tokenWeights.flat(), w.flat(), 1e-12, 'token weights');
      const grad = base.advantages.map((row, i) => row.map((A, t) => a[i]![t]! * -w[i]![t]! * A));
      assertClose(out.gradLogprobs.flat(), grad.flat(), 1e-12, 'd loss / d logprobs');
      // Mismatch metrics do not depend on the correction: k = 2, 0.25, 1, 8 over 4 tokens.
      const kl = [2, 0.25, 1, 8].reduce((s, k) => s + k - 1 - ln(k), 0) / 4;
      assertClose(
        [out.metrics['mismatch/kl']!, out.metrics['mismatch/logp_diff_mean']!, out.metrics['mismatch/logp_diff_max']!],
        [kl, (ln(2) + ln(4) + 0 + ln(8)) / 4, ln(8)],
        1e-12,
        'mismatch metrics',
      );
      assert.deepEqual(
        [
          out.metrics['icepop/masked_frac'],
          out.metrics['icepop/masked_low_frac'],
          out.metrics['icepop/masked_high_frac'],
          out.metrics['tis/clipped_frac'],
        ],
        [0.5, 0.25, 0.25, 0.5],
      );
      assert.deepEqual([out.metrics['ppo/clip_frac'], out.metrics['ppo/ratio_mean']], [0, 1]);
    });
  }
}

test("mis: IcePop's weights, and the rejected tokens leave the denominator (IcePop keeps them)", () => {
  // Kept: k = 2 and k = 1 in sequence 0 (A = 1); rejected: k = 0.25 and k = 8. Sum -w A = -3.
  const expected = { 'token-mean': -3 / 2, 'seq-mean-token-mean': -3 / 2, budget: -3 / 8 };
  for (const [aggregation, loss] of Object.entries(expected)) {
    const out = computePolicyLoss(base, { correction: 'mis', aggregation: aggregation as 'budget', budget: 8 });
    assertClose([out.loss], [loss], 1e-12, `mis x ${aggregation}: loss`);
    assertClose(out.tokenWeights.flat(), weights.icepop.flat(), 1e-12, 'token weights');
    assert.equal(out.metrics['icepop/masked_frac'], 0.5);
  }
  assertClose(
    [computePolicyLoss(base, { correction: 'icepop' }).loss],
    [-3 / 4],
    1e-12,
    'icepop divides by all 4 tokens',
  );
});

test('IcePop band edges: k exactly at alpha and beta is kept (weighted by k), just outside is dropped', () => {
  const logK = [ln(0.5), ln(5), ln(0.5) - 1e-12, ln(5) + 1e-12];
  const out = computePolicyLoss(
    {
      logprobs: [[0, 0, 0, 0]],
      oldLogprobs: [[0, 0, 0, 0]],
      rolloutLogprobs: [logK.map((d) => -d)],
      advantages: [[1, 1, 1, 1]],
      mask: [[1, 1, 1, 1]],
    },
    { correction: 'icepop', aggregation: 'budget', budget: 1 },
  );
  assertClose(out.tokenWeights[0]!, [0.5, 5, 0, 0], 1e-12, 'weights at the edges');
  assertClose(out.gradLogprobs[0]!, [-0.5, -5, 0, 0], 1e-12, 'gradients at the edges');
  assert.equal(out.metrics['icepop/masked_low_frac'], 0.25);
  assert.equal(out.metrics['icepop/masked_high_frac'], 0.25);
});

test('all tokens masked by IcePop: loss 0, zero gradient, the tokens stay in the token-mean denominator', () => {
  const out = computePolicyLoss(
    {
      logprobs: [[-1, -1], [-2]],
      oldLogprobs: [[-1, -1], [-2]],
      rolloutLogprobs: [[-4, 1], [-9]],
      advantages: [[1, 1], [-1]],
      mask: [[1, 1], [1]],
      entropy: [[0.5, 1.5], [2.5]],
    },
    { correction: 'icepop' },
  );
  assert.equal(out.loss, 0);
  assert.ok(out.gradLogprobs.flat().every((g) => g === 0));
  assert.equal(out.metrics['icepop/masked_frac'], 1);
  assertClose([out.metrics['icepop/masked_entropy_mean']!], [1.5], 1e-12, 'masked entropy mean');
  // A kept token next to masked ones is divided by all three: its gradient is -1 * 1 / 3.
  const mixed = computePolicyLoss(
    {
      logprobs: [[-1, -1], [-2]],
      oldLogprobs: [[-1, -1], [-2]],
      rolloutLogprobs: [[-1, 1], [-9]],
      advantages: [[1, 1], [-1]],
      mask: [[1, 1], [1]],
    },
    { correction: 'icepop' },
  );
  assertClose(mixed.gradLogprobs.flat(), [-1 / 3, 0, 0], 1e-12, 'masked tokens stay in the denominator');
});

test('all tokens masked by the response mask, and an empty response: no NaN, nothing counted', () => {
  for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'budget'] as const) {
    const out = computePolicyLoss(
      {
        logprobs: [[-1, -2], []],
        oldLogprobs: [[-1, -2], []],
        rolloutLogprobs: [[-1, -2], []],
        advantages: [[1, 1], []],
        mask: [[0, 0], []],
      },
      { aggregation, budget: 4 },
    );
    assert.equal(out.loss, 0, aggregation);
    assert.deepEqual(out.gradLogprobs, [[0, 0], []]);
    assert.ok(Object.values(out.metrics).every(Number.isFinite), `finite metrics for ${aggregation}`);
  }
  // An empty response next to a real one: seq-mean-token-mean averages over the non-empty sequence only.
  const out = computePolicyLoss(
    {
      logprobs: [[0, 0], []],
      oldLogprobs: [[0, 0], []],
      rolloutLogprobs: [[0, 0], []],
      advantages: [[3, 1], []],
      mask: [[1, 1], []],
    },
    { correction: 'none', aggregation: 'seq-mean-token-mean' },
  );
  assertClose([out.loss], [-(3 + 1) / 2], 1e-12, 'empty response does not count in G');
});

test('clip-higher: the ratio is clipped at 1 + high for A > 0 and 1 - low for A < 0; clipped tokens get no gradient', () => {
  // r = 1.25, 0.75, 1.25, 0.75 with A = +1, -1, -1, +1 (only the first two can be clipped).
  const lr = [ln(1.25), ln(0.75), ln(1.25), ln(0.75)];
  const batch = {
    logprobs: [lr],
    oldLogprobs: [[0, 0, 0, 0]],
    rolloutLogprobs: [[0, 0, 0, 0]],
    advantages: [[1, -1, -1, 1]],
    mask: [[1, 1, 1, 1]],
  };
  const symmetric = computePolicyLoss(batch, {
    correction: 'none',
    aggregation: 'budget',
    budget: 1,
    clip: { low: 0.2, high: 0.2 },
  });
  // Clipped: token 0 (1.25 > 1.2, A > 0) and token 1 (0.75 < 0.8, A < 0).
  assertClose([symmetric.loss], [-(1.2 * 1) - 0.8 * -1 - 1.25 * -1 - 0.75 * 1], 1e-12, 'symmetric loss');
  assertClose(symmetric.gradLogprobs[0]!, [0, 0, 1.25, -0.75], 1e-12, 'symmetric gradient');
  assert.deepEqual(
    [
      symmetric.metrics['ppo/clip_frac_high'],
      symmetric.metrics['ppo/clip_frac_low'],
      symmetric.metrics['ppo/clip_frac'],
    ],
    [0.25, 0.25, 0.5],
  );
  const higher = computePolicyLoss(batch, {
    correction: 'none',
    aggregation: 'budget',
    budget: 1,
    clip: { low: 0.2, high: 0.28 },
  });
  // 1.25 < 1.28: token 0 is no longer clipped.
  assertClose(higher.gradLogprobs[0]!, [-1.25, 0, 1.25, -0.75], 1e-12, 'clip-higher gradient');
  assert.equal(higher.metrics['ppo/clip_frac_high'], 0);
  assertClose([higher.metrics['ppo/ratio_mean']!], [1], 1e-12, 'ratio mean');
});

test('bypass: the rollout log-probs are the old log-probs (r = pi_theta / pi_infer, w = 1)', () => {
  const out = computePolicyLoss(
    { logprobs: [[ln(1.1), ln(0.5)]], rolloutLogprobs: [[0, 0]], advantages: [[2, 2]], mask: [[1, 1]] },
    { correction: 'none', bypass: true, aggregation: 'budget', budget: 2 },
  );
  assertClose([out.loss], [-(1.1 * 2 + 0.5 * 2) / 2], 1e-12, 'bypass loss');
  assertClose(out.gradLogprobs[0]!, [-1.1, -0.5], 1e-12, 'bypass gradient');
  assert.deepEqual(out.tokenWeights, [[1, 1]]);
  // Mismatch metrics use the current log-probs as the trainer side: |log 1.1|, |log 0.5|.
  assertClose([out.metrics['mismatch/logp_diff_max']!], [ln(2)], 1e-12, 'bypass mismatch');
});

test('KL penalty (k1, k3) and entropy bonus: values and gradients', () => {
  const batch = {
    logprobs: [[-1, -2]],
    oldLogprobs: [[-1, -2]],
    rolloutLogprobs: [[-1, -2]],
    advantages: [[0, 0]],
    mask: [[1, 1]],
    refLogprobs: [[-1.5, -1]],
    entropy: [[0.7, 0.3]],
  };
  const k1 = computePolicyLoss(batch, {
    correction: 'none',
    aggregation: 'budget',
    budget: 1,
    kl: { coef: 0.1, estimator: 'k1' },
  });
  // k1 = logp - ref = 0.5, -1; d/dlogp = 1.
  assertClose([k1.loss, k1.metrics['kl/ref']!], [0.1 * (0.5 - 1), (0.5 - 1) / 2], 1e-12, 'k1');
  assertClose(k1.gradLogprobs[0]!, [0.1, 0.1], 1e-12, 'k1 gradient');
  const k3 = computePolicyLoss(batch, {
    correction: 'none',
    aggregation: 'budget',
    budget: 1,
    kl: { coef: 0.1, estimator: 'k3' },
    entropy: { coef: 0.01 },
  });
  // d = ref - logp = -0.5, 1: k3 = e^d - d - 1; d/dlogp = 1 - e^d. Entropy bonus -0.01 * (0.7 + 0.3).
  const d = [-0.5, 1];
  const k3Values = d.map((x) => Math.exp(x) - x - 1);
  assertClose([k3.loss], [0.1 * (k3Values[0]! + k3Values[1]!) - 0.01], 1e-12, 'k3 + entropy loss');
  assertClose(
    k3.gradLogprobs[0]!,
    d.map((x) => 0.1 * (1 - Math.exp(x))),
    1e-12,
    'k3 gradient (entropy is a separate input)',
  );
  assertClose(
    [k3.metrics['loss/kl']!, k3.metrics['loss/entropy']!, k3.metrics['entropy/mean']!],
    [0.1 * (k3Values[0]! + k3Values[1]!), -0.01, 0.5],
    1e-12,
    'loss terms',
  );
});

test('bad batches name the field and row', () => {
  assert.throws(
    () => computePolicyLoss({ logprobs: [[0]], rolloutLogprobs: [[0]], advantages: [[0]], mask: [[1]] }),
    /oldLogprobs is required \(or set bypass: true\)/,
  );
  assert.throws(
    () =>
      computePolicyLoss({
        logprobs: [[0, 0]],
        oldLogprobs: [[0, 0]],
        rolloutLogprobs: [[0]],
        advantages: [[0, 0]],
        mask: [[1, 1]],
      }),
    /rolloutLogprobs\[0\] has 1 tokens, logprobs\[0\] has 2/,
  );
  assert.throws(
    () =>
      computePolicyLoss(
        { logprobs: [[0]], oldLogprobs: [[0]], rolloutLogprobs: [[0]], advantages: [[0]], mask: [[1]] },
        { kl: { coef: 0.1 } },
      ),
    /refLogprobs is required when kl.coef > 0/,
  );
});

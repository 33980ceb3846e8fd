// Advantage estimators against hand-computed values, including a single-member group and a
// zero-variance group, and the per-token broadcast over a response mask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeAdvantages } from '../../src/index.ts';
import { assertClose } from '../helpers.ts';

// Group 'a' = [1, 0, 0, 1] (interleaved with the others on purpose), 'b' = [3] alone, 'c' = [2, 2, 2].
const rewards = [1, 3, 0, 2, 0, 2, 1, 2];
const groupIds = ['a', 'b', 'a', 'c', 'a', 'c', 'a', 'c'];

test('grpo: (r - mean) / (sample std + eps); single-member and zero-variance groups get 0', () => {
  const std = Math.sqrt((4 * 0.25) / 3); // Bessel: sum of squares 1 over n - 1 = 3
  const hi = 0.5 / (std + 1e-6);
  const { advantages } = computeAdvantages({ rewards, groupIds }, { estimator: 'grpo' });
  assertClose(advantages, [hi, 0, -hi, 0, -hi, 0, hi, 0], 1e-12, 'grpo');
  assert.ok(Math.abs(hi - 0.8660254) < 1e-5, `hand value ${hi}`);
});

test('dr_grpo: r - mean, no std division', () => {
  const { advantages } = computeAdvantages({ rewards, groupIds }, { estimator: 'dr_grpo' });
  assert.deepEqual(advantages, [0.5, 0, -0.5, 0, -0.5, 0, 0.5, 0]);
});

test('rloo: r - mean of the other members', () => {
  // r = 1: 1 - (0 + 0 + 1) / 3 = 2/3; r = 0: 0 - (1 + 0 + 1) / 3 = -2/3.
  const { advantages } = computeAdvantages({ rewards, groupIds }, { estimator: 'rloo' });
  assertClose(advantages, [2 / 3, 0, -2 / 3, 0, -2 / 3, 0, 2 / 3, 0], 1e-15, 'rloo');
});

test('grpo epsilon: a zero-variance group divides 0 by epsilon (still 0); epsilon is added to the std', () => {
  const { advantages } = computeAdvantages(
    { rewards: [5, 5, 1, 3], groupIds: [0, 0, 1, 1] },
    { estimator: 'grpo', epsilon: 0.5 },
  );
  // group 1: mean 2, sample std sqrt(2); (3 - 2) / (sqrt(2) + 0.5)
  const a = 1 / (Math.SQRT2 + 0.5);
  assertClose(advantages, [0, 0, -a, a], 1e-15, 'grpo with epsilon 0.5');
});

test('advantages broadcast to response tokens; metrics over response tokens', () => {
  const responseMask = [[1, 1, 0], [1], [1, 1], []];
  const { advantages, tokenAdvantages, metrics } = computeAdvantages(
    { rewards: [1, 0, 4, 4], groupIds: [7, 7, 8, 8], responseMask },
    { estimator: 'dr_grpo' },
  );
  assert.deepEqual(advantages, [0.5, -0.5, 0, 0]);
  assert.deepEqual(tokenAdvantages, [[0.5, 0.5, 0], [-0.5], [0, 0], []]);
  // Tokens counted: 0.5, 0.5, -0.5, 0, 0 -> mean 0.1, population std sqrt(0.75/5 - 0.1^2) = sqrt(0.14)
  assertClose(
    [metrics['advantage/mean']!, metrics['advantage/std']!],
    [0.1, Math.sqrt(0.14)],
    1e-12,
    'advantage metrics',
  );
  assert.equal(metrics['reward/mean'], 2.25);
  assert.equal(metrics['reward/zero_std_group_frac'], 0.5);
});

test('zero_std_group_frac counts single-member and all-equal groups', () => {
  const { metrics } = computeAdvantages({ rewards, groupIds });
  assertClose([metrics['reward/zero_std_group_frac']!], [2 / 3], 1e-15, 'b and c of a, b, c');
});

test('bad advantage input and config give one-line errors naming the field', () => {
  assert.throws(() => computeAdvantages({ rewards: [1, 2], groupIds: [0] }), /groupIds has 1 entries, rewards has 2/);
  assert.throws(() => computeAdvantages({ rewards: [1, NaN], groupIds: [0, 0] }), /rewards\[1\] is NaN/);
  assert.throws(
    () => computeAdvantages({ rewards: [1], groupIds: [0] }, { estimator: 'ppo' as never }),
    /advantage config: estimator: .*"ppo"/,
  );
  assert.throws(
    () => computeAdvantages({ rewards: [1], groupIds: [0] }, { epsilon: -1 }),
    /advantage config: epsilon: .*-1/,
  );
  assert.throws(
    () => computeAdvantages({ rewards: [1], groupIds: [0] }, { estimatr: 'grpo' } as never),
    /advantage config: estimatr: unknown key/,
  );
});

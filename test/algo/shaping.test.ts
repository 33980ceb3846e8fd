// Batch shaping: DAPO's soft overlong penalty, response-length capping and overlong filtering,
// dynamic sampling (drop all-equal-reward groups, refill).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DynamicSampler,
  type RlSample,
  computeAdvantages,
  filterInformativeGroups,
  overlongPenalty,
  parseShapingConfig,
  shapeBatch,
} from '../../src/index.ts';

test('overlong penalty: 0 up to L_max - L_cache, linear to -factor at L_max, -factor beyond', () => {
  const config = parseShapingConfig({ max_response_length: 20, overlong_penalty: { buffer: 8, factor: 1 } });
  assert.deepEqual(
    [0, 12, 13, 16, 20, 21, 100].map((n) => overlongPenalty(n, config)),
    [0, 0, -1 / 8, -0.5, -1, -1, -1],
  );
  const half = parseShapingConfig({ max_response_length: 20, overlong_penalty: { buffer: 4, factor: 0.5 } });
  assert.equal(overlongPenalty(18, half), -0.25);
  assert.equal(
    overlongPenalty(1000, parseShapingConfig({ max_response_length: 20 })),
    0,
    'buffer 0 turns the penalty off',
  );
});

const sample = (
  groupId: number,
  length: number,
  reward: number,
  finishReason: RlSample['finishReason'] = 'stop',
): RlSample => ({
  groupId,
  prompt: [1, 2],
  response: Array.from({ length }, (_, i) => 3 + i),
  rolloutLogprobs: Array.from({ length }, () => -1),
  reward,
  finishReason,
});

test('shapeBatch: responses cut at max_response_length, penalised by their produced length, truncated ones masked under truncated: mask', () => {
  const input = [sample(0, 4, 1), sample(0, 7, 1), sample(0, 12, 1)];
  const config = { max_response_length: 8, overlong_penalty: { buffer: 4, factor: 1 }, truncated: 'mask' } as const;
  const { samples, responseMasks, metrics } = shapeBatch(input, config);
  assert.deepEqual(
    samples.map((s) => s.response.length),
    [4, 7, 8],
  );
  assert.deepEqual(
    samples.map((s) => s.rolloutLogprobs.length),
    [4, 7, 8],
  );
  assert.deepEqual(
    samples.map((s) => s.finishReason),
    ['stop', 'stop', 'length'],
  );
  assert.deepEqual(
    samples.map((s) => s.reward),
    [1, 1 - 3 / 4, 0],
  );
  assert.deepEqual(
    responseMasks.map((m) => m.reduce((a, b) => a + b, 0)),
    [4, 7, 0],
  );
  assert.deepEqual(metrics, {
    'response_length/mean': 19 / 3,
    'response_length/clip_frac': 1 / 3,
    'reward/overlong_penalty_mean': -(0.75 + 1) / 3,
  });
  const kept = shapeBatch(input, { ...config, truncated: 'keep' });
  assert.deepEqual(
    kept.responseMasks.map((m) => m.reduce((a, b) => a + b, 0)),
    [4, 7, 8],
  );
  assert.equal(input[2]!.response.length, 12, 'the input is not modified');
});

test('dynamic sampling: groups whose rewards all agree are dropped; the sampler refills until it has enough', () => {
  const g = (id: number, rewards: number[]) => ({ id, rewards });
  const { kept, dropped } = filterInformativeGroups([
    g(0, [1, 1, 1]),
    g(1, [0, 1, 0]),
    g(2, [0, 0]),
    g(3, [5]),
    g(4, [0.5, 0.25]),
  ]);
  assert.deepEqual(
    kept.map((x) => x.id),
    [1, 4],
  );
  assert.deepEqual(
    dropped.map((x) => x.id),
    [0, 2, 3],
  );
  // Every dropped group would have had zero advantage under every estimator.
  for (const estimator of ['grpo', 'dr_grpo', 'rloo'] as const) {
    for (const group of dropped)
      assert.ok(
        computeAdvantages(
          { rewards: group.rewards, groupIds: group.rewards.map(() => 0) },
          { estimator },
        ).advantages.every((a) => a === 0),
      );
  }

  const sampler = new DynamicSampler<{ id: number; rewards: number[] }>(3, 5);
  sampler.offer([g(0, [1, 1]), g(1, [0, 1])]);
  assert.equal(sampler.needed, 2);
  sampler.offer([g(2, [0, 0]), g(3, [1, 0])]);
  assert.equal(sampler.needed, 1);
  assert.equal(sampler.exhausted, false);
  sampler.offer([g(4, [1, 0]), g(5, [0, 1])]);
  assert.equal(sampler.needed, 0);
  const { groups, metrics } = sampler.take();
  assert.deepEqual(
    groups.map((x) => x.id),
    [1, 3, 4],
    'the surplus (5) is discarded',
  );
  assert.deepEqual(metrics, {
    'dynamic_sampling/rounds': 3,
    'dynamic_sampling/dropped_groups': 2,
    'dynamic_sampling/kept_groups': 3,
  });
  assert.equal(sampler.needed, 3, 'take resets the sampler');

  const capped = new DynamicSampler<{ id: number; rewards: number[] }>(2, 2);
  capped.offer([g(0, [1, 1])]);
  capped.offer([g(1, [1, 0])]);
  assert.ok(capped.exhausted && capped.needed === 1, 'after max_rounds the step trains on what it has');
  assert.equal(capped.take().groups.length, 1);
});

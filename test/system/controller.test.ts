// The whole RL step (engine → scheduler → reward → advantages → IcePop update → weight publish)
// on a fresh tiny model with a reward it can learn in a few steps: the rewarded behaviour must grow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyLossConfig, advantageSchema, shapingSchema } from '../../src/algo/index.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import { RolloutScheduler } from '../../src/rollout/scheduler.ts';
import type { RolloutMode } from '../../src/rollout/types.ts';
import { RlController, minibatchOrder } from '../../src/system/controller.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { Policy } from '../../src/train/policy.ts';
import { countingPrompts } from '../helpers.ts';

for (const [mode, miniBatches, keepPausedCache] of [
  ['c3po', 1, false],
  ['sync', 2, false],
  ['c3po', 1, true],
] as [RolloutMode, number, boolean][]) {
  test(`${mode} controller (${miniBatches} mini-batch${miniBatches > 1 ? 'es' : ''}${keepPausedCache ? ', paused KV kept' : ''}): the rewarded first token becomes more likely; versions advance`, async () => {
    const policy = Policy.fromPreset('tiny', 11, { threads: 1 });
    const engine = new LocalEngine(policy.config, { capacity: 32, keepPausedCache, runtime: { threads: 1 } });
    await engine.updateWeights(policy.weights, 0);
    const prompts = countingPrompts();
    const scheduler = new RolloutScheduler(
      engine,
      prompts,
      {
        mode,
        tokenBudget: 96,
        poolCapacity: 32,
        retention: 2,
        staleness: 2,
        groupSize: 8,
        sampling: { temperature: 1, maxNewTokens: 6, stopTokens: [0] },
      },
      5,
    );
    const rewarded = (t: number) => t % 2 === 0; // half the vocabulary: ~50% to start with
    const controller = new RlController(
      policy,
      new AdamW({ lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 }),
      engine,
      scheduler,
      async (t) => ({ status: 'scored', reward: rewarded(t.response[0]!) ? 1 : 0, breakdown: {}, reason: '' }),
      {
        loss: parsePolicyLossConfig({}),
        advantage: advantageSchema.parse({}),
        shaping: shapingSchema.parse({}),
        temperature: 1,
        microBatchSize: 16,
        miniBatches,
        epochs: 1,
      },
    );
    const rewards: number[] = [];
    for (let s = 0; s < 12; s++) {
      const { metrics, step } = await controller.step();
      assert.equal(step, s + 1);
      assert.equal(engine.version, s + 1, 'the engine decodes with the published version');
      rewards.push(metrics['reward/mean']!);
      for (const key of [
        'time/rollout_s',
        'time/reward_s',
        'time/train_s',
        'time/sync_s',
        'icepop/masked_frac',
        'grad/norm',
      ])
        assert.ok(Number.isFinite(metrics[key]), `${key} logged`);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(rewards.slice(0, 2)),
      last = mean(rewards.slice(-3));
    assert.ok(last > first + 0.2, `reward ${rewards.map((r) => r.toFixed(2)).join(' ')}`);
  });
}

test('mini-batch reshuffles follow run.seed: another seed visits the batch in another order', () => {
  const order = (seed: number) => minibatchOrder(64, seed, 5, 1);
  assert.deepEqual(
    [...order(0)].sort((a, b) => a - b),
    Array.from({ length: 64 }, (_, i) => i),
    'a permutation',
  );
  assert.deepEqual(order(3), order(3), 'the same seed gives the same order');
  assert.notDeepEqual(order(3), order(0));
  assert.notDeepEqual(minibatchOrder(64, 3, 5, 2), order(3), 'each epoch reshuffles');
});

test('rewards start as trajectories finish, during the rollout; each is scored once; unscored members are not trained on', async () => {
  const policy = Policy.fromPreset('tiny', 3, { threads: 1 });
  const engine = new LocalEngine(policy.config, { capacity: 16, runtime: { threads: 1 } });
  await engine.updateWeights(policy.weights, 0);
  const prompts = countingPrompts();
  const scheduler = new RolloutScheduler(
    engine,
    prompts,
    {
      mode: 'c3po',
      tokenBudget: 48,
      poolCapacity: 16,
      retention: 2,
      staleness: 2,
      groupSize: 4,
      sampling: { temperature: 1, maxNewTokens: 6, stopTokens: [0] },
    },
    5,
  );
  const calls = new Map<string, number>();
  let duringRollout = 0;
  let collecting = false;
  const collect = scheduler.collect.bind(scheduler);
  scheduler.collect = async () => {
    collecting = true;
    try {
      return await collect();
    } finally {
      collecting = false;
    }
  };
  const controller = new RlController(
    policy,
    new AdamW({ lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 }),
    engine,
    scheduler,
    async (t) => {
      const key = `${t.groupId}/${t.sampleIndex}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
      if (collecting) duringRollout++;
      // Sample 0 of every group cannot be scored (as if its sandbox run failed).
      return t.sampleIndex === 0
        ? { status: 'unscored', message: 'sandbox error: test' }
        : { status: 'scored', reward: t.response.length % 2, breakdown: {}, reason: '' };
    },
    {
      loss: parsePolicyLossConfig({}),
      advantage: advantageSchema.parse({}),
      shaping: shapingSchema.parse({}),
      temperature: 1,
      microBatchSize: 16,
      miniBatches: 1,
      epochs: 1,
    },
  );
  let logged = 0;
  for (let s = 0; s < 3; s++) {
    const { metrics, trajectories } = await controller.step();
    const judged = trajectories.filter((t) => t.finishReason !== 'dropped');
    logged += judged.length;
    assert.equal(metrics['reward/unscored'], judged.filter((t) => t.sampleIndex === 0).length);
    assert.equal(metrics['reward/scored'] + metrics['reward/unscored'], judged.length);
    assert.ok(
      judged.every(
        (t) =>
          (t.sampleIndex === 0) === (t.unscored === 'sandbox error: test') &&
          (t.sampleIndex === 0) === (t.reward === undefined),
      ),
    );
    const trainedGroups = new Set(trajectories.map((t) => t.groupId)).size - metrics['c3po/groups_discarded']!;
    assert.equal(
      metrics['train/samples'],
      3 * trainedGroups,
      'the 3 scored members of each group are trained on; the unscored one is not',
    );
  }
  assert.ok(duringRollout > 0, 'scoring started while the rollout was still going');
  assert.ok(
    [...calls.values()].every((c) => c === 1),
    'no trajectory scored twice',
  );
  assert.ok(logged <= calls.size, 'every trajectory handed over was scored');
});

// Disaggregated placement: the pool keeps decoding under version v while the trainer trains
// v → v+1. On a tiny model in every rollout mode: the run finishes, every token's version is at
// most the trainer's and within the mode's staleness bound, no trajectory is lost or duplicated,
// tokens decoded during training carry the old version, and the overlap metric says it happened.
// Then `ringrl rl`'s own path (runRl) with an engine worker outside the trainer's process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advantageSchema, parsePolicyLossConfig, shapingSchema } from '../../src/algo/index.ts';
import { formatConfig, loadConfig } from '../../src/config/index.ts';
import { testExamplesFor, trainSourceFor } from '../../src/data/index.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { RunDir } from '../../src/report/index.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { RolloutScheduler } from '../../src/rollout/scheduler.ts';
import type { RolloutMode, Trajectory } from '../../src/rollout/types.ts';
import { RlController } from '../../src/system/controller.ts';
import { runRl } from '../../src/system/rl-run.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { Policy } from '../../src/train/policy.ts';
import { countingPrompts } from '../helpers.ts';

const sigma = 1,
  eta = 1,
  groupSize = 4,
  steps = 6;

for (const mode of ['c3po', 'async', 'sync'] as RolloutMode[]) {
  test(`disaggregated ${mode}: versions within bounds, nothing lost or duplicated, decoding overlaps training`, async () => {
    const policy = Policy.fromPreset('tiny', 7, { threads: 1 });
    const engine = new LocalEngine(policy.config, { capacity: 16, runtime: { threads: 1 } });
    await engine.updateWeights(policy.weights, 0);
    const prompts = countingPrompts();
    const scheduler = new RolloutScheduler(
      engine,
      prompts,
      {
        mode,
        tokenBudget: 40,
        poolCapacity: 16,
        retention: sigma,
        staleness: eta,
        groupSize,
        // Lengths up to 24 against a budget of 40: many members are still decoding at each cut.
        sampling: { temperature: 1, maxNewTokens: 24, stopTokens: [0, 1, 2, 3] },
      },
      3,
    );
    const scoredAt = new Map<string, number>();
    const controller = new RlController(
      policy,
      new AdamW({ lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 }),
      engine,
      scheduler,
      async (t) => {
        const key = `${t.groupId}/${t.sampleIndex}`;
        assert.ok(!scoredAt.has(key), `${key} scored twice`);
        scoredAt.set(key, engine.version);
        return { status: 'scored', reward: t.response.length % 2, breakdown: {}, reason: '' };
      },
      {
        placement: 'disaggregated',
        loss: parsePolicyLossConfig({}),
        advantage: advantageSchema.parse({}),
        shaping: shapingSchema.parse({}),
        temperature: 1,
        microBatchSize: 8,
        miniBatches: 1,
        epochs: 1,
      },
    );
    const ended = new Map<string, Trajectory>();
    let overlapSeconds = 0,
      overlapTokens = 0,
      lateTrained = 0;
    for (let s = 0; s < steps; s++) {
      const trainerVersion = controller.version;
      const { metrics, step, trajectories } = await controller.step();
      assert.equal(step, s + 1);
      assert.equal(engine.version, step, 'the new weights are published at the step boundary');
      assert.ok(metrics['time/overlap_s']! >= 0 && Number.isFinite(metrics['system/trainer_busy_frac']));
      assert.ok(Number.isFinite(metrics['system/engine0_busy_frac']), 'the engine busy fraction is logged');
      overlapSeconds += metrics['time/overlap_s']!;
      overlapTokens += metrics['overlap/generated_tokens']!;
      for (const t of trajectories) {
        const key = `${t.groupId}/${t.sampleIndex}`;
        assert.ok(!ended.has(key), `${key} handed over twice`);
        ended.set(key, t);
        assert.equal(t.versions.length, t.response.length, `${key}: one version per token`);
        t.versions.forEach((v, i) => {
          assert.ok(v <= trainerVersion, `${key}: token ${i} has version ${v}, the trainer is at ${trainerVersion}`);
          if (i > 0) assert.ok(v >= t.versions[i - 1]!, `${key}: versions never go back`);
        });
        if (t.finishReason === 'dropped' || !t.versions.length) continue;
        const staleness = trainerVersion - t.versions[0]!;
        // sync: on-policy; c3po: a member is dropped past σ updates unfinished, and its group may wait
        // one more for it; async: members past η are dropped when their group completes.
        const bound = mode === 'sync' ? 0 : mode === 'c3po' ? sigma + 1 : eta;
        assert.ok(staleness <= bound, `${key}: staleness ${staleness} > ${bound} (${mode})`);
        if (t.versions.at(-1)! < trainerVersion) lateTrained++;
      }
    }
    // Nothing lost: every member of every group opened is either handed over or still in the pool.
    await scheduler.pauseForUpdate();
    const pooled = scheduler.state().groups.flatMap((g) => g.members.map((m) => `${g.id}/${m.sampleIndex}`));
    for (const key of pooled) assert.ok(!ended.has(key), `${key} both handed over and still pooled`);
    const opened = new Set([...ended.keys(), ...pooled].map((k) => k.split('/')[0]!));
    assert.equal(ended.size + pooled.length, opened.size * groupSize, 'every opened group is accounted for');
    assert.deepEqual(
      [...opened].map((g) => Number(g.slice(1))).sort((a, b) => a - b),
      Array.from({ length: opened.size }, (_, i) => i),
      'no group skipped',
    );
    for (const [key, t] of ended)
      if (t.finishReason !== 'dropped') assert.ok(scoredAt.has(key), `${key} finished but was never scored`);
    if (mode === 'sync') {
      assert.equal(overlapTokens, 0, 'sync drains its pool at the cut and starts nothing off-policy');
    } else {
      assert.ok(
        overlapSeconds > 0 && overlapTokens > 0,
        `decoding continued during training (${overlapTokens} tokens)`,
      );
      assert.ok(lateTrained > 0, 'some trajectories decoded during training were trained one version later');
    }
  });
}

test('runRl with system.placement disaggregated and an engine worker: steps finish, overlap and busy fractions are logged', {
  timeout: 120_000,
}, async () => {
  const work = mkdtempSync(join(tmpdir(), 'ringrl-placement-'));
  const base = join(work, 'base');
  const modelConfig = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
  saveModelDir(base, modelConfig, initWeights(modelConfig, 3));
  writeTokenizer(base, 'char');
  const config = loadConfig({
    sets: [
      `model.dir=${JSON.stringify(base)}`,
      'data.task=arithmetic',
      'data.difficulty=1',
      'system.placement=disaggregated',
      'rollout.engine=http',
      'rollout.engine_workers=1',
      'rollout.max_new_tokens=40',
      'rollout.token_budget=120',
      'rollout.pool_capacity=12',
      'rollout.group_size=4',
      'rl.steps=3',
      'eval.num_problems=4',
      'eval.max_new_tokens=40',
      'run.checkpoint_every=0',
      'runtime.threads=1',
    ],
  });
  const run = RunDir.create(join(work, 'run'), formatConfig(config));
  const result = await runRl({
    run,
    config,
    modelDir: base,
    resume: false,
    source: await trainSourceFor(config.data),
    evalExamples: await testExamplesFor(config.data, 4),
    verify: getVerifier('arithmetic'),
    runtime: { threads: 1 },
  });
  assert.equal(result.step, 3);
  const rows = run.readMetrics().filter((r) => typeof r['time/step_s'] === 'number');
  assert.deepEqual(
    rows.map((r) => r.step),
    [1, 2, 3],
  );
  for (const r of rows) {
    const busy = r['system/engine0_busy_frac'] as number;
    assert.ok(busy > 0 && busy <= 1.05, `engine busy fraction ${busy} (from the worker's own count)`);
    assert.ok((r['system/trainer_busy_frac'] as number) > 0);
  }
  assert.ok(
    rows.some((r) => (r['overlap/generated_tokens'] as number) > 0),
    'the worker decoded while the trainer trained',
  );
});

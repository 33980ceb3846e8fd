// The C3PO++ scheduler and its baselines on the simulated engine (fast, deterministic) and on the
// real local engine: budget, conservation of trajectories, retention drops, versions, whole groups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SimulatedEngine } from '../../src/engine/simulated.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import type { GeneratedSequence, RolloutEngine } from '../../src/engine/types.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { RolloutScheduler } from '../../src/rollout/scheduler.ts';
import type { Group, PromptSource, RolloutConfig, RolloutMode } from '../../src/rollout/types.ts';

function counter(): PromptSource {
  let i = 0;
  return { next: () => ({ id: `p${i}`, tokens: [1, 2, (i++ % 20) + 3] }), cursor: () => i, seek: (c) => void (i = c) };
}

/** Records the response tokens that finish in each engine step. */
function recording(engine: RolloutEngine): { engine: RolloutEngine; perStep: number[] } {
  const perStep: number[] = [];
  const step = engine.step.bind(engine);
  engine.step = async () => {
    const done: GeneratedSequence[] = await step();
    perStep.push(done.reduce((a, s) => a + s.tokens.length, 0));
    return done;
  };
  return { engine, perStep };
}

function config(mode: RolloutMode, over: Partial<RolloutConfig> = {}): RolloutConfig {
  return {
    mode,
    tokenBudget: 600,
    poolCapacity: 32,
    retention: 1,
    staleness: 1,
    groupSize: 4,
    sampling: { temperature: 1, maxNewTokens: 400 },
    ...over,
  };
}

function simulated(seed = 1) {
  return new SimulatedEngine({
    capacity: 32,
    cost: { stepFixedMs: 10, stepPerSeqMs: 0.1, prefillPerTokenMs: 0.01 },
    lengths: { median: 20, sigma: 1 },
    seed,
  });
}

/** Run `iterations` steps, publishing a new version after each like the controller does. */
async function run(
  scheduler: RolloutScheduler,
  engine: RolloutEngine,
  iterations: number,
  weights = new Map<string, Float32Array>(),
) {
  const batches = [];
  for (let it = 0; it < iterations; it++) {
    batches.push(await scheduler.collect());
    await engine.updateWeights(weights, it + 1);
    scheduler.policyUpdated(it + 1);
  }
  return batches;
}

const ids = (groups: Group[]) => groups.flatMap((g) => g.members.map((m) => `${g.id}/${m.sampleIndex}`));

for (const mode of ['c3po', 'sync', 'async'] as const) {
  test(`${mode}: the budget ends each iteration; no trajectory is lost or duplicated; groups stay whole`, async () => {
    const { engine, perStep } = recording(simulated());
    const scheduler = new RolloutScheduler(engine, counter(), config(mode));
    const seen = new Set<string>();
    let opened = 0;
    for (let it = 0; it < 6; it++) {
      const start = perStep.length;
      const batch = await scheduler.collect();
      const steps = perStep.slice(start);
      const finished = steps.reduce((a, b) => a + b, 0);
      assert.equal(batch.stats['rollout/finished_tokens'], finished);
      if (mode === 'sync') {
        assert.equal(engine.busy(), false, 'sync drains the pool');
      } else {
        assert.ok(finished >= 600, `iteration ${it}: finished ${finished} tokens < budget`);
        assert.ok(finished - steps.at(-1)! < 600, `iteration ${it}: ran past the step that reached the budget`);
      }
      for (const group of [...batch.groups, ...batch.discarded]) {
        assert.deepEqual(
          group.members.map((m) => m.sampleIndex),
          [0, 1, 2, 3],
          'a group keeps all G members',
        );
        assert.ok(group.members.every((m) => m.promptId === group.prompt.id && m.groupId === group.id));
        for (const id of ids([group])) {
          assert.ok(!seen.has(id), `${id} returned twice`);
          seen.add(id);
        }
      }
      for (const group of batch.groups)
        assert.ok(group.members.filter((m) => m.finishReason !== 'dropped').length >= 2);
      await engine.updateWeights(new Map(), it + 1);
      scheduler.policyUpdated(it + 1);
      opened = Number(scheduler.state().nextGroup);
    }
    const pooled = scheduler.state().groups.flatMap((g) => g.members.map((m) => `${g.id}/${m.sampleIndex}`));
    assert.equal(seen.size + pooled.length, opened * 4, 'every opened trajectory is returned once or still pooled');
    assert.ok(pooled.every((id) => !seen.has(id)));
  });
}

test("simulated engine: attention reads each row's own cache (ragged) or the longest row's (padded)", async () => {
  // Rows of 3 and 50 prompt tokens generating 4 and 6 tokens: at step i both read 3+i and 50+i
  // positions (ragged) or 2 × (50+i) (padded) while both are active, then 50+i for the long one.
  const busyMs = async (attention: 'ragged' | 'padded') => {
    const engine = new SimulatedEngine({
      capacity: 2,
      cost: { stepFixedMs: 1, stepPerSeqMs: 0, prefillPerTokenMs: 0, stepPerCachedMs: 0.01, attention },
      lengths: { median: 100, sigma: 0 },
    });
    engine.submit([
      { id: 'a', prompt: [1, 2, 3], params: { temperature: 1, maxNewTokens: 4 } },
      { id: 'b', prompt: Array(50).fill(1), params: { temperature: 1, maxNewTokens: 6 } },
    ]);
    while (engine.busy()) await engine.step();
    return engine.stats().busySeconds * 1000;
  };
  const both = [0, 1, 2, 3],
    alone = [4, 5];
  const tail = alone.reduce((a, i) => a + 50 + i, 0);
  assert.ok(Math.abs((await busyMs('ragged')) - (6 + 0.01 * (both.reduce((a, i) => a + 53 + 2 * i, 0) + tail))) < 1e-9);
  assert.ok(
    Math.abs((await busyMs('padded')) - (6 + 0.01 * (both.reduce((a, i) => a + 2 * (50 + i), 0) + tail))) < 1e-9,
  );
});

test('c3po: retention > σ drops exactly the stale partial rollouts; dropped-vs-kept lengths are reported', async () => {
  const engine = simulated(3);
  const scheduler = new RolloutScheduler(engine, counter(), config('c3po', { retention: 1, tokenBudget: 400 }));
  const batches = await run(scheduler, engine, 8);
  const all = batches.flatMap((b) => [...b.groups, ...b.discarded]).flatMap((g) => g.members);
  const dropped = all.filter((m) => m.finishReason === 'dropped');
  assert.ok(dropped.length > 0, 'the long tail produced stale partials');
  assert.ok(
    dropped.every((m) => m.retention === 2),
    `dropped retentions: ${[...new Set(dropped.map((m) => m.retention))]}`,
  );
  assert.ok(
    all.filter((m) => m.finishReason !== 'dropped').every((m) => m.retention <= 1),
    'nothing within σ is dropped',
  );
  const withDrops = batches.find((b) => b.stats['c3po/dropped'] > 0)!;
  assert.ok(
    withDrops.stats['c3po/dropped_len_mean'] > withDrops.stats['c3po/kept_len_mean'],
    'dropped partials are the long ones',
  );
  assert.ok(batches.some((b) => b.stats['c3po/retained'] > 0));
});

test('c3po: a resumed trajectory carries one version per iteration it was generated in', async () => {
  const engine = simulated(5);
  const scheduler = new RolloutScheduler(engine, counter(), config('c3po', { retention: 4, tokenBudget: 400 }));
  const batches = await run(scheduler, engine, 6);
  const members = batches
    .flatMap((b) => b.groups)
    .flatMap((g) => g.members)
    .filter((m) => m.finishReason !== 'dropped');
  const spanning = members.filter((m) => new Set(m.versions).size > 1);
  assert.ok(spanning.length > 0, 'some trajectories span several policy versions');
  for (const m of members) {
    assert.equal(m.versions.length, m.response.length);
    for (let t = 1; t < m.versions.length; t++)
      assert.ok(m.versions[t]! >= m.versions[t - 1]!, 'versions never go back');
    assert.equal(m.retention, m.versions.at(-1)! - m.versions[0]!, 'retention counts the updates spanned');
  }
});

test('async: members older than η versions are dropped when their group completes', async () => {
  const engine = simulated(7);
  const scheduler = new RolloutScheduler(engine, counter(), config('async', { staleness: 1, tokenBudget: 400 }));
  const batches = await run(scheduler, engine, 6);
  for (const [it, b] of batches.entries()) {
    for (const m of b.groups.flatMap((g) => g.members)) {
      if (m.finishReason === 'dropped') assert.ok(m.versions[0]! < it - 1);
      else assert.ok(m.versions[0]! >= it - 1, `kept member from version ${m.versions[0]} at iteration ${it}`);
    }
  }
});

test('the scheduler state round-trips: a restored scheduler continues with the same pool', async () => {
  const engineA = simulated(9);
  const a = new RolloutScheduler(engineA, counter(), config('c3po'));
  await run(a, engineA, 2);
  const state = JSON.parse(JSON.stringify(a.state()));
  const engineB = simulated(9);
  await engineB.updateWeights(new Map(), 2);
  const b = new RolloutScheduler(engineB, counter(), config('c3po'));
  b.restore(state);
  assert.deepEqual(b.state(), a.state());
  const [nextA, nextB] = [await a.collect(), await b.collect()];
  assert.deepEqual(ids(nextB.groups), ids(nextA.groups));
  assert.deepEqual(
    nextB.groups.map((g) => g.members.map((m) => m.response.length)),
    nextA.groups.map((g) => g.members.map((m) => m.response.length)),
  );
});

test('bad rollout config is a one-line error naming the key', () => {
  const engine = simulated();
  assert.throws(
    () => new RolloutScheduler(engine, counter(), config('c3po', { tokenBudget: 100 })),
    /rollout\.token_budget: must be at least max_new_tokens \(400\): a budget smaller than one response's max length, got 100/,
  );
  assert.throws(
    () => new RolloutScheduler(engine, counter(), config('c3po', { poolCapacity: 2 })),
    /rollout\.pool_capacity: must be at least group_size \(4\): groups enter the pool whole, got 2/,
  );
  assert.throws(
    () => new RolloutScheduler(engine, counter(), config('bogus' as RolloutMode)),
    /rollout\.mode: expected c3po, sync or async, got 'bogus'/,
  );
});

test('c3po on the real engine: partial rollouts resume under new weights with versions switching', async () => {
  const { config: modelConfig, weights } = loadModelDir(join(import.meta.dirname, '..', 'fixtures', 'models', 'llama'));
  const engine = new LocalEngine(modelConfig, { capacity: 8, runtime: { threads: 1 } });
  await engine.updateWeights(weights, 0);
  const scheduler = new RolloutScheduler(engine, counter(), {
    ...config('c3po', { retention: 3, poolCapacity: 8, groupSize: 2, tokenBudget: 60 }),
    sampling: { temperature: 1, maxNewTokens: 40, stopTokens: [5] },
  });
  const batches = await run(scheduler, engine, 4, weights);
  const members = batches.flatMap((b) => b.groups).flatMap((g) => g.members);
  assert.ok(members.length > 0);
  assert.ok(
    members.some((m) => new Set(m.versions).size > 1),
    'a trajectory resumed across an update',
  );
  for (const m of members) assert.equal(m.policyLogprobs.length, m.response.length);
});

test('disaggregated overlap: the pool decodes under the old version during training; those tokens count toward the next cut and the update counts toward their retention', async () => {
  const engine = simulated(9);
  const sigma = 1;
  const scheduler = new RolloutScheduler(engine, counter(), config('c3po', { retention: sigma, tokenBudget: 400 }));
  const handed = new Set<string>();
  let lateDropped = 0;
  for (let it = 0; it < 8; it++) {
    const batch = await scheduler.collect({ keepDecoding: true });
    for (const key of ids([...batch.groups, ...batch.discarded])) {
      assert.ok(!handed.has(key), `${key} handed over twice`);
      handed.add(key);
    }
    for (const m of batch.groups.flatMap((g) => g.members)) {
      if (m.finishReason === 'dropped') continue;
      assert.ok(m.retention <= sigma, `kept member with retention ${m.retention}`);
      assert.ok(
        m.versions.every((v) => v <= it),
        `a token from version ${Math.max(...m.versions)} before update ${it}`,
      );
    }
    // Training "takes" 30 engine steps: the overlap decodes that long (or until Φ more tokens finished).
    const before = engine.stats();
    let steps = 0;
    let trained!: () => void;
    const training = new Promise<void>((done) => (trained = done));
    const step = engine.step.bind(engine);
    engine.step = async () => {
      if (++steps >= 30) trained();
      return step();
    };
    const o = await scheduler.overlap(training);
    engine.step = step;
    assert.equal(o.generatedTokens, engine.stats().generatedTokens - before.generatedTokens);
    assert.ok(o.decodeSteps > 0 && o.decodeSteps <= 30);
    assert.ok(o.finishedTokens < 400 + 400, 'the overlap stops once a budget of tokens has finished');
    const pausedBefore = scheduler.pooled;
    await scheduler.pauseForUpdate();
    assert.ok(scheduler.pooled >= pausedBefore);
    await engine.updateWeights(new Map(), it + 1);
    const droppedBefore = scheduler
      .state()
      .groups.flatMap((g) => g.members)
      .filter((m) => m.finishReason === 'dropped').length;
    scheduler.policyUpdated(it + 1);
    lateDropped +=
      scheduler
        .state()
        .groups.flatMap((g) => g.members)
        .filter((m) => m.finishReason === 'dropped').length - droppedBefore;
  }
  // A finished member waiting in the pool keeps the versions it was generated with.
  const waiting = scheduler
    .state()
    .groups.flatMap((g) => g.members)
    .filter((m) => m.finishReason !== 'dropped' && !m.partial);
  for (const m of waiting) assert.ok(m.versions.every((v) => v <= 8));
  assert.ok(lateDropped > 0, 'some trajectories finished during training past σ and were dropped at the update');
});

test('disaggregated: a sequence that finished between the last overlap step and the pause (an HTTP answer landing then) is taken as finished, not left in flight', async () => {
  const engine = simulated(11);
  // Like HttpEngine: an answer that landed before the pause waits in the engine for the next step().
  let held: GeneratedSequence | null = null;
  const pause = engine.pause.bind(engine);
  engine.pause = async () => {
    const partial = await pause();
    const first = partial.find((s) => s.tokens.length > 0)!;
    held = { ...first, finishReason: 'stop' };
    return partial.filter((s) => s !== first);
  };
  const step = engine.step.bind(engine);
  engine.step = async () => {
    if (held) {
      const done = [held];
      held = null;
      return done;
    }
    return step();
  };
  const busy = engine.busy.bind(engine);
  engine.busy = () => held !== null || busy();
  const scheduler = new RolloutScheduler(engine, counter(), config('c3po', { retention: 2, tokenBudget: 400 }));
  await scheduler.collect({ keepDecoding: true });
  await scheduler.overlap(Promise.resolve());
  await scheduler.pauseForUpdate();
  assert.equal(held, null, 'the held answer was taken');
  const state = scheduler.state(); // throws if a member is still in flight
  assert.ok(state.groups.some((g) => g.members.some((m) => m.finishReason === 'stop' && m.partial === null)));
});

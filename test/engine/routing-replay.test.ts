// Routing replay (R3): the engine records each position's experts, and the trainer, fed those
// routes, reproduces the engine's computation: under fp32 its routes are the engine's exactly and
// its log-probs equal the engine's. Replayed routes really drive the MoE layers (other routes give
// other log-probs), and the policy-gradient step uses them when routing_replay is 'rollout'.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { policyGradientStep } from '../../src/algo/index.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import { type GeneratedSequence, generateAll } from '../../src/engine/types.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { sparseLayerCount } from '../../src/model/config.ts';
import { maxAbsDiff } from '../helpers.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { Policy, packRoutes, packSequences } from '../../src/train/policy.ts';

const { config, weights } = loadModelDir(join(import.meta.dirname, '..', 'fixtures', 'models', 'mixtral'));
const L = config.numLayers,
  k = config.moe!.topK,
  E = config.moe!.numExperts;

async function rollouts(): Promise<GeneratedSequence[]> {
  const engine = new LocalEngine(config, { capacity: 3, runtime: { threads: 1 } });
  await engine.updateWeights(weights, 0);
  const requests = [0, 1, 2, 3].map((i) => ({
    id: String(i),
    prompt: [1 + i, 7, 3, 30 - i].slice(0, 2 + (i % 3)),
    params: { temperature: 1, maxNewTokens: 10 + i, seed: 11 + i },
  }));
  return generateAll(engine, requests);
}

test("the engine records every fed position's experts: prompt and generated tokens but the last, top-k distinct ids per layer", async () => {
  for (const r of await rollouts()) {
    const positions = r.prompt.length + r.tokens.length - 1;
    assert.equal(
      r.routes!.length,
      positions * L * k,
      `seq ${r.id}: ${r.routes!.length / (L * k)} routed positions, expected ${positions}`,
    );
    for (let p = 0; p < positions; p++) {
      for (let l = 0; l < L; l++) {
        const chosen = r.routes!.slice((p * L + l) * k, (p * L + l + 1) * k);
        assert.equal(new Set(chosen).size, k, `seq ${r.id} position ${p} layer ${l}: ${chosen}`);
        chosen.forEach((e) => assert.ok(Number.isInteger(e) && e >= 0 && e < E));
      }
    }
  }
});

test("fp32: the trainer routes every position as the engine did, and with replay its log-probs equal the engine's (≤ 1e-5)", async () => {
  const results = await rollouts();
  const policy = new Policy(config, weights, { threads: 1 });
  const sequences = results.map((r) => [...r.prompt, ...r.tokens]);
  const own = await policy.score(sequences);
  const replayed = await policy.score(
    sequences,
    1,
    results.map((r) => r.routes!),
  );
  results.forEach((r, i) => {
    const n = r.routes!.length;
    assert.deepEqual(
      own.routes![i]!.slice(0, n),
      r.routes,
      `seq ${i}: the trainer's own routes differ from the engine's`,
    );
    const recompute = replayed.logprobs[i]!.slice(r.prompt.length - 1);
    r.policyLogprobs.forEach((lp, t) =>
      assert.ok(
        Math.abs(lp - recompute[t]!) <= 1e-5,
        `seq ${i} token ${t}: engine ${lp} vs trainer with replay ${recompute[t]}`,
      ),
    );
  });
});

test('replayed routes drive the MoE layers: other experts give other log-probs, and the step replays when routing_replay is rollout', async () => {
  const results = await rollouts();
  const policy = new Policy(config, weights, { threads: 1 });
  const sequences = results.map((r) => [...r.prompt, ...r.tokens]);
  // Every position's first expert moved to an expert the token did not choose.
  const moved = results.map((r) =>
    r.routes!.map((e, i) =>
      i % k === 0 ? [...Array(E).keys()].find((x) => !r.routes!.slice(i, i + k).includes(x))! : e,
    ),
  );
  const base = await policy.score(
    sequences,
    1,
    results.map((r) => r.routes!),
  );
  const other = await policy.score(sequences, 1, moved);
  const gap = Math.max(...base.logprobs.flatMap((row, i) => row.map((lp, t) => Math.abs(lp - other.logprobs[i]![t]!))));
  assert.ok(gap > 1e-3, `changing the replayed experts changed the log-probs by only ${gap}`);

  // The step's recompute (k = old / infer) uses the replayed routes: with moved routes the mismatch is large.
  const samples = results.map((r, i) => ({
    prompt: r.prompt,
    response: r.tokens,
    rolloutLogprobs: r.policyLogprobs,
    advantages: r.tokens.map(() => (i % 2 ? 1 : -1)),
    routes: moved[i],
  }));
  const step = (replay: 'off' | 'rollout') =>
    policyGradientStep(
      new Policy(config, new Map([...weights].map(([n, w]) => [n, Float32Array.from(w)])), { threads: 1 }),
      new AdamW({ lr: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 }),
      samples,
      { routing_replay: replay },
    );
  const [off, on] = [await step('off'), await step('rollout')];
  assert.ok(
    off.metrics['mismatch/logp_diff_max']! <= 1e-5,
    `no replay: mismatch ${off.metrics['mismatch/logp_diff_max']}`,
  );
  assert.ok(
    on.metrics['mismatch/logp_diff_max']! > 1e-3,
    `replaying moved routes: mismatch only ${on.metrics['mismatch/logp_diff_max']}`,
  );
});

test('packRoutes: positions without a record get experts 0..k-1; short records and bad expert ids are one-line errors', () => {
  const batch = packSequences(
    [
      [1, 2, 3],
      [4, 5],
    ],
    config.vocabSize,
  );
  const record = (positions: number, e = 3) =>
    Array.from({ length: positions * L * k }, (_, i) => (i % k === 0 ? e : 1));
  const feeds = packRoutes([record(2), record(1)], batch, config);
  assert.equal(feeds.length, L);
  // Row 1 (2 tokens) has its position 0 recorded; its position 1 (its last token) and 2 (padding) are filled.
  assert.deepEqual([...feeds[0]!.slice((1 * batch.T + 0) * k, (1 * batch.T + 3) * k)].map(Number), [3, 1, 0, 1, 0, 1]);
  assert.throws(
    () => packRoutes([record(1), record(1)], batch, config),
    /sequence 0 has routes for 1 positions; expected at least 2/,
  );
  assert.throws(() => packRoutes([record(2, 9), record(1)], batch, config), /expert 9 is outside \[0, 4\)/);
  assert.throws(() => packRoutes([record(2)], batch, config), /1 route records for 2 sequences/);
});

test('routing replay on a dense model is refused with a one-line error', async () => {
  const dense = Policy.fromPreset('tiny', 0, { threads: 1 });
  await assert.rejects(dense.score([[1, 2, 3]], 1, [[0, 1]]), /routing replay needs an MoE model/);
});

test('a model with dense layers (qwen3_moe, mlp_only_layers) records and replays routes for its MoE layers only', async () => {
  const moe = loadModelDir(join(import.meta.dirname, '..', 'fixtures', 'models', 'qwen3_moe'));
  const sparse = sparseLayerCount(moe.config);
  assert.ok(sparse > 0 && sparse < moe.config.numLayers, 'the fixture mixes dense and MoE layers');
  const engine = new LocalEngine(moe.config, { capacity: 2, runtime: { threads: 1 } });
  await engine.updateWeights(moe.weights, 0);
  const [r] = await generateAll(engine, [
    { id: 'q', prompt: [3, 5, 7], params: { temperature: 1, maxNewTokens: 6, seed: 4 } },
  ]);
  const kq = moe.config.moe!.topK;
  assert.equal(r!.routes!.length, (r!.prompt.length + r!.tokens.length - 1) * sparse * kq);
  const policy = new Policy(moe.config, moe.weights, { threads: 1 });
  const sequence = [...r!.prompt, ...r!.tokens];
  const own = await policy.score([sequence]);
  assert.deepEqual(own.routes![0]!.slice(0, r!.routes!.length), r!.routes, 'the trainer routes as the engine did');
  const replayed = await policy.score([sequence], 1, [r!.routes!]);
  assert.ok(
    maxAbsDiff(replayed.logprobs[0]!, own.logprobs[0]!) < 1e-5,
    'replaying its own routes leaves the log-probs as they were',
  );
});

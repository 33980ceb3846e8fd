// Training with the forward recomputed in segments of layers (Policy.recomputeSegments): the loss and
// every parameter gradient against the PyTorch reference of the HF math (the fixtures of
// test/model/reference.test.ts), and against the one-graph backward on a deeper model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { Policy, packSequences } from '../../src/train/policy.ts';
import { maskedCrossEntropy } from '../../src/train/sft.ts';
import { policyLossSpec } from '../../src/index.ts';
import { byCodeUnit } from '../../src/util/order.ts';
import { assertClose, rng } from '../helpers.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');

async function lossAndGrads(policy: Policy, tokens: number[][]) {
  const batch = packSequences(tokens, policy.config.vocabSize);
  const targets = batch.lengths.reduce((a, b) => a + b, 0);
  return policy.lossAndGrads(
    maskedCrossEntropy,
    batch,
    { loss_mask: batch.mask },
    { scale: 1 / targets, aux_weight: 0 },
  );
}

// llama: untied LM head; qwen2: tied embeddings (the table's gradient sums the LM head's and the
// lookup's, which land in different segments) and q/k/v biases; qwen3-bf16-tied: q/k norms, tied.
for (const name of ['llama', 'qwen2', 'qwen3-bf16-tied']) {
  test(`${name}: two recomputed segments give PyTorch's loss and every gradient`, async () => {
    const dir = join(fixtures, name);
    const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
    const policy = Policy.load(dir, { threads: 1 });
    policy.recomputeSegments = 2;
    const { loss, metrics, grads } = await lossAndGrads(policy, ref.tokens);
    assertClose([metrics.nll!], [ref.ce_loss], 1e-5, `${name} ce loss`);
    assertClose([loss], [ref.loss], 1e-5, `${name} loss`);
    const expected = readSafetensors(join(dir, 'grads.safetensors'));
    assert.deepEqual([...grads.keys()].sort(byCodeUnit), [...expected.keys()].sort(byCodeUnit));
    for (const [param, g] of expected) {
      const scale = Math.max(1e-3, ...Array.from(g.data, Math.abs));
      assertClose(grads.get(param)!, g.data, 1e-4 * scale, `${name} grad ${param}`);
    }
  });
}

test('small preset (4 layers): 3 and 4 segments = the one-graph backward (≤ 1e-5)', async () => {
  const random = rng(5);
  const tokens = [12, 9].map((n) => Array.from({ length: n }, () => Math.floor(random() * 60)));
  const policy = Policy.fromPreset('small', 2, { threads: 1 });
  assert.equal(policy.recomputeSegments, 1, 'a small model trains in one graph by default');
  const whole = await lossAndGrads(policy, tokens);
  for (const segments of [3, 4]) {
    policy.recomputeSegments = segments;
    const seg = await lossAndGrads(policy, tokens);
    assertClose([seg.loss], [whole.loss], 1e-6, `${segments} segments: loss`);
    for (const [param, g] of whole.grads) assertClose(seg.grads.get(param)!, g, 1e-5, `${segments} segments: ${param}`);
  }
});

// Recycled gradient arrays (Policy.recycle) are written over completely: filled with NaN first, they
// come back equal to gradients computed into new arrays, in one graph and in segments, tied or not.
for (const name of ['llama', 'qwen2'])
  for (const segments of [1, 2])
    test(`${name}, ${segments} segment(s): gradients computed into recycled arrays = into new ones`, async () => {
      const ref = JSON.parse(readFileSync(join(fixtures, name, 'reference.json'), 'utf8'));
      const policy = Policy.load(join(fixtures, name), { threads: 1 });
      policy.recomputeSegments = segments;
      const fresh = await lossAndGrads(policy, ref.tokens);
      const expected = new Map([...fresh.grads].map(([k, g]) => [k, Float32Array.from(g)]));
      for (const g of fresh.grads.values()) g.fill(Number.NaN);
      policy.recycle(fresh.grads);
      const again = await lossAndGrads(policy, ref.tokens);
      for (const [param, g] of expected) {
        assert.equal(again.grads.get(param), fresh.grads.get(param), `${param}: the recycled array was used`);
        assert.deepEqual(Array.from(again.grads.get(param)!), Array.from(g), param);
      }
    });

test('the RL loss (IcePop) with its metrics: 2 segments = the one-graph backward', async () => {
  const policy = Policy.fromPreset('tiny', 3, { threads: 1 });
  const random = rng(9);
  const batch = packSequences(
    [
      [1, 2, 3, 4, 5, 6],
      [7, 8, 9, 10],
    ],
    64,
  );
  const n = batch.B * batch.T;
  const old = Float32Array.from({ length: n }, () => -4 + random());
  const feeds = {
    response_mask: batch.mask,
    loss_weight: batch.mask.map((m) => m / 8),
    old_logprobs: old,
    rollout_logprobs: old.map((o) => o - (random() - 0.5) * 4),
    advantages: Float32Array.from({ length: n }, (_, i) => (i % 3) - 1),
  };
  const run = () =>
    policy.lossAndGrads(policyLossSpec({ correction: 'icepop' }), batch, feeds, { metric_scale: 1 / 8 }, 0.7);
  const whole = await run();
  policy.recomputeSegments = 2;
  const seg = await run();
  assertClose([seg.loss], [whole.loss], 1e-6, 'loss');
  assert.deepEqual(Object.keys(seg.metrics).sort(byCodeUnit), Object.keys(whole.metrics).sort(byCodeUnit));
  for (const [name, v] of Object.entries(whole.metrics)) assertClose([seg.metrics[name]!], [v], 1e-6, name);
  for (const [param, g] of whole.grads) assertClose(seg.grads.get(param)!, g, 1e-5, param);
});

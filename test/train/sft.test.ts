// A small model memorises a batch under SFT: the loss falls steadily and ends near zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, packSequences } from '../../src/train/policy.ts';
import { maskedCrossEntropy } from '../../src/train/sft.ts';
import { AdamW, GradAccumulator } from '../../src/train/optimizer.ts';
import { rng } from '../helpers.ts';

for (const preset of ['tiny', 'tiny-moe']) {
  test(`${preset}: SFT loss falls steadily on a memorisation batch (2 micro-batches)`, async () => {
    const policy = Policy.fromPreset(preset, 7, { threads: 2 });
    const random = rng(11);
    const sequences = Array.from({ length: 4 }, (_, i) =>
      Array.from({ length: 8 + 3 * i }, () => Math.floor(random() * 64)),
    );
    const micro = [packSequences(sequences.slice(0, 2), 64), packSequences(sequences.slice(2), 64)];
    const targets = sequences.reduce((a, s) => a + s.length - 1, 0);
    const optimizer = new AdamW({ lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
    const accumulator = new GradAccumulator();
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      let loss = 0;
      for (const batch of micro) {
        const out = await policy.lossAndGrads(
          maskedCrossEntropy,
          batch,
          { loss_mask: batch.mask },
          { scale: 1 / targets, aux_weight: 0.01 / micro.length },
        );
        loss += out.metrics.nll!;
        accumulator.add(out.grads);
      }
      await optimizer.update(policy.weights, accumulator.sums);
      accumulator.clear();
      losses.push(loss);
    }
    // Steady: every window of 5 steps is lower than the previous one; and the batch is learned.
    for (let w = 5; w < losses.length; w += 5) {
      const prev = losses.slice(w - 5, w).reduce((a, b) => a + b) / 5;
      const cur = losses.slice(w, w + 5).reduce((a, b) => a + b) / 5;
      assert.ok(
        cur < prev,
        `loss rose between steps ${w - 5}-${w - 1} (${prev.toFixed(3)}) and ${w}-${w + 4} (${cur.toFixed(3)})`,
      );
    }
    assert.ok(losses[0]! > 3.5, `starts near ln(64) ≈ 4.16, got ${losses[0]}`);
    assert.ok(losses.at(-1)! < 0.5, `memorised: final loss ${losses.at(-1)}`);
  });
}

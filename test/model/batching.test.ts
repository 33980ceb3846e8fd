// Right-padding must not change any real token's result, dense or MoE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, packSequences } from '../../src/train/policy.ts';
import { maskedCrossEntropy } from '../../src/train/sft.ts';
import { assertClose } from '../helpers.ts';

for (const preset of ['tiny', 'tiny-moe']) {
  test(`${preset}: a sequence scores the same alone and right-padded in a batch`, async () => {
    const policy = Policy.fromPreset(preset, 3, { threads: 1 });
    const short = [3, 9, 4, 1];
    const long = [7, 7, 2, 8, 5, 6, 1, 0, 12];
    const alone = await policy.score([short]);
    const batched = await policy.score([long, short]);
    assert.equal(batched.logprobs[1]!.length, short.length - 1);
    assertClose(batched.logprobs[1]!, alone.logprobs[0]!, 1e-5, 'logprobs');
    assertClose(batched.entropy[1]!, alone.entropy[0]!, 1e-5, 'entropy');
  });
}

test('tiny-moe: padding tokens do not enter the load-balancing loss', async () => {
  const policy = Policy.fromPreset('tiny-moe', 4, { threads: 1 });
  const batch = packSequences(
    [
      [1, 2, 3, 4, 5, 6],
      [9, 8],
    ],
    64,
  );
  const run = () =>
    policy.lossAndGrads(maskedCrossEntropy, batch, { loss_mask: batch.mask }, { scale: 1, aux_weight: 1 });
  const before = (await run()).metrics.aux_loss!;
  // Change what sits in the padded slots: the masked aux loss must not move.
  for (let t = 2; t < batch.T; t++) batch.inputs[batch.T + t] = BigInt(40 + t);
  const after = (await run()).metrics.aux_loss!;
  assert.ok(Math.abs(before - after) < 1e-6, `aux loss moved from ${before} to ${after}`);
  assert.ok(before > 0);
});

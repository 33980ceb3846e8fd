// The model against the PyTorch reference of the Hugging Face math (test/fixtures/models, made by
// test/fixtures/make_model_fixtures.py with bench/peers/hf_reference.py): logits, log-probs,
// losses and every parameter gradient, for llama, qwen2, qwen3 and mixtral, and for a bf16 sharded
// qwen3 with tied embeddings, llama with each rope_scaling type (llama3, dynamic, linear) and qwen3_moe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { input, type Tensor } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/index.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { forward, parameterShapes } from '../../src/model/llama.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { Policy, packSequences } from '../../src/train/policy.ts';
import { maskedCrossEntropy } from '../../src/train/sft.ts';
import { assertClose } from '../helpers.ts';
import { byCodeUnit } from '../../src/util/order.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');

interface Reference {
  model_type: string;
  tokens: number[][];
  logits: number[][][];
  logprobs: number[][];
  ce_loss: number;
  aux_loss?: number;
  router_aux_loss_coef?: number;
  loss: number;
}

const names = [
  'llama',
  'qwen2',
  'qwen3',
  'mixtral',
  'qwen3-bf16-tied',
  'llama-rope-llama3',
  'llama-rope-dynamic',
  'llama-rope-linear',
  'qwen3_moe',
];
for (const modelType of names) {
  const dir = join(fixtures, modelType);
  const ref: Reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));

  test(`${modelType}: logits and aux loss match PyTorch (≤ 1e-4)`, async () => {
    const { config, weights } = loadModelDir(dir);
    assert.equal(config.modelType, ref.model_type);
    const params: Record<string, Tensor> = {};
    for (const [name, shape] of parameterShapes(config)) params[name] = input(name, 'float32', shape);
    const tokens = input('tokens', 'int64', ['B', 'T']);
    const { logits, auxLoss } = forward(config, params, tokens);
    const compiled = await CompiledGraph.create(
      [...Object.values(params), tokens],
      { logits, ...(auxLoss ? { aux: auxLoss } : {}) },
      { threads: 1 },
    );
    const feeds: Parameters<typeof compiled.run>[0] = {};
    for (const [name, shape] of parameterShapes(config))
      feeds[name] = { dtype: 'float32', data: weights.get(name)!, dims: shape };
    const B = ref.tokens.length,
      T = ref.tokens[0]!.length;
    feeds.tokens = { dtype: 'int64', data: BigInt64Array.from(ref.tokens.flat().map(BigInt)), dims: [B, T] };
    const out = await compiled.run(feeds);
    assert.deepEqual([...out.logits!.dims], [B, T, config.vocabSize]);
    assertClose(out.logits!.data as Float32Array, ref.logits.flat(2), 1e-4, `${modelType} logits`);
    if (ref.aux_loss !== undefined)
      assertClose(out.aux!.data as Float32Array, [ref.aux_loss], 1e-5, `${modelType} aux loss`);
  });

  test(`${modelType}: log-probs, loss and every parameter gradient match PyTorch`, async () => {
    const policy = Policy.load(dir, { threads: 1 });
    const { logprobs } = await policy.score(ref.tokens);
    assertClose(logprobs.flat(), ref.logprobs.flat(), 1e-4, `${modelType} logprobs`);

    const batch = packSequences(ref.tokens, policy.config.vocabSize);
    const targets = batch.lengths.reduce((a, b) => a + b, 0);
    const { loss, metrics, grads } = await policy.lossAndGrads(
      maskedCrossEntropy,
      batch,
      { loss_mask: batch.mask },
      { scale: 1 / targets, aux_weight: ref.router_aux_loss_coef ?? 0 },
    );
    assertClose([metrics.nll!], [ref.ce_loss], 1e-5, `${modelType} ce loss`);
    assertClose([loss], [ref.loss], 1e-5, `${modelType} total loss`);

    const expected = readSafetensors(join(dir, 'grads.safetensors'));
    assert.deepEqual(
      [...grads.keys()].sort(byCodeUnit),
      [...expected.keys()].sort(byCodeUnit),
      'one gradient per HF parameter',
    );
    for (const [name, g] of expected) {
      const scale = Math.max(1e-3, ...Array.from(g.data, Math.abs));
      assertClose(grads.get(name)!, g.data, 1e-4 * scale, `${modelType} grad ${name}`);
    }
  });
}

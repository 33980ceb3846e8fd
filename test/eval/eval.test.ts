// Evaluation: accuracy (greedy), pass@k and avg@k are computed from the verified samples as
// documented; results are reproducible from the seed; the eval CLI writes JSON and a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, formatEvalTable } from '../../src/eval/evaluate.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { CharTokenizer, builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { taskProblems } from '../../src/data/tasks/index.ts';
import { main } from '../../src/cli/main.ts';

const config = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
const weights = initWeights(config, 5);
const tokenizer = new CharTokenizer();
const examples = taskProblems('arithmetic', 5, { split: 'test', difficulty: 1, seed: 0 }).map((p) => ({
  source: p.id,
  prompt: p.prompt,
  answer: p.answer,
}));
// A verifier a random model passes about half the time: an even number of characters.
const evenLength = (response: string) => ({ reward: response.length % 2 === 0 ? 1 : 0, extracted: null, reason: '' });

test('pass@k, avg@k and accuracy follow from the samples; same seed, same result', async () => {
  const opts = { k: 4, temperature: 1, maxNewTokens: 9, seed: 3, runtime: { threads: 2 } };
  const r = await evaluate(config, weights, tokenizer, examples, evenLength, opts);
  assert.equal(r.samples.length, 5 + 5 * 4, 'one greedy sample and k sampled ones per problem');
  const greedy = r.samples.slice(0, 5);
  const sampled = r.samples.slice(5);
  const byProblem = examples.map((ex) => sampled.filter((s) => s.source === ex.source));
  assert.ok(byProblem.every((s) => s.length === 4));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.equal(r.accuracy, mean(greedy.map((s) => s.reward)));
  assert.equal(r.passAtK, mean(byProblem.map((ss) => (ss.some((s) => s.reward > 0) ? 1 : 0))));
  assert.equal(r.avgAtK, mean(byProblem.map((ss) => mean(ss.map((s) => s.reward)))));
  assert.ok(r.passAtK >= r.avgAtK);
  for (const s of r.samples) assert.equal(s.reward, s.response.length % 2 === 0 ? 1 : 0);
  assert.ok(
    r.responseLength.max <= 9 &&
      r.responseLength.p50 <= r.responseLength.p90 &&
      r.responseLength.p90 <= r.responseLength.max,
  );
  assert.ok(new Set(sampled.map((s) => s.response)).size > 1, 'temperature 1 samples differ');
  const again = await evaluate(config, weights, tokenizer, examples, evenLength, opts);
  assert.deepEqual(again.samples, r.samples);
  assert.match(formatEvalTable(r, 'title'), new RegExp(`pass@4 \\(T=1\\)\\s+${(100 * r.passAtK).toFixed(1)}%`));
});

test('k = 1 at temperature 0: one greedy pass, accuracy = pass@1 = avg@1; an untrained model scores 0 on arithmetic', async () => {
  const r = await evaluate(config, weights, tokenizer, examples, getVerifier('arithmetic'), {
    k: 1,
    temperature: 0,
    maxNewTokens: 6,
    runtime: { threads: 2 },
  });
  assert.equal(r.samples.length, 5);
  assert.equal(r.accuracy, 0);
  assert.equal(r.passAtK, 0);
  assert.equal(r.truncated, r.samples.filter((s) => s.finishReason === 'length').length / 5);
  assert.equal(
    r.thinking,
    r.samples.filter((s) => /<think>[\s\S]*\S[\s\S]*/.test(s.response.replace(/<\/think>[\s\S]*/, ''))).length / 5,
  );
});

test('ringrl eval writes the JSON summary with every sample', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-eval-'));
  saveModelDir(dir, config, weights);
  writeTokenizer(dir, 'char');
  const out = join(dir, 'result.json');
  const code = await main([
    'eval',
    '--model',
    dir,
    '--task',
    'countdown',
    '--n',
    '3',
    '--k',
    '2',
    '--temperature',
    '1',
    '--max-new-tokens',
    '5',
    '--threads',
    '2',
    '--out',
    out,
    '--quiet',
  ]);
  assert.equal(code, 0);
  const json = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(json.problems, 3);
  assert.equal(json.k, 2);
  assert.equal(json.verifier, 'countdown');
  assert.equal(json.samples.length, 3 + 6);
  for (const key of ['accuracy', 'passAtK', 'avgAtK', 'responseLength', 'truncated', 'thinking'])
    assert.ok(key in json, key);
});

// Datasets in the peers' formats: verl's parquet schema (chat-message prompt, reward_model struct,
// data_source/ability/extra_info), slime's JSONL ({prompt, label}), AReaL's ({messages, answer}),
// all read with the default field mapping; prompts rendered through the model's chat template;
// the samples in examples/ are exactly what their script writes; bad rows are one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { loadConfig } from '../../src/config/index.ts';
import { loadDataset, testExamplesFor, trainSourceFor, encodeExamplePrompt } from '../../src/data/index.ts';
import { verifyMath } from '../../src/reward/math/verify.ts';
import { CharTokenizer } from '../../src/tokenizer/index.ts';
import { gsm8kRows, mathRows, verlParquet } from '../../examples/make-samples.ts';

const dir = mkdtempSync(join(tmpdir(), 'ringrl-peers-'));
const file = (name: string, content: string | ArrayBuffer) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : Buffer.from(content));
  return path;
};

test('examples/: the committed samples are what make-samples.ts writes, and every gold answer verifies', async () => {
  const gsm8k = await loadDataset('examples/gsm8k-sample.parquet', { requireAnswer: true });
  const math = await loadDataset('examples/math-sample.parquet', { requireAnswer: true });
  const slime = await loadDataset('examples/math-sample.jsonl', { requireAnswer: true });
  assert.deepEqual([gsm8k.length, math.length, slime.length], [30, 30, 30]);
  assert.deepEqual(
    gsm8k.map((e) => [e.prompt, e.answer]),
    gsm8kRows().map((r) => [r.prompt, r.reward_model.ground_truth]),
  );
  assert.deepEqual(
    math.map((e) => [e.prompt, e.answer]),
    mathRows().map((r) => [r.prompt, r.reward_model.ground_truth]),
  );
  assert.deepEqual(
    slime.map((e) => [e.prompt, e.answer]),
    math.map((e) => [e.prompt, e.answer]),
  );
  assert.equal(gsm8k[0]!.answer, '33');
  assert.equal(gsm8k[24]!.answer, '48.6', 'computed answers carry no float noise');
  for (const e of [...gsm8k, ...math]) {
    assert.equal(verifyMath(`The answer is \\boxed{${e.answer}}.`, e.answer).reward, 1, e.answer);
    assert.equal(verifyMath('\\boxed{1000001}', e.answer).reward, 0, e.answer);
  }
});

test('verl, slime and AReaL rows load with the default field mapping', async () => {
  const verl = file('verl.parquet', verlParquet(gsm8kRows().slice(0, 3)));
  const rows = await loadDataset(verl, { requireAnswer: true });
  assert.deepEqual(rows[1], { source: `${verl} row 1`, prompt: gsm8kRows()[1]!.prompt, answer: '30' });
  const slime = file('slime.jsonl', '{"prompt": "What is 6*7?", "label": "42", "metadata": {"x": 1}}\n');
  assert.deepEqual((await loadDataset(slime, { requireAnswer: true }))[0], {
    source: `${slime}:1`,
    prompt: 'What is 6*7?',
    answer: '42',
  });
  const areal = file(
    'areal.jsonl',
    JSON.stringify({ messages: [{ role: 'user', content: 'What is 6*7?' }], answer: '42' }) + '\n',
  );
  assert.deepEqual((await loadDataset(areal, { requireAnswer: true }))[0]!.prompt, [
    { role: 'user', content: 'What is 6*7?' },
  ]);
});

test('prompts go through the chat template, with data.chat_template_kwargs and data.apply_chat_template', async () => {
  const tok = new CharTokenizer(); // its template: `role: content` lines after <s>
  const plain = file('plain.jsonl', '{"prompt": "1+1=", "label": "2"}\n');
  const config = (...sets: string[]) =>
    loadConfig({
      sets: [`data.train_file=${JSON.stringify(plain)}`, `data.test_file=${JSON.stringify(plain)}`, ...sets],
    }).data;
  const asIs = (await trainSourceFor(config(), 'rl')).next();
  assert.deepEqual(encodeExamplePrompt(tok, asIs), [tok.bos, ...tok.encode('1+1=')], 'plain text after BOS by default');
  const wrapped = (
    await trainSourceFor(
      config('data.apply_chat_template=true', 'data.chat_template_kwargs.enable_thinking=false'),
      'rl',
    )
  ).next();
  assert.deepEqual(wrapped.prompt, [{ role: 'user', content: '1+1=' }]);
  assert.deepEqual(wrapped.chatTemplateKwargs, { enable_thinking: false });
  assert.equal(tok.decode(encodeExamplePrompt(tok, wrapped)), '<s>user: 1+1=\nassistant: ');
  const [held] = await testExamplesFor(config('data.apply_chat_template=true'), 1);
  assert.deepEqual(held!.prompt, [{ role: 'user', content: '1+1=' }], 'held-out prompts are formatted the same way');
  await assert.rejects(
    trainSourceFor(config(), 'sft'),
    /plain.jsonl:1: missing field 'response'/,
    'SFT needs responses, RL does not',
  );
  assert.deepEqual(await testExamplesFor({ ...config(), test_file: null }, 5, { optional: true }), []);
});

test('bad rows: a prompt column that is not chat messages, a row without ground truth: one line naming file, row, field', async () => {
  const notChat = file(
    'not-chat.parquet',
    parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: [['What is 1+1?'], ['What is 2+2?']] },
        { name: 'reward_model', data: [{ ground_truth: '2' }, { ground_truth: '4' }] },
      ],
    }),
  );
  await assert.rejects(
    loadDataset(notChat, { requireAnswer: true }),
    (e: Error) =>
      e.name === 'RingrlError' &&
      e.message ===
        `${notChat} row 0: field 'prompt[0]' must be {role: string, content: string}, got a string "What is 1+1?"`,
  );
  const numbers = file(
    'numbers.parquet',
    parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: [7, 8] },
        { name: 'label', data: ['1', '2'] },
      ],
    }),
  );
  await assert.rejects(
    loadDataset(numbers),
    (e: Error) =>
      e.message ===
      `${numbers} row 0: field 'prompt' must be prompt text or a non-empty list of {role, content} chat messages, got a number 7`,
  );
  const rows = gsm8kRows().slice(0, 5);
  rows[3] = { ...rows[3]!, reward_model: { style: 'rule', ground_truth: null as unknown as string } };
  const noTruth = file('no-truth.parquet', verlParquet(rows));
  await assert.rejects(
    loadDataset(noTruth, { requireAnswer: true }),
    (e: Error) =>
      e.message ===
      `${noTruth} row 3: missing field 'answer' or 'label' or 'ground_truth' or 'reward_model.ground_truth'; expected the gold answer`,
  );
  const empty = file('empty-truth.jsonl', '{"prompt": "a", "label": "1"}\n{"prompt": "b", "label": " "}\n');
  await assert.rejects(
    loadDataset(empty, { requireAnswer: true }),
    (e: Error) => e.message === `${empty}:2: field 'label' is empty; expected the gold answer`,
  );
});

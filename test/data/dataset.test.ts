// Dataset files: field mapping (prompt text, chat messages, answer / ground_truth, dotted paths),
// JSONL and Parquet streaming, seeded shuffling, and one-line errors naming file, line/row, field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { loadDataset, readDataset, rowToExample } from '../../src/data/dataset.ts';
import { listSource } from '../../src/data/source.ts';
import { shuffled } from '../../src/data/shuffle.ts';
import { byCodeUnit } from '../../src/util/order.ts';

const dir = mkdtempSync(join(tmpdir(), 'ringrl-data-'));
const jsonl = (name: string, rows: unknown[], raw?: string) => {
  const path = join(dir, name);
  writeFileSync(path, raw ?? rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
};

test('JSONL: prompt/answer/response rows, blank lines skipped, numbers and objects as answers', async () => {
  const file = jsonl(
    'a.jsonl',
    [],
    '{"prompt": "1+1=", "answer": 2, "response": "<think>1+1</think>\\\\boxed{2}"}\n\n{"prompt": "x", "ground_truth": {"numbers": [1], "target": 1}}\n',
  );
  const rows = await loadDataset(file);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], {
    source: `${file}:1`,
    prompt: '1+1=',
    answer: '2',
    response: '<think>1+1</think>\\boxed{2}',
  });
  assert.equal(rows[1]!.answer, '{"numbers":[1],"target":1}');
  assert.equal(rows[1]!.source, `${file}:3`, 'line numbers count blank lines');
});

test('chat messages: a trailing assistant message is the SFT response; custom and dotted field names', () => {
  const ex = rowToExample(
    {
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
      answer: '1',
    },
    'f:1',
    { requireResponse: true },
  );
  assert.deepEqual(ex.prompt, [
    { role: 'system', content: 's' },
    { role: 'user', content: 'q' },
  ]);
  assert.equal(ex.response, 'a');
  const verl = rowToExample({ question: 'q', reward_model: { ground_truth: '42' } }, 'f:2', {
    fields: { prompt: 'question', answer: 'reward_model.ground_truth' },
    requireAnswer: true,
  });
  assert.equal(verl.prompt, 'q');
  assert.equal(verl.answer, '42');
});

test('missing fields are one-line errors naming file, line and field', async () => {
  const file = jsonl('missing.jsonl', [
    { prompt: 'a', answer: '1', response: 'r' },
    { prompt: 'b', response: 'r' },
  ]);
  await assert.rejects(
    loadDataset(file, { requireAnswer: true }),
    (e: Error) =>
      e.name === 'RingrlError' &&
      e.message ===
        `${file}:2: missing field 'answer' or 'label' or 'ground_truth' or 'reward_model.ground_truth'; expected the gold answer`,
  );
  const noResponse = jsonl('noresp.jsonl', [{ prompt: 'a', answer: '1' }]);
  await assert.rejects(
    loadDataset(noResponse, { requireResponse: true }),
    new RegExp(`^RingrlError: ${noResponse}:1: missing field 'response'`),
  );
  const noPrompt = jsonl('noprompt.jsonl', [{ question: 'a', answer: '1' }]);
  await assert.rejects(loadDataset(noPrompt), new RegExp(`${noPrompt}:1: missing field 'prompt' \\(or 'messages'\\)`));
  const custom = jsonl('custom.jsonl', [{ q: 'a', gold: '1' }, { q: 'b' }]);
  await assert.rejects(
    loadDataset(custom, { fields: { prompt: 'q', answer: 'gold' }, requireAnswer: true }),
    new RegExp(`${custom}:2: missing field 'gold'`),
  );
  const badMessages = jsonl('badmsg.jsonl', [{ messages: [{ role: 'user' }], answer: '1' }]);
  await assert.rejects(
    loadDataset(badMessages),
    new RegExp(`${badMessages}:1: field 'messages\\[0\\]' must be \\{role: string, content: string\\}`),
  );
});

test('empty, malformed, missing and unknown-format files are one-line errors', async () => {
  const empty = jsonl('empty.jsonl', [], '');
  await assert.rejects(
    loadDataset(empty),
    new RegExp(`^RingrlError: ${empty}: dataset is empty; expected at least one row$`),
  );
  const blank = jsonl('blank.jsonl', [], '\n\n  \n');
  await assert.rejects(loadDataset(blank), /dataset is empty/);
  const bad = jsonl('bad.jsonl', [], '{"prompt": "a", "answer": "1"}\n{"prompt": "b", \n');
  await assert.rejects(loadDataset(bad), new RegExp(`^RingrlError: ${bad}:2: malformed JSON`));
  const notObject = jsonl('arr.jsonl', [], '[1, 2]\n');
  await assert.rejects(loadDataset(notObject), /arr.jsonl:1: expected a JSON object per row, got an array/);
  await assert.rejects(loadDataset(join(dir, 'nope.jsonl')), /nope.jsonl: dataset file not found/);
  const csv = jsonl('data.csv', [], 'a,b\n');
  await assert.rejects(loadDataset(csv), /data.csv: unknown dataset format; expected a .jsonl or .parquet file/);
  const fakeParquet = jsonl('fake.parquet', [], 'not parquet at all');
  await assert.rejects(loadDataset(fakeParquet), /fake.parquet: not a readable Parquet file/);
});

test('Parquet: rows stream across row groups; errors name the row', async () => {
  const n = 25;
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'prompt', data: Array.from({ length: n }, (_, i) => `${i}+1=`) },
      { name: 'answer', data: Array.from({ length: n }, (_, i) => (i === 17 ? null : String(i + 1))) },
    ],
    rowGroupSize: 10,
  });
  const file = join(dir, 'd.parquet');
  writeFileSync(file, Buffer.from(buffer));
  const firstTwelve = [];
  for await (const ex of readDataset(file, { limit: 12 })) firstTwelve.push(ex);
  assert.deepEqual(
    firstTwelve.map((e) => e.prompt),
    Array.from({ length: 12 }, (_, i) => `${i}+1=`),
  );
  assert.equal(firstTwelve[11]!.source, `${file} row 11`);
  assert.equal(firstTwelve[3]!.answer, '4');
  await assert.rejects(
    loadDataset(file, { requireAnswer: true }),
    new RegExp(`^RingrlError: ${file} row 17: missing field 'answer' or 'label' or 'ground_truth'`),
  );
});

test('seeded shuffling: deterministic per seed, a permutation, reshuffled per epoch', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  assert.deepEqual(shuffled(items, 3), shuffled(items, 3));
  assert.notDeepEqual(shuffled(items, 3), shuffled(items, 4));
  assert.deepEqual(
    [...shuffled(items, 3)].sort((a, b) => a - b),
    items,
  );
  const examples = items.map((i) => ({ source: String(i), prompt: `p${i}`, answer: '' }));
  const source = listSource(examples, 7, 'test');
  const epoch1 = Array.from({ length: 50 }, () => source.next().source);
  const epoch2 = Array.from({ length: 50 }, () => source.next().source);
  assert.deepEqual([...epoch1].sort(byCodeUnit), [...epoch2].sort(byCodeUnit));
  assert.notDeepEqual(epoch1, epoch2);
  // A fresh source seeked to the cursor continues identically (resume).
  const resumed = listSource(examples, 7, 'test');
  resumed.cursor = 60;
  assert.equal(resumed.next().source, epoch2[10]);
});

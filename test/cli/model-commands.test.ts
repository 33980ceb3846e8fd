// `ringrl init` and `ringrl logprobs` end to end (in-process), including their bad-input errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { Policy } from '../../src/train/policy.ts';
import { assertClose } from '../helpers.ts';

/** Run the CLI, capturing stdout and stderr lines. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log,
    error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const work = mkdtempSync(join(tmpdir(), 'ringrl-cli-'));
const model = join(work, 'model');

test('init writes a loadable model dir; logprobs prints what the trainer computes', async () => {
  const init = await cli('init', '--preset', 'tiny', '--out', model, '--seed', '5');
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /wrote .* \(llama, 2 layers, d_model 32/);
  const tokens = [
    [1, 5, 9, 3, 60],
    [2, 7],
  ];
  writeFileSync(join(work, 't.json'), JSON.stringify({ tokens }));
  const run = await cli('logprobs', '--model', model, '--tokens', join(work, 't.json'));
  assert.equal(run.code, 0, run.err);
  const printed = JSON.parse(run.out).logprobs as number[][];
  assert.deepEqual(
    printed.map((r) => r.length),
    [4, 1],
  );
  const expected = await Policy.load(model).score(tokens);
  assertClose(printed.flat(), expected.logprobs.flat(), 1e-6, 'logprobs');
  assert.ok(printed.flat().every((v) => v < 0 && v > -10));
});

test('bad flags and inputs are one-line errors with exit code 2', async () => {
  const cases: [string[], RegExp][] = [
    [['init', '--preset', 'huge', '--out', join(work, 'x')], /--preset 'huge' is unknown; expected one of tiny/],
    [['init', '--preset', 'tiny', '--out', model], /exists and is not empty; pass --force/],
    [['init', '--preset', 'tiny'], /--out is required/],
    [['init', '--preset', 'tiny', '--out', join(work, 'y'), '--seed=-1'], /--seed must be an integer >= 0, got '-1'/],
    [['logprobs', '--model', join(work, 'nope'), '--tokens', join(work, 't.json')], /model directory does not exist/],
    [['logprobs', '--model', model, '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  writeFileSync(
    join(work, 'oov.json'),
    JSON.stringify({
      tokens: [
        [1, 2],
        [3, 64],
      ],
    }),
  );
  cases.push([
    ['logprobs', '--model', model, '--tokens', join(work, 'oov.json')],
    /oov\.json: tokens\[1\]\[1\] = 64 is outside the model's vocabulary \[0, 64\)/,
  ]);
  writeFileSync(join(work, 'shape.json'), JSON.stringify({ tokens: [1, 2, 3] }));
  cases.push([
    ['logprobs', '--model', model, '--tokens', join(work, 'shape.json')],
    /shape\.json: tokens\[0\] must be a non-empty array of integer token ids/,
  ]);
  for (const [argv, pattern] of cases) {
    const { code, err } = await cli(...argv);
    assert.equal(code, 2, `${argv.join(' ')} → ${err}`);
    assert.equal(err.split('\n').length, 1, `one line: ${err}`);
    assert.match(err, pattern);
  }
});

test('generate prints one line per sample; --report-mismatch rescoring shows fp8 mismatch; bad prompts name the prompt and field', async () => {
  writeFileSync(join(work, 'p.json'), JSON.stringify({ prompts: [[1, 2, 3], [7]] }));
  const run = await cli(
    'generate',
    '--model',
    model,
    '--prompts',
    join(work, 'p.json'),
    '--max-new-tokens',
    '6',
    '--n',
    '2',
    '--precision',
    'fp8',
    '--report-mismatch',
    '--seed',
    '4',
  );
  assert.equal(run.code, 0, run.err);
  const lines = run.out.split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.prompt_index, l.sample_index]),
    [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ],
  );
  for (const l of lines) {
    assert.equal(l.tokens.length, 6);
    assert.equal(l.finish_reason, 'length');
    assert.equal(l.trainer_logprobs.length, 6);
    assert.ok(
      l.policy_logprobs.some((lp: number, i: number) => Math.abs(lp - l.trainer_logprobs[i]) > 1e-6),
      'fp8 rollout log-probs differ from the fp32 trainer',
    );
  }
  assert.match(
    run.err,
    /mismatch vs fp32 trainer \(fp8 rollout, 24 tokens\): mean \|Δlogp\| [0-9.e+-]+, max \|Δlogp\| [0-9.e+-]+, KL\(π_infer‖π_train\) k3/,
  );

  const bad: [string[], RegExp][] = [
    [['--top-p', '1.5'], /p\.json: prompt 0: top_p must be in \(0, 1\], got 1\.5/],
    [['--temperature=-1'], /p\.json: prompt 0: temperature must be a number >= 0, got -1/],
  ];
  writeFileSync(join(work, 'oovp.json'), JSON.stringify({ prompts: [[1], [2, 99]] }));
  writeFileSync(join(work, 'longp.json'), JSON.stringify({ prompts: [Array(3000).fill(1)] }));
  for (const [flags, pattern] of bad) {
    const r = await cli(
      'generate',
      '--model',
      model,
      '--prompts',
      join(work, 'p.json'),
      '--max-new-tokens',
      '4',
      ...flags,
    );
    assert.equal(r.code, 2);
    assert.match(r.err, pattern);
  }
  const oov = await cli('generate', '--model', model, '--prompts', join(work, 'oovp.json'), '--max-new-tokens', '4');
  assert.match(oov.err, /oovp\.json: prompt 1: token 1 = 99 is outside the model's vocabulary \[0, 64\)/);
  const long = await cli('generate', '--model', model, '--prompts', join(work, 'longp.json'), '--max-new-tokens', '4');
  assert.match(long.err, /longp\.json: prompt 0: 3000 tokens do not fit the model's context of 2048/);
});

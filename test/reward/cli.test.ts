// `ringrl reward math` and `ringrl sandbox run` as a user runs them: output lines and one-line errors.
// Few spawns on purpose: each CLI start transpiles the CLI (seconds on 2 cores).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ringrlCli } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'ringrl-cli-'));
const ringrl = (...args: string[]) =>
  spawnSync(process.execPath, [...ringrlCli, ...args], { encoding: 'utf8', timeout: 60_000 });

test('reward math prints one JSON line per input line, and names file:line for a bad one', () => {
  const input = join(dir, 'in.jsonl');
  writeFileSync(
    input,
    [
      '{"completion": "so \\\\boxed{\\\\frac{1}{2}}", "answer": "0.5"}',
      '',
      '{"completion": "the answer is 500", "answer": 5}',
      '{"answer": "1"}',
    ].join('\n'),
  );
  const r = ringrl('reward', 'math', '--input', input);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `${input}:4: "completion" must be a string, got nothing`);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.reward, l.extracted]),
    [
      [1, '\\frac{1}{2}'],
      [0, '500'],
    ],
  );
  assert.ok(lines.every((l) => typeof l.reason === 'string'));
});

test('sandbox run prints status, exit code, output and wall time', () => {
  const file = join(dir, 'rev.py');
  const stdin = join(dir, 'in.txt');
  writeFileSync(file, 'print(input()[::-1])');
  writeFileSync(stdin, 'hello');
  const r = ringrl('sandbox', 'run', '--lang', 'python', '--file', file, '--stdin', stdin);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual([out.status, out.exit_code, out.stdout], ['ok', 0, 'olleh\n']);
  assert.equal(typeof out.wall_ms, 'number');
});

test('sandbox run rejects bad flags with one line', () => {
  const r = ringrl('sandbox', 'run', '--lang', 'ruby', '--file', 'x.rb');
  assert.equal(r.status, 2);
  assert.equal(
    r.stderr.trim(),
    "ringrl sandbox run: --lang must be one of python, pytest, javascript, typescript, bash, c, cpp, go, java, rust, got 'ruby'",
  );
});

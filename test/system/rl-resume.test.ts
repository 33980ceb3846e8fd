// Kill `ringrl rl` with SIGKILL mid-run, then --resume: the run continues from its last checkpoint
// with its partial rollouts; steps, metrics and samples have no gaps or duplicates; and the result
// equals an uninterrupted run's (rollouts are seeded per sequence, so a resumed run replays exactly).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { maxAbsDiff, ringrlCli } from '../helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'ringrl-resume-'));
const steps = 5;
const args = (out: string) => [
  ...ringrlCli,
  'rl',
  '--model',
  join(work, 'base'),
  '--task',
  'arithmetic',
  '--difficulty',
  '1',
  '--steps',
  String(steps),
  '--threads',
  '1',
  '-q',
  '--set',
  'rollout.max_new_tokens=40',
  '--set',
  'rollout.token_budget=120',
  '--set',
  'rollout.pool_capacity=12',
  '--set',
  'rollout.group_size=4',
  '--set',
  'rollout.retention=3',
  '--set',
  'eval.num_problems=4',
  '--set',
  'eval.max_new_tokens=40',
  '--set',
  'run.checkpoint_every=1',
  '--set',
  'run.keep_checkpoints=0',
  '--set',
  'rl.optimizer.lr=0.003',
  '--out',
  out,
];

function metricRows(run: string): { step: number; [k: string]: number }[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

test('SIGKILL mid-run, then --resume: no gaps or duplicates, same result as an uninterrupted run', {
  timeout: 240_000,
}, async () => {
  const init = spawnSync(
    process.execPath,
    [...ringrlCli, 'init', '--preset', 'tiny', '--tokenizer', 'char', '--out', join(work, 'base'), '--seed', '4'],
    { encoding: 'utf8' },
  );
  assert.equal(init.status, 0, init.stderr);

  const whole = join(work, 'whole');
  const straight = spawnSync(process.execPath, args(whole), { encoding: 'utf8' });
  assert.equal(straight.status, 0, straight.stderr);

  const killed = join(work, 'killed');
  const child = spawn(process.execPath, args(killed), { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (existsSync(join(killed, 'checkpoints', '2'))) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(poll);
      reject(new Error('the run finished before it could be killed'));
    });
  });
  await new Promise((r) => child.on('exit', r));
  assert.ok(!existsSync(join(killed, 'checkpoints', String(steps))), 'killed before the end');

  const resumed = spawnSync(process.execPath, [...ringrlCli, 'rl', '--resume', killed, '-q'], { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);

  const rows = metricRows(killed).filter((r) => 'reward/mean' in r);
  assert.deepEqual(
    rows.map((r) => r.step),
    [1, 2, 3, 4, 5],
    'every step logged exactly once',
  );
  const samples = readFileSync(join(killed, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step as number);
  assert.deepEqual([...new Set(samples)], [1, 2, 3, 4, 5]);
  assert.ok(
    samples.every((s, i) => i === 0 || s >= samples[i - 1]!),
    'samples in step order, none repeated after the resume',
  );
  const state = JSON.parse(readFileSync(join(killed, 'checkpoints', '2', 'rl_state.json'), 'utf8'));
  assert.ok(
    state.scheduler.groups.some((g: { members: { partial: unknown }[] }) => g.members.some((m) => m.partial)),
    'the checkpoint holds partial rollouts',
  );

  const reference = metricRows(whole).filter((r) => 'reward/mean' in r);
  for (const key of ['reward/mean', 'response_length/mean', 'rollout/generated_tokens', 'c3po/retained']) {
    assert.deepEqual(
      rows.map((r) => r[key]),
      reference.map((r) => r[key]),
      `${key} matches the uninterrupted run`,
    );
  }
  const a = readSafetensors(join(whole, 'checkpoints', String(steps), 'model.safetensors'));
  const b = readSafetensors(join(killed, 'checkpoints', String(steps), 'model.safetensors'));
  for (const [name, t] of a) assert.ok(maxAbsDiff(t.data, b.get(name)!.data) <= 1e-6, `final ${name} matches`);
});

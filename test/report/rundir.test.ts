// RunDir: layout, crash-safe JSONL appends (torn and corrupt lines), metric merging, atomic checkpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunDir, runPath } from '../../src/report/rundir.ts';
import { appendJsonl, readJsonl } from '../../src/report/jsonl.ts';
import { formatConfig, loadConfig } from '../../src/config/index.ts';

const work = mkdtempSync(join(tmpdir(), 'ringrl-rundir-'));
const collect = () => {
  const warnings: string[] = [];
  return { warnings, warn: (m: string) => void warnings.push(m) };
};

test('create writes config.yaml and checkpoints/; metrics and samples append one object per line', () => {
  const config = loadConfig({ sets: ['run.name=r1', `run.dir=${work}`, 'sft.steps=7'] });
  const dir = runPath(config, 'sft');
  assert.equal(dir, join(work, 'r1'));
  const run = RunDir.create(dir, formatConfig(config));
  assert.ok(existsSync(join(dir, 'checkpoints')));
  assert.match(readFileSync(run.configPath, 'utf8'), /steps: 7/);
  run.logMetrics(1, { 'reward/mean': 0.25, 'time/train_s': 1.5, 'grad/norm': NaN, skipped: undefined });
  run.logMetrics(2, { 'reward/mean': 0.5 });
  run.logSamples(2, [
    { prompt: 'p', response: 'r', reward: 1 },
    { prompt: 'q', response: 's', reward: 0 },
  ]);
  const lines = readFileSync(run.metricsPath, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!);
  assert.equal(first.step, 1);
  assert.equal(first['reward/mean'], 0.25);
  assert.equal(first['grad/norm'], null, 'NaN is written as null');
  assert.ok(Math.abs(first.wall_time - Date.now() / 1000) < 60);
  assert.ok(!('skipped' in first));
  assert.deepEqual(
    run.readSamples().map((s) => [s.step, s.prompt]),
    [
      [2, 'p'],
      [2, 'q'],
    ],
  );
  assert.throws(() => RunDir.create(dir, formatConfig(config)), /already holds a run/);
  assert.throws(() => run.logMetrics(3, { 'Reward Mean': 1 }), /metric name 'Reward Mean' must be lowercase segments/);
  assert.throws(() => run.logMetrics(-1, {}), /step must be an integer >= 0/);
  assert.throws(() => RunDir.open(join(work, 'nope')), /run directory does not exist/);
  assert.equal(RunDir.open(dir).readMetrics().length, 2);
});

test('default run name is <command>-<UTC time>', () => {
  const config = loadConfig();
  assert.equal(runPath(config, 'rl', new Date(Date.UTC(2026, 10, 29, 8, 30, 5))), join('runs', 'rl-20261129-083005'));
});

test('rows for one step merge, later values winning (eval rows, re-logged steps after resume)', () => {
  const run = RunDir.create(join(work, 'merge'));
  run.logMetrics(1, { 'sft/loss': 3 });
  run.logMetrics(2, { 'sft/loss': 2 });
  run.logMetrics(2, { 'eval/accuracy': 0.1 });
  run.logMetrics(1, { 'sft/loss': 2.9 }); // resumed from step 0 and re-ran step 1
  const rows = run.readMetrics();
  assert.deepEqual(
    rows.map((r) => [r.step, r['sft/loss'], r['eval/accuracy']]),
    [
      [1, 2.9, undefined],
      [2, 2, 0.1],
    ],
  );
});

test('a torn last line is ignored on read with a warning, and cut before the next append', () => {
  const { warnings, warn } = collect();
  const path = join(work, 'torn.jsonl');
  writeFileSync(path, '{"step":1,"a":1}\n{"step":2,"a":2}\n{"step":3,"a"');
  const read = readJsonl(path, warn);
  assert.deepEqual(read.rows, [
    { step: 1, a: 1 },
    { step: 2, a: 2 },
  ]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /torn\.jsonl:3: ignored a torn last line/);
  appendJsonl(path, [{ step: 3, a: 3 }], warn);
  assert.match(warnings[1]!, /torn\.jsonl: removed a torn last line \(13 bytes\)/);
  assert.equal(readFileSync(path, 'utf8'), '{"step":1,"a":1}\n{"step":2,"a":2}\n{"step":3,"a":3}\n');
  assert.equal(readJsonl(path, warn).rows.length, 3);
  assert.equal(warnings.length, 2, 'no warning once repaired');
});

test('a corrupt line in the middle is skipped with a warning naming file:line; the rest is kept', () => {
  const { warnings, warn } = collect();
  const run = RunDir.create(join(work, 'corrupt'), undefined, { warn });
  run.logMetrics(1, { 'reward/mean': 0.1 });
  appendFileSync(run.metricsPath, '{"step": 2, "reward/mean": 0.2\n[1,2]\n{"reward/mean": 5}\n');
  run.logMetrics(3, { 'reward/mean': 0.3 });
  const rows = run.readMetrics();
  assert.deepEqual(
    rows.map((r) => r.step),
    [1, 3],
  );
  assert.equal(warnings.length, 3);
  assert.match(warnings[0]!, /metrics\.jsonl:2: skipped a corrupt line \(/);
  assert.match(warnings[1]!, /metrics\.jsonl:3: skipped a line that is not a JSON object/);
  assert.match(warnings[2]!, /metrics\.jsonl:4: skipped a row without a numeric "step"/);
});

test('a writer killed with SIGKILL mid-append leaves only whole lines (or one torn tail) behind', async () => {
  const path = join(work, 'killed.jsonl');
  const script = `import { appendJsonl } from ${JSON.stringify(new URL('../../src/report/jsonl.ts', import.meta.url).href)};
    const pad = 'x'.repeat(200000); for (let i = 0; ; i++) appendJsonl(${JSON.stringify(path)}, [{ step: i, pad }]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && (!existsSync(path) || readFileSync(path).length < 2_000_000))
    await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const { warnings, warn } = collect();
  const rows = readJsonl<{ step: number; pad: string }>(path, warn).rows;
  assert.ok(rows.length >= 5, `${rows.length} rows`);
  rows.forEach((r, i) => {
    assert.equal(r.step, i);
    assert.equal(r.pad.length, 200000);
  });
  assert.ok(warnings.length <= 1, warnings.join('\n'));
  appendJsonl(path, [{ step: rows.length, pad: 'after' }], warn);
  assert.equal(readJsonl(path, warn).rows.length, rows.length + 1, 'appends after the crash parse');
});

test('checkpoints: listed only when complete; a failed write leaves nothing; keep prunes the oldest', async () => {
  const run = RunDir.create(join(work, 'ckpt'));
  assert.equal(run.latestCheckpoint(), undefined);
  for (const step of [10, 20, 30])
    await run.saveCheckpoint(step, (dir) => writeFileSync(join(dir, 'weights.bin'), String(step)));
  assert.deepEqual(run.checkpoints(), [10, 20, 30]);
  await assert.rejects(
    run.saveCheckpoint(40, () => {
      throw new Error('disk full');
    }),
    /disk full/,
  );
  assert.deepEqual(run.checkpoints(), [10, 20, 30], 'the failed checkpoint is not listed');
  assert.deepEqual(run.latestCheckpoint(), { step: 30, dir: join(work, 'ckpt', 'checkpoints', '30') });
  await run.saveCheckpoint(50, async (dir) => writeFileSync(join(dir, 'weights.bin'), '50'), 2);
  assert.deepEqual(run.checkpoints(), [30, 50]);
  assert.deepEqual(
    readdirSync(join(work, 'ckpt', 'checkpoints')).sort(),
    ['30', '50'],
    'temporary dirs are cleaned up',
  );
  assert.equal(readFileSync(join(run.checkpointDir(50), 'weights.bin'), 'utf8'), '50');
});

// Fault injection into `ringrl rl --engine-workers 3`: one worker is SIGKILLed mid-rollout at a
// random moment, another is stalled (SIGSTOP) past rollout.faults.timeout_s. The run finishes every
// step; metrics.jsonl has each step once; every trajectory is logged once and whole (its group
// complete, its per-token log-probs still the trainer's own: sync mode, so every token was sampled
// under the weights the trainer recomputes with); the log names both lost engines, where their
// sequences resumed, and their restarts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { ringrlCli } from '../helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'ringrl-engine-faults-'));
const model = join(work, 'model');
const modelConfig = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
saveModelDir(model, modelConfig, initWeights(modelConfig, 1));
writeTokenizer(model, 'char');

// Enough steps after the faults (injected after step 1) for both lost workers to be restarted on a
// loaded machine, where a restart (kill, spawn, load the weights) takes several seconds.
const STEPS = 12;
const GROUP = 4;
const stopped: number[] = [];
let rl: ChildProcess | undefined;
after(() => {
  for (const pid of stopped) signal(pid, 'SIGCONT'); // nothing left behind frozen
  rl?.kill('SIGKILL');
});

function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false; // already gone (the supervisor killed and replaced it)
  }
}

function readJsonl(path: string): Record<string, any>[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once the worker at `url` has a request in flight (it is mid-rollout). */
async function busy(url: string): Promise<void> {
  for (;;) {
    const info = (await (await fetch(`${url}/server_info`)).json()) as { requests: number };
    if (info.requests > 0) return;
    await sleep(10);
  }
}

test('engine workers: one SIGKILLed and one stalled mid-rollout; every step and trajectory once, engines resumed and restarted', {
  timeout: 120_000,
}, async () => {
  const runDir = join(work, 'run');
  rl = spawn(
    process.execPath,
    [
      ...ringrlCli,
      'rl',
      '--jsonl',
      '--model',
      model,
      '--task',
      'arithmetic',
      '--steps',
      String(STEPS),
      '--engine-workers',
      '3',
      '--mode',
      'sync',
      '--out',
      runDir,
      ...[
        'rollout.max_new_tokens=32',
        'rollout.token_budget=160',
        'rollout.pool_capacity=24',
        `rollout.group_size=${GROUP}`,
        'rollout.faults.timeout_s=2',
        'rollout.faults.give_up_s=60',
        'eval.num_problems=2',
        'eval.max_new_tokens=4',
        'run.samples_per_step=1000',
        'run.keep_checkpoints=1',
        'runtime.threads=1',
      ].flatMap((s) => ['--set', s]),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  rl.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const workers: { pid: number; url: string }[] = [];
  const messages: string[] = [];
  let result: Record<string, any> | undefined;
  const lines = createInterface({ input: rl.stdout! });
  lines.on('line', (line) => {
    const e = JSON.parse(line);
    if (e.event === 'info' || e.event === 'warning') messages.push(e.message);
    const w = /^engine worker (\d+) \(pid (\d+)\) on (\S+)$/.exec(e.message ?? '');
    if (w && !workers[Number(w[1])]) workers[Number(w[1])] = { pid: Number(w[2]), url: w[3]! };
    if (e.event === 'result') result = e;
  });
  const exited = new Promise<number | null>((r) => rl!.once('exit', (code) => r(code)));

  // The faults, after the first step, each while its victim has requests in flight.
  const metrics = join(runDir, 'metrics.jsonl');
  while (!existsSync(metrics) || !readFileSync(metrics, 'utf8').includes('"step":1,')) await sleep(20);
  assert.equal(workers.filter(Boolean).length, 3, `three workers announced: ${messages.join(' | ')}`);
  const [killed, stalled] = [workers[0]!, workers[1]!];
  await busy(killed.url);
  await sleep(Math.random() * 50);
  assert.ok(signal(killed.pid, 'SIGKILL'));
  await busy(stalled.url);
  assert.ok(signal(stalled.pid, 'SIGSTOP'));
  stopped.push(stalled.pid);

  const code = await exited;
  assert.equal(code, 0, `ringrl rl exited ${code}: ${stderr}`);
  assert.equal(result?.steps, STEPS);

  // The log names each lost engine, why, and where its sequences went; both came back restarted.
  const log = messages.join('\n');
  if (process.env.RINGRL_TEST_LOG) console.log(log);
  const lost = (url: string) =>
    new RegExp(`^engine ${url} lost \\((.*)\\): (\\d+) sequences? resumed( on (.*))?$`, 'm');
  const k = lost(killed.url).exec(log);
  const s = lost(stalled.url).exec(log);
  assert.ok(k, `the SIGKILLed engine is named:\n${log}`);
  assert.ok(s, `the stalled engine is named:\n${log}`);
  // Stalled with requests in flight (or, had they just ended, at the weight update that followed).
  assert.match(s[1]!, /^(timeout after 2 s|\/update_weights_from_disk: no answer within 2 s)$/);
  for (const m of [k, s]) {
    if (Number(m[2]) > 0) assert.ok(m[4] && !m[4].includes(m === k ? killed.url : stalled.url), m[0]);
  }
  assert.match(
    log,
    new RegExp(`^engine ${killed.url} restarted as http://127\\.0\\.0\\.1:\\d+ at weight version \\d+$`, 'm'),
  );
  assert.match(
    log,
    new RegExp(`^engine ${stalled.url} restarted as http://127\\.0\\.0\\.1:\\d+ at weight version \\d+$`, 'm'),
  );

  // metrics.jsonl: steps 1..STEPS once each; the trainer's recompute matches every rollout log-prob.
  const rows = readJsonl(join(runDir, 'metrics.jsonl')).filter((r) => 'reward/mean' in r);
  assert.deepEqual(
    rows.map((r) => r.step),
    Array.from({ length: STEPS }, (_, i) => i + 1),
  );
  for (const r of rows) assert.ok(r['mismatch/logp_diff_max'] < 1e-4, `step ${r.step}: ${r['mismatch/logp_diff_max']}`);

  // samples.jsonl: every trajectory once, groups whole, each sampled under its step's weights.
  const samples = readJsonl(join(runDir, 'samples.jsonl')).filter((x) => x.kind === 'rollout');
  const keys = samples.map((x) => `${x.group}/${x.sample}`);
  assert.equal(new Set(keys).size, keys.length, 'no trajectory logged twice');
  const groups = new Map<string, number[]>();
  for (const x of samples) groups.set(x.group, [...(groups.get(x.group) ?? []), x.sample]);
  for (const [group, members] of groups)
    assert.deepEqual(
      members.sort((x, y) => x - y),
      Array.from({ length: GROUP }, (_, i) => i),
      `group ${group} complete`,
    );
  for (const x of samples) {
    assert.ok(['stop', 'length'].includes(x.finish_reason), `${x.group}/${x.sample}: ${x.finish_reason}`);
    assert.deepEqual(
      x.versions,
      [x.step - 1, x.step - 1],
      `${x.group}/${x.sample} sampled under version ${x.step - 1}`,
    );
  }
});

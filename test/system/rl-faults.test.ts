// Faults in the RL loop: reward-service replicas that die (SIGKILL) or hang (SIGSTOP) mid-batch,
// and updates whose loss is not finite. The run finishes every step; metrics.jsonl has each step
// once; every trajectory is logged once, scored exactly once (none unscored, none counted 0 for a
// fault); skipped updates are reported, and too many in a row roll back to the last checkpoint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { taskSource } from '../../src/data/index.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { RunDir } from '../../src/report/index.ts';
import { type Scorer, createScorer } from '../../src/reward/scorer.ts';
import { buildService } from '../../src/reward/service/server.ts';
import { Policy } from '../../src/train/policy.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { type RlEvent, runRl } from '../../src/system/rl-run.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { ringrlCli } from '../helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'ringrl-rl-faults-'));
const model = join(work, 'model');
const modelConfig = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
saveModelDir(model, modelConfig, initWeights(modelConfig, 1));
writeTokenizer(model, 'char');

const replicas: ChildProcess[] = [];
after(() => {
  for (const r of replicas) r.kill('SIGKILL');
});

/** A `ringrl sandbox serve` replica on a free port; resolves to its URL once it listens. */
function startReplica(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [...ringrlCli, 'sandbox', 'serve', '--port', '0', '--concurrency', '2'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  replicas.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url) resolve({ url, proc });
    });
    proc.on('exit', (code) => reject(new Error(`replica exited (${code}) before listening: ${out}`)));
  });
}

function rlConfig(sets: string[]) {
  return loadConfig({
    sets: [
      `model.dir=${JSON.stringify(model)}`,
      'data.task=pycode',
      'data.difficulty=1',
      'rl.steps=4',
      'rl.optimizer.lr=0.003',
      'rollout.max_new_tokens=20',
      'rollout.token_budget=80',
      'rollout.pool_capacity=16',
      'rollout.group_size=4',
      'eval.num_problems=2',
      'eval.max_new_tokens=8',
      'run.samples_per_step=1000',
      'run.keep_checkpoints=0',
      'runtime.threads=1',
      ...sets,
    ],
  });
}

/** `ringrl rl` in process on the pycode task (difficulty 1) from the test model, with `scorer`. */
function rlPycode(run: RunDir, config: ReturnType<typeof rlConfig>, scorer: Scorer, onEvent: (e: RlEvent) => void) {
  return runRl({
    run,
    config,
    modelDir: model,
    resume: false,
    source: taskSource('pycode', { difficulty: 1 }),
    evalExamples: [],
    verify: getVerifier('pycode'),
    scorer,
    onEvent,
  });
}

function readJsonl(path: string): Record<string, any>[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** metrics.jsonl has steps 1..n once each; every trajectory appears in samples.jsonl once. */
function checkRunRecords(dir: string, steps: number) {
  const rows = readJsonl(join(dir, 'metrics.jsonl')).filter((r) => 'reward/mean' in r);
  assert.deepEqual(
    rows.map((r) => r.step),
    Array.from({ length: steps }, (_, i) => i + 1),
    'each step logged once, in order',
  );
  const samples = readJsonl(join(dir, 'samples.jsonl')).filter((s) => s.kind === 'rollout');
  const keys = samples.map((s) => `${s.group}/${s.sample}`);
  assert.equal(new Set(keys).size, keys.length, 'no trajectory logged twice');
  return { rows, samples };
}

test('reward-service replicas: one SIGKILLed mid-batch, one hung; every trajectory scored once, none unscored', {
  timeout: 120_000,
}, async () => {
  // a: a real `ringrl sandbox serve` process, SIGKILLed in the middle of step 2's scoring.
  // b: a replica that accepts connections and never answers (what a SIGSTOPped one looks like
  //    to its clients), so each request sent there waits out reward.timeout_s and is retried.
  // c: a healthy replica (in this process).
  const sockets: Socket[] = [];
  const hung = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const { app } = await buildService({
    concurrency: 2,
    queue: 64,
    sandboxOptions: { pythonWorkers: 2, nodeSpares: 0 },
  });
  const [a, c] = await Promise.all([startReplica(), app.listen({ port: 0, host: '127.0.0.1' })]);
  const b = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
  const config = rlConfig([
    `reward.sandbox=${JSON.stringify([a.url, b, c])}`,
    'reward.timeout_s=1',
    'reward.retries=2',
  ]);
  const log: string[] = [];
  const inner = await createScorer(config.reward, { task: 'pycode', log: (m) => log.push(m) });
  let step = 0;
  let calls = 0;
  let killed = false;
  const scorer: Scorer = {
    get inFlight() {
      return inner.inFlight;
    },
    score(input) {
      const pending = inner.score(input);
      if (step === 1 && ++calls === 6 && !killed) {
        killed = true; // requests are in flight to every replica now
        a.proc.kill('SIGKILL');
      }
      return pending;
    },
    close: () => inner.close(),
  };
  const run = RunDir.create(join(work, 'replicas'));
  const result = await rlPycode(run, config, scorer, (e) => void (e.type === 'step' && (step = e.step)));
  await scorer.close();
  await app.close();
  for (const socket of sockets) socket.destroy();
  hung.close();
  assert.ok(killed, 'the replica was killed mid-batch');
  // One line per lost replica, naming it, why, and where its request went instead.
  const urls = [a.url, b, c].map((u) => u.replace(/\/$/, ''));
  const lostLine = (url: string) =>
    new RegExp(`^reward replica ${url} lost \\((.+)\\): request retried on (http://\\S+);`, 'm').exec(log.join('\n'));
  const killedLine = lostLine(urls[0]!);
  const hungLine = lostLine(urls[1]!);
  assert.ok(killedLine, log.join('\n'));
  assert.ok(hungLine, log.join('\n'));
  assert.equal(hungLine[1], 'timeout after 1 s');
  assert.equal(hungLine[2], urls[2], "the hung replica's request went to the next replica");
  assert.equal(log.filter((l) => l.startsWith(`reward replica ${urls[1]} lost`)).length, 1, 'said once');
  assert.equal(result.step, 4);
  const { rows, samples } = checkRunRecords(run.path, 4);
  assert.equal(
    rows.reduce((n, r) => n + r['reward/unscored'], 0),
    0,
    'every request was retried on a live replica',
  );
  assert.equal(
    rows.reduce((n, r) => n + r['reward/scored'], 0),
    samples.filter((s) => s.finish_reason !== 'dropped').length,
    'each trajectory scored exactly once',
  );
  for (const s of samples)
    if (s.finish_reason !== 'dropped') assert.equal(typeof s.reward, 'number', `${s.group}/${s.sample} has a reward`);
});

test('non-finite updates are skipped and said so; N in a row roll back to the last checkpoint; again → stop', {
  timeout: 120_000,
}, async () => {
  const config = rlConfig(['rl.steps=6', 'run.checkpoint_every=2', 'rl.rollback_after=2']);
  // The fault: while `poison` is set, the trainer's loss comes back NaN (as a numerical blow-up would).
  let poison = false;
  const lossAndGrads = Policy.prototype.lossAndGrads;
  Policy.prototype.lossAndGrads = async function (...args: Parameters<typeof lossAndGrads>) {
    const out = await lossAndGrads.apply(this, args);
    return poison ? { ...out, loss: NaN } : out;
  };
  after(() => void (Policy.prototype.lossAndGrads = lossAndGrads));
  const nanScorer = (): Scorer => ({
    inFlight: 0,
    score: async ({ response }) => ({ status: 'scored', reward: response.length % 2, breakdown: {}, reason: '' }),
    close: async () => {},
  });
  const poisoned = (run: RunDir, onEvent: (e: RlEvent) => void) => rlPycode(run, config, nanScorer(), onEvent);
  const run = RunDir.create(join(work, 'nan'));
  const events: RlEvent[] = [];
  await poisoned(run, (e) => {
    events.push(e);
    if (e.type === 'step' && e.step === 2 && !events.some((x) => x.type === 'rollback')) poison = true;
    if (e.type === 'rollback') poison = false;
  });
  const skipped = events.filter((e) => e.type === 'skipped');
  assert.deepEqual(
    skipped.map((e) => e.step),
    [3, 4],
  );
  assert.match(
    (skipped[0] as Extract<RlEvent, { type: 'skipped' }>).reasons[0]!,
    /^policy step: loss is NaN; refusing to update the weights/,
  );
  assert.deepEqual(
    events.filter((e) => e.type === 'rollback').map((e) => (e as { to: number }).to),
    [2],
  );
  const { rows } = checkRunRecords(run.path, 6);
  assert.deepEqual(
    rows.map((r) => r['train/skipped']),
    [0, 0, 0, 0, 0, 0],
    'the skipped steps were rolled back and redone',
  );

  // A fault that comes back after the rollback stops the run, naming the checkpoint left intact.
  const again = RunDir.create(join(work, 'nan-again'));
  poison = false;
  await assert.rejects(
    poisoned(again, (e) => {
      if (e.type === 'step' && e.step === 2) poison = true;
    }),
    /rl step 4: 2 steps in a row skipped an update \(.*\), again after rolling back to checkpoint 2; stopping \(checkpoint 2 is intact\)/,
  );
});

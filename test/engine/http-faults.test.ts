// HttpEngine against fake SGLang servers that fail on cue: one dies mid-stream, one stalls, one
// answers 500, all go away. The fake's token and log-prob at context position p are fixed functions
// of p, so a sequence resumed anywhere must come out exactly as an uninterrupted one would: nothing
// lost, nothing generated twice, per-token log-probs and versions in place.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnginesLost, HttpEngine, type FaultOptions } from '../../src/engine/http.ts';
import { generateAll, type GenerationRequest } from '../../src/engine/types.ts';
import { loadConfig } from '../../src/config/index.ts';
import { taskSource } from '../../src/data/index.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { RunDir } from '../../src/report/index.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { runRl } from '../../src/system/rl-run.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';

const tokenAt = (p: number) => 10 + (p % 20);
const logprobAt = (p: number) => -0.05 - (p % 7) / 10;

interface Fake {
  url: string;
  /** /generate bodies received. */
  bodies: { input_ids: number[]; sampling_params: { max_new_tokens: number } }[];
  /** Drop every connection and stop listening (a killed process). */
  kill(): void;
}

const fakes: Fake[] = [];
after(() => {
  for (const f of fakes) f.kill();
});

/**
 * A fake SGLang server streaming one token per 5 ms. `dieAfter` chunks it dies; `stallAfter` chunks
 * it goes silent with the connection open; `fail` answers /generate with HTTP 500.
 */
async function fake(
  options: { dieAfter?: number; stallAfter?: number; fail?: boolean; incremental?: boolean } = {},
): Promise<Fake> {
  const sockets = new Set<Socket>();
  let version = 'default';
  let chunks = 0;
  const bodies: Fake['bodies'] = [];
  let stalled = false;
  const server = http.createServer((req, res) => {
    if (stalled) return; // a stalled process answers nothing
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', async () => {
      const body = raw ? JSON.parse(raw) : {};
      const json = (status: number, value: unknown) => res.writeHead(status).end(JSON.stringify(value));
      if (req.url === '/update_weights_from_disk') {
        version = String(body.weight_version);
        return json(200, { success: true, message: 'ok', num_paused_requests: 0 });
      }
      if (req.url === '/get_weight_version') return json(200, { weight_version: version });
      if (req.url !== '/generate') return json(200, { success: true });
      bodies.push(body);
      if (options.fail) return json(500, { error: 'internal error: out of memory' });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const prompt: number[] = body.input_ids;
      const records: [number, number, null][] = [];
      for (let i = 0; i < body.sampling_params.max_new_tokens; i++) {
        const p = prompt.length + i;
        records.push([logprobAt(p), tokenAt(p), null]);
        const last = i + 1 === body.sampling_params.max_new_tokens;
        const sent = options.incremental ? records.slice(-1) : records; // only the new token, or all so far
        const meta = {
          finish_reason: last ? { type: 'length' } : null,
          output_token_logprobs: sent,
          completion_tokens: records.length,
          weight_version: version,
        };
        res.write(`data: ${JSON.stringify({ output_ids: sent.map((r) => r[1]), meta_info: meta })}\n\n`);
        chunks++;
        // (after the chunk had time to arrive: a reset discards what the client has not read)
        if (options.dieAfter !== undefined && chunks >= options.dieAfter) return void setTimeout(kill, 30);
        if (options.stallAfter !== undefined && chunks >= options.stallAfter) return void (stalled = true);
        await new Promise((r) => setTimeout(r, 5));
        if (res.destroyed) return;
      }
      res.end('data: [DONE]\n\n');
    });
  });
  let dead = false;
  server.on('connection', (s) => {
    if (dead) return s.destroy(); // accepted while closing: a killed process would not answer
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kill = () => {
    dead = true;
    server.close();
    for (const s of sockets) s.destroy();
  };
  const f = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, kill };
  fakes.push(f);
  return f;
}

function requests(n: number, maxNewTokens: number): GenerationRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    prompt: [1, 2, 3 + i],
    params: { temperature: 1, maxNewTokens },
  }));
}

/** Every sequence is exactly what an uninterrupted server gives (no token lost or doubled). */
function assertWhole(results: Awaited<ReturnType<typeof generateAll>>, maxNewTokens: number) {
  for (const seq of results) {
    const positions = Array.from({ length: maxNewTokens }, (_, i) => seq.prompt.length + i);
    assert.deepEqual(seq.tokens, positions.map(tokenAt), `${seq.id} tokens`);
    assert.deepEqual(seq.policyLogprobs, positions.map(logprobAt), `${seq.id} log-probs`);
    assert.deepEqual(seq.versions, Array(maxNewTokens).fill(0), `${seq.id} versions`);
    assert.equal(seq.finishReason, 'length');
  }
}

function engineOn(servers: Fake[], faults: Partial<FaultOptions>, log: string[], incremental = false): HttpEngine {
  return new HttpEngine({
    servers: servers.map((s) => s.url),
    incrementalStream: incremental,
    stepMs: 50,
    faults: { healthIntervalMs: 0, breakerCooldownMs: 60_000, ...faults },
    log: (m) => log.push(m),
  });
}

for (const incremental of [false, true])
  test(`a server that dies mid-stream: its sequences resume on the other from their last chunk (${incremental ? 'incremental' : 'cumulative'} chunks)`, async () => {
    const [dying, healthy] = [await fake({ dieAfter: 6, incremental }), await fake({ incremental })];
    const log: string[] = [];
    const engine = engineOn([dying, healthy], {}, log, incremental);
    const results = await generateAll(engine, requests(4, 12));
    engine.close();
    assertWhole(results, 12);
    const line = log.find((l) => l.startsWith(`engine ${dying.url} lost`));
    assert.match(
      line ?? log.join('\n'),
      /lost \(connection failed: .*\): 2 sequences resumed on http:\/\/127\.0\.0\.1:\d+ \(2\)$/,
    );
    assert.ok(line!.endsWith(`on ${healthy.url} (2)`));
    // The resumed requests carried prompt + what was streamed, asking only for the rest.
    const resumed = healthy.bodies.filter((b) => b.input_ids.length > 3);
    assert.equal(resumed.length, 2);
    for (const b of resumed) assert.equal(b.sampling_params.max_new_tokens, 12 - (b.input_ids.length - 3));
  });

test('a stalled server is lost after the timeout; its sequences resume elsewhere', async () => {
  const [stalled, healthy] = [await fake({ stallAfter: 3 }), await fake()];
  const log: string[] = [];
  const engine = engineOn([stalled, healthy], { timeoutMs: 300 }, log);
  const results = await generateAll(engine, requests(4, 10));
  engine.close();
  stalled.kill();
  assertWhole(results, 10);
  assert.ok(
    log.includes(`engine ${stalled.url} lost (timeout after 0.3 s): 2 sequences resumed on ${healthy.url} (2)`),
    log.join('\n'),
  );
});

test('pause() with a stalled server: its sequences come back paused with what they streamed', async () => {
  const [stalled, healthy] = [await fake({ stallAfter: 3 }), await fake()];
  const log: string[] = [];
  const engine = engineOn([stalled, healthy], { timeoutMs: 300 }, log);
  engine.submit(requests(4, 200));
  assert.deepEqual(await engine.step(), []);
  const partial = await engine.pause();
  engine.close();
  stalled.kill();
  assert.deepEqual(
    partial.map((p) => p.id).sort((a, b) => a.localeCompare(b)),
    ['r0', 'r1', 'r2', 'r3'],
  );
  for (const seq of partial) {
    const positions = seq.tokens.map((_, i) => seq.prompt.length + i);
    assert.deepEqual(seq.tokens, positions.map(tokenAt), `${seq.id}: a prefix of the whole sequence`);
    assert.deepEqual(seq.policyLogprobs, positions.map(logprobAt));
    assert.equal(seq.finishReason, null);
  }
  assert.ok(partial.filter((p) => p.tokens.length > 0).length >= 3, 'the streamed tokens are kept');
  assert.ok(
    log.some((l) =>
      new RegExp(
        `^engine ${stalled.url} lost \\((timeout after 0\\.3 s|/pause_generation: no answer within 0\\.3 s)\\): 2 sequences returned to the pool \\(paused\\)$`,
      ).test(l),
    ),
    log.join('\n'),
  );
});

test('5xx answers: retried with backoff; breaker_failures in a row open the breaker', async () => {
  const [failing, healthy] = [await fake({ fail: true }), await fake()];
  const log: string[] = [];
  const engine = engineOn([failing, healthy], { breakerFailures: 2 }, log);
  const results = await generateAll(engine, requests(4, 6));
  engine.close();
  assertWhole(results, 6);
  assert.equal(failing.bodies.length, 2, 'the breaker opened after two failures');
  assert.ok(
    log.some((l) =>
      l.startsWith(
        `engine ${failing.url} lost (2 failed requests in a row, the last: ${failing.url}/generate: HTTP 500: internal error: out of memory)`,
      ),
    ),
    log.join('\n'),
  );
});

test('a lost remote server is probed after the cooldown and gets work again', async () => {
  const [flaky, healthy] = [await fake({ dieAfter: 2 }), await fake()];
  const log: string[] = [];
  const engine = engineOn([flaky, healthy], { breakerCooldownMs: 100 }, log);
  const first = await generateAll(engine, requests(2, 4));
  assertWhole(first, 4);
  // Bring a server back on the same address (as a restarted remote server would be).
  const port = Number(new URL(flaky.url).port);
  const back = http.createServer((_req, res) => res.writeHead(200).end('{}'));
  await new Promise<void>((r) => back.listen(port, '127.0.0.1', r));
  for (let i = 0; i < 100 && !log.some((l) => l.includes('back at weight version')); i++)
    await new Promise((r) => setTimeout(r, 20));
  engine.close();
  back.close();
  assert.ok(log.includes(`engine ${flaky.url} back at weight version as started`), log.join('\n'));
});

test('every engine gone: step() throws EnginesLost; the RL run checkpoints its pool and stops with one line', async () => {
  const gone = await fake({ dieAfter: 1 });
  const engine = engineOn([gone], { giveUpMs: 100 }, []);
  engine.submit(requests(1, 4));
  await assert.rejects(
    async () => {
      for (;;) await engine.step();
    },
    (e: Error) =>
      e instanceof EnginesLost &&
      /^every rollout engine is lost \(http:\/\/127\.0\.0\.1:\d+: connection failed: .*\) and none came back within 0\.1 s \(rollout\.faults\.give_up_s\)$/.test(
        e.message,
      ),
  );
  const partial = await engine.pause();
  assert.equal(partial.length, 1, 'the sequence comes back with its streamed token');
  assert.deepEqual(partial[0]!.tokens, [tokenAt(3)]);
  engine.close();

  // The whole run: step 1 on a live server, then it is killed; step 2 cannot roll out.
  const work = mkdtempSync(join(tmpdir(), 'ringrl-engines-gone-'));
  const model = join(work, 'model');
  const modelConfig = presetConfig('tiny', { vocabSize: builtinVocabSize('char') });
  saveModelDir(model, modelConfig, initWeights(modelConfig, 1));
  writeTokenizer(model, 'char');
  const server = await fake();
  const config = loadConfig({
    sets: [
      `rollout.servers=["${server.url}"]`,
      'rollout.engine=http',
      'rollout.max_new_tokens=8',
      'rollout.token_budget=24',
      'rollout.pool_capacity=8',
      'rollout.group_size=2',
      'rollout.faults.give_up_s=0.2',
      'rollout.faults.breaker_cooldown_s=60',
      'rl.steps=3',
      'run.samples_per_step=1000',
      'runtime.threads=1',
    ],
  });
  const run = RunDir.create(join(work, 'run'));
  let stopped: RegExpExecArray | null = null;
  await assert.rejects(
    runRl({
      run,
      config,
      modelDir: model,
      resume: false,
      source: taskSource('arithmetic', {}),
      evalExamples: [],
      verify: getVerifier('arithmetic'),
      onEvent: (e) => void (e.type === 'step' && e.step === 1 && server.kill()),
    }),
    (e: Error) =>
      !e.message.includes('\n') &&
      (stopped =
        /^rl step (\d+): every rollout engine is lost \(.*\) and none came back within 0\.2 s \(rollout\.faults\.give_up_s\); run stopped \(checkpoint (\d+) saved; ringrl rl --resume .* continues\)$/.exec(
          e.message,
        )) !== null,
  );
  const saved = Number(stopped![2]);
  assert.equal(saved, Number(stopped![1]) - 1, 'the last finished step is checkpointed');
  assert.equal(run.latestCheckpoint()?.step, saved);
  assert.ok(existsSync(join(run.latestCheckpoint()!.dir, 'rl_state.json')));
});

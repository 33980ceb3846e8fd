// The reward service over real HTTP on loopback: routes, body validation, SandboxFusion shapes,
// backpressure (429/503, never a lost request), survival after hostile programs, the client.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildService } from '../../src/reward/service/server.ts';
import { Limiter, Overloaded } from '../../src/reward/service/limiter.ts';
import { createRewardClient } from '../../src/reward/client.ts';
import { detectIsolation } from '../../src/reward/sandbox/isolation.ts';
import { byCodeUnit } from '../../src/util/order.ts';

async function post(base: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

describe('reward service', () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => {
    ({ app } = await buildService({ concurrency: 2, queue: 4, sandboxOptions: { pythonWorkers: 2, nodeSpares: 1 } }));
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => app.close());

  test('POST /run runs a program and reports status and isolation', async () => {
    const { status, json } = await post(base, '/run', { language: 'python', code: 'print(input() * 2)', stdin: 'ab' });
    assert.equal(status, 200);
    assert.deepEqual(
      [json.status, json.exit_code, json.stdout, json.isolation],
      ['ok', 0, 'abab\n', detectIsolation().level],
    );
  });

  test('POST /run with tests: io cases and the exit(0) guard', async () => {
    const io = await post(base, '/run', {
      language: 'javascript',
      code: 'const [a, b] = require("fs").readFileSync(0, "utf8").split(" ").map(Number); console.log(a * b)',
      tests: { kind: 'io', cases: [{ stdin: '6 7', expected: '42' }] },
    });
    assert.deepEqual([io.json.reward, io.json.passed, io.json.total], [1, 1, 1]);
    const hack = await post(base, '/run', {
      language: 'python',
      code: 'import sys; sys.exit(0)\ndef f(): return 1',
      tests: { kind: 'assert', code: 'assert f() == 2' },
    });
    assert.equal(hack.json.reward, 0);
    assert.match(hack.json.reason, /exit\(0\) guard/);
  });

  test('POST /verify/math', async () => {
    const { json } = await post(base, '/verify/math', { completion: 'so \\boxed{\\sqrt{18}}', answer: '3\\sqrt{2}' });
    assert.equal(json.reward, 1);
    assert.equal(json.extracted, '\\sqrt{18}');
  });

  test('POST /batch mixes runs and math checks', async () => {
    const { status, json } = await post(base, '/batch', {
      items: [
        { type: 'math', completion: '\\boxed{5}', answer: '500' },
        { type: 'run', language: 'python', code: 'print(1 + 1)' },
        { type: 'run', language: 'javascript', code: 'console.log(2 + 2)' },
      ],
    });
    assert.equal(status, 200);
    assert.deepEqual(
      json.results.map((r: any) => r.reward ?? r.stdout),
      [0, '2\n', '4\n'],
    );
  });

  test('bad bodies answer 400 with one line naming the field', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/run', { language: 'ruby', code: 'x' }, /^body\.language: .*python.*javascript/],
      ['/run', { language: 'python' }, /^body\.code: expected string/],
      [
        '/run',
        { language: 'python', code: '', limits: { wall_ms: 'soon' } },
        /^body\.limits\.wall_ms: expected number/,
      ],
      ['/run', { language: 'python', code: '', limits: { wall_ms: 1e9 } }, /^body\.limits\.wall_ms: .*120000/],
      ['/run', { language: 'python', code: '', files: { '../x': 'aGk=' } }, /^body\.files.*without '\.\.'/],
      ['/run', { language: 'python', code: '', bogus: 1 }, /^body: .*bogus/],
      ['/verify/math', { completion: 1, answer: '1' }, /^body\.completion: expected string/],
      ['/batch', { items: [] }, /^body\.items: /],
      ['/run_code', { language: 'python' }, /^body\.code: expected string/],
    ];
    for (const [path, body, message] of cases) {
      const { status, json } = await post(base, path, body);
      assert.equal(status, 400, path);
      assert.match(json.error, message);
      assert.doesNotMatch(json.error, /\n/);
    }
    const notJson = await post(base, '/run', '{"language": ');
    assert.equal(notJson.status, 400);
  });

  test('POST /run_code speaks SandboxFusion', async () => {
    const ok = await post(base, '/run_code', {
      code: 'print(input())',
      language: 'python',
      run_timeout: 5,
      memory_limit_MB: 256,
      stdin: 'hi',
      compile_timeout: 10,
      files: { 'a.txt': Buffer.from('x').toString('base64') },
      fetch_files: ['a.txt'],
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.status, 'Success');
    assert.equal(ok.json.compile_result, null);
    assert.deepEqual(Object.keys(ok.json.run_result).sort(byCodeUnit), [
      'execution_time',
      'return_code',
      'status',
      'stderr',
      'stdout',
    ]);
    assert.deepEqual(
      [ok.json.run_result.status, ok.json.run_result.return_code, ok.json.run_result.stdout],
      ['Finished', 0, 'hi\n'],
    );
    assert.equal(typeof ok.json.executor_pod_name, 'string');
    assert.equal(ok.json.files['a.txt'], Buffer.from('x').toString('base64'));
    const slow = await post(base, '/run_code', { code: 'while (true) {}', language: 'nodejs', run_timeout: 0.5 });
    assert.deepEqual([slow.json.status, slow.json.run_result.status], ['Failed', 'TimeLimitExceeded']);
    const failing = await post(base, '/run_code', { code: 'raise SystemExit(4)', language: 'python' });
    assert.deepEqual(
      [failing.json.status, failing.json.run_result.status, failing.json.run_result.return_code],
      ['Failed', 'Finished', 4],
    );
    const unknown = await post(base, '/run_code', { code: 'x', language: 'cobol' });
    assert.deepEqual([unknown.status, unknown.json.status], [200, 'SandboxError']);
  });

  test('keeps serving after hostile programs', async () => {
    const hostile = [
      'while True: pass',
      'import os\nwhile True:\n    try: os.fork()\n    except OSError: pass',
      'x = bytearray(8 * 1024**3)',
      'import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)',
      'print("y" * 10**8)',
    ];
    const results = await Promise.all(
      hostile.map((code) =>
        post(base, '/run', { language: 'python', code, limits: { wall_ms: 2000, cpu_ms: 1000, processes: 16 } }),
      ),
    );
    for (const r of results) assert.equal(r.status, 200);
    assert.notEqual(results[0]!.json.status, 'ok');
    const health = await fetch(base + '/health');
    assert.equal(health.status, 200);
    assert.equal((await post(base, '/run', { language: 'python', code: 'print("alive")' })).json.stdout, 'alive\n');
  });

  test('GET /metrics counts runs and rejections', async () => {
    const text = await (await fetch(base + '/metrics')).text();
    assert.match(text, /ringrl_runs_total\{status="ok",warm="(true|false)"\} \d+/);
    assert.match(text, /ringrl_http_requests_total\{route="\/run",code="200"\} \d+/);
    assert.match(text, /ringrl_concurrency 2/);
  });

  test('the remote client talks to the service (and fails over from a dead URL)', async () => {
    const client = createRewardClient({ kind: 'remote', urls: ['http://127.0.0.1:9/', base], retries: 3 });
    const run = await client.run({ language: 'python', code: 'print(3)' });
    assert.equal(run.stdout, '3\n');
    assert.equal((await client.verifyMath('\\boxed{1/2}', '0.5')).reward, 1);
    const verdict = await client.runTests('python', 'def f(): return 2', { kind: 'assert', code: 'assert f() == 2' });
    assert.equal(verdict.reward, 1);
  });
});

describe('backpressure', () => {
  test('a burst beyond concurrency + queue gets explicit 429s; every request is answered', async () => {
    const { app } = await buildService({
      concurrency: 1,
      queue: 2,
      sandboxOptions: { pythonWorkers: 1, nodeSpares: 1 },
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const burst = await Promise.all(
        Array.from({ length: 12 }, () =>
          post(base, '/run', { language: 'python', code: 'import time; time.sleep(0.2)' }),
        ),
      );
      const codes = burst.map((r) => r.status);
      assert.ok(
        codes.every((c) => c === 200 || c === 429),
        codes.join(','),
      );
      assert.ok(codes.includes(429) && codes.includes(200));
      for (const r of burst) if (r.status === 429) assert.match(r.json.error, /queue full/);
      assert.ok(codes.filter((c) => c === 200).length >= 3);
    } finally {
      await app.close();
    }
  });

  test('limiter: queue timeout is 503-worthy, shutdown fails waiters, no job is lost', async () => {
    const limiter = new Limiter(1, 10, 50);
    let release: () => void = () => {};
    const blocker = limiter.run(() => new Promise<void>((r) => (release = r)));
    const waiting = limiter.run(async () => 'never');
    await assert.rejects(waiting, (e: unknown) => e instanceof Overloaded && e.reason === 'queue_timeout');
    const admitted = limiter.run(async () => 'ran', true);
    release();
    await blocker;
    assert.equal(await admitted, 'ran');
    assert.equal(limiter.active, 0);
    const second = new Limiter(1, 10, 10_000);
    let free: () => void = () => {};
    const busy = second.run(() => new Promise<void>((r) => (free = r)));
    const queued = second.run(async () => 'x');
    second.shutdown();
    await assert.rejects(queued, (e: unknown) => e instanceof Overloaded && e.reason === 'shutting_down');
    free();
    await busy;
  });
});

test('local client: in-process pool, config errors name the field', async () => {
  const client = createRewardClient({ kind: 'local', concurrency: 1 });
  try {
    assert.equal((await client.run({ language: 'python', code: 'print(7)' })).stdout, '7\n');
    assert.equal((await client.verifyMath('the answer is 7.', '7')).reward, 1);
  } finally {
    await client.close();
  }
  assert.throws(() => createRewardClient({ kind: 'remote', urls: [] }), /reward\.urls: /);
  assert.throws(() => createRewardClient({ kind: 'cloud' } as never), /reward\.kind: /);
});

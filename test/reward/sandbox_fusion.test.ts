// POST /run_code as verl's SandboxFusion client drives it (verl/utils/reward_score/sandbox_fusion):
// the same request body, graded the way that client grades (True / False / -1 sandbox or API
// error / -2 runtime error / -3 timeout / -4 compile error): stdin/stdout cases in every language
// available here, `fn_name` (a Python wrapper calling the function with JSON arguments) and
// `assert_case` (asserts appended to the program); 64 concurrent slow correct solutions with the
// default admission; SandboxFusion's accepted values and statuses; cancellation; the API key.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildService } from '../../src/reward/service/server.ts';
import { createRewardClient } from '../../src/reward/client.ts';
import { sandboxCommand } from '../../src/cli/sandbox.ts';
import type { Limiter } from '../../src/reward/service/limiter.ts';
import type { CodeSandbox, Language } from '../../src/reward/sandbox/types.ts';

type Verdict = true | false | -1 | -2 | -3 | -4;

async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

/** One test case as verl sends it (timeout is both compile and run timeout; memory 1024 MB) and grades it. */
async function verlCase(
  base: string,
  language: string,
  code: string,
  stdin: string | null,
  expected: string | null,
  timeout = 10,
): Promise<Verdict> {
  const body = {
    compile_timeout: timeout,
    run_timeout: timeout,
    code,
    stdin,
    memory_limit_MB: 1024,
    language,
    files: {},
    fetch_files: [],
  };
  const { status, json } = await post(base, '/run_code', body);
  if (status !== 200) return -1;
  if (json.status === 'SandboxError') return -1;
  if (json.status === 'Failed') {
    const c = json.compile_result;
    if (c && (c.status !== 'Finished' || c.return_code !== 0)) return -4;
    const r = json.run_result;
    if (!r) return -1;
    return r.status === 'TimeLimitExceeded' ? -3 : -2;
  }
  if (json.run_result?.status !== 'Finished') return -1;
  const stdout = String(json.run_result.stdout ?? '');
  return expected === null || stdout.replace(/\n+$/, '') === expected.replace(/\n+$/, '');
}

/** verl's `fn_name` shape: the program wrapped so stdin lines are JSON arguments of fn_name (or Solution().fn_name). */
function fnNameWrapper(code: string, fnName: string): string {
  return `import sys, json\nfrom typing import *\nfrom collections import *\n${code}\n\ndef _call():\n    args = [json.loads(l) for l in sys.stdin.read().split('\\n') if l.strip()]\n    f = globals().get(${JSON.stringify(fnName)}) or getattr(Solution(), ${JSON.stringify(fnName)})\n    r = f(*args)\n    print(json.dumps(r) if isinstance(r, (dict, list, tuple, bool)) or r is None else r)\n\n_call()\n`;
}

const ADD: Partial<Record<Language, string>> = {
  python: 'a, b = map(int, input().split())\nprint(a + b)',
  pytest: '',
  javascript:
    'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number); console.log(a + b)',
  typescript:
    'const [a, b]: number[] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number); console.log(a + b)',
  bash: 'read a b; echo $((a + b))',
  c: '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b); printf("%ld\\n", a + b); return 0; }',
  cpp: '#include <bits/stdc++.h>\nusing namespace std;\nint main() { long a, b; cin >> a >> b; cout << a + b << endl; }',
  go: 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar a, b int64\n\tfmt.Scan(&a, &b)\n\tfmt.Println(a + b)\n}\n',
  java: 'import java.util.*;\npublic class Main { public static void main(String[] x) { Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }',
  rust: 'use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s).unwrap(); let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect(); println!("{}", v[0] + v[1]); }',
};

const BROKEN: Partial<Record<Language, string>> = {
  c: 'int main(void) { return undefined_thing; }',
  cpp: 'int main() { return undefined_thing; }',
  go: 'package main\n\nfunc main() { undefinedThing() }\n',
  java: 'public class Main { public static void main(String[] x) { undefinedThing(); } }',
  rust: 'fn main() { undefined_thing(); }',
};

const FUSION_NAME: Partial<Record<Language, string>> = { javascript: 'nodejs' };

describe('/run_code as verl drives it', () => {
  let app: FastifyInstance;
  let base: string;
  let sandbox: CodeSandbox;
  let limiter: Limiter;
  let available: Language[] = [];
  before(async () => {
    // Default admission (concurrency, queue, queue timeout); only the toolchain caches are off.
    ({ app, sandbox, limiter } = await buildService({ sandboxOptions: { toolchainCache: false } }));
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    available = sandbox.languages().available;
  });
  after(() => app.close());

  test('/health lists the languages', async () => {
    const health = await (await fetch(base + '/health')).json();
    assert.deepEqual(health.languages, available);
    assert.ok(health.languages.includes('python') && health.languages.includes('javascript'));
    assert.ok(health.queue >= 64, `queue ${health.queue}`);
  });

  test('stdin/stdout cases in every language: right, wrong, runtime error, compile error', async () => {
    const langs = available.filter((l) => l !== 'pytest');
    const verdicts = await Promise.all(
      langs.map(async (l) => {
        const name = FUSION_NAME[l] ?? l;
        // verl sends each case as its own request, all at once.
        const cases = await Promise.all([
          verlCase(base, name, ADD[l]!, '2 3', '5'),
          verlCase(base, name, ADD[l]!, '40 2\n', '42\n'),
          verlCase(base, name, ADD[l]!, '1 1', '3'),
        ]);
        const broken = BROKEN[l] ? await verlCase(base, name, BROKEN[l]!, '', '') : -4;
        return [l, [...cases, broken]] as const;
      }),
    );
    for (const [l, v] of verdicts) assert.deepEqual(v, [true, true, false, -4], l);
    const crash = await verlCase(
      base,
      'python',
      'import sys\nprint("About to raise", file=sys.stderr)\nraise ValueError("x")',
      'in',
      'out',
    );
    assert.equal(crash, -2);
    const sleepy = await verlCase(base, 'python', 'import time\ntime.sleep(10)', 'in', 'out', 1);
    assert.equal(sleepy, -3);
    // verl's stdin null and empty string both reach the program as empty input.
    const echo = 'import sys\nprint(f"You said \'{sys.stdin.readline().strip()}\'")';
    assert.deepEqual(
      await Promise.all([
        verlCase(base, 'python', echo, null, "You said ''"),
        verlCase(base, 'python', echo, '', "You said ''"),
        verlCase(base, 'python', echo, 'hello', "You said 'hello'"),
      ]),
      [true, true, true],
    );
  });

  test('pytest: passing and failing tests', async (t) => {
    if (!available.includes('pytest')) return t.skip('pytest is not installed');
    const tests = 'def add(a, b):\n    return a + b\n\ndef test_add():\n    assert add(2, 3) == 5\n';
    assert.equal(await verlCase(base, 'pytest', tests, null, null), true);
    assert.equal(
      await verlCase(base, 'pytest', tests + '\ndef test_wrong():\n    assert add(2, 2) == 5\n', null, null),
      -2,
    );
  });

  test('fn_name: the function called with JSON arguments from stdin (LiveCodeBench style)', async () => {
    const solution =
      'class Solution:\n    def occurrencesOfElement(self, nums: List[int], queries: List[int], x: int) -> List[int]:\n        pos = [i for i, n in enumerate(nums) if n == x]\n        return [pos[k - 1] if k <= len(pos) else -1 for k in queries]\n';
    const code = fnNameWrapper(solution, 'occurrencesOfElement');
    const results = await Promise.all([
      verlCase(base, 'python', code, '[1, 3, 1, 7]\n[1, 3, 2, 4]\n1', '[0, -1, 2, -1]'),
      verlCase(base, 'python', code, '[1, 2, 3]\n[10]\n5', '[-1]'),
    ]);
    assert.deepEqual(results, [true, true]);
  });

  test('assert_case: asserts appended to the program (KodCode style)', async () => {
    const code =
      'def merge(iv):\n    iv = sorted(iv)\n    out = [iv[0]]\n    for a, b in iv[1:]:\n        if a <= out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n        else:\n            out.append((a, b))\n    return out\n';
    const asserts = [
      'assert merge([(0, 1), (3, 5), (4, 7)]) == [(0, 1), (3, 7)]',
      'assert merge([(1, 2), (2, 3)]) == [(1, 3)]',
      'assert merge([(1, 2), (3, 4)]) == [(1, 2), (3, 5)]',
    ];
    const results = await Promise.all(asserts.map((a) => verlCase(base, 'python', `${code}\n\n${a}`, '', null)));
    assert.deepEqual(results, [true, true, -2]);
  });

  test('64 concurrent slow correct solutions are all scored correct (queued, not refused)', async () => {
    const slow = 'import time\nn = int(input())\ntime.sleep(0.3)\nprint(sum(i * i for i in range(n)))';
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        verlCase(base, 'python', slow, String(1000 + i), String(((999 + i) * (1000 + i) * (2 * (999 + i) + 1)) / 6)),
      ),
    );
    assert.deepEqual(results, Array(64).fill(true));
  });

  test("SandboxFusion's accepted values: memory_limit_MB -1, compile_timeout 0, run_timeout 300, absolute paths", async () => {
    const body = {
      // /tmp is the sandbox's own; other absolute paths are mapped under the working directory.
      code: 'print(open("/tmp/flag.txt").read() + open("data/in.txt").read())\nopen("/tmp/out.txt", "w").write("back")',
      language: 'python',
      memory_limit_MB: -1,
      compile_timeout: 0,
      run_timeout: 300,
      files: {
        '/tmp/flag.txt': Buffer.from('flag').toString('base64'),
        '/data/in.txt': Buffer.from('!').toString('base64'),
        'skipped.txt': null,
      },
      fetch_files: ['/tmp/out.txt'],
    };
    const { status, json } = await post(base, '/run_code', body);
    assert.equal(status, 200);
    assert.deepEqual(
      [json.status, json.run_result.stdout],
      ['Success', 'flag!\n'],
      json.run_result?.stderr ?? json.message,
    );
    assert.equal(Buffer.from(json.files['/tmp/out.txt'], 'base64').toString(), 'back');
  });

  test("SandboxFusion's statuses: a signal is Finished with rc -9; output over the cap too; timeouts are TimeLimitExceeded", async () => {
    const killed = await post(base, '/run_code', {
      code: 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)',
      language: 'python',
    });
    assert.deepEqual(
      [killed.json.status, killed.json.run_result.status, killed.json.run_result.return_code],
      ['Failed', 'Finished', -9],
    );
    const segv = await post(base, '/run_code', { code: 'import ctypes\nctypes.string_at(0)', language: 'python' });
    assert.deepEqual([segv.json.run_result.status, segv.json.run_result.return_code], ['Finished', -11]);
    const flood = await post(base, '/run_code', {
      code: 'while True: print("x" * 1000)',
      language: 'python',
      run_timeout: 5,
    });
    assert.deepEqual(
      [flood.json.status, flood.json.message, flood.json.run_result.status, flood.json.run_result.return_code],
      ['Failed', 'output_limit', 'Finished', -9],
    );
    const slow = await post(base, '/run_code', { code: 'while (true) {}', language: 'nodejs', run_timeout: 0.5 });
    assert.deepEqual(
      [slow.json.status, slow.json.run_result.status, slow.json.run_result.return_code],
      ['Failed', 'TimeLimitExceeded', null],
    );
    const missing = await post(base, '/run_code', { code: 'x', language: 'php' });
    assert.deepEqual([missing.status, missing.json.status], [200, 'SandboxError']);
    assert.match(missing.json.message, /unsupported language 'php'/);
  });

  test('node runners are warm for the memory limit asked for (1024 MB as verl sends)', async () => {
    const limits = { memoryMb: 1024, wallMs: 10_000, cpuMs: 10_000 };
    const first = await sandbox.run({ language: 'javascript', code: 'console.log(1)', limits });
    assert.equal(first.stdout, '1\n');
    await new Promise((r) => setTimeout(r, 1500)); // the spares for these limits start meanwhile
    const second = await sandbox.run({ language: 'javascript', code: 'console.log(2)', limits });
    assert.deepEqual([second.stdout, second.warm], ['2\n', true]);
  });

  test('a client that goes away cancels its run', async () => {
    const controller = new AbortController();
    const request = fetch(base + '/run_code', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'import time\ntime.sleep(60)', language: 'python', run_timeout: 60 }),
      signal: controller.signal,
    }).catch(() => 'aborted');
    for (let i = 0; i < 100 && limiter.active === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(limiter.active, 1);
    controller.abort();
    assert.equal(await request, 'aborted');
    for (let i = 0; i < 100 && limiter.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(limiter.active, 0, 'the run still holds its slot');
  });
});

describe('admission details, the API key, caps', () => {
  test('time in the queue is not charged to the run: a 1 s run queued behind a 1.5 s one succeeds', async () => {
    const { app } = await buildService({
      concurrency: 1,
      sandboxOptions: { pythonWorkers: 1, nodeSpares: 1, toolchainCache: false },
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const first = post(base, '/run_code', {
        code: 'import time\ntime.sleep(1.5)',
        language: 'python',
        run_timeout: 5,
      });
      await new Promise((r) => setTimeout(r, 100));
      const second = await post(base, '/run_code', {
        code: 'import time\ntime.sleep(0.3)\nprint("done")',
        language: 'python',
        run_timeout: 1,
      });
      assert.deepEqual([second.json.status, second.json.run_result.stdout], ['Success', 'done\n']);
      assert.equal((await first).json.status, 'Success');
    } finally {
      await app.close();
    }
  });

  test('--api-key: Bearer on every endpoint but /health; the client sends it; caps on bodies and files', async () => {
    const key = 'k3y-for-tests';
    const { app } = await buildService({
      apiKey: key,
      bodyLimit: 64 << 10,
      concurrency: 1,
      sandboxOptions: { pythonWorkers: 1, nodeSpares: 1, toolchainCache: false },
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      assert.equal((await fetch(base + '/health')).status, 200);
      assert.equal((await fetch(base + '/metrics')).status, 401);
      const body = { code: 'print(1)', language: 'python' };
      assert.equal((await post(base, '/run_code', body)).status, 401);
      assert.equal((await post(base, '/run_code', body, { authorization: 'Bearer wrong' })).status, 401);
      const ok = await post(base, '/run_code', body, { authorization: `Bearer ${key}` });
      assert.deepEqual([ok.status, ok.json.run_result.stdout], [200, '1\n']);
      const client = createRewardClient({ kind: 'remote', urls: [base], apiKey: key });
      assert.equal((await client.run({ language: 'python', code: 'print(2)' })).stdout, '2\n');
      const stranger = createRewardClient({ kind: 'remote', urls: [base], apiKey: 'not-the-key' });
      await assert.rejects(stranger.run({ language: 'python', code: 'print(2)' }), /HTTP 401/);
      const auth = { authorization: `Bearer ${key}` };
      const big = await post(base, '/run', { language: 'python', code: '#'.repeat(100 << 10) }, auth);
      assert.equal(big.status, 413);
      const files = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}`, 'eA==']));
      const many = await post(base, '/run', { language: 'python', code: 'pass', files }, auth);
      assert.equal(many.status, 400);
      assert.match(many.json.error, /^body\.files: expected at most 64 files/);
    } finally {
      await app.close();
    }
  });

  test('serve refuses a non-loopback address without an API key', async () => {
    const saved = process.env.RINGRL_SANDBOX_API_KEY;
    delete process.env.RINGRL_SANDBOX_API_KEY;
    try {
      await assert.rejects(
        sandboxCommand.run(['serve', '--port', '0', '--host', '0.0.0.0']),
        /--host 0\.0\.0\.0 lets anyone .* --api-key/,
      );
    } finally {
      if (saved !== undefined) process.env.RINGRL_SANDBOX_API_KEY = saved;
    }
  });
});

// The RL loop's reward (reward config section): user modules and every way they can be wrong,
// code tests and the pycode task's programs run in the local sandbox, and a sandbox that fails
// to judge reported as unscored rather than as a wrong answer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createScorer, codeTests } from '../../src/reward/scorer.ts';
import { rewardSchema } from '../../src/reward/config.ts';
import { LocalRewardClient, type RewardClient } from '../../src/reward/client.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { extractProgram, pycode, taskProblems } from '../../src/data/tasks/index.ts';
import type { Example } from '../../src/data/example.ts';

const work = mkdtempSync(join(tmpdir(), 'ringrl-scorer-'));
const example = (answer: string, source = 'ex/1'): Example => ({ source, prompt: 'p', answer });
const input = (response: string, answer = '') => ({ prompt: 'p', response, example: example(answer) });
const config = (over: Record<string, unknown>) => rewardSchema.parse(over);
const client = new LocalRewardClient({ kind: 'local', concurrency: 2, warm: true, requireIsolation: false });
after(() => client.close());

function moduleFile(name: string, body: string): string {
  const file = join(work, name);
  writeFileSync(file, body);
  return relative(process.cwd(), file);
}

test('reward.module: a number, or {reward, ...} whose other numbers become the breakdown', async () => {
  const file = moduleFile(
    'len.ts',
    'export async function reward({ response, example }: { response: string; example: { answer: string } }): Promise<unknown> {\n  return response === example.answer ? { reward: 1, exact: 1, note: "text is ignored" } : response.length / 10;\n}\n',
  );
  const scorer = await createScorer(config({ type: 'module', module: file }), { task: null });
  assert.deepEqual(await scorer.score(input('42', '42')), {
    status: 'scored',
    reward: 1,
    breakdown: { exact: 1 },
    reason: '',
  });
  assert.deepEqual(await scorer.score(input('abcde', 'x')), {
    status: 'scored',
    reward: 0.5,
    breakdown: {},
    reason: '',
  });
  await scorer.close();
});

test('reward.module bad input: missing, no export, not loadable → one-line error naming the file', async () => {
  const oneLine = (pattern: RegExp) => (e: Error) => !e.message.includes('\n') && pattern.test(e.message);
  await assert.rejects(
    createScorer(config({ type: 'module', module: 'nowhere/reward.ts' }), { task: null }),
    oneLine(/^reward\.module nowhere\/reward\.ts: no such file/),
  );
  const noExport = moduleFile('none.mjs', 'export const score = () => 1;\n');
  await assert.rejects(
    createScorer(config({ type: 'module', module: noExport }), { task: null }),
    oneLine(new RegExp(`^reward\\.module ${noExport}: exports no function 'reward'`)),
  );
  const broken = moduleFile('broken.mjs', 'export function reward( {\n');
  await assert.rejects(
    createScorer(config({ type: 'module', module: broken }), { task: null }),
    oneLine(new RegExp(`^reward\\.module ${broken}: failed to load`)),
  );
  await assert.rejects(
    createScorer(config({ type: 'module', module: moduleFile('r.txt', '') }), { task: null }),
    oneLine(/expected a \.ts, \.mts, \.js, \.mjs or \.cjs file/),
  );
  assert.throws(() => rewardSchema.parse({ type: 'module' }), /reward\.type module needs reward\.module/);
});

test('reward.module: a throw marks that sample unscored with the message; a non-number return ends the run naming the file', async () => {
  const file = moduleFile(
    'picky.mjs',
    'export async function reward({ response }) {\n  if (response === "boom") throw new Error("cannot parse boom");\n  if (response === "nan") return NaN;\n  if (response === "str") return "1";\n  if (response === "obj") return { score: 1 };\n  return 1;\n}\n',
  );
  const scorer = await createScorer(config({ type: 'module', module: file }), { task: null });
  const thrown = await scorer.score(input('boom'));
  assert.equal(thrown.status, 'unscored');
  assert.ok(
    thrown.status === 'unscored' &&
      thrown.message.includes(file) &&
      thrown.message.includes('cannot parse boom') &&
      thrown.message.includes('ex/1'),
    JSON.stringify(thrown),
  );
  assert.equal((await scorer.score(input('fine'))).status, 'scored', 'the next sample is scored as usual');
  for (const [response, what] of [
    ['nan', 'NaN'],
    ['str', 'string'],
    ['obj', '\\{reward: undefined\\}'],
  ]) {
    await assert.rejects(
      scorer.score(input(response!)),
      (e: Error) =>
        !e.message.includes('\n') &&
        new RegExp(`^reward\\.module ${file}: reward returned ${what}; expected a finite number`).test(e.message),
    );
  }
  await scorer.close();
});

test('code tests from the answer: io cases (PRIME/verl layout), an assert block, or plain asserts', async () => {
  assert.deepEqual(codeTests('{"inputs": ["1 2\\n"], "outputs": ["3\\n"]}', 'f:1'), {
    kind: 'io',
    cases: [{ stdin: '1 2\n', expected: '3\n' }],
  });
  assert.deepEqual(codeTests('{"assert": "assert f(1) == 2"}', 'f:1'), { kind: 'assert', code: 'assert f(1) == 2' });
  assert.deepEqual(codeTests('assert f(1) == 2', 'f:1'), { kind: 'assert', code: 'assert f(1) == 2' });
  assert.throws(
    () => codeTests('{"inputs": ["1"], "outputs": []}', 'data.jsonl:7'),
    /data\.jsonl:7: answer: expected \{"inputs"/,
  );
  assert.throws(
    () => codeTests('1517', 'pycode/x'),
    /pycode\/x: answer: expected code tests .* got text without an assert/,
    'a plain answer is not a test that passes every program',
  );
  const scorer = await createScorer(config({ type: 'code' }), { task: null, client });
  const tests = '{"inputs": ["2 3\\n", "10 -4\\n"], "outputs": ["5\\n", "6\\n"]}';
  const right = await scorer.score({
    prompt: 'add',
    response: '```python\na, b = map(int, input().split())\nprint(a + b)\n```',
    example: example(tests),
  });
  assert.deepEqual(right.status === 'scored' && [right.reward, right.breakdown.passed_frac], [1, 1]);
  const half = await scorer.score({
    prompt: 'add',
    response: 'a, b = map(int, input().split())\nprint(a + abs(b))',
    example: example(tests),
  });
  assert.deepEqual(half.status === 'scored' && [half.reward, half.breakdown.passed_frac], [0, 0.5]);
  await scorer.close();
});

test('pycode: every teacher program prints its answer in the sandbox; wrong programs score 0', async () => {
  const verify = getVerifier('pycode', { client });
  const problems = taskProblems('pycode', 24, { split: 'train', seed: 5 });
  const verdicts = await Promise.all(problems.map((p) => verify(p.response, p.answer)));
  verdicts.forEach((v, i) => assert.equal(v.reward, 1, `${problems[i]!.prompt} ${problems[i]!.response}: ${v.reason}`));
  assert.equal((await verify('print(37*42)', '1517')).reward, 0);
  assert.equal((await verify('print(37*41', '1517')).reward, 0, 'a syntax error is a wrong answer');
  assert.equal((await verify('<think>\nproduct\n</think>\nprint(37*41)', '1517')).reward, 1, 'after </think>');
  assert.equal(extractProgram('x\n```python\nprint(1)\n```\ny'), 'print(1)\n');
  assert.throws(
    () => pycode.verify('print(1)', '1'),
    /task pycode: responses are programs, scored by running them in the sandbox/,
  );
});

test('a sandbox failure or a dead reward service is unscored, never a 0', async () => {
  const failing: RewardClient = {
    run: client.run.bind(client),
    verifyMath: client.verifyMath.bind(client),
    runTests: async () => ({
      reward: 0,
      passed: 0,
      total: 1,
      reason: 'case 0: sandbox_error',
      runs: [
        {
          status: 'sandbox_error',
          message: 'zygote died',
          exit_code: null,
          signal: null,
          stdout: '',
          stderr: '',
          wall_ms: 1,
          isolation: 'limits',
          warm: true,
        } as never,
      ],
    }),
    close: async () => {},
  };
  const scorer = await createScorer(config({ type: 'task' }), { task: 'pycode', client: failing });
  const s = await scorer.score(input('print(1)', '1'));
  assert.deepEqual(s, { status: 'unscored', message: 'sandbox error: zygote died' });
  await scorer.close();
  const nobody = await createScorer(
    config({ type: 'task', sandbox: ['http://127.0.0.1:9'], retries: 1, timeout_s: 2 }),
    { task: 'pycode' },
  );
  const dead = await nobody.score(input('print(1)', '1'));
  assert.equal(dead.status, 'unscored');
  assert.match(dead.status === 'unscored' ? dead.message : '', /reward service: no answer after 2 attempts/);
  await nobody.close();
});

test('at most max_concurrent scores run at once', async () => {
  const file = moduleFile(
    'slow.mjs',
    'let now = 0, peak = 0;\nexport async function reward() {\n  now++; peak = Math.max(peak, now);\n  await new Promise((r) => setTimeout(r, 5));\n  now--;\n  return peak;\n}\n',
  );
  const scorer = await createScorer(config({ type: 'module', module: file, max_concurrent: 3 }), { task: null });
  const scores = await Promise.all(Array.from({ length: 12 }, () => scorer.score(input('x'))));
  assert.equal(Math.max(...scores.map((s) => (s.status === 'scored' ? s.reward : 0))), 3);
  await scorer.close();
});

// The code reward: run a program against stdin/stdout cases or assert-style tests.
//
// exit(0) guard: assert-style tests are appended as an epilogue that ends by printing a fresh
// random nonce. A program that exits (exit(0), sys.exit, os._exit, process.exit) before its tests
// run never prints it, so it fails even with exit code 0. The nonce is never written to disk (the
// sandbox compiles the epilogue from memory); a program would have to dig it out of interpreter
// memory, which is documented as the remaining hole (docs/rewards.md).
import { randomBytes } from 'node:crypto';
import { RingrlError } from '../errors.ts';
import type { CodeSandbox, Language, Limits, RunResult } from './sandbox/types.ts';

export interface IoCase {
  stdin: string;
  expected: string;
}

export type CodeTests = { kind: 'io'; cases: IoCase[] } | { kind: 'assert'; code: string };

export interface CodeVerdict {
  reward: 0 | 1;
  passed: number;
  total: number;
  reason: string;
  /** One result per run (one per io case, one for assert tests). */
  runs: RunResult[];
}

/** Output comparison: trailing whitespace on each line and trailing blank lines do not matter. */
export function sameOutput(actual: string, expected: string): boolean {
  const clean = (s: string) =>
    s
      .replace(/\r\n/g, '\n')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .trimEnd();
  return clean(actual) === clean(expected);
}

function sentinelEpilogue(language: Language, tests: string, nonce: string): string {
  if (language === 'python')
    return `${tests}\nimport sys as _ringrl_sys\n_ringrl_sys.stdout.write("\\n${nonce}\\n")\n_ringrl_sys.stdout.flush()\n`;
  return `${tests}\n;process.stdout.write("\\n${nonce}\\n");\n`;
}

/** Whether stdout ends with the nonce line; returns stdout without it. */
export function takeSentinel(stdout: string, nonce: string): { seen: boolean; stdout: string } {
  const at = stdout.lastIndexOf(`\n${nonce}\n`);
  if (at < 0 || stdout.slice(at + nonce.length + 2).trim() !== '') return { seen: false, stdout };
  return { seen: true, stdout: stdout.slice(0, at) + stdout.slice(at + nonce.length + 2) };
}

/**
 * Score a program: io cases run once each (compiled languages compile per case); assert tests
 * (Python, JavaScript, TypeScript) run after the program, guarded by the nonce.
 */
export async function runCodeTests(
  sandbox: CodeSandbox,
  language: Language,
  code: string,
  tests: CodeTests,
  limits?: Partial<Limits>,
  compileTimeoutMs?: number,
  signal?: AbortSignal,
): Promise<CodeVerdict> {
  if (tests.kind === 'io') {
    const runs = await Promise.all(
      tests.cases.map((c) => sandbox.run({ language, code, stdin: c.stdin, limits, compileTimeoutMs, signal })),
    );
    let passed = 0;
    let firstFailure = '';
    runs.forEach((r, i) => {
      const ok = r.status === 'ok' && sameOutput(r.stdout, tests.cases[i]!.expected);
      if (ok) passed++;
      else if (!firstFailure) firstFailure = r.status === 'ok' ? `case ${i}: wrong output` : `case ${i}: ${r.status}`;
    });
    const total = tests.cases.length;
    return {
      reward: passed === total && total > 0 ? 1 : 0,
      passed,
      total,
      reason:
        passed === total ? `all ${total} cases passed` : `${passed}/${total} passed; first failure ${firstFailure}`,
      runs,
    };
  }
  if (language !== 'python' && language !== 'javascript' && language !== 'typescript')
    throw new RingrlError(
      `code tests: assert tests run for python, javascript and typescript, not ${language} (use io cases)`,
    );
  const nonce = `ringrl-tests-done-${randomBytes(16).toString('hex')}`;
  const run = await sandbox.run({
    language,
    code,
    epilogue: sentinelEpilogue(language, tests.code, nonce),
    limits,
    signal,
  });
  const { seen, stdout } = takeSentinel(run.stdout, nonce);
  run.stdout = stdout;
  const pass = run.status === 'ok' && seen;
  let reason = 'tests passed';
  if (!pass)
    reason = run.status !== 'ok' ? `tests failed: ${run.status}` : 'exited before the tests finished (exit(0) guard)';
  return { reward: pass ? 1 : 0, passed: pass ? 1 : 0, total: 1, reason, runs: [run] };
}

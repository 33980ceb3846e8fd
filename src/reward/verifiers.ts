// Verifiers by name: the built-in tasks' strict checkers, and the math verifier for datasets
// whose answers are math expressions. Every verifier returns {reward, extracted, reason}; a
// program task's (pycode) runs the response's program in the sandbox, so it returns a promise
// and may throw `Unscored` when the sandbox, not the program, failed.
import { RingrlError } from '../errors.ts';
import { extractProgram, tasks } from '../data/tasks/index.ts';
import { verifyMath } from './math/verify.ts';
import { createRewardClient, type RewardClient } from './client.ts';
import type { CodeTests, CodeVerdict } from './code.ts';
import type { Limits } from './sandbox/types.ts';

export interface Verdict {
  reward: number;
  extracted: string | null;
  reason: string;
}

/** A verifier; `close` releases what it started (a program task's local sandbox). */
export type Verifier = ((response: string, answer: string) => Verdict | Promise<Verdict>) & {
  close?: () => Promise<void>;
};

/** The response could not be judged (the sandbox or a reward service failed): not a wrong answer. */
export class Unscored extends Error {
  override name = 'Unscored';
}

export const verifierNames = ['math', ...Object.keys(tasks)] as const;

export interface VerifierOptions {
  /** Where a program task's programs run; default: a local sandbox started on first use and closed by `close`. */
  client?: RewardClient | undefined;
  limits?: Partial<Limits>;
}

export function getVerifier(name: string, options: VerifierOptions = {}): Verifier {
  if (name === 'math') return (response, answer) => verifyMath(response, answer);
  const task = tasks[name];
  if (!task) throw new RingrlError(`unknown verifier '${name}'; expected one of ${verifierNames.join(', ')}`);
  if (task.program) return programVerifier(options);
  return (response, answer) => task.verify(response, answer);
}

/** Run the response's program with empty stdin; right when its stdout is `answer` (trailing whitespace aside). */
function programVerifier(options: VerifierOptions): Verifier {
  let owned: RewardClient | null = null;
  const client = () => options.client ?? (owned ??= createRewardClient({ kind: 'local' }));
  const verify: Verifier = async (response, answer) => {
    const program = extractProgram(response);
    const verdict = await runTests(
      client(),
      program,
      { kind: 'io', cases: [{ stdin: '', expected: answer }] },
      options.limits,
    );
    return {
      reward: verdict.reward,
      extracted: program.trimEnd(),
      reason: verdict.reward ? 'correct' : verdict.reason,
    };
  };
  verify.close = async () => {
    await owned?.close();
    owned = null;
  };
  return verify;
}

/**
 * Run a program against tests through a reward client. A failure of the sandbox or of the
 * service (every replica tried) is `Unscored`: the program was not judged.
 */
export async function runTests(
  client: RewardClient,
  program: string,
  tests: CodeTests,
  limits?: Partial<Limits>,
): Promise<CodeVerdict> {
  let verdict: CodeVerdict;
  try {
    verdict = await client.runTests('python', program, tests, limits);
  } catch (e) {
    throw new Unscored((e as Error).message);
  }
  const failed = verdict.runs?.find((r) => r.status === 'sandbox_error');
  if (failed) throw new Unscored(`sandbox error: ${failed.message ?? 'no message'}`);
  return verdict;
}

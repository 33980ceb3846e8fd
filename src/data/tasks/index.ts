// The registry of built-in reasoning tasks, by the names configs and the CLI use.
import { mean } from '../../util/stats.ts';
import { RingrlError } from '../../errors.ts';
import type { ReasoningTask, Split, TaskProblem } from './types.ts';
import { arithmetic } from './arithmetic.ts';
import { countdown } from './countdown.ts';
import { pycode } from './pycode.ts';

export const tasks: Record<string, ReasoningTask> = { arithmetic, countdown, pycode };

export function getTask(name: string): ReasoningTask {
  const task = tasks[name];
  if (!task) throw new RingrlError(`unknown task '${name}'; expected one of ${Object.keys(tasks).join(', ')}`);
  return task;
}

/** `n` problems of a task split; `difficulty` defaults to the task's default and is range-checked. */
export function taskProblems(
  name: string,
  n: number,
  options: { split: Split; seed?: number; difficulty?: number; offset?: number },
): TaskProblem[] {
  const task = getTask(name);
  const difficulty = options.difficulty ?? task.defaultDifficulty;
  if (!Number.isInteger(difficulty) || difficulty < 1 || difficulty > task.maxDifficulty) {
    throw new RingrlError(
      `task ${name}: difficulty must be an integer in [1, ${task.maxDifficulty}], got ${difficulty}`,
    );
  }
  const offset = options.offset ?? 0;
  return Array.from({ length: n }, (_, i) =>
    task.generate(offset + i, { difficulty, split: options.split, seed: options.seed ?? 0 }),
  );
}

/** p50/p90/max of response lengths in characters (= tokens under the char tokenizer). */
export function lengthStats(lengths: number[]): { mean: number; p50: number; p90: number; max: number } {
  if (lengths.length === 0) return { mean: 0, p50: 0, p90: 0, max: 0 };
  const sorted = [...lengths].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { mean: mean(sorted), p50: at(0.5), p90: at(0.9), max: sorted.at(-1)! };
}

export type { ReasoningTask, Split, TaskProblem, TaskVerdict, TaskOptions } from './types.ts';
export { arithmetic, countdown, pycode };
export { extractProgram } from './pycode.ts';
export { thinks } from './format.ts';

// The built-in reasoning-task interface: a seeded generator with a difficulty knob, a teacher
// chain of thought for SFT and a verifier. Every task is registered by name in ./index.ts.

export type Split = 'train' | 'test';

/** One problem: the prompt text, the ground truth the verifier needs and a teacher response. */
export interface TaskProblem {
  /** Stable identity of the problem (also what the train/test partition hashes). */
  id: string;
  prompt: string;
  /** Ground truth as a string (what datasets store in `answer` / `ground_truth`). */
  answer: string;
  /** `<think>…</think>` then `\boxed{…}`: the teacher chain of thought, every step worked out. */
  response: string;
  /**
   * The same answer with a brief chain of thought: the intermediate results without the work
   * that produces them. Shorter, and for a small model far less reliable: SFT data that mixes
   * both lets RL learn from reward which one pays (`data.brief_fraction`, docs/tasks.md).
   */
  brief: string;
}

export interface TaskVerdict {
  reward: 0 | 1;
  /** The boxed answer, when the response had one. */
  extracted: string | null;
  /** Why: 'correct', or what was wrong, in words a person can read. */
  reason: string;
}

export interface TaskOptions {
  /** 1 (easiest) to the task's maxDifficulty. */
  difficulty: number;
  split: Split;
  seed: number;
}

export interface ReasoningTask {
  name: string;
  description: string;
  maxDifficulty: number;
  defaultDifficulty: number;
  /** Problem number `index` of the stream for these options (deterministic in all three). */
  generate(index: number, options: TaskOptions): TaskProblem;
  /**
   * A program task: the response is a program in this language and `answer` is the stdout it
   * must print. Such a task is scored by running the program in the sandbox (src/reward), so
   * its verify() cannot judge a response and throws.
   */
  program?: 'python';
  verify(response: string, answer: string): TaskVerdict;
}

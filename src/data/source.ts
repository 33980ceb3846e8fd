// Training-example streams with a resumable cursor: built-in tasks generate problem i on demand
// (an endless stream), dataset files are reshuffled every epoch with a seed. The cursor is all a
// checkpoint needs to continue with exactly the examples that would have come next.
import { RingrlError } from '../errors.ts';
import { getTask, taskProblems } from './tasks/index.ts';
import type { Example } from './example.ts';
import { shuffled } from './shuffle.ts';

export interface ExampleSource {
  readonly description: string;
  /** Examples consumed so far. */
  cursor: number;
  next(): Example;
}

/** Problems 0..numTrain-1 of the task's train split, repeated in epochs (endless when numTrain is omitted). */
export function taskSource(name: string, options: { difficulty?: number; seed?: number; numTrain?: number }): ExampleSource {
  const task = getTask(name);
  const difficulty = options.difficulty ?? task.defaultDifficulty;
  taskProblems(name, 1, { split: 'train', difficulty, seed: options.seed ?? 0 }); // validates difficulty
  return {
    description: `task ${name} (difficulty ${difficulty}, train split${options.numTrain ? `, ${options.numTrain} problems` : ''})`,
    cursor: 0,
    next() {
      const index = options.numTrain ? this.cursor % options.numTrain : this.cursor;
      this.cursor++;
      const p = task.generate(index, { difficulty, split: 'train', seed: options.seed ?? 0 });
      return { source: `${name}/${p.id}`, prompt: p.prompt, answer: p.answer, response: p.response };
    },
  };
}

/** Epochs over a fixed example list, each in its own seeded order. */
export function listSource(examples: Example[], seed: number, description: string): ExampleSource {
  if (examples.length === 0) throw new RingrlError(`${description}: no examples`);
  let epoch = -1;
  let order: Example[] = [];
  return {
    description,
    cursor: 0,
    next() {
      const e = Math.floor(this.cursor / examples.length);
      if (e !== epoch) {
        epoch = e;
        order = shuffled(examples, seed + epoch);
      }
      return order[this.cursor++ % examples.length]!;
    },
  };
}

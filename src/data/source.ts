// Training-example streams with a resumable cursor: built-in tasks generate problem i on demand
// (an endless stream), dataset files are reshuffled every epoch with a seed. The cursor is all a
// checkpoint needs to continue with exactly the examples that would have come next.
import { RingrlError } from '../errors.ts';
import { getTask, taskProblems } from './tasks/index.ts';
import { problemRng, teacherResponse } from './tasks/format.ts';
import type { Example } from './example.ts';
import { shuffled } from './shuffle.ts';

export interface ExampleSource {
  readonly description: string;
  /** Examples consumed so far. */
  cursor: number;
  next(): Example;
}

export interface TaskSourceOptions {
  difficulty?: number;
  seed?: number;
  numTrain?: number;
  /**
   * Fraction of problems whose teacher response skips the scratchpad (`<think>\n</think>` then
   * the answer), as hybrid-thinking SFT data mixes thinking and non-thinking answers. Which
   * problems is fixed by (seed, index), so every epoch sees the same mix.
   */
  noThinkFraction?: number;
}

/** Problems 0..numTrain-1 of the task's train split, repeated in epochs (endless when numTrain is omitted). */
export function taskSource(name: string, options: TaskSourceOptions): ExampleSource {
  const task = getTask(name);
  const difficulty = options.difficulty ?? task.defaultDifficulty;
  const seed = options.seed ?? 0;
  taskProblems(name, 1, { split: 'train', difficulty, seed }); // validates difficulty
  const noThink = options.noThinkFraction ?? 0;
  const mix = noThink > 0 ? `, ${Math.round(noThink * 100)}% answered without thinking` : '';
  return {
    description: `task ${name} (difficulty ${difficulty}, train split${options.numTrain ? `, ${options.numTrain} problems` : ''}${mix})`,
    cursor: 0,
    next() {
      const index = options.numTrain ? this.cursor % options.numTrain : this.cursor;
      this.cursor++;
      const p = task.generate(index, { difficulty, split: 'train', seed });
      const skipsThinking = noThink > 0 && problemRng(`${name}:no-think`, seed, index, 0)() < noThink;
      const response = skipsThinking ? teacherResponse('', p.answer) : p.response;
      return { source: `${name}/${p.id}`, prompt: p.prompt, answer: p.answer, response };
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

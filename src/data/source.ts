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
  /**
   * Fraction of problems whose teacher writes the brief chain of thought (`TaskProblem.brief`:
   * intermediate results, none of the work), as long-CoT SFT data mixes thorough and hasty
   * reasoning. Drawn after the no-think share: the two add up to at most 1.
   */
  briefFraction?: number;
}

/** Problems 0..numTrain-1 of the task's train split, repeated in epochs (endless when numTrain is omitted). */
export function taskSource(name: string, options: TaskSourceOptions): ExampleSource {
  const task = getTask(name);
  const difficulty = options.difficulty ?? task.defaultDifficulty;
  const seed = options.seed ?? 0;
  taskProblems(name, 1, { split: 'train', difficulty, seed }); // validates difficulty
  const noThink = options.noThinkFraction ?? 0;
  const brief = options.briefFraction ?? 0;
  if (noThink + brief > 1)
    throw new RingrlError(`data: no_think_fraction + brief_fraction must be at most 1, got ${noThink} + ${brief}`);
  const pct = (f: number) => `${Math.round(f * 100)}%`;
  const mix =
    (noThink > 0 ? `, ${pct(noThink)} answered without thinking` : '') +
    (brief > 0 ? `, ${pct(brief)} with a brief chain of thought` : '');
  return {
    description: `task ${name} (difficulty ${difficulty}, train split${options.numTrain ? `, ${options.numTrain} problems` : ''}${mix})`,
    cursor: 0,
    next() {
      const index = options.numTrain ? this.cursor % options.numTrain : this.cursor;
      this.cursor++;
      const p = task.generate(index, { difficulty, split: 'train', seed });
      // One draw per problem (the stream's name predates the brief share), so its mode is fixed.
      const u = noThink + brief > 0 ? problemRng(`${name}:no-think`, seed, index, 0)() : 1;
      const response = u < noThink ? teacherResponse('', p.answer) : u < noThink + brief ? p.brief : p.response;
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

// `pycode`: tiny programming problems ("print the product of 37 and 41") whose answer is a
// one-line Python program (`print(37*41)`). The response is the program itself, no scratchpad:
// short enough for a char-level model to learn within the demo's budget, and a real code
// reward — it is scored by running the program in the sandbox (src/reward) and comparing its
// stdout with the expected output, so any program that prints the right thing is right.
//
// Families, each a phrase a model must map to Python: sums, differences, products, squares,
// max/min of three, ranges (`print(*range(A,B+1))`: the model must add 1 to B), string
// repetition, reversal, upper case, length and counting a letter. Difficulty scales the
// numbers' digits and the words' lengths. The ground truth (`answer`) is the expected stdout.
import { RingrlError } from '../../errors.ts';
import type { ReasoningTask, TaskOptions, TaskProblem } from './types.ts';
import { drawInSplit, randInt } from './format.ts';

interface Family {
  /** Prompt, program and expected stdout from a random stream. */
  draw(random: () => number, digits: number, letters: number): { prompt: string; program: string; output: string };
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function num(random: () => number, digits: number): number {
  const d = randInt(random, 1, digits);
  return randInt(random, d === 1 ? 0 : 10 ** (d - 1), 10 ** d - 1);
}

function word(random: () => number, letters: number): string {
  const n = randInt(random, 2, letters);
  return Array.from({ length: n }, () => LETTERS[randInt(random, 0, 25)]).join('');
}

const families: Family[] = [
  {
    draw: (r, d) => {
      const [a, b] = [num(r, d), num(r, d)];
      return { prompt: `print the sum of ${a} and ${b}`, program: `print(${a}+${b})`, output: `${a + b}` };
    },
  },
  {
    draw: (r, d) => {
      const [a, b] = [num(r, d), num(r, d)];
      return { prompt: `print ${a} minus ${b}`, program: `print(${a}-${b})`, output: `${a - b}` };
    },
  },
  {
    draw: (r, d) => {
      const [a, b] = [num(r, d), num(r, d)];
      return {
        prompt: `print the product of ${a} and ${b}`,
        program: `print(${a}*${b})`,
        output: `${BigInt(a) * BigInt(b)}`,
      };
    },
  },
  {
    draw: (r, d) => {
      const a = num(r, d);
      return { prompt: `print the square of ${a}`, program: `print(${a}**2)`, output: `${BigInt(a) ** 2n}` };
    },
  },
  {
    draw: (r, d) => {
      const xs = [num(r, d), num(r, d), num(r, d)];
      return {
        prompt: `print the largest of ${xs.join(', ')}`,
        program: `print(max(${xs.join(',')}))`,
        output: `${Math.max(...xs)}`,
      };
    },
  },
  {
    draw: (r, d) => {
      const xs = [num(r, d), num(r, d), num(r, d)];
      return {
        prompt: `print the smallest of ${xs.join(', ')}`,
        program: `print(min(${xs.join(',')}))`,
        output: `${Math.min(...xs)}`,
      };
    },
  },
  {
    draw: (r, d) => {
      const a = num(r, Math.min(d, 2));
      const b = a + randInt(r, 1, 5);
      const range = Array.from({ length: b - a + 1 }, (_, i) => a + i);
      return {
        prompt: `print the numbers from ${a} to ${b}`,
        program: `print(*range(${a},${b + 1}))`,
        output: range.join(' '),
      };
    },
  },
  {
    draw: (r, _, l) => {
      const w = word(r, l);
      const n = randInt(r, 2, 4);
      return { prompt: `print ${w} ${n} times`, program: `print('${w}'*${n})`, output: w.repeat(n) };
    },
  },
  {
    draw: (r, _, l) => {
      const w = word(r, l);
      return { prompt: `print ${w} reversed`, program: `print('${w}'[::-1])`, output: [...w].reverse().join('') };
    },
  },
  {
    draw: (r, _, l) => {
      const w = word(r, l);
      return { prompt: `print ${w} in capitals`, program: `print('${w}'.upper())`, output: w.toUpperCase() };
    },
  },
  {
    draw: (r, _, l) => {
      const w = word(r, l + 2);
      return { prompt: `print the length of ${w}`, program: `print(len('${w}'))`, output: `${w.length}` };
    },
  },
  {
    draw: (r, _, l) => {
      const w = word(r, l + 2);
      const c = w[randInt(r, 0, w.length - 1)]!;
      return {
        prompt: `print how many ${c} in ${w}`,
        program: `print('${w}'.count('${c}'))`,
        output: `${w.split(c).length - 1}`,
      };
    },
  },
];

/** [max digits of a number, max letters of a word] per difficulty. */
const LEVELS: [number, number][] = [
  [1, 3],
  [2, 4],
  [3, 5],
  [4, 6],
  [5, 8],
];

/**
 * The program in a response: the last fenced code block if there is one (```python … ```),
 * else what follows `</think>` if the response thinks, else the whole response.
 */
export function extractProgram(response: string): string {
  const fenced = [...response.matchAll(/```(?:python|py)?[ \t]*\n([\s\S]*?)```/g)].at(-1);
  if (fenced) return fenced[1]!;
  const close = response.lastIndexOf('</think>');
  return (close >= 0 ? response.slice(close + '</think>'.length) : response).trim() + '\n';
}

export const pycode: ReasoningTask = {
  name: 'pycode',
  description:
    'one-line Python programs for small problems, scored by running them in the sandbox (difficulty 1-5: number and word sizes)',
  maxDifficulty: LEVELS.length,
  defaultDifficulty: 2,
  program: 'python',
  generate(index: number, { difficulty, split, seed }: TaskOptions): TaskProblem {
    const [digits, letters] = LEVELS[difficulty - 1]!;
    return drawInSplit('pycode', index, seed, split, (random) => {
      const { prompt, program, output } = families[randInt(random, 0, families.length - 1)]!.draw(
        random,
        digits,
        letters,
      );
      return { id: prompt, prompt: `${prompt}\n`, answer: output, response: program, brief: program };
    });
  },
  verify(): never {
    throw new RingrlError(
      "task pycode: responses are programs, scored by running them in the sandbox; use getVerifier('pycode') from src/reward",
    );
  },
};

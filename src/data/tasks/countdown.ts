// `countdown`: reach a target from given numbers with + − × ÷, each number used exactly once
// (the TinyZero convention), intermediate results positive integers.
//
// The teacher chain of thought is the trace of a depth-first search that tries the pairs in a
// fixed order and the operations most likely to approach the target first; it prints every
// combination it tries and stops at the first solution. How soon the search hits one varies a
// lot between problems, which gives the long tail of reasoning lengths.
// The ground truth is JSON {"numbers": [...], "target": N}; the verifier evaluates the boxed
// expression exactly (rationals), so `(7-3)/2*25` style answers are judged by value.
import type { ReasoningTask, TaskOptions, TaskProblem, TaskVerdict } from './types.ts';
import { drawInSplit, parseResponse, randInt, teacherResponse } from './format.ts';

/** [how many numbers, largest number] per difficulty. */
const LEVELS: [number, number][] = [
  [3, 10],
  [3, 25],
  [4, 25],
  [4, 50],
];
const MAX_TRACE_LINES = 160;
const MAX_TARGET = 999;

type Op = '+' | '-' | '*' | '/';
interface Item {
  value: number;
  expr: string;
  prec: number; // 3 for atoms, 2 for * and /, 1 for + and -
}

const PREC: Record<Op, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

/** `a op b` with only the parentheses precedence requires. */
function combine(a: Item, op: Op, b: Item): Item | null {
  let value: number;
  if (op === '+') value = a.value + b.value;
  else if (op === '-') value = a.value - b.value;
  else if (op === '*') value = a.value * b.value;
  else value = b.value !== 0 && a.value % b.value === 0 ? a.value / b.value : NaN;
  if (!Number.isInteger(value) || value <= 0) return null;
  const p = PREC[op];
  const left = a.prec < p ? `(${a.expr})` : a.expr;
  const right = b.prec < p || (b.prec === p && (op === '-' || op === '/')) ? `(${b.expr})` : b.expr;
  return { value, expr: `${left}${op}${right}`, prec: p };
}

/** Ordered candidate moves from a list: pairs in index order, larger operand first. */
function moves(items: Item[], target: number): { rest: Item[]; next: Item; line: string }[] {
  const out: { rest: Item[]; next: Item; line: string; score: number }[] = [];
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const [a, b] = items[i]!.value >= items[j]!.value ? [items[i]!, items[j]!] : [items[j]!, items[i]!];
      const rest = items.filter((_, k) => k !== i && k !== j);
      for (const op of ['+', '-', '*', '/'] as Op[]) {
        const next = combine(a, op, b);
        if (!next) continue;
        out.push({ rest, next, line: `${a.value}${op}${b.value}=${next.value}`, score: Math.abs(target - next.value) });
      }
    }
  }
  // Closest to the target first: a greedy-but-complete search, as a person would try.
  return out.sort((x, y) => x.score - y.score);
}

/** DFS trace: lines tried (indented by depth) and the solving expression, or null. */
export function countdownSearch(
  numbers: number[],
  target: number,
  maxLines = MAX_TRACE_LINES,
): { lines: string[]; solution: string | null } {
  const lines: string[] = [];
  const dfs = (items: Item[], depth: number): string | null => {
    for (const { rest, next, line } of moves(items, target)) {
      if (lines.length >= maxLines) return null;
      const remaining = [...rest, next];
      const hit = remaining.length === 1 && next.value === target;
      lines.push(
        `${' '.repeat(depth)}${line}${remaining.length > 1 ? ` [${remaining.map((r) => r.value).join(' ')}]` : hit ? ' !' : ''}`,
      );
      if (hit) return next.expr;
      if (remaining.length > 1) {
        const found = dfs(remaining, depth + 1);
        if (found) return found;
      }
    }
    return null;
  };
  const solution = dfs(
    numbers.map((n) => ({ value: n, expr: String(n), prec: 3 })),
    0,
  );
  return { lines, solution };
}

/** The lines of a search trace on the way to its solution: the brief scratchpad goes straight there. */
export function winningPath(lines: string[]): string[] {
  const path: string[] = [];
  let depth = Infinity;
  for (let i = lines.length - 1; i >= 0; i--) {
    const d = lines[i]!.length - lines[i]!.trimStart().length;
    if (d < depth) {
      path.unshift(lines[i]!);
      depth = d;
    }
  }
  return path;
}

export function countdownPrompt(numbers: number[], target: number): string {
  return `${numbers.join(' ')}->${target}\n`;
}

// ---- exact evaluation of an answer expression -------------------------------------------------

type Fraction = [bigint, bigint]; // numerator, positive denominator

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  while (b) [a, b] = [b, a % b];
  return a;
}
function norm([n, d]: Fraction): Fraction {
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return [n / g, d / g];
}

/** Parse and evaluate `+ - * / ( )` over non-negative integers; collects the numbers used. */
export function evaluateExpression(text: string): { value: Fraction; numbers: number[] } | { error: string } {
  const src = text
    .replace(/\\times|×/g, '*')
    .replace(/\\div|÷/g, '/')
    .replace(/\s+/g, '');
  let i = 0;
  const numbers: number[] = [];
  const fail = (msg: string): never => {
    throw new SyntaxError(msg);
  };
  const atom = (): Fraction => {
    if (src[i] === '(') {
      i++;
      const v = sum();
      if (src[i] !== ')') fail(`expected ')' at position ${i}`);
      i++;
      return v;
    }
    const m = /^\d+/.exec(src.slice(i));
    if (!m) fail(src[i] === undefined ? 'unexpected end of expression' : `unexpected '${src[i]}' at position ${i}`);
    i += m![0].length;
    numbers.push(Number(m![0]));
    return [BigInt(m![0]), 1n];
  };
  const product = (): Fraction => {
    let v = atom();
    while (src[i] === '*' || src[i] === '/') {
      const op = src[i++];
      const r = atom();
      if (op === '/' && r[0] === 0n) fail('division by zero');
      v = norm(op === '*' ? [v[0] * r[0], v[1] * r[1]] : [v[0] * r[1], v[1] * r[0]]);
    }
    return v;
  };
  const sum = (): Fraction => {
    let v = product();
    while (src[i] === '+' || src[i] === '-') {
      const op = src[i++];
      const r = product();
      v = norm(op === '+' ? [v[0] * r[1] + r[0] * v[1], v[1] * r[1]] : [v[0] * r[1] - r[0] * v[1], v[1] * r[1]]);
    }
    return v;
  };
  try {
    if (src === '') return { error: 'empty expression' };
    const value = sum();
    if (i < src.length) fail(`unexpected '${src[i]}' at position ${i}`);
    return { value, numbers };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

export function parseCountdownAnswer(answer: string): { numbers: number[]; target: number } {
  const gt = JSON.parse(answer) as { numbers?: unknown; target?: unknown };
  if (!Array.isArray(gt.numbers) || !gt.numbers.every((n) => Number.isInteger(n)) || !Number.isInteger(gt.target)) {
    throw new Error(`countdown ground truth must be {"numbers": [ints], "target": int}, got ${answer}`);
  }
  return { numbers: gt.numbers as number[], target: gt.target as number };
}

export function verifyCountdown(response: string, answer: string): TaskVerdict {
  const { numbers, target } = parseCountdownAnswer(answer);
  const parsed = parseResponse(response);
  if (!parsed.ok) return { reward: 0, extracted: parsed.answer, reason: parsed.reason };
  const result = evaluateExpression(parsed.answer);
  if ('error' in result) return { reward: 0, extracted: parsed.answer, reason: `invalid expression: ${result.error}` };
  const want = [...numbers].sort((a, b) => a - b).join(',');
  const used = [...result.numbers].sort((a, b) => a - b).join(',');
  if (want !== used)
    return { reward: 0, extracted: parsed.answer, reason: `uses [${used}]; expected each of [${want}] exactly once` };
  const [n, d] = result.value;
  if (d !== 1n || n !== BigInt(target))
    return { reward: 0, extracted: parsed.answer, reason: `evaluates to ${d === 1n ? n : `${n}/${d}`}, not ${target}` };
  return { reward: 1, extracted: parsed.answer, reason: 'correct' };
}

export const countdown: ReasoningTask = {
  name: 'countdown',
  description: 'reach the target from the given numbers with + - * / (each used once; difficulty 1-4: count and size)',
  maxDifficulty: LEVELS.length,
  defaultDifficulty: 1,
  generate(index: number, { difficulty, split, seed }: TaskOptions): TaskProblem {
    const [count, largest] = LEVELS[difficulty - 1]!;
    for (let attempt = 0; ; attempt++) {
      // Targets come from a random expression over all the numbers, so every problem is solvable.
      const problem = drawInSplit('countdown', index * 1000 + attempt, seed, split, (random) => {
        const numbers = Array.from({ length: count }, () => randInt(random, 1, largest));
        let items: Item[] = numbers.map((n) => ({ value: n, expr: String(n), prec: 3 }));
        while (items.length > 1) {
          const i = randInt(random, 0, items.length - 1);
          let j = randInt(random, 0, items.length - 2);
          if (j >= i) j++;
          const ops = (['+', '-', '*', '/'] as Op[])
            .map((op) => combine(items[i]!, op, items[j]!))
            .filter((x): x is Item => x !== null);
          const next = ops.length ? ops[randInt(random, 0, ops.length - 1)]! : combine(items[i]!, '+', items[j]!)!;
          items = [...items.filter((_, k) => k !== i && k !== j), next];
        }
        const target = items[0]!.value;
        return { id: `${numbers.join(',')}->${target}`, numbers, target };
      });
      if (problem.target > MAX_TARGET) continue;
      const { lines, solution } = countdownSearch(problem.numbers, problem.target);
      if (!solution) continue; // the search ran past MAX_TRACE_LINES: draw another
      const answer = JSON.stringify({ numbers: problem.numbers, target: problem.target });
      const think = (ls: string[]) => ls.join('\n') + '\n';
      return {
        id: problem.id,
        prompt: countdownPrompt(problem.numbers, problem.target),
        answer,
        response: teacherResponse(think(lines), solution),
        brief: teacherResponse(think(winningPath(lines)), solution),
      };
    }
  },
  verify: verifyCountdown,
};

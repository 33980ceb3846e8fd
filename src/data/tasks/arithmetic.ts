// `arithmetic`: multi-digit addition and multiplication, worked digit by digit.
//
// The chain of thought is a scratchpad whose every step is a local operation a small model can
// learn: a state line `A+B|carry|result` names the remaining digits, the carry and the result
// so far; the next line adds the last digits (`7+8+0=15`); the next state drops them, keeps
// the tens as carry and prepends the units to the result. Multiplication runs the same loop
// for A×digit per digit of B, then adds the shifted partial products with the addition loop.
// Operand lengths are drawn with a long tail, so a few problems need many times the median
// number of tokens (docs/tasks.md lists p50/p90/max per difficulty).
import type { ReasoningTask, TaskOptions, TaskProblem, TaskVerdict } from './types.ts';
import { drawInSplit, parseResponse, randInt, skewedLength, teacherResponse } from './format.ts';

/** Operand digit limits per difficulty: [max digits of an addend, max digits of A in A*B, of B]. */
const LIMITS: [number, number, number][] = [
  [3, 2, 1], // 1
  [4, 3, 2], // 2
  [6, 4, 3], // 3
  [8, 5, 3], // 4
  [10, 6, 4], // 5
  [12, 8, 5], // 6
];

function randomOperand(random: () => number, maxDigits: number): bigint {
  const digits = skewedLength(random, maxDigits, 0.5);
  const lo = digits === 1 ? 0 : 10 ** (digits - 1);
  return BigInt(randInt(random, lo, 10 ** digits - 1));
}

/** Lines of the addition scratchpad for a + b (decimal strings), ending with the sum. */
export function additionSteps(a: string, b: string): { lines: string[]; sum: string } {
  const lines: string[] = [];
  let A = a;
  let B = b;
  let carry = 0;
  let result = '';
  lines.push(`${A}+${B}|${carry}|${result}`);
  while (A !== '' || B !== '' || carry > 0) {
    const da = A === '' ? 0 : Number(A.at(-1));
    const db = B === '' ? 0 : Number(B.at(-1));
    const s = da + db + carry;
    lines.push(`${da}+${db}+${carry}=${s}`);
    A = A.slice(0, -1);
    B = B.slice(0, -1);
    carry = Math.floor(s / 10);
    result = `${s % 10}${result}`;
    lines.push(`${A}+${B}|${carry}|${result}`);
  }
  return { lines, sum: result.replace(/^0+(?=\d)/, '') };
}

/** Lines of the scratchpad for a × d (d one digit), ending with the product. */
export function digitProductSteps(a: string, d: number): { lines: string[]; product: string } {
  const lines: string[] = [];
  let A = a;
  let carry = 0;
  let result = '';
  lines.push(`${A}*${d}|${carry}|${result}`);
  while (A !== '' || carry > 0) {
    const da = A === '' ? 0 : Number(A.at(-1));
    const p = da * d + carry;
    lines.push(`${da}*${d}+${carry}=${p}`);
    A = A.slice(0, -1);
    carry = Math.floor(p / 10);
    result = `${p % 10}${result}`;
    lines.push(`${A}*${d}|${carry}|${result}`);
  }
  return { lines, product: result.replace(/^0+(?=\d)/, '') || '0' };
}

export function arithmeticThink(a: bigint, op: '+' | '*', b: bigint): { think: string; answer: string } {
  if (op === '+') {
    const { lines, sum } = additionSteps(a.toString(), b.toString());
    return { think: lines.join('\n') + '\n', answer: sum };
  }
  const lines: string[] = [];
  const B = b.toString();
  let total = '';
  for (let i = 0; i < B.length; i++) {
    const d = Number(B[B.length - 1 - i]);
    const { lines: pl, product } = digitProductSteps(a.toString(), d);
    lines.push(...pl);
    const shifted = product === '0' ? '0' : product + '0'.repeat(i);
    if (i === 0) total = shifted;
    else {
      const { lines: al, sum } = additionSteps(total, shifted);
      lines.push(...al);
      total = sum;
    }
  }
  return { think: lines.join('\n') + '\n', answer: total };
}

/**
 * The brief scratchpad: the same plan with every digit loop left out, one line per partial
 * product and per running sum (`457*8=3656`, `457*60=27420`, `3656+27420=31076`). It opens like
 * the worked one (`457*8|0|` against `457*8=`), so the choice between them is one token.
 */
export function arithmeticBriefThink(a: bigint, op: '+' | '*', b: bigint): string {
  if (op === '+') return `${a}+${b}=${a + b}\n`;
  const lines: string[] = [];
  const B = b.toString();
  let total = 0n;
  for (let i = 0; i < B.length; i++) {
    const d = BigInt(B[B.length - 1 - i]!);
    if (d === 0n && i > 0) continue; // adds nothing
    const shifted = a * d * 10n ** BigInt(i);
    lines.push(`${a}*${d}${'0'.repeat(i)}=${shifted}`);
    if (i > 0) lines.push(`${total}+${shifted}=${total + shifted}`);
    total += shifted;
  }
  return lines.join('\n') + '\n';
}

export function arithmeticProblem(a: bigint, op: '+' | '*', b: bigint): TaskProblem {
  const id = `${a}${op}${b}`;
  const { think, answer } = arithmeticThink(a, op, b);
  return {
    id,
    prompt: `${id}=\n`,
    answer,
    response: teacherResponse(think, answer),
    brief: teacherResponse(arithmeticBriefThink(a, op, b), answer),
  };
}

export function verifyArithmetic(response: string, answer: string): TaskVerdict {
  const parsed = parseResponse(response);
  if (!parsed.ok) return { reward: 0, extracted: parsed.answer, reason: parsed.reason };
  if (!/^-?\d+$/.test(parsed.answer))
    return { reward: 0, extracted: parsed.answer, reason: `boxed answer '${parsed.answer}' is not an integer` };
  if (BigInt(parsed.answer) !== BigInt(answer.trim()))
    return { reward: 0, extracted: parsed.answer, reason: `wrong answer ${parsed.answer} (expected ${answer.trim()})` };
  return { reward: 1, extracted: parsed.answer, reason: 'correct' };
}

export const arithmetic: ReasoningTask = {
  name: 'arithmetic',
  description: 'multi-digit addition and multiplication worked digit by digit (difficulty 1-6: operand lengths)',
  maxDifficulty: LIMITS.length,
  defaultDifficulty: 2,
  generate(index: number, { difficulty, split, seed }: TaskOptions): TaskProblem {
    const [addDigits, mulA, mulB] = LIMITS[difficulty - 1]!;
    return drawInSplit('arithmetic', index, seed, split, (random) => {
      if (random() < 0.5)
        return arithmeticProblem(randomOperand(random, addDigits), '+', randomOperand(random, addDigits));
      return arithmeticProblem(randomOperand(random, mulA), '*', randomOperand(random, mulB));
    });
  },
  verify: verifyArithmetic,
};

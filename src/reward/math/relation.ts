// Inequalities: `x > 3`, `3 < x`, `-x > -3`, `2x \le 10`, chains `a < x \le b`, `1 \le |t| \le 4`.
// One relation against another is a sign condition on proportional differences; a relation of one
// quantity is the interval (or, for |v|, the two intervals) it describes, written as tuples so the
// answer comparison treats them like a written interval.
import type { Answer } from './answer.ts';
import { proportional, type Verdict } from './expr.ts';

export type RelationOp = '<' | '>' | '≤' | '≥' | '≠';

interface Relation {
  sides: string[];
  ops: RelationOp[];
}

const FLIP: Record<RelationOp, RelationOp> = { '<': '>', '>': '<', '≤': '≥', '≥': '≤', '≠': '≠' };

/** `a op b` as `d op' 0` with op' one of <, ≤, ≠ (d = a − b, or b − a when op is > or ≥). */
function asSigned(l: string, op: RelationOp, r: string): { diff: string; op: RelationOp } {
  if (op === '>' || op === '≥') return { diff: `(${r})-(${l})`, op: FLIP[op] };
  return { diff: `(${l})-(${r})`, op };
}

/** Two single relations: `x ≤ 5` is `5 ≥ x` is `-x ≥ -5` is `2x ≤ 10`; null when either is a chain. */
export function compareSingleRelations(gold: Relation, ans: Relation): Verdict | null {
  if (gold.ops.length !== 1 || ans.ops.length !== 1) return null;
  const g = asSigned(gold.sides[0]!, gold.ops[0]!, gold.sides[1]!);
  const a = asSigned(ans.sides[0]!, ans.ops[0]!, ans.sides[1]!);
  const equal = g.op === a.op && proportional(g.diff, a.diff, g.op !== '≠');
  return { equal, reason: equal ? 'equivalent inequalities' : 'different inequalities' };
}

interface Bounds {
  variable: string;
  lo: string;
  hi: string;
  open: '(' | '[';
  close: ')' | ']';
}

const hasLetters = (s: string) => /[A-Za-z]/.test(s.replace(/Infinity|pi|sqrt|nthRoot/g, ''));

/** `a < x ≤ b` → (a, b]; `x ≥ 5` → [5, ∞); null when the relation does not bound one quantity. */
function bounds(r: Relation): Bounds | null {
  let { sides, ops } = r;
  if (ops.every((op) => op === '>' || op === '≥')) {
    sides = [...sides].reverse();
    ops = [...ops].reverse().map((op) => FLIP[op]);
  }
  if (ops.some((op) => op !== '<' && op !== '≤')) return null;
  if (ops.length === 2 && hasLetters(sides[1]!) && !hasLetters(sides[0]!) && !hasLetters(sides[2]!)) {
    return { variable: sides[1]!, lo: sides[0]!, hi: sides[2]!, open: ops[0] === '<' ? '(' : '[', close: ops[1] === '<' ? ')' : ']' };
  }
  if (ops.length === 1) {
    const [l, r2] = sides as [string, string];
    if (hasLetters(l) && !hasLetters(r2)) return { variable: l, lo: '-Infinity', hi: r2, open: '(', close: ops[0] === '<' ? ')' : ']' };
    if (hasLetters(r2) && !hasLetters(l)) return { variable: r2, lo: l, hi: 'Infinity', open: ops[0] === '<' ? '(' : '[', close: ')' };
  }
  return null;
}

const expr = (text: string): Answer => ({ kind: 'expr', text });

/**
 * The intervals a relation describes, as tuples: `a < x ≤ b` is (a, b]; `a ≤ |v| < b` with a not
 * negative is [-b, -a] and [a, b) — so `1 ≤ |t| ≤ 4` is never the single interval [1, 4].
 */
export function relationIntervals(r: Relation): { variable: string; parts: Answer[] } | null {
  const b = bounds(r);
  if (!b) return null;
  const variable = b.variable.replace(/\s+/g, '');
  const interval: Answer = { kind: 'tuple', open: b.open, close: b.close, items: [expr(b.lo), expr(b.hi)] };
  if (!/^\|[^|]+\|$/.test(variable)) return { variable, parts: [interval] };
  if (b.lo.trim().startsWith('-') || b.hi === 'Infinity') return null;
  const mirror = { '(': ')', '[': ']' } as const;
  const back = { ')': '(', ']': '[' } as const;
  const negative: Answer = { kind: 'tuple', open: back[b.close], close: mirror[b.open], items: [expr(`-(${b.hi})`), expr(`-(${b.lo})`)] };
  return { variable, parts: [negative, interval] };
}

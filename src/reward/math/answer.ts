// Answer structure and equivalence. A normalised answer is a choice letter, a set (unordered:
// `\{1,2\}`, bare lists `1, 2`, `1; 2`, `±a`), a tuple or interval (ordered, brackets matter), a
// union of intervals, a matrix, an equation (a chain `a = b = c` is its first and last side), an
// inequality (chains `a < x ≤ b` too), a scalar expression, or free text.
import { compareExpr, proportional, PLAIN_NUMBER, type Verdict } from './expr.ts';
import { matrixValue } from './matrix.ts';
import { compareSingleRelations, relationIntervals, type RelationOp } from './relation.ts';
import { MATRIX_OPEN } from './normalize.ts';
import { NAMED_SYMBOLS } from './value.ts';

export type { Verdict } from './expr.ts';

export type Answer =
  | { kind: 'choice'; letter: string }
  | { kind: 'set'; items: Answer[]; braced: boolean; decimal?: string }
  | { kind: 'tuple'; open: string; close: string; items: Answer[] }
  | { kind: 'union'; parts: Answer[] }
  | { kind: 'matrix'; rows: Answer[][] }
  | { kind: 'equation'; sides: Answer[]; texts: string[] }
  | { kind: 'relation'; sides: string[]; ops: RelationOp[] }
  | { kind: 'expr'; text: string }
  | { kind: 'text'; text: string };

const OPENERS = '([⟦⟪';
const CLOSERS = ')]⟧⟫';

/** Split on any of `seps` at bracket depth 0; returns the parts and the separator before each. */
function splitTopAny(s: string, seps: string[]): { parts: string[]; found: string[] } {
  const parts: string[] = [];
  const found: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) depth--;
    else if (depth === 0) {
      const sep = seps.find((p) => s.startsWith(p, i));
      if (sep) {
        parts.push(s.slice(start, i).trim());
        found.push(sep);
        start = i + sep.length;
        i += sep.length - 1;
      }
    }
  }
  parts.push(s.slice(start).trim());
  return { parts, found };
}

function splitTop(s: string, sep: string): string[] {
  return splitTopAny(s, [sep]).parts;
}

/** True when s[0] opens a bracket that closes exactly at the end of s. */
function wrapped(s: string, open: string, close: string): boolean {
  if (!open.includes(s[0] ?? '') || !close.includes(s[s.length - 1] ?? '')) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (OPENERS.includes(s[i]!)) depth++;
    else if (CLOSERS.includes(s[i]!)) depth--;
    if (depth === 0 && i < s.length - 1) return false;
  }
  return true;
}

/** `x`, `y_1`, `theta`: one variable. */
const LONE_VARIABLE = /^[A-Za-z](?:_?\(?[A-Za-z0-9]+\)?)?$|^(?:alpha|beta|gamma|theta|phi|lambda|mu)$/;

/**
 * A label names the answer rather than computing it: `x`, `(p,q)`, `|AB|`, `A:B`, `NO/BO`, `S_MBCN:S`,
 * `f(x)` — letters only (subscripts aside). `a + 3z` or `7` are expressions: `7 = 11a + c` is an
 * equation to solve, never "the answer is 11a + c".
 */
function isLabel(text: string): boolean {
  const bare = text.replace(/_\w+/g, '').replace(/\s+/g, '');
  return bare !== '' && /^[A-Za-z()|:,/*·]+$/.test(bare) && /[A-Za-z]/.test(bare);
}

const RELATIONS: RelationOp[] = ['≤', '≥', '≠', '<', '>'];

/** Structure of a normalised answer. */
export function parseAnswer(s: string): Answer {
  s = s.trim();
  if (PLAIN_NUMBER.test(s)) return { kind: 'expr', text: s };
  const choice = /^\(?([A-Z])\)?$/.exec(s) ?? /^(?:option|choice)\s*\(?([A-Za-z])\)?$/i.exec(s);
  if (choice) return { kind: 'choice', letter: choice[1]!.toUpperCase() };
  if (s.startsWith('⟦') && wrapped(s, '⟦', '⟧')) {
    const inner = s.slice(1, -1).trim();
    return { kind: 'set', items: inner === '' ? [] : splitTop(inner, ',').map(parseAnswer), braced: true };
  }
  // `1; 2; 3` lists answers; `p=5,q=2; p=7,q=2` lists solutions, each a tuple of values.
  const groups = splitTop(s, ';').filter((g) => g !== '');
  if (groups.length > 1) return { kind: 'set', items: groups.map(parseSolution), braced: false };
  const unionParts = splitTop(s, ' U ');
  if (unionParts.length > 1) return { kind: 'union', parts: unionParts.map(parseAnswer) };
  const items = splitTop(s, ',');
  if (items.length > 1) {
    const set: Answer = { kind: 'set', items: items.map(parseAnswer), braced: false };
    // `0,111` or `2,74` may be a decimal comma, decided only against a number; `2,5` stays the list 2, 5.
    if (/^-?\d+,\d{2,}$/.test(s)) set.decimal = s.replace(',', '.');
    return set;
  }
  // `x ∈ [a, b]`: the set the variable ranges over.
  const member = splitTop(s, '∈');
  if (member.length === 2 && isLabel(member[0]!)) return parseAnswer(member[1]!);
  const chain = splitTopAny(s, ['=', '≈']);
  if (chain.parts.length > 1) return parseChain(chain.parts, chain.found);
  const relation = splitTopAny(s, RELATIONS);
  if (relation.parts.length > 1 && relation.parts.every((p) => p !== '')) {
    return { kind: 'relation', sides: relation.parts, ops: relation.found as RelationOp[] };
  }
  if (s.includes(MATRIX_OPEN)) {
    const cells = matrixValue(s);
    if (cells) return { kind: 'matrix', rows: cells.map((row) => row.map((c) => parseAnswer(c))) };
  }
  if (wrapped(s, '([', ')]')) {
    const inner = splitTop(s.slice(1, -1), ',');
    if (inner.length > 1) return { kind: 'tuple', open: s[0]!, close: s[s.length - 1]!, items: inner.map(parseAnswer) };
  }
  if (/^[A-Za-z][A-Za-z ]+$/.test(s) && !NAMED_SYMBOLS.has(s)) return { kind: 'text', text: s.toLowerCase() };
  const pm = splitPlusMinus(s);
  if (pm) return { kind: 'set', items: pm.map(parseAnswer), braced: false };
  return { kind: 'expr', text: s };
}

/**
 * `x = 5+5+1 = 7 = 11` is x = 11; an approximation after an exact value is dropped
 * (`x = 1/3 ≈ 0.33` is x = 1/3), one standing alone is kept (`x ≈ 11` is x = 11).
 */
function parseChain(parts: string[], ops: string[]): Answer {
  const firstApprox = ops.indexOf('≈');
  const texts = firstApprox > 0 ? parts.slice(0, firstApprox + 1) : parts;
  return { kind: 'equation', sides: texts.map(parseAnswer), texts };
}

/** One `;`-separated solution: `p=5, q=2` is the tuple (5, 2). */
function parseSolution(s: string): Answer {
  const a = parseAnswer(s);
  if (a.kind !== 'set' || a.braced || a.items.length < 2) return a;
  const values = a.items.map((item) => (item.kind === 'equation' && item.sides.length === 2 && LONE_VARIABLE.test(item.texts[0]!) ? item.sides[1]! : null));
  return values.every((v) => v !== null) ? { kind: 'tuple', open: '(', close: ')', items: values as Answer[] } : a;
}

/** `a ± b` → [a+b, a-b]; `±a` → [a, -a] (one ± at top level only). */
function splitPlusMinus(s: string): string[] | null {
  const at = s.search(/[±∓]/);
  if (at < 0) return null;
  const head = s.slice(0, at).trim();
  const tail = s.slice(at + 1).trim();
  if (/[±∓]/.test(tail)) return null;
  return head === '' ? [`${tail}`, `-(${tail})`] : [`(${head})+(${tail})`, `(${head})-(${tail})`];
}

/** Items equal to an earlier item are dropped: `{1, 1, 2}` is the set {1, 2}. */
function distinct(items: Answer[]): Answer[] {
  if (items.length * items.length > MAX_PAIRS) return items;
  const kept: Answer[] = [];
  for (const item of items) if (!kept.some((k) => compareAnswers(k, item).equal)) kept.push(item);
  return kept;
}

/** Pairwise comparisons allowed for one unordered match; beyond it lists compare as sorted text. */
const MAX_PAIRS = 1024;

function sortedText(items: Answer[]): string {
  return items.map((a) => JSON.stringify(a)).sort().join('|');
}

/** Match every gold item to a distinct answer item. */
function matchUnordered(gold: Answer[], ans: Answer[]): boolean {
  if (gold.length !== ans.length) return false;
  if (gold.length * ans.length > MAX_PAIRS) return sortedText(gold) === sortedText(ans);
  const used = new Array<boolean>(ans.length).fill(false);
  for (const g of gold) {
    const j = ans.findIndex((a, k) => !used[k] && compareAnswers(g, a).equal);
    if (j < 0) return false;
    used[j] = true;
  }
  return true;
}

function orderedEqual(gold: Answer[], ans: Answer[]): boolean {
  return gold.length === ans.length && gold.every((g, i) => compareAnswers(g, ans[i]!).equal);
}

/** The value an equation gives: its last side (`k = 1/3` answers 1/3). */
function lastSide(e: { sides: Answer[] }): Answer {
  return e.sides[e.sides.length - 1]!;
}

/** A gold equation stands for its value only when a side before the value is a label. */
function labelled(e: { texts: string[] }): boolean {
  return e.texts.slice(0, -1).some(isLabel);
}

/** Equivalence of a gold answer and a candidate. */
export function compareAnswers(gold: Answer, ans: Answer): Verdict {
  if (gold.kind === 'set' && gold.items.length === 1) return compareAnswers(gold.items[0]!, ans);
  if (ans.kind === 'set' && ans.items.length === 1) return compareAnswers(gold, ans.items[0]!);
  if (gold.kind !== ans.kind) return compareKinds(gold, ans);
  switch (gold.kind) {
    case 'choice':
      return gold.letter === (ans as typeof gold).letter ? { equal: true, reason: 'same choice' } : { equal: false, reason: 'different choice' };
    case 'set': {
      const a = ans as typeof gold;
      const equal = matchUnordered(distinct(gold.items), distinct(a.items));
      return { equal, reason: equal ? 'same set' : 'different set' };
    }
    case 'union': {
      const equal = matchUnordered(gold.parts, (ans as typeof gold).parts);
      return { equal, reason: equal ? 'same union' : 'different union' };
    }
    case 'tuple': {
      const a = ans as typeof gold;
      if (gold.open !== a.open || gold.close !== a.close) return { equal: false, reason: 'different brackets (open/closed ends)' };
      if (gold.items.length !== a.items.length) return { equal: false, reason: 'different length' };
      const equal = orderedEqual(gold.items, a.items);
      return { equal, reason: equal ? 'same tuple' : 'different tuple' };
    }
    case 'matrix': {
      const a = ans as typeof gold;
      const same = gold.rows.length === a.rows.length && gold.rows.every((row, i) => orderedEqual(row, a.rows[i]!));
      return { equal: same, reason: same ? 'same matrix' : 'different matrix' };
    }
    case 'equation':
      return compareEquations(gold, ans as typeof gold);
    case 'relation': {
      const a = ans as typeof gold;
      const identical = gold.ops.join() === a.ops.join() && gold.sides.join('|').replace(/\s+/g, '') === a.sides.join('|').replace(/\s+/g, '');
      if (identical) return { equal: true, reason: 'identical' };
      const single = compareSingleRelations(gold, a);
      if (single) return single;
      // `a < x ≤ b` against `b ≥ x > a`: the same intervals of the same quantity.
      const [gi, ai] = [relationIntervals(gold), relationIntervals(a)];
      const equal = gi !== null && ai !== null && gi.variable === ai.variable && matchUnordered(gi.parts, ai.parts);
      return { equal, reason: equal ? 'same interval' : 'different inequalities' };
    }
    case 'expr':
      return compareExpr(gold.text, (ans as typeof gold).text);
    case 'text': {
      const equal = gold.text === (ans as typeof gold).text;
      return { equal, reason: equal ? 'same text' : 'different text' };
    }
  }
}

/** Different kinds: labels, decimal commas, lists against tuples, inequalities against intervals. */
function compareKinds(gold: Answer, ans: Answer): Verdict {
  if (gold.kind === 'equation' && labelled(gold)) return compareAnswers(lastSide(gold), ans);
  if (ans.kind === 'equation') return compareAnswers(gold, lastSide(ans));
  if (gold.kind === 'set' && gold.decimal && ans.kind === 'expr') return compareExpr(gold.decimal, ans.text);
  if (ans.kind === 'set' && ans.decimal && gold.kind === 'expr') return compareExpr(gold.text, ans.decimal);
  // A bare list written in order is the tuple it lists: `{1,3}` answers (1, 3) but not (3, 1).
  const list = gold.kind === 'set' && !gold.braced ? gold : ans.kind === 'set' && !ans.braced ? ans : null;
  const tuple = gold.kind === 'tuple' ? gold : ans.kind === 'tuple' ? ans : null;
  if (list && tuple && tuple.open === '(' && tuple.close === ')') {
    const equal = orderedEqual(list.items, tuple.items);
    return { equal, reason: equal ? 'same items in order' : 'different items' };
  }
  // An inequality in the gold accepts the interval it describes (not the other way round, as in Math-Verify).
  // `a ≤ |v| ≤ b` (0 ≤ a) is the union [-b, -a] ∪ [a, b].
  if (gold.kind === 'relation' && (ans.kind === 'tuple' || ans.kind === 'union')) {
    const intervals = relationIntervals(gold);
    const equal = intervals !== null && matchUnordered(intervals.parts, ans.kind === 'union' ? ans.parts : [ans]);
    return { equal, reason: equal ? 'the interval the inequality describes' : 'different interval' };
  }
  // A lone letter in the answer may still be a variable; a gold expression decides.
  if (gold.kind === 'expr' && ans.kind === 'choice') return compareExpr(gold.text, ans.letter);
  if (gold.kind === 'choice' && ans.kind === 'expr') {
    const m = /^([A-Za-z])$/.exec(ans.text);
    if (m && m[1]!.toUpperCase() === gold.letter) return { equal: true, reason: 'same choice' };
  }
  return { equal: false, reason: `expected a ${gold.kind}, got a ${ans.kind}` };
}

function compareEquations(gold: { sides: Answer[]; texts: string[] }, ans: { sides: Answer[]; texts: string[] }): Verdict {
  const [gl, gr] = [gold.sides[0]!, lastSide(gold)];
  const [al, ar] = [ans.sides[0]!, lastSide(ans)];
  const [glt, alt] = [gold.texts[0]!, ans.texts[0]!];
  // The same label (`D = (0, 1)`, `(p,q) = …`) on both sides: compare the values.
  // Different labels are never matched up: `(b,a) = (1,2)` is not `(a,b) = (1,2)`.
  const sameLabel = glt.replace(/\s+/g, '') === alt.replace(/\s+/g, '') && isLabel(glt);
  if (sameLabel) {
    const v = compareAnswers(gr, ar);
    return { equal: v.equal, reason: v.equal ? 'same labelled value' : 'different labelled value' };
  }
  if (gl.kind !== 'expr' || gr.kind !== 'expr' || al.kind !== 'expr' || ar.kind !== 'expr') return { equal: false, reason: 'equation sides are not comparable' };
  // a = b and c = d are the same equation when a − b = k·(c − d) for a constant k ≠ 0.
  const equal = proportional(`(${gl.text})-(${gr.text})`, `(${al.text})-(${ar.text})`, false);
  return { equal, reason: equal ? 'equivalent equations' : 'different equations' };
}

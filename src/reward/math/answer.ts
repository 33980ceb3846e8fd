// Answer structure and equivalence. A normalised answer is a choice letter, a set (unordered:
// `\{1,2\}`, bare lists `1, 2`, `±a`), a tuple or interval (ordered, brackets matter), a union of
// intervals, an equation, a scalar expression, or free text.
import type { MathNode } from 'mathjs';
import { math, FUNCTION_NAMES, NAMED_SYMBOLS, evaluate, valuesEqual, freeSymbols, nodeCount, parseDecimal, distance, exactValue, TooLarge, Unsupported, type Value } from './value.ts';

export type Answer =
  | { kind: 'choice'; letter: string }
  | { kind: 'set'; items: Answer[] }
  | { kind: 'tuple'; open: string; close: string; items: Answer[] }
  | { kind: 'union'; parts: Answer[] }
  | { kind: 'equation'; lhs: Answer; rhs: Answer }
  | { kind: 'expr'; text: string }
  | { kind: 'text'; text: string };

export interface Verdict {
  equal: boolean;
  reason: string;
}

/** Parsing work is bounded by input size: a longer answer is compared as text. */
const MAX_EXPR_CHARS = 400;

const PLAIN_NUMBER = /^-?(?:\d+\.?\d*|\.\d+)$/;

/** Split on `sep` at bracket depth 0. */
function splitTop(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if ('([⟦'.includes(c)) depth++;
    else if (')]⟧'.includes(c)) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

/** True when s[0] opens a bracket that closes exactly at the end of s. */
function wrapped(s: string, open: string, close: string): boolean {
  if (!open.includes(s[0] ?? '') || !close.includes(s[s.length - 1] ?? '')) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if ('([⟦'.includes(s[i]!)) depth++;
    else if (')]⟧'.includes(s[i]!)) depth--;
    if (depth === 0 && i < s.length - 1) return false;
  }
  return true;
}

/** `x`, `y_1`, `theta`: a lone variable on the left of `x = …`. */
const LONE_VARIABLE = /^[A-Za-z](?:_?\(?[A-Za-z0-9]\)?)?$|^(?:alpha|beta|gamma|theta|phi|lambda|mu)$/;

/** `x = 5` stands for `5` when compared with a non-equation. */
function solvedFor(a: Answer): Answer | null {
  return a.kind === 'equation' && a.lhs.kind !== 'set' && LONE_VARIABLE.test(answerText(a.lhs)) ? a.rhs : null;
}

function answerText(a: Answer): string {
  return a.kind === 'expr' || a.kind === 'text' ? a.text : a.kind === 'choice' ? a.letter : '';
}

/** Structure of a normalised answer. `choices` marks gold answers that are option letters. */
export function parseAnswer(s: string): Answer {
  s = s.trim();
  const choice = /^\(?([A-Z])\)?$/.exec(s) ?? /^(?:option|choice)\s*\(?([A-Za-z])\)?$/i.exec(s);
  if (choice) return { kind: 'choice', letter: choice[1]!.toUpperCase() };
  if (s.startsWith('⟦') && wrapped(s, '⟦', '⟧')) {
    const inner = s.slice(1, -1).trim();
    return { kind: 'set', items: inner === '' ? [] : splitTop(inner, ',').map(parseAnswer) };
  }
  const unionParts = splitTop(s, ' U ');
  if (unionParts.length > 1) return { kind: 'union', parts: unionParts.map(parseAnswer) };
  const items = splitTop(s, ',');
  if (items.length > 1) return { kind: 'set', items: items.map(parseAnswer) };
  if (wrapped(s, '([', ')]')) {
    const inner = splitTop(s.slice(1, -1), ',');
    if (inner.length > 1) return { kind: 'tuple', open: s[0]!, close: s[s.length - 1]!, items: inner.map(parseAnswer) };
  }
  if (/^[A-Za-z][A-Za-z ]+$/.test(s) && !NAMED_SYMBOLS.has(s)) return { kind: 'text', text: s.toLowerCase() };
  const eq = splitTop(s, '=');
  if (eq.length === 2) {
    return { kind: 'equation', lhs: parseAnswer(eq[0]!), rhs: parseAnswer(eq[1]!) };
  }
  const pm = splitPlusMinus(s);
  if (pm) return { kind: 'set', items: pm.map(parseAnswer) };
  return { kind: 'expr', text: s };
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

// mathjs parses `2x` as 2*x and `x y` as x*y; we keep its defaults. Parsed nodes are cached
// because RL batches repeat the same gold answers.
const parseCache = new Map<string, MathNode | null>();

function parseExpr(text: string): MathNode | null {
  const cached = parseCache.get(text);
  if (cached !== undefined) return cached;
  let node: MathNode | null = null;
  if (text.length <= MAX_EXPR_CHARS && /^[\w\s+\-*/^().!,]*$/.test(text) && !/[<>]/.test(text)) {
    try {
      node = readImplicitProducts(math.parse(splitLetters(text)));
      if (nodeCount(node) > 400) node = null;
    } catch {
      node = null;
    }
  }
  if (parseCache.size > 10000) parseCache.clear();
  parseCache.set(text, node);
  return node;
}

/** mathjs reads `xy` as one symbol and `n(n+1)` as a call; in answers both are products. */
function readImplicitProducts(root: MathNode): MathNode {
  return root.transform((node) => {
    if (node.type === 'FunctionNode') {
      const f = node as unknown as { fn: { name: string }; args: MathNode[] };
      if (!FUNCTION_NAMES.has(f.fn.name) && f.args.length === 1) {
        return new math.OperatorNode('*', 'multiply', [splitSymbol(f.fn.name), new math.ParenthesisNode(readImplicitProducts(f.args[0]!))]);
      }
      return node;
    }
    if (node.type === 'SymbolNode') return splitSymbol((node as unknown as { name: string }).name);
    return node;
  });
}

/** `3xy^2` → `3x*y^2` before parsing, so a power binds to one letter as in LaTeX. */
function splitLetters(text: string): string {
  return text.replace(/[A-Za-z]{2,}/g, (name) => (NAMED_SYMBOLS.has(name) || FUNCTION_NAMES.has(name) || name === 'log10' ? name : [...name].join('*')));
}

function splitSymbol(name: string): MathNode {
  if (name.length === 1 || NAMED_SYMBOLS.has(name) || FUNCTION_NAMES.has(name) || !/^[A-Za-z]+$/.test(name)) return new math.SymbolNode(name);
  return new math.OperatorNode('*', 'multiply', [...name].map((c) => new math.SymbolNode(c)));
}

/** Rational sample points for the free variables (deterministic; mixed signs). */
const SAMPLES: [bigint, bigint][] = [
  [7n, 5n],
  [-13n, 11n],
  [29n, 17n],
  [-3n, 7n],
  [41n, 9n],
  [5n, 23n],
];

function canonical(node: MathNode): string {
  return node.toString({ parenthesis: 'auto', implicit: 'show' }).replace(/\s+/g, '');
}

function decimalDigits(text: string): { frac: number; significant: number } | null {
  if (!/^-?\d*\.\d+$/.test(text)) return null;
  const [, frac = ''] = text.split('.');
  const significant = text.replace(/[-.]/g, '').replace(/^0+/, '').length;
  return { frac: frac.length, significant };
}

/** Accept a written decimal D that is the other side correctly rounded to D's digits (≥ 3 significant). */
function roundedMatch(aText: string, a: Value, bText: string, b: Value): boolean {
  for (const [dText, dVal, other, otherText] of [
    [aText, a, b, bText],
    [bText, b, a, aText],
  ] as const) {
    const digits = decimalDigits(dText);
    if (!digits || digits.significant < 3 || PLAIN_NUMBER.test(otherText)) continue;
    const half = parseDecimal(`5e-${digits.frac + 1}`);
    if (half.kind !== 'exact') continue;
    const tol = Number(half.n) / Number(half.d);
    if (distance(dVal, other).lte(tol * (1 + 1e-12))) return true;
  }
  return false;
}

function compareExpr(a: string, b: string): Verdict {
  if (a === b) return { equal: true, reason: 'identical' };
  if (PLAIN_NUMBER.test(a) && PLAIN_NUMBER.test(b)) {
    const equal = valuesEqual(parseDecimal(a), parseDecimal(b));
    return { equal, reason: equal ? 'equal numbers' : 'different numbers' };
  }
  const na = parseExpr(a);
  const nb = parseExpr(b);
  if (!na || !nb) {
    const equal = a.toLowerCase().replace(/\s+/g, '') === b.toLowerCase().replace(/\s+/g, '');
    return { equal, reason: equal ? 'same text' : 'different text (not parseable as math)' };
  }
  const vars = [...new Set([...freeSymbols(na), ...freeSymbols(nb)])];
  const deadline = performance.now() + 200;
  try {
    if (vars.length === 0) {
      const va = evaluate(na, {}, deadline);
      const vb = evaluate(nb, {}, deadline);
      if (valuesEqual(va, vb)) return { equal: true, reason: va.kind === 'exact' && vb.kind === 'exact' ? 'equal exact values' : 'equal values (64-digit evaluation)' };
      if (roundedMatch(a, va, b, vb)) return { equal: true, reason: 'decimal is the exact value rounded' };
      return { equal: false, reason: 'different values' };
    }
    let checked = 0;
    for (let p = 0; p < SAMPLES.length; p++) {
      const scope: Record<string, Value> = {};
      vars.forEach((v, i) => {
        const [n, d] = SAMPLES[(p + i * 2) % SAMPLES.length]!;
        scope[v] = exactValue(n + BigInt(i), d);
      });
      let va: Value | null = null;
      let vb: Value | null = null;
      try {
        va = evaluate(na, scope, deadline);
      } catch (e) {
        if (e instanceof TooLarge) throw e;
      }
      try {
        vb = evaluate(nb, scope, deadline);
      } catch (e) {
        if (e instanceof TooLarge) throw e;
      }
      if ((va === null) !== (vb === null)) return { equal: false, reason: 'different domains' };
      if (va === null || vb === null) continue;
      if (!valuesEqual(va, vb)) return { equal: false, reason: `different values at ${vars.map((v) => `${v}=${show(scope[v]!)}`).join(', ')}` };
      checked++;
    }
    if (checked >= 3) return { equal: true, reason: `symbolically equal (identical at ${checked} exact sample points)` };
    return symbolic(na, nb);
  } catch (e) {
    if (e instanceof TooLarge) {
      const equal = canonical(na) === canonical(nb);
      return { equal, reason: equal ? 'structurally identical (too large to evaluate)' : 'too large to evaluate and not structurally identical' };
    }
    if (e instanceof Unsupported) return symbolic(na, nb);
    throw e;
  }
}

function show(v: Value): string {
  return v.kind === 'exact' ? `${v.n}/${v.d}` : String(v);
}

/** Last resort: ask the CAS whether a − b simplifies to 0 (small expressions only). */
function symbolic(na: MathNode, nb: MathNode): Verdict {
  if (nodeCount(na) + nodeCount(nb) > 60) return { equal: false, reason: 'could not establish equality' };
  try {
    const diff = math.simplify(new math.OperatorNode('-', 'subtract', [na, nb]));
    const equal = diff.type === 'ConstantNode' && Number((diff as unknown as { value: unknown }).value) === 0;
    return { equal, reason: equal ? 'symbolically equal (CAS simplify)' : 'could not establish equality' };
  } catch {
    return { equal: false, reason: 'could not establish equality' };
  }
}

/** Match every gold item to a distinct answer item. */
function matchUnordered(gold: Answer[], ans: Answer[]): boolean {
  if (gold.length !== ans.length) return false;
  const used = new Array<boolean>(ans.length).fill(false);
  for (const g of gold) {
    const j = ans.findIndex((a, k) => !used[k] && compareAnswers(g, a).equal);
    if (j < 0) return false;
    used[j] = true;
  }
  return true;
}

/** Equivalence of a gold answer and a candidate. */
export function compareAnswers(gold: Answer, ans: Answer): Verdict {
  if (gold.kind === 'set' && gold.items.length === 1) return compareAnswers(gold.items[0]!, ans);
  if (ans.kind === 'set' && ans.items.length === 1) return compareAnswers(gold, ans.items[0]!);
  if (gold.kind !== ans.kind) {
    const g = solvedFor(gold);
    if (g && ans.kind !== 'equation') return compareAnswers(g, ans);
    const a = solvedFor(ans);
    if (a && gold.kind !== 'equation') return compareAnswers(gold, a);
    // A lone letter in the answer may still be a variable; a gold expression decides.
    if (gold.kind === 'expr' && ans.kind === 'choice') return compareExpr(gold.text, ans.letter);
    if (gold.kind === 'choice' && ans.kind === 'expr') {
      const m = /^([A-Za-z])$/.exec(ans.text);
      if (m && m[1]!.toUpperCase() === gold.letter) return { equal: true, reason: 'same choice' };
    }
    return { equal: false, reason: `expected a ${gold.kind}, got a ${ans.kind}` };
  }
  switch (gold.kind) {
    case 'choice':
      return gold.letter === (ans as typeof gold).letter ? { equal: true, reason: 'same choice' } : { equal: false, reason: 'different choice' };
    case 'set': {
      const equal = matchUnordered(gold.items, (ans as typeof gold).items);
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
      const equal = gold.items.every((g, i) => compareAnswers(g, a.items[i]!).equal);
      return { equal, reason: equal ? 'same tuple' : 'different tuple' };
    }
    case 'equation': {
      const a = ans as typeof gold;
      const g = asDifference(gold);
      const c = asDifference(a);
      if (!g || !c) return { equal: false, reason: 'equation sides are not expressions' };
      if (compareExpr(g, c).equal || compareExpr(g, `-(${c})`).equal) return { equal: true, reason: 'equivalent equations' };
      return { equal: false, reason: 'different equations' };
    }
    case 'expr':
      return compareExpr(gold.text, (ans as typeof gold).text);
    case 'text': {
      const equal = gold.text === (ans as typeof gold).text;
      return { equal, reason: equal ? 'same text' : 'different text' };
    }
  }
}

function asDifference(e: { lhs: Answer; rhs: Answer }): string | null {
  if (e.lhs.kind !== 'expr' || e.rhs.kind !== 'expr') return null;
  return `(${e.lhs.text})-(${e.rhs.text})`;
}

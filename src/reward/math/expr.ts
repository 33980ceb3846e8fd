// Scalar expressions: parse with mathjs, compare by exact or 64-digit values at sample points.
// `compareExpr` decides a = b; `proportional` decides a = c·b for a constant c (equations and
// inequalities scaled by a constant: `x^2/4 + y^2/3 = 1` is `x^2/16 + y^2/12 = 1/4`).
import type { MathNode } from 'mathjs';
import { math, FUNCTION_NAMES, NAMED_SYMBOLS, evaluate, valuesEqual, freeSymbols, nodeCount, parseDecimal, distance, exactValue, mul, signOf, TooLarge, Unsupported, type Value } from './value.ts';

export interface Verdict {
  equal: boolean;
  reason: string;
}

/** Parsing work is bounded by input size: a longer answer is compared as text. */
const MAX_EXPR_CHARS = 400;

export const PLAIN_NUMBER = /^-?(?:\d+\.?\d*|\.\d+)$/;

// mathjs parses `2x` as 2*x and `x y` as x*y; we keep its defaults. Parsed nodes are cached
// because RL batches repeat the same gold answers.
const parseCache = new Map<string, MathNode | null>();

export function parseExpr(text: string): MathNode | null {
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

/** `3xy^2` → `3x*y^2` before parsing, so a power binds to one letter as in LaTeX; `a_37` stays one symbol. */
function splitLetters(text: string): string {
  return text.replace(/[A-Za-z]{2,}(?!_)/g, (name, at: number) =>
    NAMED_SYMBOLS.has(name) || FUNCTION_NAMES.has(name) || name === 'log10' || text[at - 1] === '_' ? name : [...name].join('*'),
  );
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

/** Values of both expressions at the shared sample points (null where outside a domain). */
function* samplePairs(na: MathNode, nb: MathNode, deadline: number): Generator<{ va: Value | null; vb: Value | null; at: string }> {
  const vars = [...new Set([...freeSymbols(na), ...freeSymbols(nb)])];
  for (let p = 0; p < (vars.length === 0 ? 1 : SAMPLES.length); p++) {
    const scope: Record<string, Value> = {};
    vars.forEach((v, i) => {
      const [n, d] = SAMPLES[(p + i * 2) % SAMPLES.length]!;
      scope[v] = exactValue(n + BigInt(i), d);
    });
    yield { va: tryEvaluate(na, scope, deadline), vb: tryEvaluate(nb, scope, deadline), at: vars.map((v) => `${v}=${show(scope[v]!)}`).join(', ') };
  }
}

function tryEvaluate(node: MathNode, scope: Record<string, Value>, deadline: number): Value | null {
  try {
    return evaluate(node, scope, deadline);
  } catch (e) {
    if (e instanceof TooLarge) throw e;
    return null;
  }
}

export function compareExpr(a: string, b: string): Verdict {
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
  const constant = freeSymbols(na).length + freeSymbols(nb).length === 0;
  const deadline = performance.now() + 200;
  try {
    if (constant) {
      const va = evaluate(na, {}, deadline);
      const vb = evaluate(nb, {}, deadline);
      if (valuesEqual(va, vb)) return { equal: true, reason: va.kind === 'exact' && vb.kind === 'exact' ? 'equal exact values' : 'equal values (64-digit evaluation)' };
      if (roundedMatch(a, va, b, vb)) return { equal: true, reason: 'decimal is the exact value rounded' };
      return { equal: false, reason: 'different values' };
    }
    let checked = 0;
    for (const { va, vb, at } of samplePairs(na, nb, deadline)) {
      if ((va === null) !== (vb === null)) return { equal: false, reason: 'different domains' };
      if (va === null || vb === null) continue;
      if (!valuesEqual(va, vb)) return { equal: false, reason: `different values at ${at}` };
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

/**
 * a = c·b for one constant c ≠ 0 at every sample point (c > 0 when `positive`): the test for
 * equations `a = 0`, `b = 0` and inequalities `a < 0`, `b < 0` that differ by a scale factor.
 */
export function proportional(a: string, b: string, positive: boolean): boolean {
  const na = parseExpr(a);
  const nb = parseExpr(b);
  if (!na || !nb) return false;
  let ratio: [Value, Value] | null = null;
  let checked = 0;
  try {
    for (const { va, vb } of samplePairs(na, nb, performance.now() + 200)) {
      if ((va === null) !== (vb === null)) return false;
      if (va === null || vb === null) continue;
      const [sa, sb] = [signOf(va), signOf(vb)];
      if (sa === 0 || sb === 0) {
        if (sa !== sb) return false;
        continue;
      }
      if (positive && sa !== sb) return false;
      // Same ratio at every point: va/vb = ra/rb  ⇔  va·rb = vb·ra (no division, exact when possible).
      if (ratio && !valuesEqual(mul(va, ratio[1]), mul(vb, ratio[0]))) return false;
      ratio ??= [va, vb];
      checked++;
    }
  } catch {
    return false;
  }
  return checked >= (freeSymbols(na).length + freeSymbols(nb).length === 0 ? 1 : 3);
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

// Values of parsed expressions, exact where possible. mathjs parses; this file evaluates.
// Why our own evaluator over mathjs's AST rather than math.evaluate: equality must be exact for
// rationals of any size (1/2004! vs 1/2006! differ by a factor of ~4e6 but both underflow a
// float), irrationals need more than 16 digits (sin(pi) vs 0, e^-100 vs 0), and work on huge
// inputs (2003^(2002^2001)) must stop by budget — checked before each operation, so no signal or
// worker-thread timeout is needed.
import { createRequire } from 'node:module';
import type { MathNode, BigNumber } from 'mathjs';
import type * as MathJs from 'mathjs';
import { byCodeUnit } from '../../util/order.ts';

// mathjs's single-file bundle (same package, same version) loads in a small fraction of the CPU
// time of its ~1,000-module tree (70 ms against 1 s on a busy 2-core machine): the math reward is
// a CLI one-liner and a service start-up, so the load is the latency.
const { create, all } = createRequire(import.meta.url)('mathjs/lib/browser/math.js') as typeof MathJs;

export const math = create(all);
math.config({ number: 'BigNumber', precision: 64 }); // the bundle's create() ignores a config argument
const Decimal = (math as unknown as { BigNumber: unknown }).BigNumber as { new (v: string | number): BigNumber };

/** Result bit budget for exact arithmetic; beyond it a value counts as too large to compare. */
const MAX_BITS = 1 << 17;
const MAX_NODES = 400;
const MAX_FACTORIAL = 20000;

export class TooLarge extends Error {}
export class Unsupported extends Error {}

export type Value =
  | { kind: 'exact'; n: bigint; d: bigint } // d > 0, not necessarily reduced
  | { kind: 'approx'; v: BigNumber }
  | { kind: 'inf'; sign: 1 | -1 };

const ZERO: Value = { kind: 'exact', n: 0n, d: 1n };

function bits(x: bigint): number {
  if (x < 0n) x = -x;
  return x === 0n ? 0 : x.toString(16).length * 4;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function exact(n: bigint, d: bigint): Value {
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  if (bits(n) + bits(d) > MAX_BITS) throw new TooLarge('exact value beyond the bit budget');
  // Reducing is cheap for small numbers and unnecessary for equality (cross-multiplication).
  if (bits(n) < 2048 && bits(d) < 2048) {
    const g = gcd(n, d);
    if (g > 1n) return { kind: 'exact', n: n / g, d: d / g };
  }
  return { kind: 'exact', n, d };
}

export function toDecimal(v: Value): BigNumber {
  if (v.kind === 'approx') return v.v;
  if (v.kind === 'inf') return new Decimal(v.sign > 0 ? 'Infinity' : '-Infinity');
  return new Decimal(v.n.toString()).div(new Decimal(v.d.toString()));
}

function approx(v: BigNumber): Value {
  if (v.isNaN()) throw new Unsupported('outside the domain');
  return { kind: 'approx', v };
}

/** Exact rational of a decimal string like "-12.50" or "3e-4". */
export function parseDecimal(text: string): Value {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m) throw new Unsupported(`not a number: ${text}`);
  const frac = m[3] ?? '';
  let n = BigInt((m[2] || '0') + frac);
  let d = 10n ** BigInt(frac.length);
  const e = Number(m[4] ?? 0);
  if (Math.abs(e) > 4000) throw new TooLarge('exponent too large');
  if (e > 0) n *= 10n ** BigInt(e);
  else if (e < 0) d *= 10n ** BigInt(-e);
  return exact(m[1] === '-' ? -n : n, d);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  if (bits(n) > 100) x = 1n << BigInt(Math.ceil(bits(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

function add(a: Value, b: Value, sign: 1 | -1): Value {
  if (a.kind === 'exact' && b.kind === 'exact') return exact(a.n * b.d + BigInt(sign) * b.n * a.d, a.d * b.d);
  if (a.kind === 'inf' || b.kind === 'inf') throw new Unsupported('arithmetic on infinity');
  return approx(sign > 0 ? toDecimal(a).plus(toDecimal(b)) : toDecimal(a).minus(toDecimal(b)));
}

export function mul(a: Value, b: Value): Value {
  if (a.kind === 'exact' && b.kind === 'exact') return exact(a.n * b.n, a.d * b.d);
  if (a.kind === 'inf' || b.kind === 'inf') throw new Unsupported('arithmetic on infinity');
  return approx(toDecimal(a).times(toDecimal(b)));
}

export function div(a: Value, b: Value): Value {
  if (b.kind === 'exact' && b.n === 0n) throw new Unsupported('division by zero');
  if (a.kind === 'exact' && b.kind === 'exact') return exact(a.n * b.d, a.d * b.n);
  if (a.kind === 'inf' || b.kind === 'inf') throw new Unsupported('arithmetic on infinity');
  return approx(toDecimal(a).div(toDecimal(b)));
}

function sqrtValue(a: Value): Value {
  if (a.kind === 'exact' && a.n >= 0n) {
    const rn = isqrt(a.n);
    const rd = isqrt(a.d);
    if (rn * rn === a.n && rd * rd === a.d) return exact(rn, rd);
  }
  return approx(toDecimal(a).sqrt());
}

function pow(a: Value, b: Value): Value {
  if (a.kind === 'inf' || b.kind === 'inf') throw new Unsupported('power of infinity');
  if (b.kind === 'exact' && b.d === 1n) {
    const k = b.n < 0n ? -b.n : b.n;
    if (a.kind === 'exact') {
      if (a.n === 0n && b.n < 0n) throw new Unsupported('division by zero');
      if (a.n === 0n || a.n === a.d) return a.n === 0n ? (k === 0n ? exact(1n, 1n) : ZERO) : exact(1n, 1n);
      if (a.n === -a.d) return exact(k % 2n === 0n ? 1n : -1n, 1n);
      const size = Math.max(bits(a.n), bits(a.d));
      if (k > BigInt(MAX_BITS) || Number(k) * size > MAX_BITS) throw new TooLarge('power beyond the bit budget');
      const r = exact(a.n ** k, a.d ** k);
      return b.n < 0n ? div(exact(1n, 1n), r) : r;
    }
    if (k > 100000n) throw new TooLarge('power beyond the budget');
  }
  if (b.kind === 'exact' && b.d === 2n && a.kind === 'exact') return pow(sqrtValue(a), exact(b.n, 1n));
  const base = toDecimal(a);
  const r = base.pow(toDecimal(b));
  if (r.isNaN()) throw new Unsupported('power outside its domain'); // (-2)^(1/3) over the reals
  if (!r.isFinite() || (r.isZero() && !base.isZero())) throw new TooLarge('power out of range');
  return approx(r);
}

function factorial(a: Value): Value {
  if (a.kind !== 'exact' || a.d !== 1n || a.n < 0n) throw new Unsupported('factorial of a non-natural number');
  const n = Number(a.n);
  if (n > MAX_FACTORIAL || n * Math.log2(Math.max(n, 2)) > MAX_BITS)
    throw new TooLarge('factorial beyond the bit budget');
  let r = 1n;
  for (let i = 2n; i <= a.n; i++) r *= i;
  return exact(r, 1n);
}

const CONSTANTS: Record<string, () => Value> = {
  pi: () => approx(math.pi as unknown as BigNumber),
  e: () => approx(math.e as unknown as BigNumber),
  Infinity: () => ({ kind: 'inf', sign: 1 }),
};

/** Free variables: symbols that are neither constants nor function names. */
export function freeSymbols(node: MathNode): string[] {
  const names = new Set<string>();
  node.traverse((n, _path, parent) => {
    if (n.type === 'SymbolNode') {
      const name = (n as unknown as { name: string }).name;
      const isFn = parent?.type === 'FunctionNode' && (parent as unknown as { fn: MathNode }).fn === n;
      if (!isFn && !(name in CONSTANTS)) names.add(name);
    }
  });
  return [...names].sort(byCodeUnit);
}

export function nodeCount(node: MathNode): number {
  let count = 0;
  node.traverse(() => count++);
  return count;
}

type Unary = (x: BigNumber) => BigNumber;
const APPROX_FUNCTIONS: Record<string, Unary> = {
  sin: (x) => x.sin(),
  cos: (x) => x.cos(),
  tan: (x) => x.tan(),
  asin: (x) => x.asin(),
  acos: (x) => x.acos(),
  atan: (x) => x.atan(),
  arcsin: (x) => x.asin(),
  arccos: (x) => x.acos(),
  arctan: (x) => x.atan(),
  sinh: (x) => x.sinh(),
  cosh: (x) => x.cosh(),
  tanh: (x) => x.tanh(),
  exp: (x) => x.exp(),
  log: (x) => x.ln(),
  ln: (x) => x.ln(),
  log10: (x) => x.log(10),
  log2: (x) => x.log(2),
  cot: (x) => new Decimal(1).div(x.tan()),
  sec: (x) => new Decimal(1).div(x.cos()),
  csc: (x) => new Decimal(1).div(x.sin()),
};

/** Names evaluate() knows as functions; any other `f(x)` is read as the product f·x. */
export const FUNCTION_NAMES = new Set([...Object.keys(APPROX_FUNCTIONS), 'sqrt', 'nthRoot', 'abs']);
/** Multi-letter names that are one symbol; any other `xy` is read as x·y. */
export const NAMED_SYMBOLS = new Set([
  ...Object.keys(CONSTANTS),
  'alpha',
  'beta',
  'gamma',
  'theta',
  'phi',
  'lambda',
  'mu',
  'sigma',
  'omega',
  'tau',
  'rho',
  'delta',
  'epsilon',
]);

/** Evaluate a mathjs node with variables bound; throws TooLarge / Unsupported. */
export function evaluate(node: MathNode, scope: Record<string, Value> = {}, deadline = Infinity): Value {
  let steps = 0;
  const visit = (n: MathNode): Value => {
    if (++steps > MAX_NODES * 4 || (steps % 32 === 0 && performance.now() > deadline))
      throw new TooLarge('evaluation budget exceeded');
    switch (n.type) {
      case 'ConstantNode': {
        const v = (n as unknown as { value: unknown }).value;
        if (typeof v === 'string' || typeof v === 'boolean' || v === null || v === undefined)
          throw new Unsupported('non-numeric constant');
        const text = typeof v === 'number' ? String(v) : (v as BigNumber).toFixed();
        if (text === 'Infinity' || text === '-Infinity') return { kind: 'inf', sign: text === 'Infinity' ? 1 : -1 };
        return parseDecimal(text);
      }
      case 'SymbolNode': {
        const name = (n as unknown as { name: string }).name;
        if (name in scope) return scope[name]!;
        const c = CONSTANTS[name];
        if (c) return c();
        throw new Unsupported(`unbound symbol ${name}`);
      }
      case 'ParenthesisNode':
        return visit((n as unknown as { content: MathNode }).content);
      case 'OperatorNode': {
        const { fn, args } = n as unknown as { fn: string; args: MathNode[] };
        const vs = args.map(visit);
        switch (fn) {
          case 'add':
            return vs.reduce((a, b) => add(a, b, 1));
          case 'subtract':
            return add(vs[0]!, vs[1]!, -1);
          case 'multiply':
            return vs.reduce(mul);
          case 'divide':
            return div(vs[0]!, vs[1]!);
          case 'pow':
            return pow(vs[0]!, vs[1]!);
          case 'unaryMinus': {
            const a = vs[0]!;
            return a.kind === 'inf' ? { kind: 'inf', sign: a.sign > 0 ? -1 : 1 } : mul(exact(-1n, 1n), a);
          }
          case 'unaryPlus':
            return vs[0]!;
          case 'factorial':
            return factorial(vs[0]!);
          default:
            throw new Unsupported(`operator ${fn}`);
        }
      }
      case 'FunctionNode': {
        const { fn, args } = n as unknown as { fn: { name: string }; args: MathNode[] };
        const vs = args.map(visit);
        const name = fn.name;
        if (name === 'sqrt' && vs.length === 1) return sqrtValue(vs[0]!);
        if (name === 'nthRoot' && vs.length === 2) {
          const k = vs[1]!;
          if (k.kind === 'exact' && k.d === 1n && k.n === 2n) return sqrtValue(vs[0]!);
          return pow(vs[0]!, div(exact(1n, 1n), k));
        }
        if (name === 'abs' && vs.length === 1) {
          const a = vs[0]!;
          if (a.kind === 'exact') return exact(a.n < 0n ? -a.n : a.n, a.d);
          if (a.kind === 'inf') return { kind: 'inf', sign: 1 };
          return approx(a.v.abs());
        }
        if (name === 'log' && vs.length === 2)
          return div(approx(toDecimal(vs[0]!).ln()), approx(toDecimal(vs[1]!).ln()));
        const f = APPROX_FUNCTIONS[name];
        if (f && vs.length === 1) {
          const r = f(toDecimal(vs[0]!));
          if (!r.isFinite()) throw new Unsupported(`${name} outside its domain`);
          return approx(r);
        }
        throw new Unsupported(`function ${name}`);
      }
      default:
        throw new Unsupported(`node ${n.type}`);
    }
  };
  return visit(node);
}

const REL_TOL = new Decimal('1e-30');
const ZERO_SCALE = new Decimal('1e-50');

/** Equality of two values: exact for rationals, 30 significant digits otherwise. */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a.kind === 'inf' || b.kind === 'inf') return a.kind === 'inf' && b.kind === 'inf' && a.sign === b.sign;
  if (a.kind === 'exact' && b.kind === 'exact') return a.n * b.d === b.n * a.d;
  const x = toDecimal(a);
  const y = toDecimal(b);
  const scale = x.abs().gt(y.abs()) ? x.abs() : y.abs();
  if (scale.lt(ZERO_SCALE)) return true;
  return x.minus(y).abs().lte(scale.times(REL_TOL));
}

/** |a - b| as a decimal (for rounding tolerance). */
export function distance(a: Value, b: Value): BigNumber {
  return toDecimal(a).minus(toDecimal(b)).abs();
}

export function exactValue(n: bigint, d = 1n): Value {
  return exact(n, d);
}

/** -1, 0 or 1 (a 64-digit value this close to 0 counts as 0, as in valuesEqual). */
export function signOf(v: Value): -1 | 0 | 1 {
  if (v.kind === 'inf') return v.sign;
  if (v.kind === 'exact') return v.n === 0n ? 0 : v.n > 0n ? 1 : -1;
  if (v.v.abs().lt(ZERO_SCALE)) return 0;
  return v.v.isNegative() ? -1 : 1;
}

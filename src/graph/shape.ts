// Shapes with symbolic dimensions.
//
// A dimension is a number or a symbolic product of named dims with an integer coefficient,
// written canonically as a string: 'B', 'T', 'B*T', '4*B*T'. Names come from graph inputs
// (`input('tokens', 'int64', ['B', 'T'])`); the exporter turns any symbolic dim back into a
// runtime value by multiplying the input dims it names. Keeping products canonical lets
// flatten/unflatten round-trip (B*T back to B, T) without knowing B or T at trace time.

import { byCodeUnit } from '../util/order.ts';

export type Dim = number | string;
export type Shape = readonly Dim[];

interface Product {
  coef: number;
  names: string[]; // sorted, with repeats
}

function toProduct(dim: Dim): Product {
  if (typeof dim === 'number') return { coef: dim, names: [] };
  let coef = 1;
  const names: string[] = [];
  for (const factor of dim.split('*')) {
    if (/^\d+$/.test(factor)) coef *= Number(factor);
    else names.push(factor);
  }
  return { coef, names: names.sort(byCodeUnit) };
}

function fromProduct({ coef, names }: Product): Dim {
  if (names.length === 0) return coef;
  if (coef === 0) return 0;
  return [...(coef === 1 ? [] : [String(coef)]), ...names].join('*');
}

/** The names a dim is built from ('4*B*T' → ['B', 'T']). */
export function dimNames(dim: Dim): string[] {
  return toProduct(dim).names;
}

export function dimCoefficient(dim: Dim): number {
  return toProduct(dim).coef;
}

export function dimProduct(dims: readonly Dim[]): Dim {
  const out: Product = { coef: 1, names: [] };
  for (const d of dims) {
    const p = toProduct(d);
    out.coef *= p.coef;
    out.names.push(...p.names);
  }
  out.names.sort(byCodeUnit);
  return fromProduct(out);
}

/** a + b when both are multiples of the same symbolic product (or numbers), else undefined. */
export function dimSum(a: Dim, b: Dim): Dim | undefined {
  if (a === 0) return b;
  if (b === 0) return a;
  const pa = toProduct(a);
  const pb = toProduct(b);
  if (pa.names.join('*') !== pb.names.join('*')) return undefined;
  return fromProduct({ coef: pa.coef + pb.coef, names: pa.names });
}

/** a / b when it divides exactly (symbolically), else undefined. */
export function dimDivide(a: Dim, b: Dim): Dim | undefined {
  const pa = toProduct(a);
  const pb = toProduct(b);
  if (pb.coef === 0 || pa.coef % pb.coef !== 0) return undefined;
  const names = [...pa.names];
  for (const n of pb.names) {
    const i = names.indexOf(n);
    if (i < 0) return undefined;
    names.splice(i, 1);
  }
  return fromProduct({ coef: pa.coef / pb.coef, names });
}

export function dimEqual(a: Dim, b: Dim): boolean {
  return fromProduct(toProduct(a)) === fromProduct(toProduct(b));
}

export function shapeEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEqual(d, b[i]!));
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Numpy broadcasting; undefined when the shapes do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (dimEqual(da, db)) out.push(da);
    else if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else return undefined;
  }
  return out;
}

/** Resolve a possibly negative axis against a rank, or throw naming the op. */
export function normaliseAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Shape errors name the op, the operands and their shapes. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

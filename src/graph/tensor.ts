// Symbolic tensors: each Tensor is one node of a dataflow graph (a primitive op, its inputs and
// attributes), with its dtype and shape inferred when it is built. Nothing is computed here:
// a function over Tensors is traced into a graph, differentiated (grad.ts) and exported to ONNX
// (onnx.ts). The primitive set is small on purpose (tinygrad's habit): silu, rmsnorm, rope and
// friends are compositions and need no gradient rule of their own. Softmax and log-softmax are
// primitives because ONNX's fused kernels are much faster than their compositions.

import { byNumber } from '../util/order.ts';
import { type DType, isFloat } from './dtype.ts';
import {
  type Dim,
  type Shape,
  ShapeError,
  broadcastShapes,
  dimDivide,
  dimSum,
  dimEqual,
  dimProduct,
  formatShape,
  normaliseAxis,
  shapeEqual,
} from './shape.ts';

export type PrimOp =
  // leaves
  | 'input'
  | 'const'
  | 'range'
  | 'zeros'
  | 'size'
  // elementwise unary
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'recip'
  | 'sin'
  | 'cos'
  | 'sigmoid'
  | 'tanh'
  | 'cast'
  | 'detach'
  // elementwise binary (numpy broadcasting) and select
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'max'
  | 'min'
  | 'less'
  | 'greater'
  | 'equal'
  | 'and'
  | 'where'
  // reductions
  | 'sum'
  | 'reduceMax'
  // movement
  | 'reshape'
  | 'transpose'
  | 'expand'
  | 'slice'
  | 'pad'
  | 'concat'
  // compute
  | 'matmul'
  | 'softmax'
  | 'logSoftmax'
  | 'cumsum'
  // indexing
  | 'gather'
  | 'gatherElements'
  | 'scatterAdd'
  | 'scatterElementsAdd'
  | 'topk'
  | 'argmax'
  // inference-only weight quantisation (rollout engines): a packed weight, and x @ W^T with it
  | 'quantizedWeight'
  | 'quantizedMatmul';

export interface Attrs {
  name?: string; // input name
  data?: ArrayLike<number>; // const values (row-major)
  axis?: number;
  axes?: number[];
  keepdims?: boolean;
  perm?: number[];
  shape?: Dim[]; // reshape / expand / zeros target
  starts?: number[]; // slice, per axis in `axes`
  ends?: number[];
  pads?: number[]; // pad: [before..., after...] over all axes
  length?: Dim; // range
  k?: number; // topk
  largest?: boolean;
  reverse?: boolean; // cumsum
  exclusive?: boolean;
  bits?: number; // quantizedWeight: 8 or 4
  blockSize?: number; // quantizedWeight, 4-bit: weights per scale along the input dim
}

let nextId = 0;

export type TensorLike = Tensor | number;

export class Tensor {
  readonly id = nextId++;

  constructor(
    readonly op: PrimOp,
    readonly inputs: readonly Tensor[],
    readonly attrs: Attrs,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.op}${this.attrs.name ? `('${this.attrs.name}')` : ''}:${this.dtype}${formatShape(this.shape)}`;
  }

  // ---- elementwise ----------------------------------------------------------------------
  add(other: TensorLike): Tensor {
    return binary('add', this, other);
  }
  sub(other: TensorLike): Tensor {
    return binary('sub', this, other);
  }
  mul(other: TensorLike): Tensor {
    return binary('mul', this, other);
  }
  div(other: TensorLike): Tensor {
    return binary('div', this, other);
  }
  maximum(other: TensorLike): Tensor {
    return binary('max', this, other);
  }
  minimum(other: TensorLike): Tensor {
    return binary('min', this, other);
  }
  less(other: TensorLike): Tensor {
    return binary('less', this, other);
  }
  greater(other: TensorLike): Tensor {
    return binary('greater', this, other);
  }
  equal(other: TensorLike): Tensor {
    return binary('equal', this, other);
  }
  and(other: Tensor): Tensor {
    return binary('and', this, other);
  }
  neg(): Tensor {
    return unary('neg', this);
  }
  exp(): Tensor {
    return unary('exp', this);
  }
  log(): Tensor {
    return unary('log', this);
  }
  sqrt(): Tensor {
    return unary('sqrt', this);
  }
  recip(): Tensor {
    return unary('recip', this);
  }
  sin(): Tensor {
    return unary('sin', this);
  }
  cos(): Tensor {
    return unary('cos', this);
  }
  sigmoid(): Tensor {
    return unary('sigmoid', this);
  }
  tanh(): Tensor {
    return unary('tanh', this);
  }
  /** A copy that autodiff treats as a constant (no gradient flows back through it). */
  detach(): Tensor {
    return unary('detach', this);
  }
  rsqrt(): Tensor {
    return this.sqrt().recip();
  }
  square(): Tensor {
    return this.mul(this);
  }
  silu(): Tensor {
    return this.mul(this.sigmoid());
  }
  abs(): Tensor {
    return this.maximum(this.neg());
  }
  clamp(lo: number, hi: number): Tensor {
    return this.maximum(lo).minimum(hi);
  }

  cast(dtype: DType): Tensor {
    return dtype === this.dtype ? this : new Tensor('cast', [this], {}, dtype, this.shape);
  }

  // ---- reductions -------------------------------------------------------------------------
  sum(axes?: number | number[], keepdims = false): Tensor {
    return reduce('sum', this, axes, keepdims);
  }
  max(axes?: number | number[], keepdims = false): Tensor {
    return reduce('reduceMax', this, axes, keepdims);
  }

  /** Mean over axes whose sizes are known at trace time. */
  mean(axes?: number | number[], keepdims = false): Tensor {
    const ax = resolveAxes(this, axes, 'mean');
    const count = dimProduct(ax.map((a) => this.shape[a]!));
    if (typeof count !== 'number')
      throw new ShapeError(
        `mean: axes ${JSON.stringify(ax)} of ${this} have symbolic size ${count}; divide a sum by a count instead`,
      );
    return this.sum(ax, keepdims).mul(1 / count);
  }

  softmax(axis = -1): Tensor {
    return softmaxLike('softmax', this, axis);
  }
  logSoftmax(axis = -1): Tensor {
    return softmaxLike('logSoftmax', this, axis);
  }

  cumsum(axis: number, opts: { reverse?: boolean; exclusive?: boolean } = {}): Tensor {
    const a = normaliseAxis(axis, this.rank, 'cumsum');
    return new Tensor(
      'cumsum',
      [this],
      { axis: a, reverse: !!opts.reverse, exclusive: !!opts.exclusive },
      this.dtype,
      this.shape,
    );
  }

  // ---- movement ---------------------------------------------------------------------------
  /** Reshape; one target dim may be -1 (inferred, symbolically if need be). */
  reshape(shape: readonly Dim[]): Tensor {
    const total = dimProduct(this.shape);
    const known = shape.filter((d) => d !== -1);
    const inferred = shape.length - known.length;
    if (inferred > 1) throw new ShapeError(`reshape: at most one -1 allowed in ${formatShape(shape)}`);
    let target = [...shape];
    if (inferred === 1) {
      const rest = dimDivide(total, dimProduct(known));
      if (rest === undefined) throw new ShapeError(`reshape: cannot infer -1 in ${formatShape(shape)} from ${this}`);
      target = shape.map((d) => (d === -1 ? rest : d));
    }
    if (!dimEqual(dimProduct(target), total))
      throw new ShapeError(
        `reshape: ${this} has ${total} elements but target ${formatShape(target)} has ${dimProduct(target)}`,
      );
    if (shapeEqual(target, this.shape)) return this;
    return new Tensor('reshape', [this], { shape: target }, this.dtype, target);
  }

  flatten(startAxis = 0): Tensor {
    const s = normaliseAxis(startAxis, this.rank, 'flatten');
    return this.reshape([...this.shape.slice(0, s), dimProduct(this.shape.slice(s))]);
  }

  unsqueeze(axis: number): Tensor {
    const a = normaliseAxis(axis, this.rank + 1, 'unsqueeze');
    return this.reshape([...this.shape.slice(0, a), 1, ...this.shape.slice(a)]);
  }

  squeeze(axis: number): Tensor {
    const a = normaliseAxis(axis, this.rank, 'squeeze');
    if (this.shape[a] !== 1)
      throw new ShapeError(`squeeze: axis ${axis} of ${this} has size ${this.shape[a]}, expected 1`);
    return this.reshape([...this.shape.slice(0, a), ...this.shape.slice(a + 1)]);
  }

  transpose(perm: number[]): Tensor {
    if (perm.length !== this.rank || [...perm].sort(byNumber).some((p, i) => p !== i))
      throw new ShapeError(`transpose: perm ${JSON.stringify(perm)} is not a permutation of the axes of ${this}`);
    if (perm.every((p, i) => p === i)) return this;
    // A transpose of a transpose is one transpose (or none): xᵀᵀ = x.
    if (this.op === 'transpose') return this.inputs[0]!.transpose(perm.map((p) => this.attrs.perm![p]!));
    return new Tensor(
      'transpose',
      [this],
      { perm },
      this.dtype,
      perm.map((p) => this.shape[p]!),
    );
  }

  /** Swap the last two axes. */
  get T(): Tensor {
    const perm = this.shape.map((_, i) => i);
    [perm[this.rank - 1], perm[this.rank - 2]] = [perm[this.rank - 2]!, perm[this.rank - 1]!];
    return this.transpose(perm);
  }

  expand(shape: readonly Dim[]): Tensor {
    const out = broadcastShapes(this.shape, shape);
    if (!out || !shapeEqual(out, shape))
      throw new ShapeError(`expand: ${this} does not broadcast to ${formatShape(shape)}`);
    if (shapeEqual(this.shape, shape)) return this;
    return new Tensor('expand', [this], { shape: [...shape] }, this.dtype, shape);
  }

  /** x[start:end] along one axis (end may exceed the size to mean "to the end"). */
  slice(axis: number, start: number, end: number): Tensor {
    const a = normaliseAxis(axis, this.rank, 'slice');
    const dim = this.shape[a]!;
    if (start < 0 || end < start)
      throw new ShapeError(`slice: need 0 <= start <= end on axis ${axis} of ${this}, got ${start}:${end}`);
    let size: Dim;
    if (typeof dim === 'number') size = Math.min(end, dim) - Math.min(start, dim);
    else if (end >= Number.MAX_SAFE_INTEGER) {
      if (start !== 0)
        throw new ShapeError(
          `slice: axis ${axis} of ${this} is symbolic; only a prefix slice or the whole axis is supported`,
        );
      return this;
    } else size = end - start; // caller asserts the symbolic dim is long enough
    const shape = this.shape.map((d, i) => (i === a ? size : d));
    return new Tensor('slice', [this], { axes: [a], starts: [start], ends: [end] }, this.dtype, shape);
  }

  /** Zero padding: before/after counts per axis (numeric, or symbolic for `after`). */
  pad(before: number[], after: Dim[]): Tensor {
    if (before.length !== this.rank || after.length !== this.rank)
      throw new ShapeError(`pad: need ${this.rank} before/after counts for ${this}`);
    const shape = this.shape.map((d, i) => addDims(d, before[i]!, after[i]!));
    return new Tensor('pad', [this], { pads: [...before, ...(after as number[])] }, this.dtype, shape);
  }

  // ---- compute ---------------------------------------------------------------------------
  /** Batched matrix product (rank >= 2; batch dims broadcast). */
  matmul(other: Tensor): Tensor {
    if (this.rank < 2 || other.rank < 2)
      throw new ShapeError(`matmul: both operands need rank >= 2, got ${this} @ ${other}`);
    sameDType('matmul', this, other);
    const [m, k1] = this.shape.slice(-2);
    const [k2, n] = other.shape.slice(-2);
    if (!dimEqual(k1!, k2!)) throw new ShapeError(`matmul: inner dims differ: ${this} @ ${other} (${k1} vs ${k2})`);
    const batch = broadcastShapes(this.shape.slice(0, -2), other.shape.slice(0, -2));
    if (!batch) throw new ShapeError(`matmul: batch dims do not broadcast: ${this} @ ${other}`);
    return new Tensor('matmul', [this, other], {}, this.dtype, [...batch, m!, n!]);
  }

  // ---- indexing --------------------------------------------------------------------------
  /** Rows of this table (axis 0) at integer `indices`: out shape = indices.shape + shape[1:]. */
  gather(indices: Tensor): Tensor {
    requireInt('gather', indices);
    return new Tensor('gather', [this, indices], { axis: 0 }, this.dtype, [...indices.shape, ...this.shape.slice(1)]);
  }

  /** torch.gather / take_along_axis: out[..., i, ...] = x[..., idx[..., i, ...], ...] along axis. */
  gatherElements(indices: Tensor, axis: number): Tensor {
    requireInt('gatherElements', indices);
    const a = normaliseAxis(axis, this.rank, 'gatherElements');
    if (indices.rank !== this.rank || !indices.shape.every((d, i) => i === a || dimEqual(d, this.shape[i]!))) {
      throw new ShapeError(`gatherElements: indices ${indices} must match ${this} except on axis ${axis}`);
    }
    return new Tensor('gatherElements', [this, indices], { axis: a }, this.dtype, indices.shape);
  }

  /** Indices (int64) of the k largest (or smallest) entries along the last axis, sorted. */
  topkIndices(k: number, largest = true): Tensor {
    const last = this.shape[this.rank - 1]!;
    if (!Number.isInteger(k) || k < 1 || (typeof last === 'number' && k > last))
      throw new ShapeError(`topk: k=${k} out of range for ${this}`);
    return new Tensor('topk', [this], { k, largest }, 'int64', [...this.shape.slice(0, -1), k]);
  }

  argmax(axis = -1, keepdims = false): Tensor {
    const a = normaliseAxis(axis, this.rank, 'argmax');
    const shape = keepdims ? this.shape.map((d, i) => (i === a ? 1 : d)) : this.shape.filter((_, i) => i !== a);
    return new Tensor('argmax', [this], { axis: a, keepdims }, 'int64', shape);
  }
}

// ---- leaves --------------------------------------------------------------------------------

/** A graph input. Symbolic dims (strings) become dynamic ONNX dims named after them. */
export function input(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
  for (const d of shape) {
    if (typeof d === 'string' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(d))
      throw new ShapeError(`input '${name}': symbolic dim '${d}' must be a plain name`);
  }
  return new Tensor('input', [], { name }, dtype, shape);
}

export function constant(data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new ShapeError(`constant: ${data.length} values for shape ${formatShape(shape)}`);
  return new Tensor('const', [], { data }, dtype, shape);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return constant([value], [], dtype);
}

/** 0, 1, ..., length-1 as int64 (length may be symbolic). */
export function arange(length: Dim): Tensor {
  return new Tensor('range', [], { length }, 'int64', [length]);
}

/** The run-time value of a (possibly symbolic) dim as a scalar, e.g. a token count for a mean. */
export function sizeOf(length: Dim, dtype: DType = 'float32'): Tensor {
  return new Tensor('size', [], { length }, dtype, []);
}

export function zeros(shape: readonly Dim[], dtype: DType = 'float32'): Tensor {
  return new Tensor('zeros', [], { shape: [...shape] }, dtype, shape);
}

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool') throw new ShapeError(`where: condition must be bool, got ${cond}`);
  const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
  const dtype = ref?.dtype ?? 'float32';
  const ta = lift(a, dtype);
  const tb = lift(b, dtype);
  sameDType('where', ta, tb);
  const shape =
    broadcastShapes(cond.shape, ta.shape) && broadcastShapes(broadcastShapes(cond.shape, ta.shape)!, tb.shape);
  if (!shape) throw new ShapeError(`where: shapes do not broadcast: ${cond}, ${ta}, ${tb}`);
  return new Tensor('where', [cond, ta, tb], {}, dtype, shape);
}

export function concat(tensors: Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat: no tensors');
  if (tensors.length === 1) return tensors[0]!;
  const first = tensors[0]!;
  const a = normaliseAxis(axis, first.rank, 'concat');
  for (const t of tensors) {
    sameDType('concat', first, t);
    if (t.rank !== first.rank || !t.shape.every((d, i) => i === a || dimEqual(d, first.shape[i]!))) {
      throw new ShapeError(`concat: ${t} does not match ${first} outside axis ${axis}`);
    }
  }
  const shape = first.shape.map((d, i) =>
    i === a ? tensors.map((t) => t.shape[a]!).reduce((x, y) => addDims(x, y, 0)) : d,
  );
  return new Tensor('concat', tensors, { axis: a }, first.dtype, shape);
}

/** Accumulate `updates` into zeros of `shape` at rows `indices` (axis 0); gather's adjoint. */
export function scatterAdd(shape: readonly Dim[], indices: Tensor, updates: Tensor): Tensor {
  requireInt('scatterAdd', indices);
  return new Tensor('scatterAdd', [indices, updates], { shape: [...shape] }, updates.dtype, shape);
}

/** Accumulate `updates` into zeros of `shape` along `axis`; gatherElements' adjoint. */
export function scatterElementsAdd(shape: readonly Dim[], indices: Tensor, updates: Tensor, axis: number): Tensor {
  requireInt('scatterElementsAdd', indices);
  return new Tensor('scatterElementsAdd', [indices, updates], { shape: [...shape], axis }, updates.dtype, shape);
}

/**
 * A linear weight [out, in] held quantised, for inference: 8-bit as int8 `packed` [in, out] with one
 * float scale per output (`scales` [out]); 4-bit as uint8 `packed` [out, in / blockSize, blockSize / 2]
 * (two weights a byte, low nibble first, stored + 8) with a scale per block (`scales`
 * [out * in / blockSize]). It only feeds quantizedMatmul; it has no gradient.
 */
export function quantizedWeight(
  packed: Tensor,
  scales: Tensor,
  shape: readonly [number, number],
  bits: 8 | 4,
  blockSize = 0,
): Tensor {
  const [out, inFeatures] = shape;
  const expected = bits === 8 ? [inFeatures, out] : [out, inFeatures / blockSize, blockSize / 2];
  if (bits === 4 && (!Number.isInteger(inFeatures / blockSize) || blockSize % 2 !== 0))
    throw new ShapeError(
      `quantizedWeight: in features ${inFeatures} must be a multiple of the even block size ${blockSize}`,
    );
  if (packed.dtype !== (bits === 8 ? 'int8' : 'uint8') || !shapeEqual(packed.shape, expected))
    throw new ShapeError(
      `quantizedWeight: ${bits}-bit packed weight ${packed} must be ${bits === 8 ? 'int8' : 'uint8'}${formatShape(expected)}`,
    );
  return new Tensor('quantizedWeight', [packed, scales], { bits, blockSize }, 'float32', shape);
}

/** x [N, in] @ W^T for a quantizedWeight W [out, in]: [N, out] (float32). */
export function quantizedMatmul(x: Tensor, weight: Tensor): Tensor {
  if (weight.op !== 'quantizedWeight') throw new ShapeError(`quantizedMatmul: ${weight} is not a quantizedWeight`);
  const [out, inFeatures] = weight.shape;
  if (x.dtype !== 'float32' || x.rank !== 2 || !dimEqual(x.shape[1]!, inFeatures!))
    throw new ShapeError(`quantizedMatmul: x ${x} must be float32 [N, ${inFeatures}]`);
  return new Tensor('quantizedMatmul', [x, weight], {}, 'float32', [x.shape[0]!, out!]);
}

// ---- helpers -------------------------------------------------------------------------------

function addDims(...dims: Dim[]): Dim {
  let total: Dim | undefined = 0;
  for (const d of dims) total = total === undefined ? undefined : dimSum(total, d);
  if (total === undefined) throw new ShapeError(`cannot add symbolic dims ${dims.join(' + ')}`);
  return total;
}

function lift(x: TensorLike, dtype: DType): Tensor {
  return x instanceof Tensor ? x : scalar(x, dtype);
}

function sameDType(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new ShapeError(`${op}: dtypes differ: ${a} vs ${b}`);
}

function requireInt(op: string, t: Tensor): void {
  if (t.dtype !== 'int64' && t.dtype !== 'int32')
    throw new ShapeError(`${op}: indices must be int64 or int32, got ${t}`);
}

const comparisons = new Set<PrimOp>(['less', 'greater', 'equal', 'and']);

function binary(op: PrimOp, a: Tensor, bLike: TensorLike): Tensor {
  const b = lift(bLike, a.dtype);
  sameDType(op, a, b);
  if (op === 'and' && a.dtype !== 'bool') throw new ShapeError(`and: operands must be bool, got ${a}`);
  if (
    !comparisons.has(op) &&
    !isFloat(a.dtype) &&
    op !== 'max' &&
    op !== 'min' &&
    op !== 'add' &&
    op !== 'sub' &&
    op !== 'mul'
  ) {
    throw new ShapeError(`${op}: needs floating-point operands, got ${a}`);
  }
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw new ShapeError(`${op}: shapes do not broadcast: ${a} and ${b}`);
  return new Tensor(op, [a, b], {}, comparisons.has(op) ? 'bool' : a.dtype, shape);
}

function unary(op: PrimOp, x: Tensor): Tensor {
  if (op !== 'neg' && op !== 'detach' && !isFloat(x.dtype))
    throw new ShapeError(`${op}: needs a floating-point operand, got ${x}`);
  return new Tensor(op, [x], {}, x.dtype, x.shape);
}

function resolveAxes(x: Tensor, axes: number | number[] | undefined, op: string): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : Array.isArray(axes) ? axes : [axes];
  return [...new Set(list.map((a) => normaliseAxis(a, x.rank, op)))].sort((p, q) => p - q);
}

function reduce(op: PrimOp, x: Tensor, axes: number | number[] | undefined, keepdims: boolean): Tensor {
  const ax = resolveAxes(x, axes, op);
  if (ax.length === 0) return x;
  const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  return new Tensor(op, [x], { axes: ax, keepdims }, x.dtype, shape);
}

function softmaxLike(op: PrimOp, x: Tensor, axis: number): Tensor {
  const a = normaliseAxis(axis, x.rank, op);
  if (!isFloat(x.dtype)) throw new ShapeError(`${op}: needs a floating-point operand, got ${x}`);
  return new Tensor(op, [x], { axis: a }, x.dtype, x.shape);
}

export type { Dim, Shape };

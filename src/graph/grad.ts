// Reverse-mode autodiff at graph level: the backward pass is built from the same primitives,
// so it is exported to ONNX with the forward and runs in one session.
//
// One exhaustive table keyed by primitive (tinygrad's gradient.py, JAX's primitive_jvps): a rule
// takes the upstream gradient and the node and returns one gradient per input (null where none).
// `Record<PrimOp, ...>` makes a missing rule a compile error. Rules may return gradients in the
// broadcast (output) shape; `unbroadcast` reduces them to each input's shape in one place.

import { isFloat } from './dtype.ts';
import { type Dim, dimEqual, shapeEqual } from './shape.ts';
import { type Tensor, arange, scalar, scatterAdd, scatterElementsAdd, where, zeros } from './tensor.ts';

type GradRule = (g: Tensor, node: Tensor) => (Tensor | null)[];

/** Marks a primitive as not differentiable; asking for a gradient through it is an error. */
const none = null;

const rules: Record<Tensor['op'], GradRule | null> = {
  input: () => [],
  const: () => [],
  range: () => [],
  zeros: () => [],
  size: () => [],
  detach: () => [null],
  cast: (g, n) => [isFloat(n.inputs[0]!.dtype) ? g.cast(n.inputs[0]!.dtype) : null],

  neg: (g) => [g.neg()],
  exp: (g, n) => [g.mul(n)],
  log: (g, n) => [g.div(n.inputs[0]!)],
  sqrt: (g, n) => [g.div(n.mul(2))],
  recip: (g, n) => [g.mul(n).mul(n).neg()],
  sin: (g, n) => [g.mul(n.inputs[0]!.cos())],
  cos: (g, n) => [g.mul(n.inputs[0]!.sin()).neg()],
  sigmoid: (g, n) => [g.mul(n.mul(n.neg().add(1)))],
  tanh: (g, n) => [g.mul(n.mul(n).neg().add(1))],

  add: (g) => [g, g],
  sub: (g) => [g, g.neg()],
  mul: (g, n) => [g.mul(n.inputs[1]!), g.mul(n.inputs[0]!)],
  div: (g, n) => [g.div(n.inputs[1]!), g.mul(n).div(n.inputs[1]!).neg()],
  // Ties send the whole gradient to the first operand (as torch.maximum does not; it splits).
  // Ties are measure-zero for float inputs and irrelevant to the models here.
  max: (g, n) => {
    const first = n.inputs[0]!.less(n.inputs[1]!);
    return [where(first, 0, g), where(first, g, 0)];
  },
  min: (g, n) => {
    const second = n.inputs[1]!.less(n.inputs[0]!);
    return [where(second, 0, g), where(second, g, 0)];
  },
  less: () => [null, null],
  greater: () => [null, null],
  equal: () => [null, null],
  and: () => [null, null],
  where: (g, n) => [null, where(n.inputs[0]!, g, 0), where(n.inputs[0]!, 0, g)],

  sum: (g, n) => [restoreReduced(g, n).expand(n.inputs[0]!.shape)],
  // Ties share the gradient equally, so the rule is right even where the max is not unique.
  reduceMax: (g, n) => {
    const x = n.inputs[0]!;
    const hit = where(x.equal(restoreReduced(n, n)), scalar(1, x.dtype), 0);
    const share = hit.div(hit.sum(n.attrs.axes, true));
    return [share.mul(restoreReduced(g, n))];
  },

  reshape: (g, n) => [g.reshape(n.inputs[0]!.shape)],
  transpose: (g, n) => [g.transpose(inversePermutation(n.attrs.perm!))],
  expand: (g) => [g], // unbroadcast reduces to the input's shape
  slice: (g, n) => {
    const x = n.inputs[0]!;
    const axis = n.attrs.axes![0]!;
    const start = n.attrs.starts![0]!;
    const before = x.shape.map((_, i) => (i === axis ? start : 0));
    const after = x.shape.map((d, i) => (i === axis ? remainingAfter(d, n.shape[i]!, start) : 0));
    return [g.pad(before, after)];
  },
  pad: (g, n) => {
    const x = n.inputs[0]!;
    const rank = x.rank;
    let out = g;
    for (let axis = 0; axis < rank; axis++) {
      const before = n.attrs.pads![axis]!;
      const size = x.shape[axis]!;
      if (before !== 0 || !dimEqual(size, n.shape[axis]!))
        out = out.slice(axis, before, typeof size === 'number' ? before + size : Number.MAX_SAFE_INTEGER);
    }
    return [out];
  },
  concat: (g, n) => {
    const axis = n.attrs.axis!;
    let offset = 0;
    return n.inputs.map((t) => {
      const size = t.shape[axis]!;
      if (typeof size !== 'number') throw new Error(`concat gradient: symbolic size on axis ${axis} of ${t}`);
      const part = g.slice(axis, offset, offset + size);
      offset += size;
      return part;
    });
  },

  matmul: (g, n) => [g.matmul(n.inputs[1]!.T), n.inputs[0]!.T.matmul(g)],
  softmax: (g, n) => {
    const axis = n.attrs.axis!;
    return [n.mul(g.sub(g.mul(n).sum(axis, true)))];
  },
  logSoftmax: (g, n) => {
    const axis = n.attrs.axis!;
    return [g.sub(n.exp().mul(g.sum(axis, true)))];
  },
  cumsum: (g, n) => [g.cumsum(n.attrs.axis!, { reverse: !n.attrs.reverse, exclusive: n.attrs.exclusive })],

  gather: (g, n) => [scatterAdd(n.inputs[0]!.shape, n.inputs[1]!, g), null],
  gatherElements: (g, n) => {
    const [x, indices] = n.inputs as [Tensor, Tensor];
    const axis = n.attrs.axis!;
    if (indices.shape[axis] !== 1) return [scatterElementsAdd(x.shape, indices, g, axis), null];
    // One index per row (a cross-entropy's target): the adjoint is g times a one-hot of the index.
    // A few elementwise passes, where onnxruntime's ScatterElements into zeros took 0.6 s over a
    // [256, 151936] logits gradient (and its Where with a broadcast operand 1.9 s: hence the Mul).
    const positions = arange(x.shape[axis]!).reshape(x.shape.map((d, i) => (i === axis ? d : 1)));
    return [positions.cast(indices.dtype).equal(indices).cast(g.dtype).mul(g), null];
  },
  scatterAdd: none,
  scatterElementsAdd: none,
  topk: () => [null],
  argmax: () => [null],
  quantizedWeight: none,
  quantizedMatmul: none,
};

/** Every primitive (the keys of the rule table); tests check each rule against finite differences. */
export const allPrimitives = Object.keys(rules) as Tensor['op'][];

/** A reduced tensor (or its gradient) reshaped back to rank with size-1 reduced axes. */
function restoreReduced(t: Tensor, node: Tensor): Tensor {
  if (node.attrs.keepdims) return t;
  const x = node.inputs[0]!;
  return t.reshape(x.shape.map((d, i) => (node.attrs.axes!.includes(i) ? 1 : d)));
}

function inversePermutation(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

function remainingAfter(size: Dim, sliced: Dim, start: number): Dim {
  if (typeof size === 'number' && typeof sliced === 'number') return size - start - sliced;
  throw new Error(`slice gradient: symbolic slice of a ${size} axis is not supported`);
}

/** Sum a gradient over the axes along which `shape` was broadcast. */
export function unbroadcast(g: Tensor, shape: readonly Dim[]): Tensor {
  if (shapeEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return g.sum(axes, true).reshape(shape);
}

/**
 * Gradients of a scalar `y` with respect to each of `xs`, as new graph nodes.
 * A tensor that `y` does not depend on gets a zero gradient of its own shape.
 */
export function grad(y: Tensor, xs: readonly Tensor[], seed?: Tensor): Tensor[] {
  if (!seed && y.rank !== 0) throw new Error(`grad: y must be a scalar (got ${y}); pass a seed for non-scalar outputs`);
  const order = topologicalOrder(y);
  const wanted = dependsOnAny(order, xs);
  const grads = new Map<Tensor, Tensor>();
  grads.set(y, seed ?? onesLike(y));
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    const g = grads.get(node);
    if (!g || node.inputs.length === 0 || !wanted.has(node)) continue;
    const rule = rules[node.op];
    if (rule === null) throw new Error(`grad: primitive '${node.op}' has no gradient rule (needed for ${node})`);
    const inputGrads = rule(g, node);
    if (inputGrads.length !== node.inputs.length)
      throw new Error(
        `grad: rule for '${node.op}' returned ${inputGrads.length} gradients for ${node.inputs.length} inputs`,
      );
    node.inputs.forEach((input, j) => {
      const gi = inputGrads[j];
      if (!gi || !wanted.has(input) || !isFloat(input.dtype)) return;
      const reduced = unbroadcast(gi, input.shape);
      const prev = grads.get(input);
      grads.set(input, prev ? prev.add(reduced) : reduced);
    });
  }
  return xs.map((x) => grads.get(x) ?? zeros(x.shape, x.dtype));
}

function onesLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype).add(1);
}

/** Nodes reachable from `root`, inputs before users. */
export function topologicalOrder(...roots: Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: model graphs are deep enough to overflow a recursive walk.
  const stack: [Tensor, number][] = roots.map((r) => [r, 0]);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [node, next] = top;
    if (next === 0 && seen.has(node)) {
      stack.pop();
      continue;
    }
    if (next === 0) seen.add(node);
    if (next < node.inputs.length) {
      top[1] = next + 1;
      const child = node.inputs[next]!;
      if (!seen.has(child)) stack.push([child, 0]);
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order;
}

/** Nodes on some path from any of `xs` to the root (the only ones whose gradients matter). */
function dependsOnAny(order: Tensor[], xs: readonly Tensor[]): Set<Tensor> {
  const set = new Set<Tensor>(xs);
  for (const node of order) if (node.inputs.some((i) => set.has(i))) set.add(node);
  return set;
}

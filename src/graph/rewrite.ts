// Rewrites applied to a graph as it is exported: algebra that onnxruntime does not do itself.
import { topologicalOrder } from './grad.ts';
import { shapeEqual } from './shape.ts';
import { type PrimOp, Tensor } from './tensor.ts';

/**
 * Two rewrites, each where the nodes it removes have no other use:
 *
 * (A·B)ᵀ → Bᵀ·Aᵀ wherever a product's only use is that transpose of its last two axes. Autodiff of
 * a linear layer y = x·Wᵀ gives the weight's gradient as (xᵀ·dy)ᵀ, and onnxruntime folds the
 * transposes of a product's inputs into its GEMM but materialises a transpose of its output: at
 * Qwen3-0.6B that is a copy of every [out, in] weight gradient, 1.45 s of a training step for the
 * tied LM head's alone. dyᵀ·x is one GEMM. Transposes of transposes compose (Tensor.transpose), so
 * xᵀᵀ is x again.
 *
 * x·rsqrt(mean(x², last axis) + ε)·w, an RMSNorm as the model writes it (eight nodes), → one
 * rmsNorm node, which onnxruntime runs as one SimplifiedLayerNormalization kernel. Only where the
 * intermediates have no other use: in an inference graph (decode, log-probs), not in a training
 * graph, whose backward reads them. A decode step of Qwen3-0.6B has 113 norms: ~900 small nodes
 * fewer, and at batch 1 a step is mostly small nodes.
 *
 * Returns the outputs of the rewritten graph (the same tensors where nothing changed).
 */
export function rewriteForExport(outputs: readonly Tensor[]): Tensor[] {
  const order = topologicalOrder(...outputs);
  const uses = new Map<Tensor, number>();
  for (const t of [...order.flatMap((n) => n.inputs), ...outputs]) uses.set(t, (uses.get(t) ?? 0) + 1);
  const rewritten = new Map<Tensor, Tensor>();
  let norm: ReturnType<typeof rmsNormParts>;
  for (const node of order) {
    const inputs = node.inputs.map((t) => rewritten.get(t)!);
    const product = node.inputs[0];
    let out: Tensor;
    if (
      node.op === 'transpose' &&
      swapsLastTwo(node.attrs.perm!) &&
      product?.op === 'matmul' &&
      uses.get(product) === 1
    ) {
      const [a, b] = inputs[0]!.inputs as [Tensor, Tensor];
      out = b.T.matmul(a.T);
      if (!shapeEqual(out.shape, node.shape)) throw new Error(`rewriteForExport: ${out} does not match ${node}`);
    } else if ((norm = rmsNormParts(node, uses))) {
      const [x, weight] = [norm.x, norm.weight].map((t) => rewritten.get(t)!);
      out = new Tensor('rmsNorm', [x!, weight!], { epsilon: norm.epsilon }, node.dtype, node.shape);
    } else if (inputs.every((t, i) => t === node.inputs[i])) out = node;
    else out = new Tensor(node.op, inputs, node.attrs, node.dtype, node.shape);
    rewritten.set(node, out);
  }
  return outputs.map((t) => rewritten.get(t)!);
}

function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, -2).every((p, i) => p === i);
}

/**
 * x, w and ε when `node` is mul(mul(x, recip(sqrt(add(mul(sum(mul(x, x), last axis), 1/n), ε)))), w)
 * (operands of each mul in either order) over float32, w of shape [n], every intermediate used once.
 */
function rmsNormParts(node: Tensor, uses: Map<Tensor, number>): { x: Tensor; weight: Tensor; epsilon: number } | null {
  if (node.op !== 'mul' || node.dtype !== 'float32') return null;
  const only = (t: Tensor | undefined, op: PrimOp) => (t?.op === op && uses.get(t) === 1 ? t : null);
  const scalar = (t: Tensor | undefined) =>
    t?.op === 'const' && t.attrs.data!.length === 1 ? t.attrs.data![0]! : null;
  for (const [y, weight] of pairs(node)) {
    if (!only(y, 'mul') || weight.rank !== 1) continue;
    for (const [x, inv] of pairs(y)) {
      const n = x.shape.at(-1);
      if (typeof n !== 'number' || weight.shape[0] !== n || !shapeEqual(node.shape, x.shape)) continue;
      const add = only(only(only(inv, 'recip')?.inputs[0], 'sqrt')?.inputs[0], 'add');
      if (!add) continue;
      for (const [mean, eps] of pairs(add)) {
        const epsilon = scalar(eps);
        if (epsilon === null || !only(mean, 'mul')) continue;
        for (const [sum, scale] of pairs(mean)) {
          const squares = only(only(sum, 'sum')?.inputs[0], 'mul');
          if (
            squares?.inputs[0] === x &&
            squares.inputs[1] === x &&
            sum.attrs.keepdims &&
            sum.attrs.axes?.length === 1 &&
            sum.attrs.axes[0] === x.rank - 1 &&
            scalar(scale) !== null &&
            Math.abs(scalar(scale)! * n - 1) < 1e-6
          )
            return { x, weight, epsilon };
        }
      }
    }
  }
  return null;
}

/** A binary node's operands, both ways round. */
function pairs(node: Tensor): [Tensor, Tensor][] {
  const [a, b] = node.inputs as [Tensor, Tensor];
  return [
    [a, b],
    [b, a],
  ];
}

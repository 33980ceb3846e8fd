// Rewrites applied to a graph as it is exported: algebra that onnxruntime does not do itself.
import { topologicalOrder } from './grad.ts';
import { shapeEqual } from './shape.ts';
import { Tensor } from './tensor.ts';

/**
 * (A·B)ᵀ → Bᵀ·Aᵀ wherever a product's only use is that transpose of its last two axes. Autodiff of
 * a linear layer y = x·Wᵀ gives the weight's gradient as (xᵀ·dy)ᵀ, and onnxruntime folds the
 * transposes of a product's inputs into its GEMM but materialises a transpose of its output: at
 * Qwen3-0.6B that is a copy of every [out, in] weight gradient, 1.45 s of a training step for the
 * tied LM head's alone. dyᵀ·x is one GEMM. Transposes of transposes compose (Tensor.transpose), so
 * xᵀᵀ is x again. Returns the outputs of the rewritten graph (the same tensors where nothing changed).
 */
export function rewriteForExport(outputs: readonly Tensor[]): Tensor[] {
  const order = topologicalOrder(...outputs);
  const uses = new Map<Tensor, number>();
  for (const t of [...order.flatMap((n) => n.inputs), ...outputs]) uses.set(t, (uses.get(t) ?? 0) + 1);
  const rewritten = new Map<Tensor, Tensor>();
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

// Export a traced graph to an ONNX model (opset 18) with symbolic batch/sequence dims.
//
// Emission is a table keyed by primitive (tinygrad's nn/onnx.py, inverted). Symbolic dims are
// resolved at run time from the graph inputs that name them: 'B*T' becomes Shape(tokens)[0] *
// Shape(tokens)[1]. Reshape and Expand use ONNX's 0 / -1 / 1 conventions where they can, so most
// shapes stay constants that onnxruntime folds away.

import { type DType, bytesPerElement, encodeValues, onnxDataType } from './dtype.ts';
import { ProtoWriter } from './protobuf.ts';
import { type Dim, dimCoefficient, dimEqual, dimNames } from './shape.ts';
import type { PrimOp, Tensor } from './tensor.ts';
import { topologicalOrder } from './grad.ts';
import { rewriteForExport } from './rewrite.ts';

export const OPSET = 18;

type AttrValue =
  | { int: number }
  | { ints: number[] }
  | { float: number }
  | { string: string }
  | { tensor: { dtype: DType; dims: number[]; values: number[] } };

interface NodeSpec {
  op: string;
  domain?: string; // e.g. com.microsoft for onnxruntime's contrib ops
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

interface Initializer {
  name: string;
  dtype: DType;
  dims: number[];
  raw: Uint8Array;
}

class Emitter {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: Initializer[] = [];
  private names = new Map<Tensor, string>();
  private cache = new Map<string, string>();
  private counter = 0;

  constructor(private dimSources: Map<string, { input: string; axis: number }>) {}

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  nameOf(t: Tensor): string {
    const n = this.names.get(t);
    if (!n) throw new Error(`onnx export: ${t} used before it was emitted`);
    return n;
  }

  assign(t: Tensor, name: string): void {
    this.names.set(t, name);
  }

  emit(
    op: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = [this.fresh(op)],
    domain?: string,
  ): string {
    this.nodes.push({ op, inputs, outputs, attrs, ...(domain ? { domain } : {}) });
    return outputs[0]!;
  }

  constant(values: ArrayLike<number>, dims: number[], dtype: DType): string {
    const key = `${dtype}:${dims.join(',')}:${Array.from(values).join(',')}`;
    const short = values.length <= 16;
    if (short && this.cache.has(key)) return this.cache.get(key)!;
    const name = this.fresh('const');
    this.initializers.push({ name, dtype, dims, raw: encodeValues(values, dtype) });
    if (short) this.cache.set(key, name);
    return name;
  }

  /** An int64 tensor of shape [1] holding the run-time value of `dim`. */
  dimValue(dim: Dim): string {
    if (typeof dim === 'number') return this.constant([dim], [1], 'int64');
    const key = `dim:${dim}`;
    if (this.cache.has(key)) return this.cache.get(key)!;
    let value: string | undefined;
    for (const name of dimNames(dim)) {
      const src = this.dimSources.get(name);
      if (!src) throw new Error(`onnx export: symbolic dim '${name}' is not the dim of any graph input`);
      const piece = this.emit('Shape', [src.input], { start: { int: src.axis }, end: { int: src.axis + 1 } });
      value = value ? this.emit('Mul', [value, piece]) : piece;
    }
    const coef = dimCoefficient(dim);
    if (coef !== 1) value = this.emit('Mul', [value!, this.constant([coef], [1], 'int64')]);
    this.cache.set(key, value!);
    return value!;
  }

  /** An int64 1-D tensor holding `dims` (constant when all are numeric). */
  shapeTensor(dims: readonly Dim[]): string {
    if (dims.every((d) => typeof d === 'number')) return this.constant(dims as number[], [dims.length], 'int64');
    const key = `shape:${dims.join(',')}`;
    if (this.cache.has(key)) return this.cache.get(key)!;
    const name = this.emit(
      'Concat',
      dims.map((d) => this.dimValue(d)),
      { axis: { int: 0 } },
    );
    this.cache.set(key, name);
    return name;
  }

  scalarDim(dim: Dim): string {
    return this.emit('Reshape', [this.dimValue(dim), this.constant([], [0], 'int64')]);
  }
}

type EmitRule = (n: Tensor, ins: string[], e: Emitter) => string;

const elementwise =
  (op: string): EmitRule =>
  (_n, ins, e) =>
    e.emit(op, ins);

/** Reshape target using 0 (copy the input dim) and -1 where symbolic, so it stays a constant. */
function reshapeTarget(n: Tensor, e: Emitter): string {
  const src = n.inputs[0]!.shape;
  let inferred = 0;
  const spec = n.shape.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i < src.length && dimEqual(d, src[i]!)) return 0;
    inferred++;
    return -1;
  });
  if (inferred <= 1 && !spec.some((d, i) => d === 0 && n.shape[i] === 0))
    return e.constant(spec, [spec.length], 'int64');
  return e.shapeTensor(n.shape);
}

/** Expand target using 1 wherever the input already has the output's dim. */
function expandTarget(n: Tensor, e: Emitter): string {
  const src = n.inputs[0]!.shape;
  const lead = n.rank - src.length;
  const spec = n.shape.map((d, i) => (typeof d === 'string' && i >= lead && dimEqual(d, src[i - lead]!) ? 1 : d));
  return e.shapeTensor(spec);
}

const emitRules: Record<PrimOp, EmitRule> = {
  input: (n) => n.attrs.name!,
  const: (n, _ins, e) => e.constant(n.attrs.data!, n.shape as number[], n.dtype),
  range: (n, _ins, e) =>
    e.emit('Range', [e.constant([0], [], 'int64'), e.scalarDim(n.attrs.length!), e.constant([1], [], 'int64')]),
  size: (n, _ins, e) => e.emit('Cast', [e.scalarDim(n.attrs.length!)], { to: { int: onnxDataType[n.dtype] } }),
  zeros: (n, _ins, e) =>
    e.emit('ConstantOfShape', [e.shapeTensor(n.shape)], {
      value: { tensor: { dtype: n.dtype, dims: [1], values: [0] } },
    }),

  neg: elementwise('Neg'),
  exp: elementwise('Exp'),
  log: elementwise('Log'),
  sqrt: elementwise('Sqrt'),
  recip: elementwise('Reciprocal'),
  sin: elementwise('Sin'),
  cos: elementwise('Cos'),
  sigmoid: elementwise('Sigmoid'),
  tanh: elementwise('Tanh'),
  detach: elementwise('Identity'),
  cast: (n, ins, e) => e.emit('Cast', ins, { to: { int: onnxDataType[n.dtype] } }),

  add: elementwise('Add'),
  sub: elementwise('Sub'),
  mul: elementwise('Mul'),
  div: elementwise('Div'),
  max: elementwise('Max'),
  min: elementwise('Min'),
  less: elementwise('Less'),
  greater: elementwise('Greater'),
  equal: elementwise('Equal'),
  and: elementwise('And'),
  where: elementwise('Where'),

  sum: (n, ins, e) =>
    e.emit('ReduceSum', [ins[0]!, e.constant(n.attrs.axes!, [n.attrs.axes!.length], 'int64')], {
      keepdims: { int: n.attrs.keepdims ? 1 : 0 },
    }),
  reduceMax: (n, ins, e) =>
    e.emit('ReduceMax', [ins[0]!, e.constant(n.attrs.axes!, [n.attrs.axes!.length], 'int64')], {
      keepdims: { int: n.attrs.keepdims ? 1 : 0 },
    }),

  reshape: (n, ins, e) => e.emit('Reshape', [ins[0]!, reshapeTarget(n, e)]),
  transpose: (n, ins, e) => e.emit('Transpose', ins, { perm: { ints: n.attrs.perm! } }),
  expand: (n, ins, e) => e.emit('Expand', [ins[0]!, expandTarget(n, e)]),
  slice: (n, ins, e) => {
    const { starts, ends, axes } = n.attrs;
    return e.emit('Slice', [
      ins[0]!,
      e.constant(starts!, [starts!.length], 'int64'),
      e.constant(ends!, [ends!.length], 'int64'),
      e.constant(axes!, [axes!.length], 'int64'),
    ]);
  },
  pad: (n, ins, e) => e.emit('Pad', [ins[0]!, e.shapeTensor(n.attrs.pads!)]),
  concat: (n, ins, e) => e.emit('Concat', ins, { axis: { int: n.attrs.axis! } }),

  matmul: elementwise('MatMul'),
  softmax: (n, ins, e) => e.emit('Softmax', ins, { axis: { int: n.attrs.axis! } }),
  logSoftmax: (n, ins, e) => e.emit('LogSoftmax', ins, { axis: { int: n.attrs.axis! } }),
  cumsum: (n, ins, e) =>
    e.emit('CumSum', [ins[0]!, e.constant([n.attrs.axis!], [], 'int64')], {
      reverse: { int: n.attrs.reverse ? 1 : 0 },
      exclusive: { int: n.attrs.exclusive ? 1 : 0 },
    }),

  gather: (_n, ins, e) => e.emit('Gather', ins, { axis: { int: 0 } }),
  gatherElements: (n, ins, e) => e.emit('GatherElements', ins, { axis: { int: n.attrs.axis! } }),
  // Rows of updates added into rows of zeros (the gradient of gather, e.g. of an embedding).
  // Not ScatterND: onnxruntime's CPU ScatterND with reduction 'add' runs its updates in parallel
  // without atomics, so with intra-op threads > 1 updates to a repeated index are lost (a char
  // model's embedding gradient came out a few % short, and training was not reproducible).
  // ScatterElements adds exactly; it wants indices of the updates' shape, so the rows are
  // flattened and each row's index is broadcast along it.
  scatterAdd: (n, [indices, updates], e) => {
    const base = e.emit('ConstantOfShape', [e.shapeTensor(n.shape)], {
      value: { tensor: { dtype: n.dtype, dims: [1], values: [0] } },
    });
    const rows = e.emit('Reshape', [updates!, e.shapeTensor([-1, ...n.shape.slice(1)])]);
    const rowIndex = e.emit('Reshape', [
      indices!,
      e.constant([-1, ...n.shape.slice(1).map(() => 1)], [n.shape.length], 'int64'),
    ]);
    const idx = e.emit('Expand', [rowIndex, e.emit('Shape', [rows])]);
    return e.emit('ScatterElements', [base, idx, rows], { axis: { int: 0 }, reduction: { string: 'add' } });
  },
  scatterElementsAdd: (n, [indices, updates], e) => {
    const base = e.emit('ConstantOfShape', [e.shapeTensor(n.shape)], {
      value: { tensor: { dtype: n.dtype, dims: [1], values: [0] } },
    });
    return e.emit('ScatterElements', [base, indices!, updates!], {
      axis: { int: n.attrs.axis! },
      reduction: { string: 'add' },
    });
  },
  topk: (n, ins, e) => {
    const values = e.fresh('TopK_values');
    const indices = e.fresh('TopK_indices');
    e.emit(
      'TopK',
      [ins[0]!, e.constant([n.attrs.k!], [1], 'int64')],
      { axis: { int: -1 }, largest: { int: n.attrs.largest ? 1 : 0 }, sorted: { int: 1 } },
      [values, indices],
    );
    return indices;
  },
  argmax: (n, ins, e) =>
    e.emit('ArgMax', ins, { axis: { int: n.attrs.axis! }, keepdims: { int: n.attrs.keepdims ? 1 : 0 } }),
  // A quantised weight is consumed whole by quantizedMatmul (below): it stands for its packed input.
  quantizedWeight: (_n, ins) => ins[0]!,
  // onnxruntime's contrib kernels: 8-bit quantises x per tensor on the fly (uint8) and runs an
  // integer GEMM; 4-bit reads the blocked nibbles with accuracy_level 4: x is quantised to int8
  // per block of block_size inputs (symmetric, scale = max|x| / 127) and the products are integer
  // (llama.cpp's Q4_0 x Q8_0), about 5x faster on CPU than float activations (level 0), which
  // dequantise every block to fp32 first. Both want their weights constant (see exportOnnx).
  quantizedMatmul: (n, [x], e) => {
    const w = n.inputs[1]!;
    const [packed, scales] = w.inputs.map((t) => e.nameOf(t));
    const [out, inFeatures] = w.shape as number[];
    if (w.attrs.bits === 8)
      return e.emit(
        'DynamicQuantizeMatMul',
        [x!, packed!, scales!],
        {},
        [e.fresh('DynamicQuantizeMatMul')],
        'com.microsoft',
      );
    const attrs = {
      K: { int: inFeatures! },
      N: { int: out! },
      bits: { int: 4 },
      block_size: { int: w.attrs.blockSize! },
      accuracy_level: { int: 4 },
    };
    return e.emit('MatMulNBits', [x!, packed!, scales!], attrs, [e.fresh('MatMulNBits')], 'com.microsoft');
  },
};

export interface OnnxGraph {
  bytes: Uint8Array;
  /** The inputs fed at run time (declared inputs that are not constants), in declaration order. */
  inputNames: string[];
  outputNames: string[];
  /** Each constant's external-data file name (`${name}.bin`), for the caller to hand its bytes to the runtime. */
  constantFiles: Record<string, string>;
}

/**
 * Serialise the graph computing `outputs` from `inputs` (every input node reachable must be listed).
 * Inputs named in `constants` become initializers whose bytes live outside the model (ONNX external
 * data, one file per tensor, `${name}.bin`): the runtime is handed the bytes from memory, so a model
 * of any size stays under protobuf's 2 GB, and onnxruntime sees the weights as constant — which lets
 * it pre-pack them for its GEMM and 4-bit kernels instead of re-reading a fed input's layout on
 * every run.
 */
export function exportOnnx(
  inputs: readonly Tensor[],
  outputs: Record<string, Tensor>,
  graphName = 'ringrl',
  constants: ReadonlySet<string> = new Set(),
): OnnxGraph {
  const dimSources = new Map<string, { input: string; axis: number }>();
  const inputNames = new Set<string>();
  for (const t of inputs) {
    if (t.op !== 'input') throw new Error(`onnx export: ${t} is not an input`);
    if (inputNames.has(t.attrs.name!)) throw new Error(`onnx export: duplicate input name '${t.attrs.name}'`);
    inputNames.add(t.attrs.name!);
    t.shape.forEach((d, axis) => {
      if (typeof d === 'string' && !dimSources.has(d)) dimSources.set(d, { input: t.attrs.name!, axis });
    });
  }
  for (const name of constants) {
    const t = inputs.find((i) => i.attrs.name === name);
    if (!t) throw new Error(`onnx export: constant '${name}' is not a declared input`);
    if (!t.shape.every((d) => typeof d === 'number'))
      throw new Error(`onnx export: constant '${name}' needs a static shape, got ${t}`);
  }
  const fed = inputs.filter((t) => !constants.has(t.attrs.name!));
  const e = new Emitter(dimSources);
  const rewritten = rewriteForExport(Object.values(outputs));
  const outputList = Object.keys(outputs).map((name, i) => [name, rewritten[i]!] as const);
  for (const node of topologicalOrder(...outputList.map(([, t]) => t))) {
    if (node.op === 'input' && !inputs.includes(node))
      throw new Error(`onnx export: graph uses input '${node.attrs.name}' that was not declared`);
    const ins = node.inputs.map((i) => e.nameOf(i));
    e.assign(node, emitRules[node.op](node, ins, e));
  }
  for (const [name, t] of outputList) e.emit('Identity', [e.nameOf(t)], {}, [name]);

  const w = new ProtoWriter();
  w.int(1, 8); // ir_version
  w.string(2, 'ringrl');
  w.message(8, (m) => m.string(1, '').int(2, OPSET));
  if (e.nodes.some((n) => n.domain === 'com.microsoft')) w.message(8, (m) => m.string(1, 'com.microsoft').int(2, 1));
  w.message(7, (g) => {
    for (const n of e.nodes) g.message(1, (m) => writeNode(m, n));
    g.string(2, graphName);
    for (const init of e.initializers) g.message(5, (m) => writeTensor(m, init));
    for (const t of inputs)
      if (constants.has(t.attrs.name!)) g.message(5, (m) => writeExternalTensor(m, t, `${t.attrs.name}.bin`));
    for (const t of fed) g.message(11, (m) => writeValueInfo(m, t.attrs.name!, t.dtype, t.shape));
    for (const [name, t] of outputList) g.message(12, (m) => writeValueInfo(m, name, t.dtype, t.shape));
  });
  return {
    bytes: w.finish(),
    inputNames: fed.map((t) => t.attrs.name!),
    outputNames: outputList.map(([n]) => n),
    constantFiles: Object.fromEntries([...constants].map((name) => [name, `${name}.bin`])),
  };
}

/** An initializer whose bytes are in the external-data file `location` (ONNX TensorProto.external_data). */
function writeExternalTensor(w: ProtoWriter, t: Tensor, location: string): void {
  for (const d of t.shape) w.int(1, d as number);
  w.int(2, onnxDataType[t.dtype]);
  w.string(8, t.attrs.name!);
  const bytes = (t.shape as number[]).reduce((a, d) => a * d, 1) * bytesPerElement[t.dtype];
  for (const [key, value] of [
    ['location', location],
    ['offset', '0'],
    ['length', String(bytes)],
  ])
    w.message(13, (entry) => entry.string(1, key).string(2, value));
  w.int(14, 1); // data_location: EXTERNAL
}

function writeNode(w: ProtoWriter, n: NodeSpec): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.outputs[0]!);
  w.string(4, n.op);
  if (n.domain) w.string(7, n.domain);
  for (const [name, value] of Object.entries(n.attrs)) {
    w.message(5, (a) => {
      a.string(1, name);
      if ('int' in value) a.int(3, value.int).int(20, 2);
      else if ('float' in value) a.float(2, value.float).int(20, 1);
      else if ('string' in value) a.string(4, value.string).int(20, 3);
      else if ('ints' in value) {
        for (const v of value.ints) a.int(8, v);
        a.int(20, 7);
      } else {
        const { dtype, dims, values } = value.tensor;
        a.message(5, (t) => writeTensor(t, { name: '', dtype, dims, raw: encodeValues(values, dtype) })).int(20, 4);
      }
    });
  }
}

function writeTensor(w: ProtoWriter, t: Initializer): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, onnxDataType[t.dtype]);
  if (t.name) w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeValueInfo(w: ProtoWriter, name: string, dtype: DType, shape: readonly Dim[]): void {
  w.string(1, name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, onnxDataType[dtype]);
      tensor.message(2, (s) => {
        for (const d of shape) s.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

// Real int8 / 4-bit matmuls (onnxruntime's DynamicQuantizeMatMul and MatMulNBits) against host
// references of their arithmetic, and the packing they read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { input, quantizedMatmul, quantizedWeight } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/index.ts';
import { type PackedLayout, packWeight, unpackWeight } from '../../src/engine/precision.ts';
import { assertClose, rng } from '../helpers.ts';

const N = 5,
  K = 64,
  O = 24;
const random = rng(11);
const w = Float32Array.from({ length: O * K }, () => (random() - 0.5) * 0.2);
const x = Float32Array.from({ length: N * K }, () => random() * 2 - 0.7);

/** x @ W for a packed W, fed as inputs or (`constant`, as the engine compiles them) baked into the session. */
async function run(
  layout: PackedLayout,
  constant = false,
): Promise<{ y: Float32Array; feeds: ReturnType<typeof packWeight> }> {
  const feeds = packWeight(w, layout, 'w');
  const xs = input('x', 'float32', ['N', K]);
  const q = input('w.q', layout.bits === 8 ? 'int8' : 'uint8', [...feeds['w.q']!.dims]);
  const s = input('w.scales', 'float32', [...feeds['w.scales']!.dims]);
  const g = await CompiledGraph.create(
    [xs, q, s],
    { y: quantizedMatmul(xs, quantizedWeight(q, s, [O, K], layout.bits, layout.blockSize)) },
    { threads: 1 },
    constant ? feeds : {},
  );
  const out = await g.run({ x: { dtype: 'float32', data: x, dims: [N, K] }, ...(constant ? {} : feeds) });
  assert.deepEqual([...out.y!.dims], [N, O]);
  return { y: out.y!.data as Float32Array, feeds };
}

/** x @ W^T in float64. */
function matmulT(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const y: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a[n * K + k]! * b[o * K + k]!;
      y.push(acc);
    }
  return y;
}

/**
 * accuracy_level 4's activations: each row's blocks of `block` inputs quantised to int8, symmetric,
 * scale = max|x| / 127, round to nearest (MLAS QuantizeARow_CompInt8).
 */
function int8Blocks(a: Float32Array, block: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < a.length; start += block) {
    let amax = 0;
    for (let i = start; i < start + block; i++) amax = Math.max(amax, Math.abs(a[i]!));
    const scale = Math.fround(amax / 127);
    const inv = scale ? Math.fround(1 / scale) : 0;
    for (let i = start; i < start + block; i++) out.push(Math.round(Math.fround(a[i]! * inv)) * scale);
  }
  return out;
}

test('4-bit MatMulNBits: constant (as the engine compiles it) = int8-blocked x @ dequantised(W)^T; fed = float x; packing round-trips within a step of its block', async () => {
  const layout: PackedLayout = { shape: [O, K], bits: 4, blockSize: 16, source: 'w' };
  const { y, feeds } = await run(layout, true);
  const deq = unpackWeight(feeds, layout, 'w');
  assertClose(y, matmulT(int8Blocks(x, 16), deq), 1e-5, '4-bit product (constant: accuracy_level 4)');
  assert.ok(Math.max(...matmulT(x, deq).map((v, i) => Math.abs(v - y[i]!))) > 1e-4, 'and x was quantised');
  // A fed weight is re-expanded on every run and multiplied in float: accuracy_level applies only to pre-packed weights.
  assertClose((await run(layout)).y, matmulT(x, deq), 1e-5, '4-bit product (fed)');
  const scales = feeds['w.scales']!.data as Float32Array;
  for (let i = 0; i < w.length; i++) {
    const step = Math.abs(scales[Math.floor(i / K) * (K / 16) + Math.floor((i % K) / 16)]!);
    // Half a step, except that a value of the sign opposite the block's peak clips at 7 steps (-8 is the peak's).
    assert.ok(Math.abs(deq[i]! - w[i]!) <= step + 1e-7, `w[${i}] ${w[i]} -> ${deq[i]} (step ${step})`);
  }
});

test('int8 DynamicQuantizeMatMul = uint8-quantised x (per tensor) @ int8 W (per output channel)', async () => {
  const layout: PackedLayout = { shape: [O, K], bits: 8, blockSize: 0, source: 'w' };
  const { y, feeds } = await run(layout);
  // onnxruntime's DynamicQuantizeLinear: range includes 0, scale = range / 255, zero point rounded.
  const lo = Math.min(0, ...x),
    hi = Math.max(0, ...x);
  const scale = Math.fround((hi - lo) / 255);
  const zero = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  const xq = Array.from(x, (v) => (Math.max(0, Math.min(255, Math.round(v / scale) + zero)) - zero) * scale);
  const deq = unpackWeight(feeds, layout, 'w');
  assertClose(y, matmulT(xq, deq), 1e-5, 'int8 product');
  assertClose((await run(layout, true)).y, matmulT(xq, deq), 1e-5, 'int8 product (constant)');
  assert.ok(Math.max(...matmulT(x, w).map((v, i) => Math.abs(v - y[i]!))) > 1e-4, 'and it is not the float product');
});

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

async function run(layout: PackedLayout): Promise<{ y: Float32Array; feeds: ReturnType<typeof packWeight> }> {
  const feeds = packWeight(w, layout, 'w');
  const xs = input('x', 'float32', ['N', K]);
  const q = input('w.q', layout.bits === 8 ? 'int8' : 'uint8', [...feeds['w.q']!.dims]);
  const s = input('w.scales', 'float32', [...feeds['w.scales']!.dims]);
  const g = await CompiledGraph.create(
    [xs, q, s],
    { y: quantizedMatmul(xs, quantizedWeight(q, s, [O, K], layout.bits, layout.blockSize)) },
    { threads: 1 },
  );
  const out = await g.run({ x: { dtype: 'float32', data: x, dims: [N, K] }, ...feeds });
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

test('4-bit MatMulNBits = x @ dequantised(W)^T; packing round-trips within a step of its block', async () => {
  const layout: PackedLayout = { shape: [O, K], bits: 4, blockSize: 16, source: 'w' };
  const { y, feeds } = await run(layout);
  const deq = unpackWeight(feeds, layout, 'w');
  assertClose(y, matmulT(x, deq), 1e-5, '4-bit product');
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
  assert.ok(Math.max(...matmulT(x, w).map((v, i) => Math.abs(v - y[i]!))) > 1e-4, 'and it is not the float product');
});

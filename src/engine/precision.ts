// Reduced-precision copies of the weights for the rollout engine, so the train/inference mismatch
// that IcePop corrects is real, as in production systems that roll out in FP8. Weights are
// quantised and dequantised on the host when loaded or updated ("fake quantisation"): the
// arithmetic then runs in fp32, so the numbers match what a bf16/fp8/int8 kernel would see up to
// its accumulation order, without needing such kernels on a CPU. The trainer always stays fp32.
import type { Weights } from '../model/checkpoint.ts';

export const precisions = ['fp32', 'bf16', 'fp8', 'fp8-tensor', 'int8'] as const;
export type Precision = (typeof precisions)[number];

/** Linear-layer weights: quantised to fp8/int8. Everything else (embeddings, norms, router, LM head) goes to bf16. */
export function isLinearWeight(name: string): boolean {
  return /(_proj|\.w[123])\.weight$/.test(name);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round to bfloat16 (round to nearest, ties to even), returned as float32. */
export function roundBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000) return x; // inf / nan
  u32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0]!;
}

const FP8_MAX = 448; // e4m3fn
/** Round to the nearest float8 e4m3fn value (ties to even), saturating at ±448. */
export function roundFp8E4M3(x: number): number {
  const a = Math.abs(x);
  if (a === 0 || Number.isNaN(a)) return x;
  if (a >= FP8_MAX) return Math.sign(x) * FP8_MAX;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  e = Math.max(e, -6); // below 2^-6 the grid is the subnormal one, step 2^-9
  const step = 2 ** (e - 3);
  const q = a / step;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) < 1e-12 && r % 2 === 1) r--; // ties to even
  return Math.sign(x) * Math.min(r * step, FP8_MAX);
}

/** Per-row (output channel) or whole-tensor absmax scaling into a format, then back. */
function scaled(data: Float32Array, rows: number, perRow: boolean, maxQ: number, round: (v: number) => number): Float32Array {
  const out = new Float32Array(data.length);
  const cols = data.length / rows;
  const groups = perRow ? rows : 1;
  const size = perRow ? cols : data.length;
  for (let g = 0; g < groups; g++) {
    let amax = 0;
    for (let i = g * size; i < (g + 1) * size; i++) amax = Math.max(amax, Math.abs(data[i]!));
    const scale = amax > 0 ? amax / maxQ : 1;
    for (let i = g * size; i < (g + 1) * size; i++) out[i] = round(data[i]! / scale) * scale;
  }
  return out;
}

const roundInt8 = (v: number) => Math.max(-127, Math.min(127, Math.round(v)));

/** A copy of `weights` as the rollout engine should see them at `precision` (fp32: the same arrays). */
export function quantizeWeights(weights: Weights, shapes: Map<string, number[]>, precision: Precision): Weights {
  if (precision === 'fp32') return weights;
  const out: Weights = new Map();
  for (const [name, data] of weights) {
    const rows = shapes.get(name)?.[0] ?? 1;
    if (precision === 'bf16' || !isLinearWeight(name)) out.set(name, data.map(roundBf16));
    else if (precision === 'int8') out.set(name, scaled(data, rows, true, 127, roundInt8));
    else out.set(name, scaled(data, rows, precision === 'fp8', FP8_MAX, roundFp8E4M3));
  }
  return out;
}

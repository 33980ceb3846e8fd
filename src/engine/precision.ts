// Reduced-precision weights for the rollout engine, so the train/inference mismatch that IcePop
// corrects is real, as in production systems that roll out in FP8 or int8/4-bit. The trainer
// always stays fp32.
//
// int8 and int4 run for real: linear weights are packed on the host when loaded or updated and the
// engine's matmuls read them through onnxruntime's integer kernels (DynamicQuantizeMatMul: int8
// weights with a scale per output channel, activations quantised to uint8 per tensor on the fly;
// MatMulNBits: 4-bit weights with a scale per block of 32 inputs, activations quantised to int8 per
// block), so decode reads 4x / 8x fewer weight bytes. The engine compiles the packed weights into
// its sessions as constants, so onnxruntime pre-packs them once (fed as inputs, MatMulNBits
// re-expands them to fp32 on every run: 4x slower than fp32 itself at 0.6B). bf16 and fp8 have no CPU kernels: those weights are quantised and dequantised on
// the host ("fake quantisation") and the arithmetic runs in fp32, which matches what such a kernel
// sees up to its accumulation order.
import type { HostTensor } from '../runtime/index.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Weights } from '../model/checkpoint.ts';

export const precisions = ['fp32', 'bf16', 'fp8', 'fp8-tensor', 'int8', 'int4'] as const;
export type Precision = (typeof precisions)[number];

/** How one linear weight [out, in] is packed for the integer kernels. */
export interface PackedLayout {
  shape: [number, number];
  bits: 8 | 4;
  blockSize: number; // 4-bit: inputs per scale
  /** The weight it packs (the embedding table for a tied LM head). */
  source: string;
}

/**
 * The weights int8/int4 rollouts pack, by the parameter name the model reads them under: every
 * linear projection, and the LM head (lm_head.weight; for tied embeddings a packed copy of the
 * table under that name, the table itself staying float for the lookup). int4 packs projections in
 * 4 bits (blocks of 32 inputs, or 16 where 32 does not divide) and keeps the LM head at int8, as
 * llama.cpp's 4-bit formats keep the output layer wider.
 */
export function packedLayout(
  config: ModelConfig,
  shapes: Map<string, number[]>,
  precision: Precision,
): Map<string, PackedLayout> {
  const layout = new Map<string, PackedLayout>();
  if (precision !== 'int8' && precision !== 'int4') return layout;
  for (const [name, shape] of shapes) {
    if (!isLinearWeight(name) && name !== 'lm_head.weight') continue;
    const [out, inFeatures] = shape as [number, number];
    const blockSize = [32, 16].find((b) => inFeatures % b === 0) ?? 0;
    const bits = precision === 'int4' && blockSize && name !== 'lm_head.weight' ? 4 : 8;
    layout.set(name, { shape: [out, inFeatures], bits, blockSize: bits === 4 ? blockSize : 0, source: name });
  }
  if (config.tieEmbeddings)
    layout.set('lm_head.weight', {
      shape: [config.vocabSize, config.hiddenSize],
      bits: 8,
      blockSize: 0,
      source: 'model.embed_tokens.weight',
    });
  return layout;
}

/** The feeds of a packed weight: `${name}.q` and `${name}.scales`. */
export function packWeight(data: Float32Array, layout: PackedLayout, name: string): Record<string, HostTensor> {
  const [out, inFeatures] = layout.shape;
  const { packed, scales } =
    layout.bits === 8 ? packInt8(data, out, inFeatures) : packInt4(data, out, inFeatures, layout.blockSize);
  const dims = layout.bits === 8 ? [inFeatures, out] : [out, inFeatures / layout.blockSize, layout.blockSize / 2];
  return {
    [`${name}.q`]: { dtype: layout.bits === 8 ? 'int8' : 'uint8', data: packed, dims },
    [`${name}.scales`]: { dtype: 'float32', data: scales, dims: [scales.length] },
  };
}

/** Symmetric int8 per output channel, transposed to [in, out] (DynamicQuantizeMatMul's B). */
export function packInt8(
  w: Float32Array,
  out: number,
  inFeatures: number,
): { packed: Int8Array; scales: Float32Array } {
  const packed = new Int8Array(out * inFeatures);
  const scales = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let amax = 0;
    for (let i = o * inFeatures; i < (o + 1) * inFeatures; i++) amax = Math.max(amax, Math.abs(w[i]!));
    const scale = amax > 0 ? amax / 127 : 1;
    scales[o] = scale;
    for (let i = 0; i < inFeatures; i++)
      packed[i * out + o] = Math.max(-127, Math.min(127, Math.round(w[o * inFeatures + i]! / scale)));
  }
  return { packed, scales };
}

/**
 * Symmetric 4-bit per block of `blockSize` inputs (MatMulNBits' layout: [out][block][bytes], two
 * values a byte, low nibble first, stored as q + 8 with the default zero point 8). The scale maps
 * the block's largest magnitude to -8 (as onnxruntime's own quantiser does), using the full range.
 */
export function packInt4(
  w: Float32Array,
  out: number,
  inFeatures: number,
  blockSize: number,
): { packed: Uint8Array; scales: Float32Array } {
  const blocks = inFeatures / blockSize;
  const packed = new Uint8Array((out * inFeatures) / 2);
  const scales = new Float32Array(out * blocks);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < blocks; b++) {
      const start = o * inFeatures + b * blockSize;
      let peak = 0;
      for (let i = start; i < start + blockSize; i++) if (Math.abs(w[i]!) > Math.abs(peak)) peak = w[i]!;
      const scale = peak !== 0 ? peak / -8 : 1;
      scales[o * blocks + b] = scale;
      for (let i = 0; i < blockSize; i += 2) {
        const lo = Math.max(0, Math.min(15, Math.round(w[start + i]! / scale) + 8));
        const hi = Math.max(0, Math.min(15, Math.round(w[start + i + 1]! / scale) + 8));
        packed[(start + i) / 2] = lo | (hi << 4);
      }
    }
  }
  return { packed, scales };
}

/** The float weight [out, in] a packed one stands for (tests and mismatch analysis). */
export function unpackWeight(feeds: Record<string, HostTensor>, layout: PackedLayout, name: string): Float32Array {
  const [out, inFeatures] = layout.shape;
  const q = feeds[`${name}.q`]!.data,
    scales = feeds[`${name}.scales`]!.data as Float32Array;
  const w = new Float32Array(out * inFeatures);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inFeatures; i++) {
      if (layout.bits === 8) w[o * inFeatures + i] = (q[i * out + o] as number) * scales[o]!;
      else {
        const at = o * inFeatures + i;
        const nibble = ((q[at >> 1] as number) >> ((at & 1) * 4)) & 15;
        w[at] = (nibble - 8) * scales[o * (inFeatures / layout.blockSize) + Math.floor(i / layout.blockSize)]!;
      }
    }
  }
  return w;
}

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
function scaled(
  data: Float32Array,
  rows: number,
  perRow: boolean,
  maxQ: number,
  round: (v: number) => number,
): Float32Array {
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

/**
 * A copy of `weights` as the rollout engine should see them at `precision` (fp32: the same arrays):
 * fake-quantised for bf16/fp8; for int8/int4 the float weights besides the packed ones (embeddings,
 * norms, router) in bf16, as every reduced precision keeps them.
 */
export function quantizeWeights(weights: Weights, shapes: Map<string, number[]>, precision: Precision): Weights {
  if (precision === 'fp32') return weights;
  const out: Weights = new Map();
  const packed = precision === 'int8' || precision === 'int4';
  for (const [name, data] of weights) {
    const rows = shapes.get(name)?.[0] ?? 1;
    if (packed && (isLinearWeight(name) || name === 'lm_head.weight')) continue; // packedLayout's
    if (precision === 'bf16' || !isLinearWeight(name) || packed) out.set(name, data.map(roundBf16));
    else out.set(name, scaled(data, rows, precision === 'fp8', FP8_MAX, roundFp8E4M3));
  }
  return out;
}

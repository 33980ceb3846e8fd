// The whole Llama-family decoder in one file, dense and MoE, with Hugging Face semantics:
// llama, qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm, explicit head_dim), mixtral and qwen3_moe
// (sparse MoE: softmax router, top-k, renormalised weights, SwiGLU experts, load-balancing loss),
// RoPE with HF's linear, dynamic (NTK) and llama3 rope_scaling.
//
// Parameters are graph inputs keyed by their HF names, so a weight update never recompiles.
// Shape comments: B batch, T sequence, D hidden, H heads, K kv heads, G = H/K, hd head dim,
// F intermediate, E experts, V vocab, N = B*T tokens.

import {
  type DType,
  type Tensor,
  arange,
  concat,
  constant,
  quantizedMatmul,
  scalar,
  sizeOf,
  where,
} from '../graph/index.ts';
import { type ModelConfig, isSparseLayer } from './config.ts';

/** Every parameter of the model with its HF name and shape (the one list that defines them). */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const D = c.hiddenSize,
    hd = c.headDim,
    H = c.numHeads,
    K = c.numKvHeads,
    F = c.intermediateSize;
  shapes.set('model.embed_tokens.weight', [c.vocabSize, D]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [D]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [K * hd, D]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [K * hd, D]);
    if (c.qkvBias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [H * hd]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [K * hd]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [K * hd]);
    }
    if (c.qkNorm) {
      shapes.set(`${p}.self_attn.q_norm.weight`, [hd]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [hd]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    if (c.oBias) shapes.set(`${p}.self_attn.o_proj.bias`, [D]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [D]);
    if (isSparseLayer(c, i)) {
      const names = moeNames(c, i);
      const Fe = c.moe!.expertSize;
      shapes.set(names.router, [c.moe!.numExperts, D]);
      for (let e = 0; e < c.moe!.numExperts; e++) {
        shapes.set(names.expert(e, 'gate'), [Fe, D]);
        shapes.set(names.expert(e, 'down'), [D, Fe]);
        shapes.set(names.expert(e, 'up'), [Fe, D]);
      }
    } else {
      shapes.set(`${p}.mlp.gate_proj.weight`, [F, D]);
      shapes.set(`${p}.mlp.up_proj.weight`, [F, D]);
      shapes.set(`${p}.mlp.down_proj.weight`, [D, F]);
    }
  }
  shapes.set('model.norm.weight', [D]);
  if (!c.tieEmbeddings) shapes.set('lm_head.weight', [c.vocabSize, D]);
  return shapes;
}

/** HF names of layer i's sparse MoE block: mixtral's block_sparse_moe (w1/w3/w2) or qwen3_moe's mlp (gate/up/down_proj). */
export function moeNames(
  c: ModelConfig,
  layer: number,
): { router: string; expert: (e: number, which: 'gate' | 'up' | 'down') => string } {
  const mixtral = c.modelType === 'mixtral';
  const prefix = `model.layers.${layer}.${mixtral ? 'block_sparse_moe' : 'mlp'}`;
  const proj = mixtral ? { gate: 'w1', up: 'w3', down: 'w2' } : { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
  return { router: `${prefix}.gate.weight`, expert: (e, which) => `${prefix}.experts.${e}.${proj[which]}.weight` };
}

export type Params = Record<string, Tensor>;

export interface ForwardOutput {
  logits: Tensor; // [B, T, V]
  auxLoss?: Tensor; // [] MoE load-balancing loss (mixtral)
  routes?: Tensor[]; // MoE: per layer, the experts each token was routed to, int64 [B, T, k]
}

/**
 * Routing replay (R3): per layer, int64 [B, T, k] expert ids to use instead of the router's own
 * top-k (recorded by the rollout engine). The router still weighs the replayed experts with its own
 * softmax, so gradients reach it; only the choice is fixed.
 */
export type RouteReplay = Tensor[];

/**
 * Linear layer with an HF weight [out, in]: x @ W^T (+ b). Tokens are flattened to one matrix
 * first so the weight gradient is a single GEMM, not a batch of products summed afterwards.
 */
function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const [out, inFeatures] = weight.shape;
  const flat = x.reshape([-1, inFeatures!]);
  // Rollout engines may feed int8/4-bit weights (engine/precision.ts).
  const product = weight.op === 'quantizedWeight' ? quantizedMatmul(flat, weight) : flat.matmul(weight.T);
  const y = product.reshape([...x.shape.slice(0, -1), out!]);
  return bias ? y.add(bias) : y;
}

function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const variance = x.square().mean(-1, true);
  return x.mul(variance.add(eps).rsqrt()).mul(weight);
}

interface Rope {
  cos: Tensor; // broadcastable against [B, K, G, T, hd]
  sin: Tensor;
  rotate: Tensor; // [hd, hd]
}

/**
 * cos and sin tables for rotate-half RoPE at int64 `positions` (any shape P): [...P, hd], then
 * reshaped to `broadcastShape` so they line up with [B, K, G, T, hd] queries.
 */
function ropeTables(c: ModelConfig, positions: Tensor, dtype: DType, broadcastShape?: Tensor['shape']): Rope {
  const half = c.headDim / 2;
  const invFreq = constant(scaledInverseFrequencies(c), [half], dtype);
  const angles = positions.cast(dtype).unsqueeze(-1);
  const dynamic = c.ropeScaling?.type === 'dynamic';
  const freqs = angles.mul(dynamic ? invFreq.mul(dynamicNtkScale(c, positions, dtype)) : invFreq); // [...P, hd/2]
  let emb = concat([freqs, freqs], -1); // [...P, hd]
  if (broadcastShape) emb = emb.reshape(broadcastShape);
  return { cos: emb.cos(), sin: emb.sin(), rotate: rotateHalfMatrix(c.headDim, dtype) };
}

/**
 * RoPE inverse frequencies 1 / theta^(2i/hd), as HF's rope_scaling types rescale them ahead of time:
 * linear divides all by the factor; llama3 divides the low frequencies (wavelength above
 * original_max / low_freq_factor) by the factor, keeps the high ones (below original_max /
 * high_freq_factor) and blends in between. dynamic is applied per call (dynamicNtkScale).
 */
function scaledInverseFrequencies(c: ModelConfig): number[] {
  const base = Array.from({ length: c.headDim / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / c.headDim));
  const s = c.ropeScaling;
  if (s?.type === 'linear') return base.map((f) => f / s.factor);
  if (s?.type !== 'llama3') return base;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor,
    highWavelen = s.originalMaxPositions / s.highFreqFactor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor;
    if (wavelen < highWavelen) return f;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * HF's dynamic NTK RoPE: once a call reaches L = max(position) + 1 beyond the original context,
 * theta becomes theta * (factor * L / original - (factor - 1))^(hd / (hd - 2)) for that call, i.e.
 * frequency i is multiplied by that ratio^(-2i / (hd - 2)). Returns the [hd/2] multipliers (1 within
 * the original context).
 */
function dynamicNtkScale(c: ModelConfig, positions: Tensor, dtype: DType): Tensor {
  const s = c.ropeScaling!;
  const half = c.headDim / 2;
  const length = positions.max().cast(dtype).add(1);
  const ratio = length
    .mul(s.factor / s.originalMaxPositions)
    .sub(s.factor - 1)
    .maximum(1); // [] (1: unscaled)
  const exponents = Array.from({ length: half }, (_, i) => (-2 * i) / (c.headDim - 2));
  return ratio
    .log()
    .mul(constant(exponents, [half], dtype))
    .exp();
}

/**
 * rotate_half(x) = cat(-x[..., hd/2:], x[..., :hd/2]) as a product with a signed permutation
 * matrix: one small matmul (forward and backward) instead of two slices, a negation and a concat.
 */
function rotateHalfMatrix(hd: number, dtype: DType): Tensor {
  const half = hd / 2;
  const m = new Array<number>(hd * hd).fill(0);
  for (let j = 0; j < half; j++) {
    m[(j + half) * hd + j] = -1; // out[j] = -x[j + half]
    m[j * hd + j + half] = 1; // out[j + half] = x[j]
  }
  return constant(m, [hd, hd], dtype);
}

function applyRope(x: Tensor, rope: Rope): Tensor {
  return x.mul(rope.cos).add(x.matmul(rope.rotate).mul(rope.sin));
}

/** Keys and values of one layer, after RoPE: [B, K, S, hd] each (what a KV cache holds). */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

/**
 * Project x [B, T, D] to queries grouped for GQA [B, K, G, T, hd] (RoPE applied, pre-scaled by
 * 1/sqrt(hd), which is cheaper on [.., T, hd] than on the [.., T, S] scores) and keys/values
 * [B, K, T, hd]. GQA never repeats k/v: the G query heads of a group broadcast against one kv head.
 */
function projectQkv(c: ModelConfig, p: Params, prefix: string, x: Tensor, rope: Rope): { q: Tensor; kv: LayerCache } {
  const [B, T] = x.shape;
  const H = c.numHeads,
    K = c.numKvHeads,
    G = H / K,
    hd = c.headDim;
  const bias = (name: string) => (c.qkvBias ? p[`${prefix}.${name}.bias`] : undefined);
  let q = linear(x, p[`${prefix}.q_proj.weight`]!, bias('q_proj')).reshape([B!, T!, H, hd]); // [B, T, H, hd]
  let k = linear(x, p[`${prefix}.k_proj.weight`]!, bias('k_proj')).reshape([B!, T!, K, hd]); // [B, T, K, hd]
  const v = linear(x, p[`${prefix}.v_proj.weight`]!, bias('v_proj')).reshape([B!, T!, K, hd]);
  if (c.qkNorm) {
    q = rmsNorm(q, p[`${prefix}.q_norm.weight`]!, c.rmsNormEps);
    k = rmsNorm(k, p[`${prefix}.k_norm.weight`]!, c.rmsNormEps);
  }
  const qg = applyRope(q.reshape([B!, T!, K, G, hd]).transpose([0, 2, 3, 1, 4]), rope).mul(1 / Math.sqrt(hd)); // [B, K, G, T, hd]
  const kr = applyRope(k.transpose([0, 2, 1, 3]).unsqueeze(2), rope).squeeze(2); // [B, K, T, hd]
  return { q: qg, kv: { k: kr, v: v.transpose([0, 2, 1, 3]) } };
}

/** Merge heads [B, K, G, T, hd] → [B, T, H*hd] and apply the output projection. */
function outputProjection(c: ModelConfig, p: Params, prefix: string, out: Tensor): Tensor {
  const [B, , , T] = out.shape;
  const merged = out.transpose([0, 3, 1, 2, 4]).reshape([B!, T!, c.numHeads * c.headDim]);
  return linear(merged, p[`${prefix}.o_proj.weight`]!, c.oBias ? p[`${prefix}.o_proj.bias`] : undefined);
}

/** Causal self-attention over the sequence itself (training and prefill). */
function causalAttention(
  c: ModelConfig,
  p: Params,
  prefix: string,
  x: Tensor,
  rope: Rope,
  maskBias: Tensor,
): { out: Tensor; kv: LayerCache } {
  const { q, kv } = projectQkv(c, p, prefix, x, rope);
  const scores = q.matmul(kv.k.unsqueeze(2).T); // [B, K, G, T, T]
  const probs = scores.add(maskBias).softmax(-1);
  return { out: outputProjection(c, p, prefix, probs.matmul(kv.v.unsqueeze(2))), kv };
}

/**
 * One segment of a decode step's KV cache: positions [start, start + S) of the first n rows, keys and
 * values [n, K, 1, S, hd] (the unit axis lines up with the G query heads of a group), `bias`
 * [n, 1, 1, 1, S] (0 where cached, -1e30 elsewhere). Every segment but the first, which covers all B
 * rows, also has `rows` (int64 [n], 0..n-1), `spread` (int64 [B]: each row's row in the segment,
 * any for a row that does not reach it) and `reached` (bool [B, 1, 1, 1, 1]): the engine orders rows
 * so that those reaching a segment are a prefix, and a short row then reads none of the long rows'
 * segments.
 */
export interface CacheSegment extends LayerCache {
  bias: Tensor;
  rows?: Tensor;
  spread?: Tensor;
  reached?: Tensor;
}

/**
 * One new token per row against its cached segments and itself, never concatenating the cache with
 * the new entry (that copy would move the whole cache every step). Each segment takes a softmax of
 * its own (flash-decoding's split): its maximum m, sum of exponentials l and mix o, packed as
 * [o, l, m] along the last axis. A segment's pack is spread from its n rows to all B by a gather,
 * and a row that does not reach the segment gets [0, 0, -1e30] instead: a part that weighs nothing.
 * The parts are then stacked and combined at once with the self score: a few graph nodes per
 * segment, which is what a step pays for each segment some row reaches.
 */
function cachedAttention(
  c: ModelConfig,
  p: Params,
  prefix: string,
  x: Tensor,
  rope: Rope,
  segments: CacheSegment[],
): { out: Tensor; kv: LayerCache } {
  const { q, kv } = projectQkv(c, p, prefix, x, rope); // q [B, K, G, 1, hd], kv [B, K, 1, hd]
  const hd = c.headDim,
    K = c.numKvHeads,
    G = c.numHeads / K;
  const selfScore = q.mul(kv.k.unsqueeze(2)).sum(-1, true); // [B, K, G, 1, 1]
  const none = constant(
    Array.from({ length: K * G * (hd + 2) }, (_, i) => (i % (hd + 2) === hd + 1 ? -1e30 : 0)),
    [1, K, G, 1, hd + 2],
    x.dtype,
  );
  const parts = segments.map((s) => {
    const scores = (s.rows ? q.gather(s.rows) : q).matmul(s.k.T).add(s.bias); // [n, K, G, 1, S]
    const max = scores.max(-1, true); // [n, K, G, 1, 1]
    const weights = scores.sub(max).exp();
    const pack = concat([weights.matmul(s.v), weights.sum(-1, true), max], -1); // [n, K, G, 1, hd + 2]
    return s.spread && s.reached ? where(s.reached, pack.gather(s.spread), none) : pack; // [B, K, G, 1, hd + 2]
  });
  const stacked = parts.length > 1;
  const all = stacked ? concat(parts, 3) : parts[0]!; // [B, K, G, J, hd + 2]
  const maxes = all.slice(-1, hd + 1, hd + 2); // m per segment [B, K, G, J, 1]
  const top = (stacked ? maxes.max(3, true) : maxes).maximum(selfScore); // [B, K, G, 1, 1]
  const scaled = all.mul(maxes.sub(top).exp());
  const mixed = stacked ? scaled.sum(3, true) : scaled; // Σ e^(m - top)·[o, l, ·] [B, K, G, 1, hd + 2]
  const selfWeight = selfScore.sub(top).exp();
  const numerator = mixed.slice(-1, 0, hd).add(selfWeight.mul(kv.v.unsqueeze(2)));
  const denominator = mixed.slice(-1, hd, hd + 1).add(selfWeight);
  return { out: outputProjection(c, p, prefix, numerator.div(denominator)), kv };
}

function denseMlp(p: Params, prefix: string, x: Tensor): Tensor {
  const gate = linear(x, p[`${prefix}.gate_proj.weight`]!).silu();
  const up = linear(x, p[`${prefix}.up_proj.weight`]!);
  return linear(gate.mul(up), p[`${prefix}.down_proj.weight`]!);
}

/**
 * Mixtral sparse MoE. Every expert runs on every token and the outputs are combined with the
 * (mostly zero) routing weights: exact, and the fastest form for the few-expert models that fit
 * on a CPU; a token-dispatching kernel is the upgrade for large expert counts.
 */
function moeBlock(
  c: ModelConfig,
  p: Params,
  layer: number,
  x: Tensor,
  replay?: Tensor,
): { out: Tensor; routerLogits: Tensor; chosen: Tensor } {
  const { numExperts: E, topK, normTopkProb } = c.moe!;
  const names = moeNames(c, layer);
  const [B, T, D] = x.shape;
  const tokens = x.reshape([-1, D!]); // [N, D]
  const routerLogits = linear(tokens, p[names.router]!); // [N, E]
  const routing = routerLogits.softmax(-1);
  const chosen = replay ? replay.reshape([-1, topK]) : routing.topkIndices(topK); // [N, k]
  const topWeights = routing.gatherElements(chosen, -1); // [N, k]
  const normalised = normTopkProb ? topWeights.div(topWeights.sum(-1, true)) : topWeights;
  const oneHot = where(chosen.unsqueeze(-1).equal(arange(E)), scalar(1, x.dtype), 0); // [N, k, E]
  const dense = oneHot.mul(normalised.unsqueeze(-1)).sum(1); // [N, E]
  const stack = (w: 'gate' | 'up' | 'down') =>
    concat(
      Array.from({ length: E }, (_, e) => p[names.expert(e, w)]!.unsqueeze(0)),
      0,
    ); // [E, out, in]
  const h = tokens.unsqueeze(0); // [1, N, D]
  const act = h
    .matmul(stack('gate').T)
    .silu()
    .mul(h.matmul(stack('up').T)); // [E, N, F]
  const expertOut = act.matmul(stack('down').T); // [E, N, D]
  const out = expertOut.mul(dense.T.unsqueeze(-1)).sum(0); // [N, D]
  return { out: out.reshape([B!, T!, D!]), routerLogits, chosen };
}

/**
 * HF load_balancing_loss_func: over all layers' router decisions, the fraction of tokens routed
 * to each expert (per top-k slot) times the mean router probability, × E. With a token mask
 * (HF's attention_mask branch) padding tokens are left out of both means.
 */
function loadBalancingLoss(
  c: ModelConfig,
  routerLogits: Tensor[],
  chosenPerLayer: Tensor[],
  tokenMask?: Tensor,
): Tensor {
  const { numExperts: E } = c.moe!;
  const weight = tokenMask?.reshape([-1, 1]); // [N, 1]
  let tokensPerExpert: Tensor | undefined; // [k, E], summed over layers and tokens
  let probPerExpert: Tensor | undefined; // [E]
  routerLogits.forEach((logits, l) => {
    const routing = logits.softmax(-1); // [N, E]
    const chosen = chosenPerLayer[l]!; // [N, k]
    const mask = where(chosen.unsqueeze(-1).equal(arange(E)), scalar(1, logits.dtype), 0); // [N, k, E]
    const routed = weight ? mask.mul(weight.unsqueeze(-1)).sum(0) : mask.sum(0);
    const probs = weight ? routing.mul(weight).sum(0) : routing.sum(0);
    tokensPerExpert = tokensPerExpert ? tokensPerExpert.add(routed) : routed;
    probPerExpert = probPerExpert ? probPerExpert.add(probs) : probs;
  });
  const tokens = weight ? weight.sum() : sizeOf(routerLogits[0]!.shape[0]!, routerLogits[0]!.dtype);
  const count = tokens.mul(routerLogits.length); // L * (real) N
  return tokensPerExpert!.mul(probPerExpert!.unsqueeze(0)).sum().mul(E).div(count.square());
}

type AttentionFn = (layer: number, prefix: string, h: Tensor) => { out: Tensor; kv: LayerCache };

/** Embedding, the decoder layers (with the given attention), final norm and LM head. */
function decoder(
  c: ModelConfig,
  p: Params,
  tokens: Tensor,
  attend: AttentionFn,
  tokenMask?: Tensor,
  replay?: RouteReplay,
): ForwardOutput & { cache: LayerCache[]; hidden: Tensor } {
  const [B, T] = tokens.shape;
  const { x, cache, routerLogits, routes } = decoderLayers(
    c,
    p,
    embedTokens(p, tokens),
    0,
    c.numLayers,
    attend,
    replay,
  );
  const hidden = rmsNorm(x, p['model.norm.weight']!, c.rmsNormEps); // [B, T, D]
  const logits = linear(hidden, lmHead(c, p)); // [B, T, V]
  if (!routerLogits.length) return { logits, hidden, cache };
  const auxLoss = loadBalancingLoss(c, routerLogits, routes, tokenMask);
  return { logits, hidden, cache, auxLoss, routes: routes.map((r) => r.reshape([B!, T!, c.moe!.topK])) };
}

function embedTokens(p: Params, tokens: Tensor): Tensor {
  return p['model.embed_tokens.weight']!.gather(tokens); // [B, T, D]
}

/** Layers [from, to) on the residual stream x [B, T, D]. */
function decoderLayers(
  c: ModelConfig,
  p: Params,
  x: Tensor,
  from: number,
  to: number,
  attend: AttentionFn,
  replay?: RouteReplay,
): { x: Tensor; cache: LayerCache[]; routerLogits: Tensor[]; routes: Tensor[] } {
  const routerLogits: Tensor[] = [];
  const routes: Tensor[] = [];
  const cache: LayerCache[] = [];
  for (let i = from; i < to; i++) {
    const prefix = `model.layers.${i}`;
    const h = rmsNorm(x, p[`${prefix}.input_layernorm.weight`]!, c.rmsNormEps);
    const { out, kv } = attend(i, `${prefix}.self_attn`, h);
    cache.push(kv);
    x = x.add(out);
    const h2 = rmsNorm(x, p[`${prefix}.post_attention_layernorm.weight`]!, c.rmsNormEps);
    if (isSparseLayer(c, i)) {
      // Routes are recorded and replayed per MoE layer, in layer order (dense layers have none).
      const { out: moeOut, routerLogits: r, chosen } = moeBlock(c, p, i, h2, replay?.[routes.length]);
      routerLogits.push(r);
      routes.push(chosen);
      x = x.add(moeOut);
    } else {
      x = x.add(denseMlp(p, `${prefix}.mlp`, h2));
    }
  }
  return { x, cache, routerLogits, routes };
}

/** The LM head: lm_head.weight, or the embeddings when tied (unless a rollout engine feeds a quantised copy as lm_head.weight). */
function lmHead(c: ModelConfig, p: Params): Tensor {
  return p['lm_head.weight'] ?? (c.tieEmbeddings ? p['model.embed_tokens.weight']! : p['lm_head.weight']!);
}

/** Additive causal mask [T, T]: a large negative above the diagonal (its gradient is the identity). */
function causalBias(T: Tensor['shape'][number], dtype: DType): Tensor {
  const future = arange(T).unsqueeze(0).greater(arange(T).unsqueeze(-1));
  return where(future, scalar(-1e30, dtype), 0);
}

/**
 * Logits for int64 `tokens` [B, T] at positions 0..T-1. Batches are right-padded: causal
 * attention keeps padding from reaching real tokens; `tokenMask` [B, T] (1 = real token) keeps
 * it out of the MoE load-balancing loss.
 */
export function forward(
  c: ModelConfig,
  p: Params,
  tokens: Tensor,
  tokenMask?: Tensor,
  replay?: RouteReplay,
): ForwardOutput {
  const dtype = p['model.embed_tokens.weight']!.dtype;
  const T = tokens.shape[1]!;
  const rope = ropeTables(c, arange(T), dtype);
  const mask = causalBias(T, dtype);
  const { logits, auxLoss, routes } = decoder(
    c,
    p,
    tokens,
    (_i, prefix, h) => causalAttention(c, p, prefix, h, rope, mask),
    tokenMask,
    replay,
  );
  return { logits, auxLoss, routes };
}

/**
 * Layers [from, to) of a dense model's training forward, for recomputing it in segments
 * (train/policy.ts), on the residual stream `hidden` [B, T, D] after layer from-1 (the token
 * embeddings for from = 0). Returns the residual stream after layer to-1, and the logits
 * [B, T, V] too when to = numLayers: the segments chained are `forward`.
 */
export function forwardSegment(
  c: ModelConfig,
  p: Params,
  hidden: Tensor,
  from: number,
  to: number,
): { hidden: Tensor; logits?: Tensor } {
  if (c.moe) throw new Error('forwardSegment: dense models only (the MoE load-balancing loss spans every layer)');
  const T = hidden.shape[1]!;
  const rope = ropeTables(c, arange(T), hidden.dtype);
  const mask = causalBias(T, hidden.dtype);
  const attend: AttentionFn = (_i, prefix, h) => causalAttention(c, p, prefix, h, rope, mask);
  const x = decoderLayers(c, p, hidden, from, to, attend).x;
  if (to < c.numLayers) return { hidden: x };
  return { hidden: x, logits: linear(rmsNorm(x, p['model.norm.weight']!, c.rmsNormEps), lmHead(c, p)) };
}

/**
 * Prefill right-padded prompts [B, T]: the keys/values of every position (padding included;
 * the engine tracks real lengths) and the logits at each row's last real token `lastIndex` [B].
 */
export function prefill(
  c: ModelConfig,
  p: Params,
  tokens: Tensor,
  lastIndex: Tensor,
): { logits: Tensor; cache: LayerCache[]; routes?: Tensor[] } {
  const dtype = p['model.embed_tokens.weight']!.dtype;
  const [B, T] = tokens.shape;
  const rope = ropeTables(c, arange(T!), dtype);
  const mask = causalBias(T!, dtype);
  const attend: AttentionFn = (_i, prefix, h) => causalAttention(c, p, prefix, h, rope, mask);
  const { hidden, cache, routes } = decoder(c, p, tokens, attend);
  const D = c.hiddenSize;
  const at = lastIndex.reshape([B!, 1, 1]).expand([B!, 1, D]);
  const last = hidden.gatherElements(at, 1).reshape([B!, D]); // [B, D]
  return { logits: linear(last, lmHead(c, p)), cache, routes };
}

/**
 * One decode step: `tokens` [B, 1] at `positions` [B] against the cache `past` (per layer, its
 * segments; see CacheSegment). Returns the logits [B, V] and the new keys/values [B, K, 1, hd] per
 * layer for the caller to append.
 */
export function decodeStep(
  c: ModelConfig,
  p: Params,
  tokens: Tensor,
  positions: Tensor,
  past: CacheSegment[][],
): { logits: Tensor; cache: LayerCache[]; routes?: Tensor[] } {
  const dtype = p['model.embed_tokens.weight']!.dtype;
  const [B] = tokens.shape;
  const rope = ropeTables(c, positions, dtype, [B!, 1, 1, 1, c.headDim]);
  const attend: AttentionFn = (i, prefix, h) => cachedAttention(c, p, prefix, h, rope, past[i]!);
  const { logits, cache, routes } = decoder(c, p, tokens, attend);
  return { logits: logits.reshape([B!, c.vocabSize]), cache, routes };
}

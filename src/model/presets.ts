// Built-in model presets and fresh initialisation (HF's: N(0, 0.02) for matrices and
// embeddings, ones for norms, zeros for biases).
import { RingrlError } from '../errors.ts';
import { normal, rng } from '../util/random.ts';
import { type ModelConfig, type MoeConfig, parseModelConfig } from './config.ts';
import type { Weights } from './checkpoint.ts';
import { parameterShapes } from './llama.ts';

/** Mixtral routing: every layer sparse, top-k weights renormalised, experts as wide as intermediate_size. */
function mixtralMoe(numExperts: number, topK: number, expertSize: number): MoeConfig {
  return { numExperts, topK, auxLossCoef: 0.02, normTopkProb: true, expertSize, sparseStep: 1, denseLayers: [] };
}

const base = {
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositions: 2048,
  tieEmbeddings: false,
  qkvBias: false,
  oBias: false,
  qkNorm: false,
} as const;

/** Qwen3-0.6B's config.json exactly as Qwen/Qwen3-0.6B ships it (0.6B parameters, bf16, tied embeddings). */
export const QWEN3_0_6B_CONFIG = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

export const presets: Record<string, { description: string; config: ModelConfig }> = {
  tiny: {
    description: 'for tests: 2 layers, d_model 32, vocab 64',
    config: {
      ...base,
      modelType: 'llama',
      vocabSize: 64,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
    },
  },
  'tiny-moe': {
    description: 'for tests: 2 layers, d_model 32, 4 experts top-2, vocab 64',
    config: {
      ...base,
      modelType: 'mixtral',
      vocabSize: 64,
      hiddenSize: 32,
      intermediateSize: 32,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      moe: mixtralMoe(4, 2, 32),
    },
  },
  small: {
    description: 'the demo model: 4 layers, d_model 128, vocab 64 (dense)',
    config: {
      ...base,
      modelType: 'llama',
      vocabSize: 64,
      hiddenSize: 128,
      intermediateSize: 512,
      numLayers: 4,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 32,
    },
  },
  'small-moe': {
    description: 'a small MoE: 4 layers, d_model 128, 4 experts top-2, vocab 64',
    config: {
      ...base,
      modelType: 'mixtral',
      vocabSize: 64,
      hiddenSize: 128,
      intermediateSize: 256,
      numLayers: 4,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 32,
      moe: mixtralMoe(4, 2, 256),
    },
  },
  bench: {
    description: 'the training benchmark model: 4 layers, d_model 256, 4 heads, d_ff 1024, vocab 64',
    config: {
      ...base,
      modelType: 'llama',
      vocabSize: 64,
      hiddenSize: 256,
      intermediateSize: 1024,
      numLayers: 4,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 64,
    },
  },
  'qwen3-0.6b': {
    description: "Qwen3-0.6B's exact config.json: 28 layers, d_model 1024, 16/8 heads of 128, vocab 151936, tied, bf16",
    config: parseModelConfig(QWEN3_0_6B_CONFIG, 'qwen3-0.6b preset'),
  },
};

export function presetConfig(name: string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const preset = presets[name];
  if (!preset) throw new RingrlError(`unknown preset '${name}'; expected one of ${Object.keys(presets).join(', ')}`);
  const config = { ...preset.config, ...overrides };
  if (Object.keys(overrides).length > 0) delete config.hf; // the verbatim config.json no longer describes it
  return config;
}

export function initWeights(config: ModelConfig, seed = 0, std = 0.02): Weights {
  const gauss = normal(rng(seed));
  const weights: Weights = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = gauss() * std;
    weights.set(name, data);
  }
  return weights;
}

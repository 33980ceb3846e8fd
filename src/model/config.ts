// Model configuration: the Hugging Face config.json fields ringrl reads, validated, and the
// normalised form the model code uses. Unknown HF keys are kept (real configs carry many).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RingrlError } from '../errors.ts';

export const modelTypes = ['llama', 'qwen2', 'qwen3', 'mixtral', 'qwen3_moe'] as const;
export type ModelType = (typeof modelTypes)[number];

const positiveInt = z.number().int().positive();

/** The HF config.json fields we use (snake_case, as HF writes them). */
export const hfConfigSchema = z.looseObject({
  model_type: z.string(),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.optional(),
  head_dim: positiveInt.nullish(),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  max_position_embeddings: positiveInt.default(4096),
  tie_word_embeddings: z.boolean().default(false),
  attention_bias: z.boolean().default(false),
  hidden_act: z.literal('silu').default('silu'),
  use_sliding_window: z
    .literal(false, { error: 'sliding-window attention is not supported; expected false' })
    .optional(),
  num_local_experts: positiveInt.optional(),
  num_experts: positiveInt.optional(), // qwen3_moe's name for num_local_experts
  num_experts_per_tok: positiveInt.optional(),
  norm_topk_prob: z.boolean().optional(),
  moe_intermediate_size: positiveInt.optional(),
  decoder_sparse_step: positiveInt.default(1),
  mlp_only_layers: z.array(z.number().int().nonnegative()).default([]),
  router_aux_loss_coef: z.number().nonnegative().default(0.02),
  rope_scaling: z.looseObject({}).nullish(),
});

export type HfConfig = z.infer<typeof hfConfigSchema>;

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  tieEmbeddings: boolean;
  qkvBias: boolean; // qwen2 always; llama and qwen3 when attention_bias
  oBias: boolean; // llama and qwen3 when attention_bias (qwen2 never)
  qkNorm: boolean; // qwen3, qwen3_moe
  ropeScaling?: RopeScaling;
  moe?: MoeConfig;
  /** The config.json this config was read from, written back verbatim when the model is saved. */
  hf?: Record<string, unknown>;
}

/** HF's rope_scaling types we implement (transformers' modeling_rope_utils). */
export const ropeScalingTypes = ['linear', 'dynamic', 'llama3'] as const;
export interface RopeScaling {
  type: (typeof ropeScalingTypes)[number];
  factor: number;
  /** The context the model was pre-trained on (llama3's original_max_position_embeddings; dynamic's threshold). */
  originalMaxPositions: number;
  lowFreqFactor: number; // llama3
  highFreqFactor: number; // llama3
}

export interface MoeConfig {
  numExperts: number;
  topK: number;
  auxLossCoef: number;
  /** Renormalise the top-k routing weights to sum to 1 (mixtral always; qwen3_moe's norm_topk_prob). */
  normTopkProb: boolean;
  /** Each expert's hidden size (qwen3_moe's moe_intermediate_size; mixtral's intermediate_size). */
  expertSize: number;
  /** Layers i with (i + 1) % sparseStep == 0 and not in denseLayers are sparse; the others have a dense MLP. */
  sparseStep: number;
  denseLayers: number[];
}

/** Whether layer i has a sparse MoE block (HF Qwen3MoeDecoderLayer's rule; every layer in mixtral). */
export function isSparseLayer(c: ModelConfig, layer: number): boolean {
  return !!c.moe && !c.moe.denseLayers.includes(layer) && (layer + 1) % c.moe.sparseStep === 0;
}

/** How many layers are MoE layers (routes are recorded and replayed for these, in layer order). */
export function sparseLayerCount(c: ModelConfig): number {
  let n = 0;
  for (let layer = 0; layer < c.numLayers; layer++) if (isSparseLayer(c, layer)) n++;
  return n;
}

/** Validate a parsed config.json; errors name the file and the field. */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  const parsed = hfConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RingrlError(
      `${file}: field '${issue.path.join('.') || '(root)'}' ${issue.message.replace(/^Invalid input: /, '')}`,
    );
  }
  const c = parsed.data;
  if (!(modelTypes as readonly string[]).includes(c.model_type)) {
    throw new RingrlError(`${file}: field 'model_type' is '${c.model_type}'; expected one of ${modelTypes.join(', ')}`);
  }
  const ropeScaling = parseRopeScaling(c.rope_scaling, c.max_position_embeddings, file);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new RingrlError(
      `${file}: field 'num_key_value_heads' (${numKvHeads}) must divide num_attention_heads (${c.num_attention_heads})`,
    );
  }
  // HF's Qwen3Config defaults head_dim to 128; the others derive it from hidden_size / heads.
  const qwen3 = c.model_type === 'qwen3' || c.model_type === 'qwen3_moe';
  const headDim = c.head_dim ?? (qwen3 ? 128 : c.hidden_size / c.num_attention_heads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RingrlError(
      `${file}: head dim ${headDim} (hidden_size / num_attention_heads, or head_dim) must be an even integer`,
    );
  }
  const modelType = c.model_type as ModelType;
  let moe: ModelConfig['moe'];
  if (modelType === 'mixtral' || modelType === 'qwen3_moe') {
    const mixtral = modelType === 'mixtral';
    const expertsField = mixtral ? 'num_local_experts' : 'num_experts';
    const numExperts = mixtral ? c.num_local_experts : c.num_experts;
    if (!numExperts || !c.num_experts_per_tok)
      throw new RingrlError(
        `${file}: field '${expertsField}' and 'num_experts_per_tok' are required for model_type ${modelType}`,
      );
    if (c.num_experts_per_tok > numExperts)
      throw new RingrlError(
        `${file}: field 'num_experts_per_tok' (${c.num_experts_per_tok}) exceeds ${expertsField} (${numExperts})`,
      );
    const badLayer = c.mlp_only_layers.find((l) => l >= c.num_hidden_layers);
    if (badLayer !== undefined)
      throw new RingrlError(
        `${file}: field 'mlp_only_layers' names layer ${badLayer}; expected layers below num_hidden_layers (${c.num_hidden_layers})`,
      );
    moe = {
      numExperts,
      topK: c.num_experts_per_tok,
      auxLossCoef: c.router_aux_loss_coef,
      normTopkProb: mixtral || (c.norm_topk_prob ?? false), // HF Qwen3MoeConfig defaults norm_topk_prob to false
      expertSize: mixtral ? c.intermediate_size : (c.moe_intermediate_size ?? 768), // Qwen3MoeConfig's default
      sparseStep: mixtral ? 1 : c.decoder_sparse_step,
      denseLayers: mixtral ? [] : c.mlp_only_layers,
    };
  }
  return {
    modelType,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_theta,
    maxPositions: c.max_position_embeddings,
    tieEmbeddings: c.tie_word_embeddings,
    qkvBias: modelType === 'qwen2' || c.attention_bias,
    oBias: modelType !== 'qwen2' && c.attention_bias,
    qkNorm: qwen3,
    ...(ropeScaling ? { ropeScaling } : {}),
    moe,
    hf: raw as Record<string, unknown>,
  };
}

/** HF rope_scaling: absent, null or type 'default' is plain RoPE; linear, dynamic and llama3 as transformers defines them. */
function parseRopeScaling(
  raw: Record<string, unknown> | null | undefined,
  maxPositions: number,
  file: string,
): RopeScaling | undefined {
  if (!raw) return undefined;
  const type = raw.rope_type ?? raw.type;
  if (type === 'default') return undefined;
  if (!(ropeScalingTypes as readonly unknown[]).includes(type)) {
    throw new RingrlError(
      `${file}: field 'rope_scaling.rope_type' is ${JSON.stringify(type)}; expected one of default, ${ropeScalingTypes.join(', ')}`,
    );
  }
  const number = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new RingrlError(
        `${file}: field 'rope_scaling.${key}' is ${JSON.stringify(raw[key])}; expected a positive number for rope_type ${type}`,
      );
    return v;
  };
  const factor = number('factor');
  if (type !== 'llama3' && factor < 1)
    throw new RingrlError(`${file}: field 'rope_scaling.factor' is ${factor}; expected >= 1`);
  if (type === 'llama3') {
    const low = number('low_freq_factor'),
      high = number('high_freq_factor');
    if (high <= low)
      throw new RingrlError(
        `${file}: field 'rope_scaling.high_freq_factor' (${high}) must exceed low_freq_factor (${low})`,
      );
    return {
      type,
      factor,
      originalMaxPositions: number('original_max_position_embeddings'),
      lowFreqFactor: low,
      highFreqFactor: high,
    };
  }
  // dynamic scales beyond max_position_embeddings (transformers' _compute_dynamic_ntk_parameters); linear ignores it
  return {
    type: type as RopeScaling['type'],
    factor,
    originalMaxPositions: maxPositions,
    lowFreqFactor: 1,
    highFreqFactor: 1,
  };
}

export function readModelConfig(path: string): ModelConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RingrlError(
      `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected a Hugging Face config.json`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new RingrlError(`${path}: malformed JSON (${(error as Error).message})`);
  }
  return parseModelConfig(raw, path);
}

/**
 * The HF config.json for a model config: the source file's own fields verbatim when the config was
 * read from one (so every key HF, vLLM and SGLang read survives), else generated (presets).
 */
export function toHfConfig(c: ModelConfig, torchDtype = 'float32'): Record<string, unknown> {
  if (c.hf) return c.hf;
  const archs: Record<ModelType, string> = {
    llama: 'LlamaForCausalLM',
    qwen2: 'Qwen2ForCausalLM',
    qwen3: 'Qwen3ForCausalLM',
    mixtral: 'MixtralForCausalLM',
    qwen3_moe: 'Qwen3MoeForCausalLM',
  };
  const moe =
    c.moe &&
    (c.modelType === 'mixtral'
      ? {
          num_local_experts: c.moe.numExperts,
          num_experts_per_tok: c.moe.topK,
          router_aux_loss_coef: c.moe.auxLossCoef,
        }
      : {
          num_experts: c.moe.numExperts,
          num_experts_per_tok: c.moe.topK,
          router_aux_loss_coef: c.moe.auxLossCoef,
          norm_topk_prob: c.moe.normTopkProb,
          moe_intermediate_size: c.moe.expertSize,
          decoder_sparse_step: c.moe.sparseStep,
          mlp_only_layers: c.moe.denseLayers,
        });
  const rs = c.ropeScaling;
  return {
    architectures: [archs[c.modelType]],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    ...(rs
      ? {
          rope_scaling: {
            rope_type: rs.type,
            factor: rs.factor,
            original_max_position_embeddings: rs.originalMaxPositions,
            ...(rs.type === 'llama3' ? { low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor } : {}),
          },
        }
      : {}),
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: c.modelType === 'qwen2' ? false : c.oBias,
    ...moe,
    torch_dtype: torchDtype,
  };
}

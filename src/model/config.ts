// Model configuration: the Hugging Face config.json fields ringrl reads, validated, and the
// normalised form the model code uses. Unknown HF keys are kept (real configs carry many).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RingrlError } from '../errors.ts';

export const modelTypes = ['llama', 'qwen2', 'qwen3', 'mixtral'] as const;
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
  num_local_experts: positiveInt.optional(),
  num_experts_per_tok: positiveInt.optional(),
  router_aux_loss_coef: z.number().nonnegative().default(0.02),
  rope_scaling: z.unknown().optional(),
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
  qkNorm: boolean; // qwen3
  moe?: { numExperts: number; topK: number; auxLossCoef: number };
}

/** Validate a parsed config.json; errors name the file and the field. */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  const parsed = hfConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RingrlError(`${file}: field '${issue.path.join('.') || '(root)'}' ${issue.message.replace(/^Invalid input: /, '')}`);
  }
  const c = parsed.data;
  if (!(modelTypes as readonly string[]).includes(c.model_type)) {
    throw new RingrlError(`${file}: field 'model_type' is '${c.model_type}'; expected one of ${modelTypes.join(', ')}`);
  }
  if (c.rope_scaling) throw new RingrlError(`${file}: field 'rope_scaling' is not supported yet; expected it absent or null`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new RingrlError(`${file}: field 'num_key_value_heads' (${numKvHeads}) must divide num_attention_heads (${c.num_attention_heads})`);
  }
  // HF's Qwen3Config defaults head_dim to 128; the others derive it from hidden_size / heads.
  const headDim = c.head_dim ?? (c.model_type === 'qwen3' ? 128 : c.hidden_size / c.num_attention_heads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RingrlError(`${file}: head dim ${headDim} (hidden_size / num_attention_heads, or head_dim) must be an even integer`);
  }
  const modelType = c.model_type as ModelType;
  let moe: ModelConfig['moe'];
  if (modelType === 'mixtral') {
    if (!c.num_local_experts || !c.num_experts_per_tok) throw new RingrlError(`${file}: field 'num_local_experts' and 'num_experts_per_tok' are required for model_type mixtral`);
    if (c.num_experts_per_tok > c.num_local_experts) throw new RingrlError(`${file}: field 'num_experts_per_tok' (${c.num_experts_per_tok}) exceeds num_local_experts (${c.num_local_experts})`);
    moe = { numExperts: c.num_local_experts, topK: c.num_experts_per_tok, auxLossCoef: c.router_aux_loss_coef };
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
    qkNorm: modelType === 'qwen3',
    moe,
  };
}

export function readModelConfig(path: string): ModelConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RingrlError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected a Hugging Face config.json`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new RingrlError(`${path}: malformed JSON (${(error as Error).message})`);
  }
  return parseModelConfig(raw, path);
}

/** The HF config.json for a model config (what presets write). */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const archs: Record<ModelType, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', mixtral: 'MixtralForCausalLM' };
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
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: c.modelType === 'qwen2' ? false : c.oBias,
    ...(c.moe ? { num_local_experts: c.moe.numExperts, num_experts_per_tok: c.moe.topK, router_aux_loss_coef: c.moe.auxLossCoef } : {}),
    torch_dtype: 'float32',
  };
}

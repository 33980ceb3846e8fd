// The ringrl library: `import { ... } from 'ringrl'`. Grouped as the rooms of src/ are, lowest
// layer first; docs/api.md is generated from this file (`npm run docs`) and lists every export
// with its one-line description. Nothing here is CLI-internal.

// ── errors
export { RingrlError } from './errors.ts';

// ── compute: symbolic graphs, autodiff, ONNX export, onnxruntime sessions
export * as graph from './graph/index.ts';
export {
  CompiledGraph,
  compileCached,
  configureRuntime,
  type HostTensor,
  type RuntimeOptions,
} from './runtime/index.ts';

// ── models: HF model dirs in and out, presets, the transformer
export { type ModelConfig, parseModelConfig, readModelConfig, toHfConfig } from './model/config.ts';
export { loadModelDir, saveModelDir, type LoadedModel, type Weights } from './model/checkpoint.ts';
export { readSafetensors, writeSafetensors, type NamedArray } from './model/safetensors.ts';
export { forward, parameterShapes } from './model/llama.ts';
export { presets, presetConfig, initWeights } from './model/presets.ts';

// ── tokenizers
export {
  loadTokenizer,
  writeTokenizer,
  copyTokenizerFiles,
  CharTokenizer,
  type TextTokenizer,
  type ChatMessage,
} from './tokenizer/index.ts';

// ── rollout engines
export * from './engine/types.ts';
export { LocalEngine, createLocalEngine, type LocalEngineOptions } from './engine/local.ts';
export {
  SimulatedEngine,
  type SimulatedEngineOptions,
  type StepCostModel,
  type LengthModel,
} from './engine/simulated.ts';
export { precisions, quantizeWeights, type Precision } from './engine/precision.ts';
export { HttpEngine, EnginesLost, type HttpEngineOptions, type FaultOptions } from './engine/http.ts';
export { WeightPublisher, type PublisherOptions, type WeightManifest } from './engine/weights.ts';
export { SnapshotLoader, loadSnapshot, type LoadedSnapshot } from './engine/snapshot.ts';

// ── data: datasets, built-in reasoning tasks, example streams
export * as data from './data/index.ts';

// ── rewards: math equivalence, the code sandbox, the reward service and its client
export * as reward from './reward/index.ts';
export { verifyMath, type MathVerdict } from './reward/math/verify.ts';
export { getVerifier, verifierNames, type Verifier } from './reward/verifiers.ts';

// ── the C3PO++ scheduler and its baselines
export { RolloutScheduler, rolloutConfigProblems, validateRolloutConfig } from './rollout/scheduler.ts';
export type * from './rollout/types.ts';

// ── algorithms: advantages, policy losses and mismatch corrections, batch shaping, one policy step
export * from './algo/index.ts';

// ── training: the policy (log-probs, gradients), the optimizer, SFT loss
export { Policy, packSequences, unpackRows, type LossSpec, type PackedBatch } from './train/policy.ts';
export { maskedCrossEntropy } from './train/sft.ts';
export {
  AdamW,
  GradAccumulator,
  adamWDefaults,
  learningRate,
  type AdamWConfig,
  type AdamWOptions,
  type OptimizerConfig,
  type ScheduleConfig,
} from './train/optimizer.ts';

// ── evaluation
export { evaluate, formatEvalTable, type EvalResult, type EvalOptions, type EvalSample } from './eval/evaluate.ts';

// ── run directories, metrics, reports
export { RunDir, runPath, writeReport, metricCatalog, type MetricsRow, type SampleRow } from './report/index.ts';

// ── config: YAML + --set, validated; the adapter to runtime options
export {
  loadConfig,
  formatConfig,
  readConfigFile,
  configSchema,
  engineOptions,
  optimizerOptions,
  rolloutOptions,
  type Config,
  type ConfigInput,
} from './config/index.ts';

// ── the runs: SFT, RL (controller + scheduler + engine + trainer)
export { runSft, type SftRun, type SftOptions, type SftEvent } from './system/sft-run.ts';
export { runRl, type RlRun, type RlEvent } from './system/rl-run.ts';
export { RlController, type RewardFn, type RlStepConfig, type RlStepResult } from './system/controller.ts';

// The ringrl library entry: `import { ... } from 'ringrl'`.
// Each area adds its public API here, one line per module.
export * as graph from './graph/index.ts';
export { CompiledGraph, compileCached, configureRuntime, type HostTensor, type RuntimeOptions } from './runtime/index.ts';
export { type ModelConfig, parseModelConfig, readModelConfig } from './model/config.ts';
export { loadModelDir, saveModelDir, type Weights } from './model/checkpoint.ts';
export { forward, parameterShapes } from './model/llama.ts';
export { presets, presetConfig, initWeights } from './model/presets.ts';
export { Policy, packSequences, unpackRows, type LossSpec, type PackedBatch } from './train/policy.ts';
export { maskedCrossEntropy } from './train/sft.ts';
export { AdamW, GradAccumulator, adamWDefaults, type AdamWConfig } from './train/optimizer.ts';
export * from './engine/types.ts';
export * from './algo/index.ts';
export { RingrlError } from './errors.ts';
export { loadConfig, configFromFlags, configFlags, formatConfig, readConfigFile, configSchema, type Config, type ConfigInput } from './config/index.ts';
export { RunDir, runPath, writeReport, metricCatalog, type MetricsRow, type SampleRow } from './report/index.ts';
export { createUi, uiFlags, type Ui, type Progress } from './cli/ui.ts';
export * as data from './data/index.ts';
export { loadTokenizer, writeTokenizer, CharTokenizer, type TextTokenizer, type ChatMessage } from './tokenizer/index.ts';
export { evaluate, formatEvalTable, type EvalResult, type EvalOptions, type EvalSample } from './eval/evaluate.ts';
export { getVerifier, verifierNames, type Verifier } from './reward/verifiers.ts';
export { runSft, learningRate, type SftOptions, type SftEvent } from './train/sft-loop.ts';

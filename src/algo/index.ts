// ringrl's RL algorithms: advantages, the policy loss (host reference and training graph),
// mismatch corrections, aggregations, batch shaping, and one policy-gradient step.
export {
  parsePolicyLossConfig,
  policyLossSchema,
  correctionNames,
  aggregationNames,
  type PolicyLossConfig,
  type PolicyLossConfigInput,
  type CorrectionName,
  type AggregationName,
} from './config.ts';
export {
  computeAdvantages,
  broadcastToTokens,
  advantageEstimators,
  advantageSchema,
  type AdvantageConfig,
  type AdvantageConfigInput,
  type AdvantageInput,
  type AdvantageResult,
} from './advantages.ts';
export { corrections, type Correction } from './corrections.ts';
export { aggregations, aggregationWeights, type Aggregation } from './aggregation.ts';
export { klEstimators } from './loss/kl.ts';
export { computePolicyLoss } from './loss/reference.ts';
export { policyLossSpec, policyLossTokenInputs, buildPolicyLoss } from './loss/graph.ts';
export { combineMetrics, finishPolicyMetrics } from './loss/metrics.ts';
export type { PolicyLossBatch, PolicyLossResult } from './loss/types.ts';
export {
  shapeBatch,
  overlongPenalty,
  capResponseLength,
  DynamicSampler,
  filterInformativeGroups,
  isInformative,
  parseShapingConfig,
  shapingSchema,
  type ShapingConfig,
  type ShapingConfigInput,
  type ShapedBatch,
} from './shaping/index.ts';
export type { RlSample, RlFinishReason } from './sample.ts';
export { policyGradientStep, responseLogprobs, type PolicyStepSample, type PolicyStepOptions } from './step.ts';
export {
  MismatchGuard,
  mismatchGuardSchema,
  parseMismatchGuardConfig,
  type MismatchGuardConfig,
  type GuardVerdict,
} from './mismatch-guard.ts';

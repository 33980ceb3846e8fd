// Public surface of the reward room: math verifier, code sandbox, code tests, service, client.
export { verifyMath, answersEquivalent, type MathVerdict, type MathVerifyOptions } from './math/verify.ts';
export { extractAnswer } from './math/extract.ts';
export { normalizeAnswer } from './math/normalize.ts';
export { ProcessSandbox, type SandboxOptions } from './sandbox/pool.ts';
export { detectIsolation } from './sandbox/isolation.ts';
export {
  DEFAULT_LIMITS,
  MAX_LIMITS,
  type CodeSandbox,
  type RunSpec,
  type RunResult,
  type RunStatus,
  type Limits,
  type Language,
  type IsolationLevel,
} from './sandbox/types.ts';
export { runCodeTests, type CodeTests, type CodeVerdict } from './code.ts';
export { buildService, type ServiceOptions } from './service/server.ts';
export { createRewardClient, rewardClientConfigSchema, type RewardClient, type RewardClientConfig } from './client.ts';

// The one place a resolved config (snake_case, as written in YAML) becomes the options objects
// the runtime classes take (camelCase): the optimizer and its schedule, the rollout scheduler,
// the local engine. The sft and rl runs, the CLI and the benches all go through here.
import type { FaultOptions } from '../engine/http.ts';
import type { LocalEngineOptions } from '../engine/local.ts';
import type { RolloutConfig } from '../rollout/types.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import type { OptimizerConfig } from '../train/optimizer.ts';
import type { Config } from './schema.ts';

/** An `optimizer` section (sft.optimizer, rl.optimizer) as AdamW + schedule options. */
export function optimizerOptions(o: Config['sft']['optimizer']): OptimizerConfig {
  return {
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weight_decay,
    maxGradNorm: o.max_grad_norm,
    warmupSteps: o.warmup_steps,
    schedule: o.schedule,
    minLrRatio: o.min_lr_ratio,
  };
}

/** The rollout section as the scheduler's config; `stopTokens` end a response (the tokenizer's EOS ids). */
export function rolloutOptions(config: Config, stopTokens: readonly number[]): RolloutConfig {
  const r = config.rollout;
  return {
    mode: r.mode,
    tokenBudget: r.token_budget,
    poolCapacity: r.pool_capacity,
    retention: r.retention,
    staleness: r.staleness,
    groupSize: r.group_size,
    sampling: {
      temperature: r.temperature,
      topP: r.top_p,
      topK: r.top_k,
      maxNewTokens: r.max_new_tokens,
      stopTokens: [...stopTokens],
    },
  };
}

/** The local rollout engine's options from the rollout and run sections. */
export function engineOptions(config: Config, runtime?: RuntimeOptions): LocalEngineOptions {
  const r = config.rollout;
  return {
    capacity: r.pool_capacity,
    precision: r.precision,
    keepPausedCache: r.paused_kv === 'keep',
    ...(r.kv_segments ? { kvSegments: r.kv_segments } : {}),
    seed: config.run.seed,
    ...(runtime ? { runtime } : {}),
  };
}

/** rollout.faults as HttpEngine's fault options (milliseconds). */
export function faultOptions(config: Config): FaultOptions {
  const f = config.rollout.faults;
  return {
    timeoutMs: f.timeout_s * 1000,
    breakerFailures: f.breaker_failures,
    breakerCooldownMs: f.breaker_cooldown_s * 1000,
    healthIntervalMs: f.health_interval_s * 1000,
    giveUpMs: f.give_up_s * 1000,
    maxRestarts: f.max_restarts,
  };
}

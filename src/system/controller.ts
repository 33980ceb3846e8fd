// The single controller: one RL step is
//   scheduler (C3PO++ rollouts) → rewards → advantages → trainer (policy loss, AdamW)
//   → weight publish to the engine (version v+1) → the scheduler resumes partial rollouts under it.
// Placement is colocated: the phases alternate on the same cores, each timed (`time/*_s`).
// The controller moves handles and small records; tensors stay with the engine and the trainer.
import type { AdvantageConfig, PolicyLossConfig, ShapingConfig } from '../algo/index.ts';
import { type PolicyStepSample, computeAdvantages, policyGradientStep, responseLogprobs, shapeBatch } from '../algo/index.ts';
import { shuffled } from '../data/shuffle.ts';
import { mean } from '../util/stats.ts';
import type { RolloutEngine } from '../engine/types.ts';
import type { RolloutScheduler } from '../rollout/scheduler.ts';
import type { Group, RolloutBatch, Trajectory } from '../rollout/types.ts';
import type { AdamW } from '../train/optimizer.ts';
import type { Policy } from '../train/policy.ts';

export type RewardFn = (trajectory: Trajectory) => { reward: number; breakdown?: Record<string, number> } | Promise<{ reward: number; breakdown?: Record<string, number> }>;

export interface RlStepConfig {
  loss: PolicyLossConfig;
  advantage: AdvantageConfig;
  shaping: ShapingConfig;
  /** Sampling temperature; the trainer recomputes log-probs at the same temperature. */
  temperature: number;
  /** Sequences per forward/backward pass in the trainer. */
  microBatchSize: number;
  /** Optimizer updates per rollout batch: the batch is split into this many mini-batches. */
  miniBatches: number;
  /** Passes over the rollout batch (each pass reshuffles it into mini-batches). */
  epochs: number;
  /** Learning rate for step `step` (schedules); default: the optimizer's. */
  lr?: (step: number) => number;
  /** The run's seed (run.seed): mini-batch reshuffles differ between seeds. Default 0. */
  seed?: number;
}

export interface RlStepResult {
  step: number;
  metrics: Record<string, number>;
  /** Every trajectory that ended this step (trained on or not), with rewards. */
  trajectories: Trajectory[];
}

export class RlController {
  /** The policy version the engine decodes with (= optimizer steps taken). */
  version = 0;

  constructor(
    readonly policy: Policy,
    readonly optimizer: AdamW,
    readonly engine: RolloutEngine,
    readonly scheduler: RolloutScheduler,
    readonly reward: RewardFn,
    readonly config: RlStepConfig,
  ) {}

  /** Continue from a checkpoint taken after `version` updates (weights already loaded). */
  async resumeAt(version: number): Promise<void> {
    this.version = version;
    await this.engine.updateWeights(this.policy.weights, version);
  }

  async step(): Promise<RlStepResult> {
    const timer = phaseTimer();
    const batch = await this.collectTrainable();
    timer.lap('time/rollout_s');

    const trajectories = [...batch.groups, ...batch.discarded].flatMap((g) => g.members);
    for (const t of trajectories) {
      if (t.finishReason === 'dropped') continue;
      const { reward, breakdown } = await this.reward(t);
      t.reward = reward;
      t.rewardBreakdown = breakdown;
    }
    timer.lap('time/reward_s');

    const metrics: Record<string, number> = { ...batch.stats };
    const trained = survivors(batch.groups);
    if (trained.length > 0) Object.assign(metrics, await this.train(trained, this.version));
    timer.lap('time/train_s');

    // Publish: the engine gets v+1 (it is paused or drained between iterations, never mid-step).
    if (trained.length > 0) {
      this.version++;
      await this.engine.updateWeights(this.policy.weights, this.version);
      this.scheduler.policyUpdated(this.version);
    }
    timer.lap('time/sync_s');

    const rewarded = trajectories.filter((t) => t.finishReason !== 'dropped');
    const lengths = rewarded.map((t) => t.response.length);
    Object.assign(metrics, timer.laps, {
      'time/step_s': timer.total(),
      'reward/mean': mean(rewarded.map((t) => t.reward ?? 0)),
      'response_length/mean': mean(lengths),
      'response_length/max': lengths.length ? Math.max(...lengths) : 0,
      'response_length/truncated_frac': mean(rewarded.map((t) => (t.finishReason === 'length' ? 1 : 0))),
      'train/samples': trained.length,
      'policy/version': this.version,
    });
    return { step: this.version, metrics, trajectories };
  }

  /**
   * Collect until some group can be trained on. A rollout phase can end with no group complete
   * (the budget was reached while every group still had a member running); C3PO++ then simply
   * keeps rolling out under the same policy rather than taking an empty update.
   */
  private async collectTrainable(maxRounds = 100): Promise<RolloutBatch> {
    let merged = await this.scheduler.collect();
    for (let round = 1; merged.groups.length === 0 && round < maxRounds; round++) {
      const next = await this.scheduler.collect();
      const stats = { ...next.stats };
      for (const key of additiveStats) stats[key] += merged.stats[key];
      stats['rollout/tokens_per_s'] = stats['time/rollout_s'] > 0 ? stats['rollout/generated_tokens'] / stats['time/rollout_s'] : 0;
      merged = { groups: next.groups, discarded: [...merged.discarded, ...next.discarded], stats };
    }
    return merged;
  }

  private async train(samples: Trajectory[], step: number): Promise<Record<string, number>> {
    const { loss, advantage, shaping, temperature, microBatchSize, lr } = this.config;
    const shaped = shapeBatch(samples.map((t) => ({
      groupId: t.groupId, prompt: t.prompt, response: t.response, rolloutLogprobs: t.policyLogprobs,
      reward: t.reward ?? 0, finishReason: t.finishReason,
    })), shaping);
    const adv = computeAdvantages({ rewards: shaped.samples.map((s) => s.reward), groupIds: shaped.samples.map((s) => s.groupId), responseMask: shaped.responseMasks }, advantage);
    const rows: PolicyStepSample[] = shaped.samples.map((s, i) => ({
      prompt: s.prompt, response: s.response, rolloutLogprobs: s.rolloutLogprobs,
      advantages: adv.tokenAdvantages[i]!, responseMask: shaped.responseMasks[i]!,
    }));
    // PPO-style reuse of one rollout batch: `epochs` passes of `miniBatches` optimizer updates,
    // all against θ_old = the weights that started the step (recomputed once, before any update),
    // so the clipped ratio and IcePop's k keep their meaning across updates.
    const { epochs, miniBatches } = this.config;
    if (!loss.bypass && (epochs > 1 || miniBatches > 1)) {
      const old = await responseLogprobs(this.policy, rows, { temperature, microBatchSize });
      rows.forEach((r, i) => (r.oldLogprobs = old[i]));
    }
    const size = Math.ceil(rows.length / miniBatches);
    const updates: Record<string, number>[] = [];
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = epochs > 1 ? minibatchOrder(rows.length, this.config.seed ?? 0, step, epoch) : rows.map((_, i) => i);
      for (let at = 0; at < rows.length; at += size) {
        const result = await policyGradientStep(this.policy, this.optimizer, order.slice(at, at + size).map((i) => rows[i]!), loss, { temperature, microBatchSize, lr: lr?.(step) });
        updates.push({ ...result.metrics, 'loss/policy': result.loss });
      }
    }
    return { ...shaped.metrics, ...adv.metrics, ...combineUpdates(updates) };
  }
}

/** The order in which epoch `epoch` of step `step` visits a rollout batch of `n` rows (seeded). */
export function minibatchOrder(n: number, seed: number, step: number, epoch: number): number[] {
  return shuffled(Array.from({ length: n }, (_, i) => i), seed * 1_000_003 + step * 7919 + epoch);
}

/** One step's metrics over its optimizer updates: the mean, or the max for `*_max` metrics. */
function combineUpdates(updates: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(updates[0] ?? {})) {
    const values = updates.map((u) => u[key]!);
    out[key] = key.endsWith('_max') ? Math.max(...values) : mean(values);
  }
  return out;
}

const additiveStats = ['rollout/finished_tokens', 'rollout/generated_tokens', 'rollout/decode_steps', 'rollout/prefill_tokens', 'time/rollout_s', 'c3po/dropped', 'c3po/groups_discarded'] as const;

/** The members of trainable groups that finished (dropped members are not trained on). */
function survivors(groups: Group[]): Trajectory[] {
  return groups.flatMap((g) => g.members.filter((m) => m.finishReason !== 'dropped'));
}

function phaseTimer() {
  const start = performance.now();
  let last = start;
  const laps: Record<string, number> = {};
  return {
    laps,
    lap(name: string) {
      const now = performance.now();
      laps[name] = (now - last) / 1000;
      last = now;
    },
    total: () => (performance.now() - start) / 1000,
  };
}

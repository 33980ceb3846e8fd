// The single controller: one RL step is
//   scheduler (C3PO++ rollouts) → rewards → advantages → trainer (policy loss, AdamW)
//   → weight publish to the engine (version v+1) → the scheduler resumes partial rollouts under it.
// Rewards are not a phase of their own: each trajectory's score starts the moment it finishes and
// runs concurrently (the scorer bounds how many at once) while decoding goes on; the step waits
// only for scores still running when the rollout ends (`time/reward_s`). A trajectory that cannot
// be scored is left out of training and counted (`reward/unscored`), never taken as a 0.
// An update whose loss or gradient is not finite is skipped and said so (`train/skipped`).
// Placement (`placement`): colocated, the phases alternate on the same cores; disaggregated, the
// engines keep decoding under version v while rewards are awaited and the trainer trains v → v+1
// (RolloutScheduler.overlap), and are paused for the publication at the step boundary. Each phase is
// timed (`time/*_s`) with its peak resident memory (`memory/*_peak_rss_mb`); `time/overlap_s` is how
// long the engines decoded during the step's reward and train phases, `system/trainer_busy_frac`
// the trainer's share of the step, `system/engine<i>_busy_frac` each engine's (as it counts it).
// The controller moves handles and small records; tensors stay with the engine and the trainer.
import type { AdvantageConfig, PolicyLossConfig, ShapingConfig } from '../algo/index.ts';
import {
  type PolicyStepSample,
  computeAdvantages,
  policyGradientStep,
  responseLogprobs,
  shapeBatch,
} from '../algo/index.ts';
import { shuffled } from '../data/shuffle.ts';
import { mean } from '../util/stats.ts';
import { peakRssBytes, resetPeakRss } from '../util/memory.ts';
import type { RolloutEngine } from '../engine/types.ts';
import type { OverlapStats, RolloutScheduler } from '../rollout/scheduler.ts';
import type { Group, RolloutBatch, Trajectory } from '../rollout/types.ts';
import { type AdamW, NonFiniteUpdate } from '../train/optimizer.ts';
import type { Policy } from '../train/policy.ts';
import type { Score } from '../reward/scorer.ts';

/** Scores one trajectory; rejects only when the reward itself is broken (that ends the run). */
export type RewardFn = (trajectory: Trajectory) => Promise<Score>;

/** Where rollouts run relative to training (system.placement; docs/system.md). */
export type Placement = 'colocated' | 'disaggregated';

export interface RlStepConfig {
  /** Default colocated. */
  placement?: Placement;
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
  /** Why updates were skipped this step (non-finite loss or gradient); empty when none was. */
  skipped: string[];
}

/** A score as it settled: a rejection is kept as data until the step that needs it awaits it. */
type Settled = { score: Score; startedAt: number; endedAt: number } | { error: unknown };

export class RlController {
  /** The policy version the engine decodes with (= RL steps taken; a step whose update was skipped publishes the same weights). */
  version = 0;

  readonly policy: Policy;
  readonly optimizer: AdamW;
  readonly engine: RolloutEngine;
  readonly scheduler: RolloutScheduler;
  readonly reward: RewardFn;
  readonly config: RlStepConfig;
  /** Scores started as trajectories finished, by trajectory key; a finished member waits here for its group. */
  private readonly scores = new Map<string, Promise<Settled>>();

  constructor(
    policy: Policy,
    optimizer: AdamW,
    engine: RolloutEngine,
    scheduler: RolloutScheduler,
    reward: RewardFn,
    config: RlStepConfig,
  ) {
    this.policy = policy;
    this.optimizer = optimizer;
    this.engine = engine;
    this.scheduler = scheduler;
    this.reward = reward;
    this.config = config;
    scheduler.onFinished = (t) => this.startScore(t);
  }

  /** Forget scores in flight (after the scheduler was restored from a checkpoint). */
  forgetScores(): void {
    this.scores.clear();
  }

  private startScore(t: Trajectory): void {
    const key = trajectoryKey(t);
    if (this.scores.has(key)) return;
    const startedAt = performance.now();
    this.scores.set(
      key,
      this.reward(t).then(
        (score) => ({ score, startedAt, endedAt: performance.now() }),
        (error: unknown) => ({ error }),
      ),
    );
  }

  /** Continue from a checkpoint taken after `version` updates (weights already loaded). */
  async resumeAt(version: number): Promise<void> {
    this.version = version;
    await this.engine.updateWeights(this.policy.weights, version);
  }

  async step(): Promise<RlStepResult> {
    const disaggregated = this.config.placement === 'disaggregated';
    const busyBefore = await this.engineBusySeconds();
    const timer = phaseTimer();
    const batch = await this.collectTrainable(disaggregated);
    const rolloutEnd = performance.now();
    timer.lap('time/rollout_s');
    // Disaggregated: the pool keeps decoding under this version until the trainer is done.
    let trainerDone!: () => void;
    const trained = new Promise<void>((done) => (trainerDone = done));
    const overlap = disaggregated ? this.scheduler.overlap(trained) : null;
    try {
      return await this.finishStep(batch, rolloutEnd, timer, overlap, trainerDone, busyBefore);
    } finally {
      trainerDone();
      await overlap?.catch(() => {}); // its failure, if any, was thrown by finishStep
    }
  }

  private async finishStep(
    batch: RolloutBatch,
    rolloutEnd: number,
    timer: ReturnType<typeof phaseTimer>,
    overlap: Promise<OverlapStats> | null,
    trainerDone: () => void,
    busyBefore: number[],
  ): Promise<RlStepResult> {
    const trajectories = [...batch.groups, ...batch.discarded].flatMap((g) => g.members);
    const rewarded = trajectories.filter((t) => t.finishReason !== 'dropped');
    const settled = await Promise.all(
      rewarded.map((t) => {
        const key = trajectoryKey(t);
        if (!this.scores.has(key)) this.startScore(t); // finished before a restart: its score was never started
        return this.scores.get(key)!;
      }),
    );
    for (const t of trajectories) this.scores.delete(trajectoryKey(t));
    const failure = settled.find((s) => 'error' in s);
    if (failure && 'error' in failure) throw failure.error;
    const timings: { startedAt: number; endedAt: number }[] = [];
    rewarded.forEach((t, i) => {
      const s = settled[i] as Extract<Settled, { score: Score }>;
      timings.push(s);
      if (s.score.status === 'scored') {
        t.reward = s.score.reward;
        t.rewardBreakdown = s.score.breakdown;
      } else t.unscored = s.score.message;
    });
    timer.lap('time/reward_s');

    const metrics: Record<string, number> = { ...batch.stats };
    const trained = trainable(batch.groups);
    const skipped: string[] = [];
    const trainStart = performance.now();
    if (trained.length > 0) Object.assign(metrics, await this.train(trained, this.version, skipped));
    const trainSeconds = (performance.now() - trainStart) / 1000;
    metrics['train/skipped'] = skipped.length;
    timer.lap('time/train_s');

    // Publish: the engine gets v+1 (it is paused or drained between iterations, never mid-step;
    // disaggregated, the pool decoding during training is paused here).
    // A step whose batch could not be trained on (every member unscored, or the update skipped)
    // still counts: the version advances with the weights unchanged.
    trainerDone();
    if (overlap !== null) {
      const o = await overlap;
      await this.scheduler.pauseForUpdate();
      Object.assign(metrics, {
        'time/overlap_s': o.seconds,
        'overlap/generated_tokens': o.generatedTokens,
        'overlap/finished_tokens': o.finishedTokens,
        'overlap/decode_steps': o.decodeSteps,
      });
    } else metrics['time/overlap_s'] = 0;
    if (batch.groups.length > 0) {
      this.version++;
      await this.engine.updateWeights(this.policy.weights, this.version);
      this.scheduler.policyUpdated(this.version);
    }
    timer.lap('time/sync_s');

    const scored = rewarded.filter((t) => t.unscored === undefined);
    const lengths = rewarded.map((t) => t.response.length);
    const stepSeconds = timer.total();
    const busyAfter = await this.engineBusySeconds();
    busyAfter.forEach((b, i) => (metrics[`system/engine${i}_busy_frac`] = (b - busyBefore[i]!) / stepSeconds));
    Object.assign(metrics, timer.laps, {
      'time/step_s': stepSeconds,
      'system/trainer_busy_frac': trainSeconds / stepSeconds,
      'system/engine_busy_frac': mean(busyAfter.map((b, i) => (b - busyBefore[i]!) / stepSeconds)),
      'reward/mean': mean(scored.map((t) => t.reward!)),
      'reward/scored': scored.length,
      'reward/unscored': rewarded.length - scored.length,
      'reward/latency_mean_s': mean(timings.map((s) => (s.endedAt - s.startedAt) / 1000)),
      'reward/overlap_frac': mean(timings.map((s) => (s.endedAt <= rolloutEnd ? 1 : 0))),
      'response_length/mean': mean(lengths),
      'response_length/max': lengths.length ? Math.max(...lengths) : 0,
      'response_length/truncated_frac': mean(rewarded.map((t) => (t.finishReason === 'length' ? 1 : 0))),
      'train/samples': trained.length,
      'policy/version': this.version,
    });
    return { step: this.version, metrics, trajectories, skipped };
  }

  /**
   * Collect until some group can be trained on. A rollout phase can end with no group complete
   * (the budget was reached while every group still had a member running); C3PO++ then simply
   * keeps rolling out under the same policy rather than taking an empty update.
   */
  private async collectTrainable(keepDecoding: boolean, maxRounds = 100): Promise<RolloutBatch> {
    let merged = await this.scheduler.collect({ keepDecoding });
    for (let round = 1; merged.groups.length === 0 && round < maxRounds; round++) {
      const next = await this.scheduler.collect({ keepDecoding });
      const stats = { ...next.stats };
      for (const key of additiveStats) stats[key] += merged.stats[key];
      stats['rollout/tokens_per_s'] =
        stats['time/rollout_s'] > 0 ? stats['rollout/generated_tokens'] / stats['time/rollout_s'] : 0;
      merged = { groups: next.groups, discarded: [...merged.discarded, ...next.discarded], stats };
    }
    return merged;
  }

  /** Each engine's decode seconds so far (an engine that cannot say counts as NaN, not as idle). */
  private async engineBusySeconds(): Promise<number[]> {
    if (!this.engine.busySecondsPerEngine) return [this.engine.stats().busySeconds];
    try {
      return await this.engine.busySecondsPerEngine();
    } catch {
      return [NaN];
    }
  }

  private async train(samples: Trajectory[], step: number, skipped: string[]): Promise<Record<string, number>> {
    const { loss, advantage, shaping, temperature, microBatchSize, lr } = this.config;
    const shaped = shapeBatch(
      samples.map((t) => ({
        groupId: t.groupId,
        prompt: t.prompt,
        response: t.response,
        rolloutLogprobs: t.policyLogprobs,
        reward: t.reward ?? 0,
        finishReason: t.finishReason,
        routes: t.routes,
      })),
      shaping,
    );
    const adv = computeAdvantages(
      {
        rewards: shaped.samples.map((s) => s.reward),
        groupIds: shaped.samples.map((s) => s.groupId),
        responseMask: shaped.responseMasks,
      },
      advantage,
    );
    const rows: PolicyStepSample[] = shaped.samples.map((s, i) => ({
      prompt: s.prompt,
      response: s.response,
      rolloutLogprobs: s.rolloutLogprobs,
      advantages: adv.tokenAdvantages[i]!,
      responseMask: shaped.responseMasks[i]!,
      routes: s.routes,
    }));
    const replayRoutes = loss.routing_replay === 'rollout';
    // PPO-style reuse of one rollout batch: `epochs` passes of `miniBatches` optimizer updates,
    // all against θ_old = the weights that started the step (recomputed once, before any update),
    // so the clipped ratio and IcePop's k keep their meaning across updates.
    const { epochs, miniBatches } = this.config;
    if (!loss.bypass && (epochs > 1 || miniBatches > 1)) {
      const old = await responseLogprobs(this.policy, rows, { temperature, microBatchSize, replayRoutes });
      rows.forEach((r, i) => (r.oldLogprobs = old[i]));
    }
    const size = Math.ceil(rows.length / miniBatches);
    const updates: Record<string, number>[] = [];
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order =
        epochs > 1 ? minibatchOrder(rows.length, this.config.seed ?? 0, step, epoch) : rows.map((_, i) => i);
      for (let at = 0; at < rows.length; at += size) {
        try {
          const result = await policyGradientStep(
            this.policy,
            this.optimizer,
            order.slice(at, at + size).map((i) => rows[i]!),
            loss,
            { temperature, microBatchSize, lr: lr?.(step), replayRoutes },
          );
          updates.push({ ...result.metrics, 'loss/policy': result.loss });
        } catch (e) {
          if (!(e instanceof NonFiniteUpdate)) throw e;
          skipped.push(e.message);
        }
      }
    }
    return { ...shaped.metrics, ...adv.metrics, ...combineUpdates(updates) };
  }
}

/** The order in which epoch `epoch` of step `step` visits a rollout batch of `n` rows (seeded). */
export function minibatchOrder(n: number, seed: number, step: number, epoch: number): number[] {
  return shuffled(
    Array.from({ length: n }, (_, i) => i),
    seed * 1_000_003 + step * 7919 + epoch,
  );
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

const additiveStats = [
  'rollout/finished_tokens',
  'rollout/generated_tokens',
  'rollout/decode_steps',
  'rollout/prefill_tokens',
  'rollout/engine_s',
  'rollout/prefill_s',
  'rollout/prefill_padded_tokens',
  'time/rollout_s',
  'c3po/dropped',
  'c3po/groups_discarded',
] as const;

/**
 * The members trained on: finished and scored. Dropped and unscored members are left out, and
 * a group left with fewer than 2 has nothing to compare within and is not trained on.
 */
function trainable(groups: Group[]): Trajectory[] {
  return groups.flatMap((g) => {
    const members = g.members.filter((m) => m.finishReason !== 'dropped' && m.unscored === undefined);
    return members.length >= Math.min(2, g.members.length) ? members : [];
  });
}

function trajectoryKey(t: Trajectory): string {
  return `${t.groupId}/${t.sampleIndex}`;
}

/** Each phase's seconds (`time/<phase>_s`) and peak resident memory (`memory/<phase>_peak_rss_mb`). */
function phaseTimer() {
  const start = performance.now();
  let last = start;
  const laps: Record<string, number> = {};
  resetPeakRss();
  return {
    laps,
    lap(name: string) {
      const now = performance.now();
      laps[name] = (now - last) / 1000;
      laps[name.replace(/^time\/(.*)_s$/, 'memory/$1_peak_rss_mb')] = peakRssBytes() / 2 ** 20;
      resetPeakRss();
      last = now;
    },
    total: () => (performance.now() - start) / 1000,
  };
}

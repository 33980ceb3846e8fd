// A whole RL run from a resolved config: model + tokenizer, prompts and the reward scorer, the
// rollout engine and C3PO++ scheduler, the controller, held-out evals, the run directory and
// crash-safe checkpoints that hold everything needed to continue exactly (weights, optimizer
// moments, the scheduler pool with its partial rollouts, the data cursor). Randomness is
// counter-based per sequence (engine) and per stream position (data), so no RNG state needs
// saving beyond those. When rl.rollback_after steps in a row had a non-finite update skipped,
// the run continues from its last checkpoint exactly as `--resume` would (the same code path).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { type Example, type ExampleSource, encodePrompt } from '../data/index.ts';
import { LocalEngine } from '../engine/local.ts';
import { RingrlError } from '../errors.ts';
import { type EvalResult, evalMetrics, evaluate } from '../eval/evaluate.ts';
import type { Verifier } from '../reward/verifiers.ts';
import { type Scorer, createScorer } from '../reward/scorer.ts';
import { type RunDir, readCheckpointJson } from '../report/index.ts';
import { RolloutScheduler } from '../rollout/scheduler.ts';
import type { PromptSource, RolloutConfig, SchedulerState } from '../rollout/types.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import { type TextTokenizer, copyTokenizerFiles, loadTokenizer } from '../tokenizer/index.ts';
import { AdamW } from '../train/optimizer.ts';
import { Policy } from '../train/policy.ts';
import { learningRate } from '../train/sft-loop.ts';
import { RlController, type RlStepResult } from './controller.ts';

export type RlEvent =
  | { type: 'start'; step: number; resumedFrom: string | null; parameters: number }
  | { type: 'eval'; step: number; result: EvalResult }
  | { type: 'step'; step: number; steps: number; metrics: Record<string, number> }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'skipped'; step: number; reasons: string[] }
  | { type: 'rollback'; step: number; to: number; reason: string };

export interface RlRun {
  run: RunDir;
  config: Config;
  /** Model dir to start from (ignored when resuming). */
  modelDir: string;
  resume: boolean;
  source: ExampleSource;
  evalExamples: Example[];
  /** Judges held-out samples (evals). */
  verify: Verifier;
  /** Scores rollouts; default: built from config.reward (and closed when the run ends). */
  scorer?: Scorer;
  runtime?: RuntimeOptions;
  onEvent?: (event: RlEvent) => void;
}

interface RlState {
  step: number;
  scheduler: SchedulerState;
}

/** The scheduler's view of an example stream: prompt ids plus the answer for the verifier. */
function promptSource(source: ExampleSource, tokenizer: TextTokenizer): PromptSource {
  return {
    next: () => {
      const ex = source.next();
      return { id: ex.source, tokens: encodePrompt(tokenizer, ex.prompt), meta: { answer: ex.answer, example: ex } };
    },
    cursor: () => source.cursor,
    seek: (cursor) => void (source.cursor = cursor),
  };
}

export function rolloutConfigFrom(config: Config, stopToken: number): RolloutConfig {
  const r = config.rollout;
  return {
    mode: r.mode, tokenBudget: r.token_budget, poolCapacity: r.pool_capacity, retention: r.retention, staleness: r.staleness, groupSize: r.group_size,
    sampling: { temperature: r.temperature, topP: r.top_p, topK: r.top_k, maxNewTokens: r.max_new_tokens, stopTokens: [stopToken] },
  };
}

type RlOutcome = { policy: Policy; before: EvalResult | null; after: EvalResult | null; step: number };

export async function runRl(spec: RlRun): Promise<RlOutcome> {
  const scorer = spec.scorer ?? (await createScorer(spec.config.reward, { task: spec.config.data.task }));
  try {
    let resume = spec.resume;
    let rolledBackTo: number | null = null;
    let before: EvalResult | null = null;
    for (;;) {
      const outcome = await runFrom(spec, scorer, resume, rolledBackTo);
      before ??= outcome.before;
      if (!('rollback' in outcome)) return { ...outcome, before };
      resume = true;
      rolledBackTo = outcome.rollback;
    }
  } finally {
    if (!spec.scorer) await scorer.close();
  }
}

async function runFrom(spec: RlRun, scorer: Scorer, resume: boolean, rolledBackTo: number | null): Promise<RlOutcome | { rollback: number; before: EvalResult | null }> {
  const { run, config } = spec;
  const emit = spec.onEvent ?? (() => {});
  const latest = run.latestCheckpoint();
  if (latest && !resume) throw new RingrlError(`${run.path}: has checkpoints (newest ${latest.step}); resume it (ringrl rl --resume ${run.path}) or choose a new run directory`);
  const from = resume && latest ? latest.dir : spec.modelDir;
  const policy = Policy.load(from, spec.runtime);
  const tokenizer = loadTokenizer(from);
  if (tokenizer.vocabSize > policy.config.vocabSize) throw new RingrlError(`${from}: tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${policy.config.vocabSize}; the checkpoint and tokenizer do not belong together`);
  const o = config.rl.optimizer;
  const adamW = { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay, maxGradNorm: o.max_grad_norm };
  const optimizer = resume && latest ? AdamW.load(join(latest.dir, 'optimizer'), policy.weights) : new AdamW(adamW);
  optimizer.config = adamW;

  const rollout = rolloutConfigFrom(config, tokenizer.eos);
  const engine = new LocalEngine(policy.config, { capacity: config.rollout.pool_capacity, precision: config.rollout.precision, keepPausedCache: config.rollout.paused_kv === 'keep', kvSegments: config.rollout.kv_segments, seed: config.run.seed, runtime: spec.runtime });
  const scheduler = new RolloutScheduler(engine, promptSource(spec.source, tokenizer), rollout, config.run.seed);
  const controller = new RlController(policy, optimizer, engine, scheduler, (t) => {
    const example = (t.meta?.example as Example | undefined) ?? { source: t.promptId, prompt: tokenizer.decode(t.prompt, { skipSpecial: true }), answer: String(t.meta?.answer ?? '') };
    return scorer.score({ prompt: example.prompt, response: tokenizer.decode(t.response, { skipSpecial: true }), example });
  }, {
    loss: config.rl.loss, advantage: config.rl.advantage, shaping: config.rl.shaping, temperature: config.rollout.temperature,
    microBatchSize: config.rl.micro_batch_size, miniBatches: config.rl.mini_batches, epochs: config.rl.epochs,
    lr: (step) => learningRate(step, config.rl.steps, { ...adamW, warmupSteps: o.warmup_steps, schedule: o.schedule, minLrRatio: o.min_lr_ratio }),
  });

  let step = 0;
  if (resume && latest) {
    const state = readRlState(join(latest.dir, 'rl_state.json'));
    step = state.step;
    scheduler.restore(state.scheduler);
    run.truncateAfter(step);
  }
  await controller.resumeAt(step);
  emit({ type: 'start', step, resumedFrom: resume && latest ? latest.dir : null, parameters: policy.numParameters });

  const runEval = async (): Promise<EvalResult> => {
    const e = config.eval;
    const result = await evaluate(policy.config, policy.weights, tokenizer, spec.evalExamples, spec.verify, { k: e.k, temperature: e.temperature, topP: e.top_p, maxNewTokens: e.max_new_tokens, ...(spec.runtime ? { runtime: spec.runtime } : {}) });
    run.logMetrics(step, evalMetrics(result));
    emit({ type: 'eval', step, result });
    return result;
  };

  const save = async () => {
    const dir = await run.saveCheckpoint(step, (tmp) => {
      policy.save(tmp);
      copyTokenizerFiles(from, tmp);
      optimizer.save(join(tmp, 'optimizer'));
      writeFileSync(join(tmp, 'rl_state.json'), JSON.stringify({ step, scheduler: scheduler.state() } satisfies RlState) + '\n');
    }, config.run.keep_checkpoints);
    emit({ type: 'checkpoint', step, dir });
  };

  const before = step === 0 ? await runEval() : null;
  let after: EvalResult | null = null;
  let skippedInARow = 0;
  while (step < config.rl.steps) {
    const result: RlStepResult = await controller.step();
    if (result.step === step) throw new RingrlError(`rl step ${step + 1}: no group finished within the token budget (rollout.token_budget ${config.rollout.token_budget}); raise it`);
    step = result.step;
    run.logMetrics(step, result.metrics);
    run.logSamples(step, result.trajectories.slice(0, config.run.samples_per_step).map((t) => ({
      kind: 'rollout', group: t.groupId, sample: t.sampleIndex, prompt: tokenizer.decode(t.prompt, { skipSpecial: true }), response: tokenizer.decode(t.response, { skipSpecial: true }),
      reward: t.reward ?? null, ...(t.unscored !== undefined ? { unscored: t.unscored } : {}), finish_reason: t.finishReason, retention: t.retention, versions: [t.versions[0] ?? null, t.versions.at(-1) ?? null],
    })));
    emit({ type: 'step', step, steps: config.rl.steps, metrics: result.metrics });
    if (result.skipped.length) emit({ type: 'skipped', step, reasons: result.skipped });
    skippedInARow = result.skipped.length ? skippedInARow + 1 : 0;
    if (config.rl.rollback_after > 0 && skippedInARow >= config.rl.rollback_after) {
      const last = run.latestCheckpoint();
      const why = `${skippedInARow} steps in a row skipped an update (${result.skipped[0]})`;
      if (!last) throw new RingrlError(`rl step ${step}: ${why}; no checkpoint to roll back to (run.checkpoint_every)`);
      if (last.step === rolledBackTo) throw new RingrlError(`rl step ${step}: ${why}, again after rolling back to checkpoint ${last.step}; stopping (checkpoint ${last.step} is intact)`);
      emit({ type: 'rollback', step, to: last.step, reason: why });
      return { rollback: last.step, before };
    }
    const last = step === config.rl.steps;
    if (last || (config.rl.eval_every > 0 && step % config.rl.eval_every === 0)) after = await runEval();
    if (last || (config.run.checkpoint_every > 0 && step % config.run.checkpoint_every === 0)) await save();
  }
  return { policy, before, after, step };
}

function readRlState(path: string): RlState {
  const state = readCheckpointJson(path) as Partial<RlState>;
  if (!Number.isInteger(state.step) || state.step! < 0 || !state.scheduler || !Array.isArray(state.scheduler.groups)) {
    throw new RingrlError(`${path}: expected {"step": integer >= 0, "scheduler": {...}}; the checkpoint is corrupt`);
  }
  return state as RlState;
}

// A whole RL run from a resolved config: model + tokenizer, prompts and the reward scorer, the
// rollout engine and C3PO++ scheduler, the controller, held-out evals, the run directory and
// crash-safe checkpoints that hold everything needed to continue exactly (weights, optimizer
// moments, the scheduler pool with its partial rollouts, the data cursor). Randomness is
// counter-based per sequence (engine) and per stream position (data), so no RNG state needs
// saving beyond those. When rl.rollback_after steps in a row had a non-finite update skipped,
// the run continues from its last checkpoint exactly as `--resume` would (the same code path).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, optimizerOptions, rolloutOptions } from '../config/index.ts';
import { type Example, type ExampleSource, encodeExamplePrompt } from '../data/index.ts';
import { EnginesLost } from '../engine/http.ts';
import { LocalEngine } from '../engine/local.ts';
import type { RolloutEngine } from '../engine/types.ts';
import { RingrlError } from '../errors.ts';
import { type EvalResult, evalMetrics, evaluate } from '../eval/evaluate.ts';
import type { Verifier } from '../reward/verifiers.ts';
import { type Scorer, createScorer } from '../reward/scorer.ts';
import { type RunDir, readCheckpointJson } from '../report/index.ts';
import { RolloutScheduler } from '../rollout/scheduler.ts';
import type { PromptSource, SchedulerState } from '../rollout/types.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import { type TextTokenizer, checkTokenizerFits, copyTokenizerFiles, loadTokenizer } from '../tokenizer/index.ts';
import { AdamW, type OptimizerConfig, adamWOf, learningRate } from '../train/optimizer.ts';
import { Policy } from '../train/policy.ts';
import { MismatchGuard } from '../algo/mismatch-guard.ts';
import { RlController, type RlStepResult } from './controller.ts';
import { createRunEngine } from './engines.ts';

export type RlEvent =
  | { type: 'start'; step: number; resumedFrom: string | null; parameters: number }
  | { type: 'eval'; step: number; result: EvalResult }
  | { type: 'step'; step: number; steps: number; metrics: Record<string, number> }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'guard'; step: number; action: 'warn' | 'act'; message: string }
  | { type: 'skipped'; step: number; reasons: string[] }
  | { type: 'rollback'; step: number; to: number; reason: string }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

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
      return { id: ex.source, tokens: encodeExamplePrompt(tokenizer, ex), meta: { answer: ex.answer, example: ex } };
    },
    cursor: () => source.cursor,
    seek: (cursor) => void (source.cursor = cursor),
  };
}

type RlOutcome = { policy: Policy; before: EvalResult | null; after: EvalResult | null; step: number };
type RlRollback = { rollback: number; before: EvalResult | null };

export async function runRl(spec: RlRun): Promise<RlOutcome> {
  const scorer =
    spec.scorer ??
    (await createScorer(spec.config.reward, {
      task: spec.config.data.task,
      log: logTo(spec),
    }));
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

/** Engine and reward-replica lines (a lost engine, what resumed where) as the run's log events. */
function logTo(spec: RlRun): (message: string, level: 'info' | 'warn') => void {
  return (message, level) => spec.onEvent?.({ type: 'log', level, message });
}

/** AMem (rl.release_memory): without onnxruntime's arenas, no phase's working set outlives it. */
function phaseRuntime(spec: RlRun): RuntimeOptions | undefined {
  return spec.config.rl.release_memory ? { ...spec.runtime, memoryArena: false } : spec.runtime;
}

/** The run from its start (or its newest checkpoint when resuming) until it ends or rolls back. */
async function runFrom(
  spec: RlRun,
  scorer: Scorer,
  resume: boolean,
  rolledBackTo: number | null,
): Promise<RlOutcome | RlRollback> {
  const { run, config } = spec;
  const latest = run.latestCheckpoint();
  if (latest && !resume)
    throw new RingrlError(
      `${run.path}: has checkpoints (newest ${latest.step}); resume it (ringrl rl --resume ${run.path}) or choose a new run directory`,
    );
  const from = resume && latest ? latest.dir : spec.modelDir;
  const runtime = phaseRuntime(spec);
  const policy = Policy.load(from, runtime);
  const tokenizer = loadTokenizer(from);
  checkTokenizerFits(tokenizer, policy.config.vocabSize, from);
  if (config.rl.loss.routing_replay === 'rollout' && !policy.config.moe)
    throw new RingrlError(
      `rl.loss.routing_replay: 'rollout' replays MoE expert choices, but ${from} is a dense model; set it to 'off'`,
    );
  const optimizerConfig = optimizerOptions(config.rl.optimizer);
  const adamW = adamWOf(optimizerConfig);
  const optimizer = resume && latest ? AdamW.load(join(latest.dir, 'optimizer'), policy.weights) : new AdamW(adamW);
  optimizer.config = adamW;

  const { engine, close } = await createRunEngine({
    config,
    model: policy.config,
    modelDir: from,
    weightsDir: join(run.path, 'weights'),
    ...(runtime ? { runtime } : {}),
    log: logTo(spec),
  });
  try {
    return await rlLoop(spec, {
      policy,
      tokenizer,
      optimizer,
      optimizerConfig,
      engine,
      scorer,
      from,
      latest: resume ? latest : undefined,
      rolledBackTo,
    });
  } finally {
    await close();
  }
}

interface RlParts {
  policy: Policy;
  tokenizer: TextTokenizer;
  optimizer: AdamW;
  optimizerConfig: OptimizerConfig;
  engine: RolloutEngine;
  scorer: Scorer;
  from: string;
  /** The checkpoint this pass resumes from, if any. */
  latest: ReturnType<RunDir['latestCheckpoint']>;
  rolledBackTo: number | null;
}

async function rlLoop(spec: RlRun, parts: RlParts): Promise<RlOutcome | RlRollback> {
  const { run, config } = spec;
  const emit = spec.onEvent ?? (() => {});
  const { policy, tokenizer, optimizer, optimizerConfig, engine, scorer, from, latest, rolledBackTo } = parts;
  const rollout = rolloutOptions(config, tokenizer.stopIds);
  const scheduler = new RolloutScheduler(engine, promptSource(spec.source, tokenizer), rollout, config.run.seed);
  const controller = new RlController(
    policy,
    optimizer,
    engine,
    scheduler,
    (t) => {
      const example = (t.meta?.example as Example | undefined) ?? {
        source: t.promptId,
        prompt: tokenizer.decode(t.prompt, { skipSpecial: true }),
        answer: String(t.meta?.answer ?? ''),
      };
      return scorer.score({
        prompt: example.prompt,
        response: tokenizer.decode(t.response, { skipSpecial: true }),
        example,
      });
    },
    {
      placement: config.system.placement,
      loss: config.rl.loss,
      advantage: config.rl.advantage,
      shaping: config.rl.shaping,
      temperature: config.rollout.temperature,
      microBatchSize: config.rl.micro_batch_size,
      miniBatches: config.rl.mini_batches,
      epochs: config.rl.epochs,
      lr: (at) => learningRate(at, config.rl.steps, optimizerConfig),
      seed: config.run.seed,
    },
  );

  let step = 0;
  if (latest) {
    const state = readRlState(join(latest.dir, 'rl_state.json'));
    step = state.step;
    scheduler.restore(state.scheduler);
    run.truncateAfter(step);
  }
  await controller.resumeAt(step);
  emit({ type: 'start', step, resumedFrom: latest ? latest.dir : null, parameters: policy.numParameters });

  const runEval = async (): Promise<EvalResult> => {
    const e = config.eval;
    const result = await evaluate(policy.config, policy.weights, tokenizer, spec.evalExamples, spec.verify, {
      k: e.k,
      temperature: e.temperature,
      topP: e.top_p,
      maxNewTokens: e.max_new_tokens,
      runtime: phaseRuntime(spec),
    });
    run.logMetrics(step, evalMetrics(result));
    emit({ type: 'eval', step, result });
    return result;
  };

  const save = async () => {
    const dir = await run.saveCheckpoint(
      step,
      (tmp) => {
        policy.save(tmp);
        copyTokenizerFiles(from, tmp);
        optimizer.save(join(tmp, 'optimizer'));
        writeFileSync(
          join(tmp, 'rl_state.json'),
          JSON.stringify({ step, scheduler: scheduler.state() } satisfies RlState) + '\n',
        );
      },
      config.run.keep_checkpoints,
    );
    emit({ type: 'checkpoint', step, dir });
  };

  // No held-out data (training on a file without data.test_file): no evaluation.
  const evaluates = spec.evalExamples.length > 0;
  const before = step === 0 && evaluates ? await runEval() : null;
  let after: EvalResult | null = null;
  const guard = new MismatchGuard(config.rl.mismatch_guard);
  let skippedInARow = 0;
  while (step < config.rl.steps) {
    let result: RlStepResult;
    try {
      result = await controller.step();
    } catch (error) {
      if (!(error instanceof EnginesLost)) throw error;
      // Nothing of this step was trained yet (weight publication does not fail on lost engines):
      // the pool goes into the checkpoint with its partial rollouts, and --resume carries on.
      await scheduler.interrupt();
      const saved = controller.version === step;
      if (saved) await save();
      throw new RingrlError(
        `rl step ${step + 1}: ${error.message}; run stopped (${saved ? `checkpoint ${step} saved` : 'no checkpoint'}; ringrl rl --resume ${run.path} continues)`,
      );
    }
    if (result.step === step)
      throw new RingrlError(
        `rl step ${step + 1}: no group finished within the token budget (rollout.token_budget ${config.rollout.token_budget}); raise it`,
      );
    step = result.step;
    const verdict = guard.observe(step, result.metrics);
    if (guard.config.enabled) result.metrics['guard/stage'] = verdict.stage;
    run.logMetrics(step, result.metrics);
    if (verdict.action === 'stop') {
      await save();
      throw new RingrlError(
        `${verdict.message}; run stopped (checkpoint ${step} saved; rl.mismatch_guard in docs/algorithms.md)`,
      );
    }
    if (verdict.action === 'act') {
      const remedy = remedyMismatch(engine);
      if (remedy) {
        await engine.updateWeights(policy.weights, controller.version); // the new precision applies from the next rollout
        guard.remedied();
      } else guard.noRemedy();
      emit({
        type: 'guard',
        step,
        action: 'act',
        message: `${verdict.message}; ${remedy ?? 'no remedy left (fp32 engine, KV recomputed): the next escalation stops the run'}`,
      });
    }
    if (verdict.action === 'warn') emit({ type: 'guard', step, action: 'warn', message: verdict.message });
    run.logSamples(
      step,
      result.trajectories.slice(0, config.run.samples_per_step).map((t) => ({
        kind: 'rollout',
        group: t.groupId,
        sample: t.sampleIndex,
        prompt: tokenizer.decode(t.prompt, { skipSpecial: true }),
        response: tokenizer.decode(t.response, { skipSpecial: true }),
        reward: t.reward ?? null,
        ...(t.unscored !== undefined ? { unscored: t.unscored } : {}),
        finish_reason: t.finishReason,
        retention: t.retention,
        versions: [t.versions[0] ?? null, t.versions.at(-1) ?? null],
        response_tokens: t.response.length,
      })),
    );
    emit({ type: 'step', step, steps: config.rl.steps, metrics: result.metrics });
    if (result.skipped.length) emit({ type: 'skipped', step, reasons: result.skipped });
    skippedInARow = result.skipped.length ? skippedInARow + 1 : 0;
    if (config.rl.rollback_after > 0 && skippedInARow >= config.rl.rollback_after) {
      const newest = run.latestCheckpoint();
      const why = `${skippedInARow} steps in a row skipped an update (${result.skipped[0]})`;
      if (!newest)
        throw new RingrlError(`rl step ${step}: ${why}; no checkpoint to roll back to (run.checkpoint_every)`);
      if (newest.step === rolledBackTo)
        throw new RingrlError(
          `rl step ${step}: ${why}, again after rolling back to checkpoint ${newest.step}; stopping (checkpoint ${newest.step} is intact)`,
        );
      emit({ type: 'rollback', step, to: newest.step, reason: why });
      return { rollback: newest.step, before };
    }
    const last = step === config.rl.steps;
    if (evaluates && (last || (config.rl.eval_every > 0 && step % config.rl.eval_every === 0))) after = await runEval();
    if (last || (config.run.checkpoint_every > 0 && step % config.run.checkpoint_every === 0)) await save();
  }
  return { policy, before, after, step };
}

/**
 * The mismatch guard's remedies, cheapest first: stop resuming paused rollouts from stale KV caches,
 * then roll out at a higher precision (fp8/int8 -> bf16 -> fp32). Returns what was done, or null.
 */
function remedyMismatch(engine: RolloutEngine): string | null {
  // An HTTP engine's precision and caches are the servers' own: the guard can only warn and stop.
  if (!(engine instanceof LocalEngine)) return null;
  if (engine.keepPausedCache) {
    engine.keepPausedCache = false;
    return 'remedy: paused rollouts are re-prefilled from now on (rollout.paused_kv recompute)';
  }
  const from = engine.precision;
  if (from === 'fp32') return null;
  engine.precision = from === 'bf16' ? 'fp32' : 'bf16';
  return `remedy: engine precision ${from} -> ${engine.precision}`;
}

function readRlState(path: string): RlState {
  const state = readCheckpointJson(path) as Partial<RlState>;
  if (!Number.isInteger(state.step) || state.step! < 0 || !state.scheduler || !Array.isArray(state.scheduler.groups)) {
    throw new RingrlError(`${path}: expected {"step": integer >= 0, "scheduler": {...}}; the checkpoint is corrupt`);
  }
  return state as RlState;
}

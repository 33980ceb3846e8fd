// The SFT loop: prompt-masked next-token loss over packed rows, AdamW with warmup + schedule,
// periodic held-out evaluation (real generation, verified), crash-consistent checkpoints and
// resume from the newest one.
//
// A step takes `batchSize` examples from the source, packs them into rows of at most
// `maxSeqLen` tokens, runs the rows in micro-batches of at most `microBatchTokens` positions and
// normalises the loss by the step's response tokens (so the gradient is the token mean over the
// step whatever the packing). Checkpoints go to checkpoints/<step>/ (model dir + tokenizer +
// optimizer/ + trainer_state.json), written to a temporary directory and renamed into place, so
// a crash never leaves a half-written checkpoint where resume would pick it up.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { Policy } from '../train/policy.ts';
import { maskedCrossEntropy } from '../train/sft.ts';
import { AdamW, GradAccumulator, type OptimizerConfig, adamWOf, learningRate } from '../train/optimizer.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import { type TextTokenizer, copyTokenizerFiles, loadTokenizer } from '../tokenizer/index.ts';
import { type Example, encodeExample } from '../data/example.ts';
import { type PackedRow, packRows, rowsToBatch } from '../train/packing.ts';
import type { ExampleSource } from '../data/source.ts';
import { type EvalResult, evalMetrics, evaluate } from '../eval/evaluate.ts';
import type { Verifier } from '../reward/verifiers.ts';
import { type RunDir, readCheckpointJson } from '../report/index.ts';

export interface SftOptions {
  steps: number;
  /** Examples per optimizer step. */
  batchSize: number;
  /** Longest packed row; longer examples are truncated to it. */
  maxSeqLen: number;
  pack: boolean;
  /** Positions (rows × padded length) per micro-batch at most. */
  microBatchTokens: number;
  optimizer: OptimizerConfig;
  /** Held-out eval every this many steps (0 = only at the end). */
  evalEvery: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  eval: { examples: Example[]; verify: Verifier; maxNewTokens: number };
  /** Eval samples per eval appended to samples.jsonl. */
  samplesPerEval: number;
  runtime?: RuntimeOptions;
}

export type SftEvent =
  | { type: 'start'; step: number; resumedFrom: string | null; parameters: number; source: string }
  | {
      type: 'step';
      step: number;
      steps: number;
      loss: number;
      gradNorm: number;
      lr: number;
      tokens: number;
      targets: number;
      seconds: number;
      elapsed: number;
      truncated: number;
    }
  | { type: 'eval'; step: number; result: EvalResult }
  | { type: 'checkpoint'; step: number; dir: string };

interface TrainerState {
  step: number;
  cursor: number;
  source: string;
}

/** Load a checkpoint's trainer state, naming the file on any problem. */
function readTrainerState(dir: string): TrainerState {
  const path = join(dir, 'trainer_state.json');
  const state = readCheckpointJson(path) as Partial<TrainerState>;
  for (const key of ['step', 'cursor'] as const) {
    if (!Number.isInteger(state[key]) || state[key]! < 0)
      throw new RingrlError(`${path}: field '${key}' must be a non-negative integer; the checkpoint is corrupt`);
  }
  return state as TrainerState;
}

export interface SftRun {
  run: RunDir;
  /** Model dir to start from (ignored when resuming). */
  modelDir: string;
  /** Continue from the newest checkpoint in runDir/checkpoints. */
  resume: boolean;
  source: ExampleSource;
  options: SftOptions;
  onEvent?: (event: SftEvent) => void;
}

export async function runSft(run: SftRun): Promise<{ policy: Policy; lastEval: EvalResult | null; step: number }> {
  const { run: runDir, source, options: o } = run;
  const emit = run.onEvent ?? (() => {});
  const latest = runDir.latestCheckpoint();
  if (latest && !run.resume)
    throw new RingrlError(
      `${runDir.path}: has checkpoints (newest ${latest.step}); resume it (ringrl sft --resume ${runDir.path}) or choose a new run directory`,
    );
  let policy: Policy;
  let optimizer: AdamW;
  let tokenizer: TextTokenizer;
  let step = 0;
  let resumedFrom: string | null = null;
  if (run.resume && latest) {
    resumedFrom = latest.dir;
    const state = readTrainerState(resumedFrom);
    policy = Policy.load(resumedFrom, o.runtime);
    tokenizer = loadTokenizer(resumedFrom);
    optimizer = AdamW.load(join(resumedFrom, 'optimizer'), policy.weights);
    optimizer.config = { ...optimizer.config, ...adamWOf(o.optimizer) };
    step = state.step;
    source.cursor = state.cursor;
  } else {
    policy = Policy.load(run.modelDir, o.runtime);
    tokenizer = loadTokenizer(run.modelDir);
    optimizer = new AdamW(adamWOf(o.optimizer));
  }
  if (tokenizer.vocabSize > policy.config.vocabSize)
    throw new RingrlError(
      `${run.modelDir}: tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${policy.config.vocabSize}`,
    );
  const tokenizerDir = resumedFrom ?? run.modelDir;
  const maxSeqLen = Math.min(o.maxSeqLen, policy.config.maxPositions);
  emit({ type: 'start', step, resumedFrom, parameters: policy.numParameters, source: source.description });

  const runEval = async (): Promise<EvalResult> => {
    const result = await evaluate(policy.config, policy.weights, tokenizer, o.eval.examples, o.eval.verify, {
      k: 1,
      temperature: 0,
      maxNewTokens: o.eval.maxNewTokens,
      ...(o.runtime ? { runtime: o.runtime } : {}),
    });
    runDir.logMetrics(step, evalMetrics(result));
    runDir.logSamples(
      step,
      result.samples.slice(0, o.samplesPerEval).map((s) => ({ kind: 'eval', ...s })),
    );
    emit({ type: 'eval', step, result });
    return result;
  };

  const save = async () => {
    const dir = await runDir.saveCheckpoint(
      step,
      (tmp) => {
        policy.save(tmp);
        copyTokenizerFiles(tokenizerDir, tmp);
        optimizer.save(join(tmp, 'optimizer'));
        writeFileSync(
          join(tmp, 'trainer_state.json'),
          JSON.stringify({ step, cursor: source.cursor, source: source.description } satisfies TrainerState, null, 2) +
            '\n',
        );
      },
      o.keepCheckpoints,
    );
    emit({ type: 'checkpoint', step, dir });
  };

  let lastEval: EvalResult | null = null;
  const accumulator = new GradAccumulator();
  const started = performance.now();
  while (step < o.steps) {
    const t0 = performance.now();
    let truncated = 0;
    const encoded = Array.from({ length: o.batchSize }, () => {
      const ex = source.next();
      let { prompt, response } = encodeExample(tokenizer, ex);
      if (prompt.length >= maxSeqLen)
        throw new RingrlError(
          `${ex.source}: prompt has ${prompt.length} tokens; it does not fit max_seq_len ${maxSeqLen}`,
        );
      if (prompt.length + response.length > maxSeqLen) {
        response = response.slice(0, maxSeqLen - prompt.length);
        truncated++;
      }
      return { prompt, response };
    });
    const rows = packRows(encoded, maxSeqLen, o.pack);
    const micro = microBatches(rows, o.microBatchTokens);
    const targets = rows.reduce((a, r) => a + r.lossMask.reduce((x, y) => x + y, 0), 0);
    let loss = 0;
    let tokens = 0;
    for (const group of micro) {
      const { batch, lossMask } = rowsToBatch(group, policy.config.vocabSize);
      tokens += group.reduce((a, r) => a + r.tokens.length, 0);
      const out = await policy.lossAndGrads(
        maskedCrossEntropy,
        batch,
        { loss_mask: lossMask },
        { scale: 1 / targets, aux_weight: (policy.config.moe?.auxLossCoef ?? 0) / micro.length },
      );
      loss += out.metrics.nll!;
      accumulator.add(out.grads);
    }
    const lr = learningRate(step, o.steps, o.optimizer);
    const { gradNorm } = await optimizer.update(policy.weights, accumulator.sums, lr);
    policy.recycle(accumulator.sums);
    accumulator.clear();
    step++;
    const seconds = (performance.now() - t0) / 1000;
    runDir.logMetrics(step, {
      'sft/loss': loss,
      'grad/norm': gradNorm,
      'optim/lr': lr,
      'sft/tokens': tokens,
      'sft/target_tokens': targets,
      'sft/truncated': truncated,
      'time/train_s': seconds,
      'sft/tokens_per_s': tokens / seconds,
    });
    emit({
      type: 'step',
      step,
      steps: o.steps,
      loss,
      gradNorm,
      lr,
      tokens,
      targets,
      seconds,
      elapsed: (performance.now() - started) / 1000,
      truncated,
    });
    const last = step === o.steps;
    if (last || (o.evalEvery > 0 && step % o.evalEvery === 0)) lastEval = await runEval();
    if (last || (o.checkpointEvery > 0 && step % o.checkpointEvery === 0)) await save();
  }
  return { policy, lastEval, step };
}

/** Consecutive rows grouped so each group's rows × longest row stays within the budget. */
export function microBatches(rows: PackedRow[], maxPositions: number): PackedRow[][] {
  const groups: PackedRow[][] = [];
  let current: PackedRow[] = [];
  let longest = 0;
  for (const row of [...rows].sort((a, b) => b.tokens.length - a.tokens.length)) {
    const l = Math.max(longest, row.tokens.length);
    if (current.length > 0 && l * (current.length + 1) > maxPositions) {
      groups.push(current);
      current = [];
      longest = 0;
    }
    current.push(row);
    longest = Math.max(longest, row.tokens.length);
  }
  if (current.length) groups.push(current);
  return groups;
}

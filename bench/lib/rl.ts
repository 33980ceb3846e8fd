// What the RL benches share: a workload model SFT'd once and cached under runs/, and one arm of
// the real RL loop (`runRl`, as `ringrl rl` runs it) on configs/demo.yaml plus the arm's settings.
import { existsSync, renameSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { sftCommand } from '../../src/cli/sft.ts';
import { type Config, formatConfig, loadConfig } from '../../src/config/index.ts';
import { testExamplesFor, trainSourceFor } from '../../src/data/index.ts';
import { type MetricsRow, RunDir } from '../../src/report/index.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { runRl } from '../../src/system/rl-run.ts';

export const demoConfig = join(import.meta.dirname, '..', '..', 'configs', 'demo.yaml');

/**
 * The newest checkpoint of the SFT run in `dir`, training it first (`ringrl sft` on
 * configs/demo.yaml with `sets`, and `--model base` when given) if the run has none. An
 * interrupted run is moved aside, not resumed, so the model is always the recipe's.
 */
export async function cachedSftModel(
  bench: string,
  dir: string,
  sets: string[],
  threads: number,
  base?: string,
): Promise<string> {
  const trained = existsSync(dir) ? RunDir.open(dir).latestCheckpoint() : undefined;
  if (trained) return trained.dir;
  console.log(`bench ${bench}: training the workload's model once into ${dir} (ringrl sft)`);
  if (existsSync(dir)) renameSync(dir, `${dir}-incomplete-${Date.now()}`);
  await sftCommand.run([
    '--config',
    demoConfig,
    ...(base ? ['--model', base] : []),
    ...sets.flatMap((s) => ['--set', s]),
    '--threads',
    String(threads),
    '--out',
    dir,
  ]);
  return RunDir.open(dir).latestCheckpoint()!.dir;
}

export interface ArmRun {
  config: Config;
  run: RunDir;
  /** Metrics rows of the RL steps (evals left out). */
  steps: MetricsRow[];
  /** Held-out accuracy after the last step (NaN without an eval). */
  finalAccuracy: number;
}

/**
 * One run of the real RL loop from `model` on configs/demo.yaml with `sets`, in run directory `dir`;
 * `evaluate: false` skips the held-out evals before and after.
 */
export async function runRlArm(
  dir: string,
  model: string,
  sets: string[],
  threads: number,
  evaluate = true,
): Promise<ArmRun> {
  const config = loadConfig({
    files: [demoConfig],
    sets: [`model.dir=${JSON.stringify(model)}`, `runtime.threads=${threads}`, ...sets],
  });
  const run = RunDir.create(dir, formatConfig(config));
  const runtime = { threads };
  const result = await runRl({
    run,
    config,
    modelDir: model,
    resume: false,
    source: await trainSourceFor(config.data),
    evalExamples: evaluate ? await testExamplesFor(config.data, config.eval.num_problems) : [],
    verify: getVerifier(config.data.task ?? 'arithmetic'),
    runtime,
  });
  return {
    config,
    run,
    steps: run.readMetrics().filter((r) => typeof r['time/step_s'] === 'number'),
    finalAccuracy: result.after?.accuracy ?? NaN,
  };
}

/** The machine's 1-minute load average, for the record (benches here run on shared machines). */
export function loadAverage(): number {
  return Number(os.loadavg()[0]!.toFixed(2));
}

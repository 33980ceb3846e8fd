// A run directory (docs/report.md):
//
//   runs/<name>/
//     config.yaml          the resolved config (every default filled in)
//     metrics.jsonl        one JSON object per step: {"step": N, "wall_time": unix_s, "reward/mean": ..., ...}
//     samples.jsonl        trajectories/completions with provenance: {"step": N, ...fields}
//     checkpoints/<step>/  complete checkpoints only (written to .tmp-<step>, then renamed)
//     report.html          written by `ringrl report`
//
//   const run = RunDir.create(runPath(config, 'sft'), formatConfig(config));   // or RunDir.open(dir) to resume
//   run.logMetrics(step, { 'sft/loss': 1.23, 'time/train_s': 0.4 });
//   run.logSamples(step, [{ prompt, response, reward }]);
//   await run.saveCheckpoint(step, (dir) => policy.save(dir));
//   run.latestCheckpoint()  // { step, dir } | undefined
//
// Appends are crash-safe (see jsonl.ts). Reading metrics merges the rows of one step (training
// and eval may log separately), later values winning, so steps re-logged after resuming from a
// checkpoint replace the ones logged before the crash.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RingrlError } from '../errors.ts';
import { readJsonFile } from '../util/files.ts';
import { appendJsonl, fsyncFile, readJsonl, warnToStderr, type Warn } from './jsonl.ts';

/** A checkpoint's JSON state file (trainer_state.json, rl_state.json), naming the file on any problem. */
export function readCheckpointJson(path: string): Record<string, unknown> {
  return readJsonFile(
    path,
    'the state ringrl wrote there; the checkpoint is corrupt (delete it to resume from an earlier one)',
  ) as Record<string, unknown>;
}

/** A metrics row: the step, when it was logged, and dotted metric names to numbers. */
export interface MetricsRow {
  step: number;
  wall_time?: number;
  [name: string]: number | null | undefined;
}

export interface SampleRow {
  step: number;
  [field: string]: unknown;
}

/** Metric names: lowercase path segments separated by "/", e.g. reward/mean, eval/pass@8. */
const METRIC_NAME = /^[a-z0-9_@.-]+(\/[a-z0-9_@.-]+)*$/;

export interface RunDirOptions {
  /** Where warnings go (torn lines repaired or skipped); default stderr. */
  warn?: Warn;
}

/** The default run directory for a config: <run.dir>/<run.name>, or <run.dir>/<command>-<UTC time>. */
export function runPath(
  config: { run: { dir: string; name?: string | undefined } },
  command: string,
  now = new Date(),
): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15); // 20261129-083000
  return join(config.run.dir, config.run.name ?? `${command}-${stamp}`);
}

export class RunDir {
  readonly path: string;
  private readonly warn: Warn;

  private constructor(path: string, options: RunDirOptions) {
    this.path = path;
    this.warn = options.warn ?? warnToStderr;
  }

  /** Make a new run directory and write its config. Fails if `dir` already holds a run. */
  static create(dir: string, configYaml?: string, options: RunDirOptions = {}): RunDir {
    if (existsSync(join(dir, 'metrics.jsonl')) || existsSync(join(dir, 'checkpoints'))) {
      throw new RingrlError(`${dir}: already holds a run; resume it, or choose another run.name / run.dir`);
    }
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
    const run = new RunDir(dir, options);
    if (configYaml !== undefined) run.writeConfig(configYaml);
    return run;
  }

  /** Open an existing run directory (to resume it or report on it). */
  static open(dir: string, options: RunDirOptions = {}): RunDir {
    if (!existsSync(dir)) throw new RingrlError(`${dir}: run directory does not exist`);
    if (
      !existsSync(join(dir, 'metrics.jsonl')) &&
      !existsSync(join(dir, 'config.yaml')) &&
      !existsSync(join(dir, 'checkpoints'))
    ) {
      throw new RingrlError(`${dir}: not a run directory (expected metrics.jsonl, config.yaml or checkpoints/ in it)`);
    }
    return new RunDir(dir, options);
  }

  get metricsPath(): string {
    return join(this.path, 'metrics.jsonl');
  }
  get samplesPath(): string {
    return join(this.path, 'samples.jsonl');
  }
  get configPath(): string {
    return join(this.path, 'config.yaml');
  }
  get reportPath(): string {
    return join(this.path, 'report.html');
  }

  /** Write the resolved config as YAML (atomically: a reader sees the old file or the new one). */
  writeConfig(yaml: string): void {
    const tmp = this.configPath + '.tmp';
    writeFileSync(tmp, yaml);
    renameSync(tmp, this.configPath);
  }

  /** The config.yaml text, or undefined when there is none. */
  configText(): string | undefined {
    return existsSync(this.configPath) ? readFileSync(this.configPath, 'utf8') : undefined;
  }

  /**
   * Append one step's metrics. Names are the dotted names of metrics.ts (reward/mean, time/train_s, ...);
   * NaN and ±Infinity are written as null (JSON has no such numbers) and plotted as gaps.
   */
  logMetrics(step: number, metrics: Record<string, number | null | undefined>): void {
    if (!Number.isInteger(step) || step < 0)
      throw new RingrlError(`logMetrics: step must be an integer >= 0, got ${step}`);
    const row: MetricsRow = { step, wall_time: Date.now() / 1000 };
    for (const [name, value] of Object.entries(metrics)) {
      if (value === undefined) continue;
      if (!METRIC_NAME.test(name))
        throw new RingrlError(
          `logMetrics: metric name '${name}' must be lowercase segments separated by '/', e.g. reward/mean`,
        );
      if (value !== null && typeof value !== 'number')
        throw new RingrlError(`logMetrics: metric '${name}' must be a number, got ${typeof value}`);
      row[name] = value !== null && Number.isFinite(value) ? value : null;
    }
    appendJsonl(this.metricsPath, [row], this.warn);
  }

  /** Append samples (trajectories, completions) for a step; each becomes {"step": step, ...sample}. */
  logSamples(step: number, samples: readonly Record<string, unknown>[]): void {
    appendJsonl(
      this.samplesPath,
      samples.map((s) => ({ step, ...s })),
      this.warn,
    );
  }

  /** Metrics rows in step order, the last row for each step winning (see the file comment). */
  readMetrics(): MetricsRow[] {
    const byStep = new Map<number, MetricsRow>();
    const { rows, lines } = readJsonl<MetricsRow>(this.metricsPath, this.warn);
    rows.forEach((row, i) => {
      if (typeof row.step !== 'number' || !Number.isFinite(row.step)) {
        this.warn(`${this.metricsPath}:${lines[i]}: skipped a row without a numeric "step"`);
        return;
      }
      // Several writers may log different metrics for the same step (train, eval): merge them.
      byStep.set(row.step, { ...(byStep.get(row.step) ?? {}), ...row });
    });
    return [...byStep.values()].sort((a, b) => a.step - b.step);
  }

  /**
   * Forget metrics and samples logged after `step` (atomic rewrite). A run resumed from the
   * checkpoint of `step` calls this first, so steps re-run after a crash are not logged twice.
   */
  truncateAfter(step: number): void {
    for (const path of [this.metricsPath, this.samplesPath]) {
      if (!existsSync(path)) continue;
      const { rows } = readJsonl<{ step?: number }>(path, this.warn);
      const kept = rows.filter((r) => typeof r.step === 'number' && r.step <= step);
      if (kept.length === rows.length) continue;
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, kept.map((r) => JSON.stringify(r) + '\n').join(''));
      renameSync(tmp, path);
    }
  }

  readSamples(): SampleRow[] {
    return readJsonl<SampleRow>(this.samplesPath, this.warn).rows;
  }

  checkpointDir(step: number): string {
    return join(this.path, 'checkpoints', String(step));
  }

  /** Steps of the complete checkpoints, ascending. */
  checkpoints(): number[] {
    const dir = join(this.path, 'checkpoints');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
  }

  latestCheckpoint(): { step: number; dir: string } | undefined {
    const step = this.checkpoints().at(-1);
    return step === undefined ? undefined : { step, dir: this.checkpointDir(step) };
  }

  /**
   * Write checkpoints/<step>/ crash-consistently: `write` fills a temporary directory, which is
   * renamed into place only after it returns (rename is atomic), so checkpoints() never lists a
   * half-written checkpoint. metrics.jsonl and samples.jsonl are fsynced first so the logs are at
   * least as durable as the checkpoint. Then all but the newest `keep` checkpoints are removed
   * (0 = keep all).
   */
  async saveCheckpoint(step: number, write: (dir: string) => void | Promise<void>, keep = 0): Promise<string> {
    if (!Number.isInteger(step) || step < 0)
      throw new RingrlError(`saveCheckpoint: step must be an integer >= 0, got ${step}`);
    const root = join(this.path, 'checkpoints');
    mkdirSync(root, { recursive: true });
    for (const name of readdirSync(root))
      if (name.startsWith('.tmp-')) rmSync(join(root, name), { recursive: true, force: true });
    const tmp = join(root, `.tmp-${step}`);
    mkdirSync(tmp);
    await write(tmp);
    fsyncFile(this.metricsPath);
    fsyncFile(this.samplesPath);
    const dir = this.checkpointDir(step);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    if (keep > 0)
      for (const old of this.checkpoints().slice(0, -keep))
        rmSync(this.checkpointDir(old), { recursive: true, force: true });
    return dir;
  }

  toString(): string {
    return resolve(this.path);
  }
}

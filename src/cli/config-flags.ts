// How the config-driven commands (sft, rl, eval) turn flags into a config and a run directory:
// plain flags are shorthands for common config keys, applied as `--set` after the user's own (so
// flags win); `--out DIR` starts a run, `--resume DIR` continues one from its saved config.yaml.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './command.ts';
import { type Config, formatConfig, loadConfig } from '../config/index.ts';
import { RunDir, runPath } from '../report/index.ts';

/** A command's shorthand flags and the config key each one sets. */
export type Shorthands = Readonly<Record<string, string>>;

const STRING_KEYS = new Set(['model.dir', 'data.task', 'data.train_file', 'data.test_file']);

/** `--set` text for a shorthand: paths and names quoted (so `--data yes.jsonl` stays a string), numbers as YAML. */
export function setText(key: string, value: string): string {
  return `${key}=${STRING_KEYS.has(key) ? JSON.stringify(value) : value}`;
}

/** parseFlags options for the shorthands (each takes a string). */
export function shorthandOptions<S extends Shorthands>(shorthands: S): Record<keyof S, { type: 'string' }> {
  return Object.fromEntries(Object.keys(shorthands).map((f) => [f, { type: 'string' }])) as Record<keyof S, { type: 'string' }>;
}

/** The `--set` overrides of the shorthands given. */
export function shorthandSets(shorthands: Shorthands, values: Record<string, unknown>): string[] {
  return Object.keys(shorthands).filter((f) => typeof values[f] === 'string').map((f) => setText(shorthands[f]!, values[f] as string));
}

export interface RunFlags {
  out?: string;
  resume?: string;
  config?: string[];
  set?: string[];
}

/** The config of a new run (--out) or a resumed one (--resume: its config.yaml under the --config files and sets). */
export function runConfigFromFlags(command: string, values: RunFlags, sets: string[]): Config {
  if (values.out && values.resume) throw new UsageError(`ringrl ${command}: give --out (a new run) or --resume (an existing one), not both`);
  const resumeDir = values.resume;
  if (resumeDir !== undefined && !existsSync(join(resumeDir, 'config.yaml'))) throw new UsageError(`ringrl ${command}: --resume ${resumeDir}: no config.yaml there; expected a run directory written by ringrl ${command}`);
  return loadConfig({
    files: [...(resumeDir ? [join(resumeDir, 'config.yaml')] : []), ...(values.config ?? [])],
    sets: [...(values.set ?? []), ...sets],
  });
}

/** The run directory: --resume reopens it and records the (possibly overridden) config; else a new one. */
export function runDirFromFlags(command: string, values: RunFlags, config: Config): RunDir {
  if (values.resume === undefined) return RunDir.create(values.out ?? runPath(config, command), formatConfig(config));
  const run = RunDir.open(values.resume);
  run.writeConfig(formatConfig(config));
  return run;
}

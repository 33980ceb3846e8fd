// How the config-driven commands (sft, rl, eval) turn flags into a config and a run directory:
// plain flags are shorthands for common config keys, applied as `--set` after the user's own (so
// flags win); `--out DIR` starts a run, `--resume DIR` continues one from its saved config.yaml.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Options, type Parsed, UsageError, parseFlags } from './command.ts';
import { type Ui, createUi, uiFlags } from './ui.ts';
import { type Config, configFlags, formatConfig, loadConfig } from '../config/index.ts';
import { RunDir, runPath } from '../report/index.ts';
import { configureRuntimeFrom } from '../runtime/index.ts';

/** A command's shorthand flags and the config key each one sets. */
export type Shorthands = Readonly<Record<string, string>>;

const STRING_KEYS = new Set(['model.dir', 'data.task', 'data.train_file', 'data.test_file']);

/** `--set` text for a shorthand: paths and names quoted (so `--data yes.jsonl` stays a string), numbers as YAML. */
export function setText(key: string, value: string): string {
  return `${key}=${STRING_KEYS.has(key) ? JSON.stringify(value) : value}`;
}

/** parseFlags options for the shorthands (each takes a string). */
function shorthandOptions<S extends Shorthands>(shorthands: S): Record<keyof S, { type: 'string' }> {
  return Object.fromEntries(Object.keys(shorthands).map((f) => [f, { type: 'string' }])) as Record<
    keyof S,
    { type: 'string' }
  >;
}

/** The `--set` overrides of the shorthands given. */
function shorthandSets(shorthands: Shorthands, values: Record<string, unknown>): string[] {
  return Object.keys(shorthands)
    .filter((f) => typeof values[f] === 'string')
    .map((f) => setText(shorthands[f]!, values[f] as string));
}

export interface RunFlags {
  out?: string;
  resume?: string;
  config?: string[];
  set?: string[];
}

/** The config of a new run (--out) or a resumed one (--resume: its config.yaml under the --config files and sets). */
function runConfigFromFlags(command: string, values: RunFlags, sets: string[]): Config {
  if (values.out && values.resume)
    throw new UsageError(`ringrl ${command}: give --out (a new run) or --resume (an existing one), not both`);
  const resumeDir = values.resume;
  if (resumeDir !== undefined && !existsSync(join(resumeDir, 'config.yaml')))
    throw new UsageError(
      `ringrl ${command}: --resume ${resumeDir}: no config.yaml there; expected a run directory written by ringrl ${command}`,
    );
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

/** Flags that pick the rollout engine: --servers URL,URL (engine http on those servers) and --engine-workers N. */
export const engineFlags = { servers: { type: 'string' }, 'engine-workers': { type: 'string' } } as const;

/** The `--set` overrides of --servers and --engine-workers (each implies rollout.engine=http). */
export function engineFlagSets(values: { servers?: string; 'engine-workers'?: string }): string[] {
  const sets: string[] = [];
  if (values.servers !== undefined)
    sets.push(`rollout.servers=${JSON.stringify(values.servers.split(',').filter(Boolean))}`, 'rollout.engine=http');
  if (values['engine-workers'] !== undefined)
    sets.push(`rollout.engine_workers=${values['engine-workers']}`, 'rollout.engine=http');
  return sets;
}

/**
 * The start every config-driven command (sft, rl, eval) shares: parse the config and output flags,
 * the command's own flags and its shorthands; refuse stray arguments; resolve the config (a resumed
 * run's config.yaml first, then --config files, --set and the shorthands); make the output ui;
 * apply the runtime section.
 */
export function startConfigCommand<O extends Options, S extends Shorthands>(
  command: string,
  argv: string[],
  own: O,
  shorthands: S,
  extraSets: (values: Record<string, unknown>) => string[] = () => [],
): {
  values: Parsed<typeof configFlags & typeof uiFlags & O & Record<keyof S, { type: 'string' }>>['values'];
  config: Config;
  ui: Ui;
} {
  const { values, positionals } = parseFlags(command, argv, {
    ...configFlags,
    ...uiFlags,
    ...own,
    ...shorthandOptions(shorthands),
  });
  if (positionals.length)
    throw new UsageError(`ringrl ${command}: unexpected argument '${positionals[0]}' (see ringrl ${command} --help)`);
  const config = runConfigFromFlags(command, values as RunFlags, [
    ...shorthandSets(shorthands, values),
    ...extraSets(values),
  ]);
  const ui = createUi(values as { quiet?: boolean; jsonl?: boolean });
  configureRuntimeFrom(config.runtime);
  return { values, config, ui };
}

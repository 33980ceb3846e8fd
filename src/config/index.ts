// Config: YAML files + `--set` overrides, validated by one zod schema (src/config/schema.ts).
//
//   import { loadConfig, configFlags, configFromFlags, formatConfig, type Config } from '../config/index.ts';
//   const config = loadConfig({ files: ['configs/demo.yaml'], sets: ['sft.steps=500'] });
//   config.sft.optimizer.lr  // every default filled in; invalid input threw a one-line RingrlError
//
// In a command: spread `configFlags` into parseFlags' options, then `configFromFlags(values)`.
import { loadConfig, type LoadOptions } from './load.ts';
import type { Config, ConfigInput } from './schema.ts';

export { loadConfig, formatConfig, readConfigFile, parseSet, type LoadOptions } from './load.ts';
export { configSchema, section, optimizerSection, type Config, type ConfigInput } from './schema.ts';
export { configMarkdown } from './docs.ts';
export { engineOptions, faultOptions, optimizerOptions, rolloutOptions } from './options.ts';

/** parseFlags options for `--config FILE` and `--set k=v` (both repeatable). */
export const configFlags = {
  config: { type: 'string', multiple: true },
  set: { type: 'string', multiple: true },
} as const;

/** Resolve the config from parsed `configFlags` values; `base` holds a command's own defaults. */
export function configFromFlags(values: { config?: string[]; set?: string[] }, base?: ConfigInput): Config {
  const options: LoadOptions = { files: values.config ?? [], sets: values.set ?? [] };
  if (base) options.base = base;
  return loadConfig(options);
}

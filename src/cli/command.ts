// One CLI command: a name, a help text with examples, and a run function taking raw argv
// (its one-line summary lives in the registry, src/cli/commands.ts).
// Commands parse their own flags with `parseFlags` so every command answers bad flags the same way.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Command {
  name: string;
  help: string; // full text for `ringrl NAME --help`, with examples
  run(argv: string[]): Promise<number | void>;
}

/** A user-facing error: printed as one line without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseFlags returns for flag options O: their typed values and the positional arguments. */
export type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** Parse flags; unknown flags and missing values become one-line UsageErrors naming the flag. */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(
      `ringrl ${command}: ${(error as Error).message.split('\n')[0]} (see ringrl ${command} --help)`,
    );
  }
}

/** A required string flag, or a UsageError naming it. */
export function requireFlag(command: string, values: Record<string, unknown>, flag: string): string {
  const value = values[flag];
  if (typeof value !== 'string' || value === '')
    throw new UsageError(`ringrl ${command}: --${flag} is required (see ringrl ${command} --help)`);
  return value;
}

/** Parse a numeric flag value, naming the flag and the expected range on failure. */
export function numberFlag(
  command: string,
  flag: string,
  raw: string | undefined,
  fallback: number,
  opts: { integer?: boolean; min?: number; max?: number } = {},
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const bad =
    !Number.isFinite(value) ||
    (opts.integer && !Number.isInteger(value)) ||
    (opts.min !== undefined && value < opts.min) ||
    (opts.max !== undefined && value > opts.max);
  if (bad) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(
      `ringrl ${command}: --${flag} must be ${opts.integer ? 'an integer' : 'a number'}${range ? ' ' + range : ''}, got '${raw}'`,
    );
  }
  return value;
}

// Run one command in-process, capturing console output and process.stdout/stderr writes.
// Importing a single command (not the whole CLI registry) keeps test start-up fast.
import { RingrlError } from '../../src/errors.ts';
import { UsageError, type Command } from '../../src/cli/command.ts';

export async function runCommand(
  command: Command,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log,
    error = console.error,
    warn = console.warn;
  const stdoutWrite = process.stdout.write,
    stderrWrite = process.stderr.write;
  console.log = (...a: unknown[]) => void out.push(a.join(' ') + '\n');
  console.error = console.warn = (...a: unknown[]) => void err.push(a.join(' ') + '\n');
  process.stdout.write = ((chunk: string | Uint8Array) => (
    out.push(String(chunk)), true
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    err.push(String(chunk)), true
  )) as typeof process.stderr.write;
  let code = 0;
  try {
    // As src/cli/main.ts does: user errors are one line and exit code 2.
    code = (await command.run(argv)) ?? 0;
  } catch (e) {
    if (!(e instanceof UsageError || e instanceof RingrlError)) throw e;
    err.push((e as Error).message + '\n');
    code = 2;
  } finally {
    Object.assign(console, { log, error, warn });
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
  return { code, out: out.join('').replace(/\n$/, ''), err: err.join('').replace(/\n$/, '') };
}

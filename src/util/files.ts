// Reading a user's file with a one-line error: the config, model-dir, checkpoint and input readers
// all go through here, so a missing, unreadable or malformed file is reported the same way,
// naming the file and what was expected there.
import { readFileSync } from 'node:fs';
import { RingrlError } from '../errors.ts';

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? String((error as Error).message).split('\n')[0]!;
}

/** A file's text, or a RingrlError `PATH: cannot read (no such file); expected WHAT`. */
export function readTextFile(path: string, expected: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new RingrlError(`${path}: cannot read (${reason(error)}); expected ${expected}`);
  }
}

/** A JSON file's value, or a RingrlError naming the file: unreadable, or `malformed JSON (...)`. */
export function readJsonFile(path: string, expected: string): unknown {
  const text = readTextFile(path, expected);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RingrlError(`${path}: malformed JSON (${(error as Error).message}); expected ${expected}`);
  }
}

/**
 * One line of a user's JSON-lines file, parsed; `where` is `FILE:LINE`. A malformed line is a
 * RingrlError `FILE:LINE: malformed JSON (...)`. (Run directories' own JSONL files, which a crash
 * can tear, are read leniently by report/jsonl.ts instead.)
 */
export function parseJsonLine(line: string, where: string): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new RingrlError(`${where}: malformed JSON (${(error as Error).message})`);
  }
}

// Append-only JSON-lines files that survive crashes: a line is written whole or not at all.
//
// - `appendJsonl(path, rows)` writes all rows as one buffer. If an earlier process died while
//   writing (the file does not end in "\n"), the torn tail is cut off first, with a warning, so a
//   new line never glues onto half an old one.
// - `readJsonl(path)` returns the parsed objects. A torn last line (no trailing newline, e.g. a
//   kill -9 mid-write) is ignored with a warning; a corrupt line elsewhere is skipped with a
//   warning naming file:line. Nothing that parses is ever dropped.
// Durability against power loss needs `fsyncFile` (RunDir calls it when it saves a checkpoint).
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';

export type Warn = (message: string) => void;

/** Default warning sink: one line on stderr. */
export const warnToStderr: Warn = (message) => void process.stderr.write(`warning: ${message}\n`);

const repaired = new Set<string>();

/** Append rows as JSON lines. Throws on rows that are not plain JSON-serialisable objects. */
export function appendJsonl(path: string, rows: readonly object[], warn: Warn = warnToStderr): void {
  if (rows.length === 0) return;
  const text = rows.map((r) => JSON.stringify(r) + '\n').join('');
  const buffer = Buffer.from(text, 'utf8');
  const fd = openSync(path, 'a+');
  try {
    if (!repaired.has(path)) {
      cutTornTail(fd, path, warn);
      repaired.add(path);
    }
    let written = 0;
    while (written < buffer.length) written += writeSync(fd, buffer, written, buffer.length - written);
  } finally {
    closeSync(fd);
  }
}

/** Cut a partial last line (left by a crash mid-write) so the next append starts on a fresh line. */
function cutTornTail(fd: number, path: string, warn: Warn): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] === 0x0a) return;
  // Find the last newline, reading backwards in chunks.
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  let keep = 0;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    const i = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) {
      keep = start + i + 1;
      break;
    }
    end = start;
  }
  ftruncateSync(fd, keep);
  warn(`${path}: removed a torn last line (${size - keep} bytes) left by an interrupted write`);
}

export interface JsonlRead<T> {
  rows: T[];
  /** Line number (1-based) of each row in the file. */
  lines: number[];
}

/** Read a JSON-lines file of objects; see the file comment for how damaged lines are handled. */
export function readJsonl<T extends object = Record<string, unknown>>(
  path: string,
  warn: Warn = warnToStderr,
): JsonlRead<T> {
  if (!existsSync(path)) return { rows: [], lines: [] };
  const text = readFileSync(path, 'utf8');
  const parts = text.split('\n');
  const torn = parts.pop() ?? ''; // '' when the file ends with a newline
  const rows: T[] = [];
  const lines: number[] = [];
  parts.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      warn(`${path}:${i + 1}: skipped a corrupt line (${(e as Error).message})`);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      warn(`${path}:${i + 1}: skipped a line that is not a JSON object`);
      return;
    }
    rows.push(value as T);
    lines.push(i + 1);
  });
  if (torn.trim() !== '') warn(`${path}:${parts.length + 1}: ignored a torn last line (the writer was interrupted)`);
  return { rows, lines };
}

/** Flush a file's data to disk. */
export function fsyncFile(path: string): void {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

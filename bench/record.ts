// Print a bench's closing JSON line and append it to bench/results/NAME.jsonl.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export function record(result: {
  bench: string;
  ours: number;
  peer: number;
  ratio: number;
  [key: string]: unknown;
}): void {
  const line = JSON.stringify({
    ...result,
    // A shared machine's load says how far to trust the seconds; benches that track it start to end say so themselves.
    load_average: result.load_average ?? { end: Math.round(os.loadavg()[0]! * 100) / 100 },
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, model: os.cpus()[0]?.model },
  });
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `${result.bench}.jsonl`), line + '\n');
  console.log(line);
}

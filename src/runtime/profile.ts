// Reading onnxruntime's profiles (RINGRL_PROFILE, session.ts): where a graph's time goes, by
// operator. A profile is a Chrome trace: one `model_run` event per run and one `<node>_kernel_time`
// event per node per run, with the node's operator in args.op_name and its time in µs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';

export interface OperatorTime {
  op: string;
  /** Kernel time summed over every node of this operator and every run, ms. */
  ms: number;
  /** Node executions (nodes × runs). */
  count: number;
}

export interface ProfileSummary {
  file: string;
  runs: number;
  /** Wall time of the runs (`model_run` events), ms. */
  runMs: number;
  /** Kernel time of every node, ms: what is not in it is onnxruntime's own overhead and waiting. */
  kernelMs: number;
  /** Most time first. */
  operators: OperatorTime[];
}

interface TraceEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

/** Sum one profile file by operator. */
export function summarizeProfile(file: string): ProfileSummary {
  let events: TraceEvent[];
  try {
    events = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new RingrlError(`${file}: not an onnxruntime profile (${(error as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(events)) throw new RingrlError(`${file}: not an onnxruntime profile (expected a JSON array)`);
  const byOp = new Map<string, OperatorTime>();
  let runs = 0;
  let runMs = 0;
  let kernelMs = 0;
  for (const e of events) {
    const ms = (e.dur ?? 0) / 1000;
    if (e.cat === 'Session' && e.name === 'model_run') {
      runs++;
      runMs += ms;
    } else if (e.cat === 'Node' && e.name?.endsWith('_kernel_time')) {
      const op = e.args?.op_name ?? '?';
      const entry = byOp.get(op) ?? { op, ms: 0, count: 0 };
      entry.ms += ms;
      entry.count++;
      byOp.set(op, entry);
      kernelMs += ms;
    }
  }
  return { file, runs, runMs, kernelMs, operators: [...byOp.values()].sort((a, b) => b.ms - a.ms) };
}

/** The profile files a path names: the file itself, or the `.json` files of a directory, oldest first. */
export function profileFiles(path: string): string[] {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    throw new RingrlError(`${path}: no such file or directory; expected a profile (.json) or the RINGRL_PROFILE dir`);
  }
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith('.json'))
    .map((name) => ({ file: join(path, name), mtime: statSync(join(path, name)).mtimeMs }))
    .sort((a, b) => a.mtime - b.mtime)
    .map((f) => f.file);
}

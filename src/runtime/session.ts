// Compile traced graphs into onnxruntime-node sessions and run them on host buffers.
//
// One session serves every batch size and sequence length (dims are symbolic), so RL's varying
// lengths never recompile. Sessions are cached by a caller-chosen key that names everything the
// graph depends on (model config, loss config, dtype). Inputs are passed zero-copy; outputs come
// back as fresh typed arrays (or are computed into arrays the caller hands `run`), so graphs should
// return small things (gradients, sampled ids, new cache slices), never full logits over a big
// vocabulary.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { type DType, type Tensor, exportOnnx } from '../graph/index.ts';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Uint16Array;

export interface HostTensor {
  dtype: DType;
  data: HostData;
  dims: readonly number[];
}

export function hostTensor(dtype: DType, data: HostData, dims: readonly number[]): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`hostTensor: ${data.length} values for dims [${dims.join(', ')}]`);
  return { dtype, data, dims };
}

export interface RuntimeOptions {
  /** Intra-op threads; default: all cores (ORT's choice). */
  threads?: number;
  /** Execution providers in order of preference; 'cpu' is always appended as the fallback. */
  executionProviders?: string[];
  /**
   * onnxruntime's CPU memory arena (default on): it keeps a run's peak working set for the next
   * run, which is fast for small graphs but holds a second copy of a large model's gradients.
   */
  memoryArena?: boolean;
  /**
   * How long an idle intra-op thread spins for its next piece of work before it sleeps, in µs
   * (onnxruntime's `session.intra_op.spin_duration_us`); 0 = never spin. Default 100: long enough
   * to span the small ops between two parallel kernels, short enough to leave the cores to other
   * processes. onnxruntime's own default spins longer, which makes no difference alone but costs
   * up to 2x at batch-1 decode while another process keeps one of 2 cores busy (docs/graph.md).
   */
  spinMicroseconds?: number;
}

let defaults: RuntimeOptions = {};
const defaultSpinMicroseconds = 100;

/** Set process-wide runtime options (thread count, execution providers) for sessions created later. */
export function configureRuntime(options: RuntimeOptions): void {
  defaults = { ...defaults, ...options };
}

/** Apply a config's `runtime` section (threads 0 = ORT's default; cpu is always the fallback). */
export function configureRuntimeFrom(runtime: { threads: number; execution_providers: string[] }): void {
  configureRuntime({
    ...(runtime.threads > 0 ? { threads: runtime.threads } : {}),
    executionProviders: runtime.execution_providers,
  });
}

const ortType: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/**
 * `RINGRL_PROFILE=DIR`: every session records onnxruntime's per-node trace of its first
 * `RINGRL_PROFILE_RUNS` runs (default 10) to `DIR/ringrl-<pid>-<n>_<time>.json` (Chrome trace
 * format: chrome://tracing, Perfetto); `ringrl profile DIR` sums it by operator.
 */
function profiling(): { dir: string; runs: number } | null {
  const dir = process.env.RINGRL_PROFILE;
  if (!dir) return null;
  const runs = Number(process.env.RINGRL_PROFILE_RUNS ?? 10);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`RINGRL_PROFILE_RUNS: expected an integer >= 1, got '${process.env.RINGRL_PROFILE_RUNS}'`);
  mkdirSync(dir, { recursive: true });
  return { dir: resolve(dir), runs };
}
let profiledSessions = 0;
// Sessions still tracing: a process that exits before their last traced run (or their release)
// would leave a truncated trace, so they end tracing at exit.
const tracing = new Set<ort.InferenceSession>();
function endProfiling(session: ort.InferenceSession): void {
  if (tracing.delete(session)) session.endProfiling();
}

export class CompiledGraph {
  private runs = 0;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: string[],
    readonly outputNames: string[],
    readonly modelBytes: number,
    private readonly profileRuns: number,
  ) {}

  /**
   * `constants` bakes some inputs into the session as initializers (their bytes handed to
   * onnxruntime from memory, see exportOnnx): they are no longer fed at run time, and onnxruntime
   * may pre-pack them for its kernels. The session keeps what it needs; the arrays may be dropped
   * afterwards.
   */
  static async create(
    inputs: readonly Tensor[],
    outputs: Record<string, Tensor>,
    options: RuntimeOptions = {},
    constants: Record<string, HostTensor> = {},
  ): Promise<CompiledGraph> {
    const graph = exportOnnx(inputs, outputs, 'ringrl', new Set(Object.keys(constants)));
    const externalData = Object.entries(graph.constantFiles).map(([name, path]) => {
      const { data } = constants[name]!;
      return { path, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    });
    const { threads, executionProviders, memoryArena, spinMicroseconds } = { ...defaults, ...options };
    const spin = spinMicroseconds ?? defaultSpinMicroseconds;
    const providers = [...(executionProviders ?? []).filter((p) => p !== 'cpu'), 'cpu'];
    const profile = profiling();
    const session = await ort.InferenceSession.create(graph.bytes, {
      ...(profile
        ? { enableProfiling: true, profileFilePrefix: join(profile.dir, `ringrl-${process.pid}-${profiledSessions++}`) }
        : {}),
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: threads ?? 0,
      interOpNumThreads: 1,
      enableCpuMemArena: memoryArena ?? true,
      extra: { session: { intra_op: spin > 0 ? { spin_duration_us: String(spin) } : { allow_spinning: '0' } } },
      ...(externalData.length ? { externalData } : {}),
    });
    if (profile) {
      if (profiledSessions === 1) process.once('exit', () => tracing.forEach(endProfiling));
      tracing.add(session);
    }
    return new CompiledGraph(session, graph.inputNames, graph.outputNames, graph.bytes.length, profile?.runs ?? 0);
  }

  /**
   * Run with every declared input fed; returns every output as a host tensor. Outputs named in
   * `into` are written into those arrays (of the output's exact shape) and returned as they are:
   * onnxruntime computes into them, where any other output is computed into memory of its own and
   * then copied into a new array (a model-sized copy, and a second copy alive meanwhile, for a
   * training step's gradients).
   */
  async run(
    feeds: Record<string, HostTensor>,
    into: Record<string, HostTensor> = {},
  ): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`run: missing input '${name}' (expected ${this.inputNames.join(', ')})`);
      ortFeeds[name] = wrap(t);
    }
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.outputNames) fetches[name] = into[name] ? wrap(into[name]) : null;
    const results = await this.session.run(ortFeeds, fetches);
    if (++this.runs === this.profileRuns) endProfiling(this.session); // writes the trace file
    const out: Record<string, HostTensor> = {};
    for (const name of this.outputNames) {
      const r = results[name]!;
      out[name] = into[name] ?? { dtype: r.type as DType, data: r.data as HostData, dims: r.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    endProfiling(this.session);
    await this.session.release();
  }
}

// ORT tensors wrap host memory without copying, so one wrapper per array serves every run, even
// after in-place updates (the optimizer's, the engine's KV cache). Reusing them saves creating
// dozens of wrappers per run: measurable at batch-1 decode, where a step is a few milliseconds.
const wrappers = new WeakMap<HostData, ort.Tensor>();

function wrap(t: HostTensor): ort.Tensor {
  const cached = wrappers.get(t.data);
  if (
    cached &&
    cached.type === ortType[t.dtype] &&
    cached.dims.length === t.dims.length &&
    cached.dims.every((d, i) => d === t.dims[i])
  )
    return cached;
  const tensor = new ort.Tensor(ortType[t.dtype], t.data as never, t.dims as number[]);
  wrappers.set(t.data, tensor);
  return tensor;
}

const cache = new Map<string, Promise<CompiledGraph>>();

/**
 * The compiled graph for `key` under the current runtime options, building it with `trace` on first
 * use. The key must name everything the traced graph depends on; shapes need not be part of it
 * (dims are symbolic).
 */
export function compileCached(
  key: string,
  trace: () => { inputs: Tensor[]; outputs: Record<string, Tensor> },
  options?: RuntimeOptions,
): Promise<CompiledGraph> {
  // The session options are part of the key: configureRuntime() between two calls must not hand
  // back a session built with the old thread count or providers.
  const { threads, executionProviders, memoryArena, spinMicroseconds } = { ...defaults, ...options };
  const fullKey = `${key}\u0000${JSON.stringify({ threads, executionProviders, memoryArena, spinMicroseconds })}`;
  let entry = cache.get(fullKey);
  if (!entry) {
    const { inputs, outputs } = trace();
    entry = CompiledGraph.create(inputs, outputs, options);
    entry.catch(() => cache.delete(fullKey));
    cache.set(fullKey, entry);
  }
  return entry;
}

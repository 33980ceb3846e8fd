// ProcessSandbox: runs programs in sandboxed processes, warm or cold.
// Warm (default): Python, pytest, bash and the compiled languages run in children forked from a
// pool of zygotes started ahead of time (one run at a time per zygote, each zygote in its own
// bubblewrap namespace; compile and run steps are exec'd from there). JavaScript and TypeScript
// runs take a node process started ahead of time with the run's limits (spares are kept for the
// limits recently asked for). Cold: every run starts its own process (the same code path, started
// on demand) — what the bench compares against.
import os from 'node:os';
import { createHash } from 'node:crypto';
import { transformSync } from 'esbuild';
import { RingrlError } from '../../errors.ts';
import {
  detectIsolation,
  pythonPath,
  nodePath,
  bindsFor,
  type IsolationPlan,
  type SandboxMounts,
} from './isolation.ts';
import {
  PythonZygote,
  NodeRunner,
  nodeLimitsKey,
  failed,
  type RawRun,
  type RawStep,
  type ProgramRequest,
  type ZygoteMode,
} from './process.ts';
import { detectToolchains, hostCacheDir, buildToolchainCache, CACHE_MOUNT, type LanguagePlan } from './toolchains.ts';
import {
  DEFAULT_LIMITS,
  MAX_LIMITS,
  LANGUAGES,
  type CodeSandbox,
  type CompileResult,
  type Language,
  type Limits,
  type RunResult,
  type RunSpec,
  type RunStatus,
  type IsolationLevel,
} from './types.ts';

export interface SandboxOptions {
  /** Keep interpreters started ahead of time (default true). */
  warm?: boolean;
  /** Zygotes = zygote runs (Python, pytest, bash, compiled languages) in parallel (default: 2 × CPUs, at least 8). */
  pythonWorkers?: number;
  /** Node processes kept started ahead of time per set of limits (default: CPUs, at least 2). */
  nodeSpares?: number;
  /** Build toolchain caches (g++ precompiled header, javac class-data archive) in the background on first use (default true). */
  toolchainCache?: boolean;
  /** Default limits for runs that do not set their own. */
  limits?: Partial<Limits>;
  /** Fail instead of falling back to limits-only isolation. */
  requireIsolation?: boolean;
  /** Size of each sandbox's private /work tmpfs, bytes (default 64 MiB); /tmp and /dev/shm get a quarter. */
  workBytes?: number;
}

const MEMORY_MARKERS =
  /\bMemoryError\b|heap out of memory|Fatal process OOM|Allocation failed|Cannot allocate memory|std::bad_alloc|memory allocation of \d+ bytes failed|runtime: out of memory|fatal error: out of memory|cannot allocate \d+ bytes|java\.lang\.OutOfMemoryError|insufficient memory for the Java Runtime|Native memory allocation/;

/** Compile steps get at least this much memory (compilers need more than the programs they build). */
const COMPILE_MEMORY_MB = 2048;
const COMPILE_PROCESSES = 256;
/** Most sets of node runner limits kept warm at once (the default's, then the most recently asked for). */
const NODE_KEYS = 4;
/** Compiled programs kept (by language, compile command, source and files), bytes of base64. */
const COMPILE_CACHE_BYTES = 64 << 20;

interface CompiledEntry {
  artifacts: Record<string, string>;
  compile: RawStep;
  bytes: number;
}

/** Status of a finished run (or step) from what its process reported. */
export function classify(raw: RawStep & { error?: string }, limits: Limits): RunStatus {
  if (raw.error) return 'sandbox_error';
  if (raw.output_exceeded) return 'output_limit';
  if (raw.timed_out) return 'timeout';
  if (raw.signal === 'SIGXCPU' || (raw.signal === 'SIGKILL' && raw.cpu_ms !== null && raw.cpu_ms >= limits.cpuMs * 0.9))
    return 'timeout';
  // Runtimes name the failure first (Go, then a long stack dump) or last (Python, V8, the JVM).
  if (raw.exit_code !== 0 && MEMORY_MARKERS.test(raw.stderr.slice(0, 2000) + '\n' + raw.stderr.slice(-4000)))
    return 'memory';
  if (raw.signal) return 'killed';
  return raw.exit_code === 0 ? 'ok' : 'error';
}

/** Merge and check limits; a value outside (0, max] is a one-line error naming the field. */
export function resolveLimits(base: Limits, override: Partial<Limits> = {}): Limits {
  const limits = { ...base };
  for (const [key, value] of Object.entries(override) as [keyof Limits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in MAX_LIMITS))
      throw new RingrlError(
        `sandbox limits: unknown limit '${key}'; expected one of ${Object.keys(MAX_LIMITS).join(', ')}`,
      );
    if (!Number.isFinite(value) || value <= 0 || value > MAX_LIMITS[key])
      throw new RingrlError(`sandbox limits: ${key} must be a number in (0, ${MAX_LIMITS[key]}], got ${value}`);
    limits[key] = Math.ceil(value);
  }
  return limits;
}

export class ProcessSandbox implements CodeSandbox {
  readonly isolation: IsolationLevel;
  readonly plan: IsolationPlan;
  readonly limits: Limits;
  private readonly warm: boolean;
  private readonly mounts: SandboxMounts;
  private readonly python = pythonPath();
  private readonly node = nodePath();
  readonly pythonWorkers: number;
  private readonly nodeSpares: number;
  private readonly zygotes = new Set<PythonZygote>();
  private readonly idle: PythonZygote[] = [];
  private readonly waiters: { resolve: (z: PythonZygote) => void; reject: (e: Error) => void }[] = [];
  /** Pre-started node runners by limits key; the map's order is least to most recently used. */
  private readonly spares = new Map<string, { limits: Limits; runners: NodeRunner[] }>();
  private readonly plans: Partial<Record<Language, LanguagePlan>>;
  private readonly unavailable: Partial<Record<Language, string>>;
  private readonly hostCache: string;
  private readonly toolchainCache: boolean;
  /** Compile outputs by key, least recently used first; a run of the same source skips its compile step. */
  private readonly compiled = new Map<string, CompiledEntry>();
  private compiledBytes = 0;
  private closed = false;

  constructor(options: SandboxOptions = {}) {
    this.plan = detectIsolation();
    if (options.requireIsolation && this.plan.level !== 'bwrap')
      throw new RingrlError(`sandbox: full isolation required but unavailable: ${this.plan.why}`);
    this.isolation = this.plan.level;
    this.limits = resolveLimits(DEFAULT_LIMITS, options.limits);
    this.warm = options.warm ?? true;
    const cpus = os.availableParallelism();
    this.pythonWorkers = options.pythonWorkers ?? Math.max(8, 2 * cpus);
    this.nodeSpares = options.nodeSpares ?? Math.max(2, cpus);
    this.toolchainCache = options.toolchainCache ?? true;
    this.hostCache = hostCacheDir();
    const workBytes = options.workBytes ?? 64 << 20;
    const bwrap = this.plan.level === 'bwrap';
    this.mounts = {
      workBytes,
      tmpBytes: workBytes,
      asPid1: false,
      extraRoBinds: [...bindsFor(this.python), ...bindsFor(this.node)],
      mappedRoBinds: bwrap ? [[this.hostCache, CACHE_MOUNT]] : [],
    };
    ({ plans: this.plans, unavailable: this.unavailable } = detectToolchains(
      this.python,
      bwrap ? CACHE_MOUNT : this.hostCache,
      this.hostCache,
    ));
  }

  languages(): { available: Language[]; unavailable: Partial<Record<Language, string>> } {
    return { available: LANGUAGES.filter((l) => this.plans[l]), unavailable: { ...this.unavailable } };
  }

  async warmup(): Promise<void> {
    if (!this.warm) return;
    const starting: Promise<void>[] = [];
    while (this.zygotes.size < this.pythonWorkers) {
      const z = this.startZygote();
      this.idle.push(z);
      starting.push(z.ready);
    }
    this.topUpSpares(this.limits);
    for (const { runners } of this.spares.values()) starting.push(...runners.map((r) => r.ready));
    await Promise.all(starting);
  }

  /** Build the toolchain caches of every available language now (what the bench and `serve` warm up with). */
  async buildCaches(): Promise<void> {
    await Promise.all(
      (['cpp', 'java'] as const).filter((l) => this.plans[l]).map((l) => buildToolchainCache(l, this.hostCache)),
    );
  }

  async run(spec: RunSpec): Promise<RunResult> {
    if (this.closed) throw new RingrlError('sandbox: run() after close()');
    const limits = resolveLimits(this.limits, spec.limits);
    if (!LANGUAGES.includes(spec.language))
      throw new RingrlError(`sandbox: language must be one of ${LANGUAGES.join(', ')}, got '${String(spec.language)}'`);
    const plan = this.plans[spec.language];
    if (!plan)
      return this.result(
        { ...failed(this.unavailable[spec.language] ?? `language '${spec.language}' is not available`) },
        limits,
        false,
        spec,
      );
    const compileMs = resolveLimits(this.limits, { wallMs: spec.compileTimeoutMs ?? 10_000 }).wallMs;
    const req: ProgramRequest = {
      code: spec.code,
      stdin: spec.stdin ?? '',
      files: spec.files ?? {},
      fetchFiles: spec.fetchFiles ?? [],
      epilogue: spec.epilogue,
      source: plan.source,
    };
    if (spec.epilogue && plan.kind !== 'python' && plan.kind !== 'node' && plan.kind !== 'typescript')
      throw new RingrlError(
        `sandbox: tests appended to the program (epilogue) are supported for python, javascript and typescript, not ${spec.language}`,
      );
    if (this.toolchainCache && this.warm && (spec.language === 'cpp' || spec.language === 'java'))
      void buildToolchainCache(spec.language, this.hostCache);
    let raw: RawRun;
    let warm = false;
    if (plan.kind === 'node') [raw, warm] = await this.runNode(req, limits, spec.signal);
    else if (plan.kind === 'typescript') {
      const js = transpile(spec.code);
      if (typeof js !== 'string')
        return this.result({ ...failed(''), error: undefined, exit_code: 1, stderr: js.error }, limits, false, spec);
      [raw, warm] = await this.runNode({ ...req, code: js }, limits, spec.signal);
    } else {
      const compileLimits: Limits = {
        ...limits,
        wallMs: compileMs,
        cpuMs: compileMs,
        memoryMb: Math.max(COMPILE_MEMORY_MB, limits.memoryMb),
        processes: Math.max(COMPILE_PROCESSES, limits.processes),
        fileBytes: MAX_LIMITS.fileBytes,
      };
      if (plan.kind !== 'exec') [raw, warm] = await this.runZygote(req, limits, { mode: plan.kind }, spec.signal);
      else [raw, warm] = await this.runExec(plan, req, limits, compileLimits, spec.signal);
    }
    return this.result(raw, limits, warm, spec);
  }

  private result(raw: RawRun, limits: Limits, warm: boolean, spec: RunSpec): RunResult {
    const compile = raw.compile
      ? { ...compileResult(raw.compile), ...(raw.compileCached ? { cached: true } : {}) }
      : undefined;
    const status: RunStatus = raw.compileFailed ? 'compile_error' : classify(raw, limits);
    const result: RunResult = {
      status,
      exit_code: raw.exit_code,
      signal: raw.signal,
      stdout: raw.stdout,
      stderr: raw.stderr,
      wall_ms: Math.round(raw.wall_ms * 100) / 100,
      cpu_ms: raw.cpu_ms === null ? null : Math.round(raw.cpu_ms),
      isolation: this.isolation,
      warm,
    };
    if (spec.fetchFiles?.length) result.files = raw.files;
    if (compile) result.compile = compile;
    if (raw.error) result.message = raw.error;
    return result;
  }

  /** Compile (or reuse the compiled program of the same source) and run. */
  private async runExec(
    plan: LanguagePlan,
    req: ProgramRequest,
    limits: Limits,
    compileLimits: Limits,
    signal?: AbortSignal,
  ): Promise<[RawRun, boolean]> {
    const steps = plan.steps!(limits, compileLimits);
    if (steps.length < 2 || !plan.artifacts) return this.runZygote(req, limits, { mode: 'exec', steps }, signal);
    const key = createHash('sha256')
      .update(JSON.stringify([steps[0]!.argv, steps[0]!.env ?? {}, req.source, req.code, req.files]))
      .digest('hex');
    const hit = this.compiled.get(key);
    if (hit) {
      this.compiled.delete(key);
      this.compiled.set(key, hit);
      const files = { ...req.files, ...hit.artifacts };
      const [raw, warm] = await this.runZygote(
        { ...req, files },
        limits,
        { mode: 'exec', steps: steps.slice(1), executable: Object.keys(hit.artifacts) },
        signal,
      );
      return [{ ...raw, compile: hit.compile, compileCached: true }, warm];
    }
    // Compilers that read their source once can be started ahead of the next run of this command.
    const prestart = plan.prestart && this.warm ? JSON.stringify([steps[0], req.source]) : undefined;
    const [raw, warm] = await this.runZygote(
      req,
      limits,
      { mode: 'exec', steps, artifacts: plan.artifacts, prestart },
      signal,
    );
    if (raw.artifacts && Object.keys(raw.artifacts).length && raw.compile && !raw.compileFailed) {
      const bytes = Object.values(raw.artifacts).reduce((n, b) => n + b.length, 0);
      this.compiled.set(key, { artifacts: raw.artifacts, compile: raw.compile, bytes });
      this.compiledBytes += bytes;
      for (const [k, e] of this.compiled) {
        if (this.compiledBytes <= COMPILE_CACHE_BYTES) break;
        this.compiled.delete(k);
        this.compiledBytes -= e.bytes;
      }
    }
    delete raw.artifacts;
    return [raw, warm];
  }

  private startZygote(): PythonZygote {
    const z = new PythonZygote(this.plan, this.mounts, this.python);
    this.zygotes.add(z);
    z.proc.on('exit', () => {
      this.zygotes.delete(z);
      const at = this.idle.indexOf(z);
      if (at >= 0) this.idle.splice(at, 1);
    });
    return z;
  }

  /**
   * An idle zygote: one that prestarted this run's compile step (`prestarted`), or for pytest the
   * one idle longest of those that have pytest imported (importing it costs a zygote's first pytest
   * run ~150 ms); else the one idle longest without a prestarted compiler, else the one idle longest
   * (it has finished tidying after its last answer and forked its next child).
   */
  private acquire(signal?: AbortSignal, prestarted?: string, pytest = false): Promise<PythonZygote> {
    for (let i = this.idle.length - 1; i >= 0; i--) if (this.idle[i]!.dead) this.idle.splice(i, 1);
    if (this.idle.length > 0) {
      let at = prestarted === undefined ? -1 : this.idle.findIndex((z) => z.prestarted === prestarted);
      if (at < 0 && pytest) at = this.idle.findIndex((z) => z.pytestWarm && z.prestarted === null);
      if (at < 0) at = this.idle.findIndex((z) => z.prestarted === null);
      return Promise.resolve(this.idle.splice(Math.max(0, at), 1)[0]!);
    }
    if (this.zygotes.size < this.pythonWorkers) return Promise.resolve(this.startZygote());
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (z: PythonZygote) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(z);
        },
        reject,
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new RingrlError('sandbox: cancelled while waiting for a worker'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(z: PythonZygote): void {
    if (this.closed) {
      z.kill();
      return;
    }
    if (z.dead) {
      this.zygotes.delete(z);
      // Keep the pool at size: whoever waits gets a fresh zygote.
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(this.startZygote());
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(z);
    else this.idle.push(z);
  }

  private async runZygote(
    req: ProgramRequest,
    limits: Limits,
    how: ZygoteMode,
    signal?: AbortSignal,
  ): Promise<[RawRun, boolean]> {
    if (!this.warm) {
      const z = new PythonZygote(this.plan, this.mounts, this.python);
      try {
        return [await z.run(req, limits, how, signal), false];
      } finally {
        z.kill();
        await z.exited;
      }
    }
    let z: PythonZygote;
    try {
      z = await this.acquire(signal, how.mode === 'exec' ? how.prestart : undefined, how.mode === 'pytest');
    } catch (e) {
      return [failed((e as Error).message), false];
    }
    const warm = await Promise.race([
      z.ready.then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setImmediate(() => r(false))),
    ]);
    try {
      const raw = await z.run(req, limits, how, signal);
      return [raw, warm];
    } finally {
      this.release(z);
    }
  }

  /** Keep `nodeSpares` runners started for these limits; forget the least recently used other limits. */
  private topUpSpares(limits: Limits): void {
    if (!this.warm || this.closed) return;
    const key = nodeLimitsKey(limits);
    const entry = this.spares.get(key) ?? { limits, runners: [] };
    this.spares.delete(key);
    this.spares.set(key, entry);
    const defaultKey = nodeLimitsKey(this.limits);
    for (const [k, old] of this.spares) {
      if (this.spares.size <= NODE_KEYS) break;
      if (k === defaultKey || k === key) continue;
      this.spares.delete(k);
      for (const r of old.runners) r.dispose();
    }
    while (entry.runners.length < this.nodeSpares)
      entry.runners.push(new NodeRunner(this.plan, this.mounts, this.node, limits));
  }

  private async runNode(req: ProgramRequest, limits: Limits, signal?: AbortSignal): Promise<[RawRun, boolean]> {
    let runner: NodeRunner | undefined;
    let warm = false;
    if (this.warm) {
      runner = this.spares.get(nodeLimitsKey(limits))?.runners.shift();
      if (runner)
        warm = await Promise.race([
          runner.ready.then(
            () => true,
            () => false,
          ),
          new Promise<boolean>((r) => setImmediate(() => r(false))),
        ]);
      setImmediate(() => this.topUpSpares(limits));
    }
    runner ??= new NodeRunner(this.plan, this.mounts, this.node, limits);
    try {
      await runner.ready;
    } catch {
      runner.dispose();
      return [failed('node runner did not start'), false];
    }
    const raw = await runner.run(req, limits, signal);
    if (this.plan.level === 'bwrap' && raw.signal === null && raw.exit_code !== null && raw.exit_code > 128) {
      // bubblewrap reports a child killed by signal N as exit status 128 + N.
      const name = Object.entries(os.constants.signals).find(([, n]) => n === raw.exit_code! - 128)?.[0];
      if (name) {
        raw.signal = name;
        raw.exit_code = null;
      }
    }
    return [raw, warm];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const z of this.zygotes) z.kill();
    for (const { runners } of this.spares.values()) for (const r of runners) r.dispose();
    this.spares.clear();
    for (const w of this.waiters.splice(0))
      w.reject(new RingrlError('sandbox: closed while the run was waiting for a worker'));
  }
}

function compileResult(raw: RawStep): CompileResult {
  const limits = { ...DEFAULT_LIMITS, cpuMs: Infinity };
  const status = classify(raw, limits) as CompileResult['status'];
  return {
    status,
    exit_code: raw.exit_code,
    signal: raw.signal,
    stdout: raw.stdout,
    stderr: raw.stderr,
    wall_ms: Math.round(raw.wall_ms * 100) / 100,
  };
}

/** TypeScript to CommonJS by stripping types (esbuild; no type checking, as tsx does); errors as compiler output. */
function transpile(code: string): string | { error: string } {
  try {
    return transformSync(code, {
      loader: 'ts',
      format: 'cjs',
      target: 'node20',
      sourcefile: 'main.ts',
      logLevel: 'silent',
    }).code;
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors;
    if (!errors?.length) return { error: `main.ts: ${(e as Error).message}\n` };
    return {
      error:
        errors
          .map((m) => `main.ts${m.location ? `:${m.location.line}:${m.location.column}` : ''}: error: ${m.text}`)
          .join('\n') + '\n',
    };
  }
}

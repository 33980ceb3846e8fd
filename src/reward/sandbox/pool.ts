// ProcessSandbox: runs programs in sandboxed interpreter processes, warm or cold.
// Warm (default): Python runs are forked from a pool of zygotes started ahead of time (one run at
// a time per zygote, each zygote in its own bubblewrap namespace); JavaScript runs take a node
// process started ahead of time with the default limits. Cold: every run starts its own process
// (the same code path, started on demand) — what the bench compares against.
import os from 'node:os';
import { RingrlError } from '../../errors.ts';
import { detectIsolation, pythonPath, nodePath, bindsFor, type IsolationPlan, type SandboxMounts } from './isolation.ts';
import { PythonZygote, NodeRunner, nodeLimitsKey, failed, type RawRun, type ProgramRequest } from './process.ts';
import { DEFAULT_LIMITS, MAX_LIMITS, type CodeSandbox, type Limits, type RunResult, type RunSpec, type RunStatus, type IsolationLevel } from './types.ts';

export interface SandboxOptions {
  /** Keep interpreters started ahead of time (default true). */
  warm?: boolean;
  /** Python zygotes = Python runs in parallel (default: 2 × CPUs, at least 4). */
  pythonWorkers?: number;
  /** Node processes kept started ahead of time (default: CPUs, at least 2). */
  nodeSpares?: number;
  /** Default limits for runs that do not set their own. */
  limits?: Partial<Limits>;
  /** Fail instead of falling back to limits-only isolation. */
  requireIsolation?: boolean;
  /** Size of each sandbox's private /work tmpfs, bytes (default 64 MiB); /tmp and /dev/shm get a quarter. */
  workBytes?: number;
}

const MEMORY_MARKERS = /\bMemoryError\b|heap out of memory|Fatal process OOM|Allocation failed|Cannot allocate memory|std::bad_alloc/;

/** Status of a finished run from what its process reported. */
export function classify(raw: RawRun, limits: Limits): RunStatus {
  if (raw.error) return 'sandbox_error';
  if (raw.output_exceeded) return 'output_limit';
  if (raw.timed_out) return 'timeout';
  if (raw.signal === 'SIGXCPU' || (raw.signal === 'SIGKILL' && raw.cpu_ms !== null && raw.cpu_ms >= limits.cpuMs * 0.9)) return 'timeout';
  if (raw.exit_code !== 0 && MEMORY_MARKERS.test(raw.stderr.slice(-4000))) return 'memory';
  if (raw.signal) return 'killed';
  return raw.exit_code === 0 ? 'ok' : 'error';
}

/** Merge and check limits; a value outside (0, max] is a one-line error naming the field. */
export function resolveLimits(base: Limits, override: Partial<Limits> = {}): Limits {
  const limits = { ...base };
  for (const [key, value] of Object.entries(override) as [keyof Limits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in MAX_LIMITS)) throw new RingrlError(`sandbox limits: unknown limit '${key}'; expected one of ${Object.keys(MAX_LIMITS).join(', ')}`);
    if (!Number.isFinite(value) || value <= 0 || value > MAX_LIMITS[key]) throw new RingrlError(`sandbox limits: ${key} must be a number in (0, ${MAX_LIMITS[key]}], got ${value}`);
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
  private readonly spares: NodeRunner[] = [];
  private closed = false;

  constructor(options: SandboxOptions = {}) {
    this.plan = detectIsolation();
    if (options.requireIsolation && this.plan.level !== 'bwrap') throw new RingrlError(`sandbox: full isolation required but unavailable: ${this.plan.why}`);
    this.isolation = this.plan.level;
    this.limits = resolveLimits(DEFAULT_LIMITS, options.limits);
    this.warm = options.warm ?? true;
    const cpus = os.availableParallelism();
    this.pythonWorkers = options.pythonWorkers ?? Math.max(4, 2 * cpus);
    this.nodeSpares = options.nodeSpares ?? Math.max(2, cpus);
    const workBytes = options.workBytes ?? 64 << 20;
    this.mounts = { workBytes, tmpBytes: Math.max(1 << 20, workBytes >> 2), asPid1: false, extraRoBinds: [...bindsFor(this.python), ...bindsFor(this.node)] };
  }

  async warmup(): Promise<void> {
    if (!this.warm) return;
    const starting: Promise<void>[] = [];
    while (this.zygotes.size < this.pythonWorkers) {
      const z = this.startZygote();
      this.idle.push(z);
      starting.push(z.ready);
    }
    this.topUpSpares();
    starting.push(...this.spares.map((s) => s.ready));
    await Promise.all(starting);
  }

  async run(spec: RunSpec): Promise<RunResult> {
    if (this.closed) throw new RingrlError('sandbox: run() after close()');
    const limits = resolveLimits(this.limits, spec.limits);
    const req: ProgramRequest = { code: spec.code, stdin: spec.stdin ?? '', files: spec.files ?? {}, fetchFiles: spec.fetchFiles ?? [], epilogue: spec.epilogue };
    let raw: RawRun;
    let warm = false;
    if (spec.language === 'python') [raw, warm] = await this.runPython(req, limits);
    else if (spec.language === 'javascript') [raw, warm] = await this.runNode(req, limits);
    else throw new RingrlError(`sandbox: language must be python or javascript, got '${String(spec.language)}'`);
    const status = classify(raw, limits);
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
    if (raw.error) result.message = raw.error;
    return result;
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

  private acquire(): Promise<PythonZygote> {
    while (this.idle.length > 0) {
      const z = this.idle.pop()!;
      if (!z.dead) return Promise.resolve(z);
    }
    if (this.zygotes.size < this.pythonWorkers) return Promise.resolve(this.startZygote());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(z: PythonZygote): void {
    if (this.closed) return z.kill();
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

  private async runPython(req: ProgramRequest, limits: Limits): Promise<[RawRun, boolean]> {
    if (!this.warm) {
      const z = new PythonZygote(this.plan, this.mounts, this.python);
      try {
        return [await z.run(req, limits), false];
      } finally {
        z.kill();
        await z.exited;
      }
    }
    const z = await this.acquire();
    const warm = await Promise.race([z.ready.then(() => true, () => false), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
    try {
      const raw = await z.run(req, limits);
      return [raw, warm];
    } finally {
      this.release(z);
    }
  }

  private topUpSpares(): void {
    if (!this.warm || this.closed) return;
    while (this.spares.length < this.nodeSpares) this.spares.push(new NodeRunner(this.plan, this.mounts, this.node, this.limits));
  }

  private async runNode(req: ProgramRequest, limits: Limits): Promise<[RawRun, boolean]> {
    let runner: NodeRunner | undefined;
    let warm = false;
    if (this.warm && nodeLimitsKey(limits) === nodeLimitsKey(this.limits)) {
      runner = this.spares.shift();
      if (runner) warm = await Promise.race([runner.ready.then(() => true, () => false), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
      setImmediate(() => this.topUpSpares());
    }
    runner ??= new NodeRunner(this.plan, this.mounts, this.node, limits);
    try {
      await runner.ready;
    } catch {
      runner.dispose();
      return [failed('node runner did not start'), false];
    }
    const raw = await runner.run(req, limits);
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
    for (const s of this.spares.splice(0)) s.dispose();
    for (const w of this.waiters.splice(0)) w.reject(new RingrlError('sandbox: closed while the run was waiting for a worker'));
  }
}

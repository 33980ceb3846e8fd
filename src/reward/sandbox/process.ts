// The two kinds of sandboxed processes and what they report.
// PythonZygote: a long-lived Python that forks one child per run (zygote.py): Python code, pytest,
// or exec'd commands (compile and run steps of the other languages).
// NodeRunner: a pre-started, single-use node process that runs one program (runner.cjs).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, chownSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { wrap, NOBODY, WORKDIR, type IsolationPlan, type SandboxMounts } from './isolation.ts';
import type { Limits } from './types.ts';
import type { ExecStep } from './toolchains.ts';

const ZYGOTE_SOURCE = readFileSync(new URL('./zygote.py', import.meta.url), 'utf8');
const RUNNER_SOURCE = readFileSync(new URL('./runner.cjs', import.meta.url), 'utf8');

/** What a sandboxed process reports about one step (compile or run), before classification. */
export interface RawStep {
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  output_exceeded: boolean;
  wall_ms: number;
  cpu_ms: number | null;
  stdout: string;
  stderr: string;
}

/** What a sandboxed process reports about one run. */
export interface RawRun extends RawStep {
  files: Record<string, string>;
  /** Compiled languages: the compile step; when it failed the run fields are empty. */
  compile?: RawStep;
  compileFailed?: boolean;
  /** The compile step was skipped: `compile` is the earlier compile of the same source. */
  compileCached?: boolean;
  /** What the compile step made (base64 by file name), when asked for. */
  artifacts?: Record<string, string>;
  /** Set when the sandbox failed rather than the program. */
  error?: string;
}

export interface ProgramRequest {
  code: string;
  stdin: string;
  files: Record<string, string>;
  fetchFiles: string[];
  epilogue?: string;
  /** File name of the code in the working directory (default main.py / main.js). */
  source?: string;
}

/** What the zygote runs: Python code, pytest on the code, or commands (compile, run). */
export type ZygoteMode =
  | { mode: 'python' }
  | { mode: 'pytest' }
  | {
      mode: 'exec';
      steps: ExecStep[];
      artifacts?: string[];
      executable?: string[];
      /** After this run, start its compile step ahead of the next request (see `prestarted`). */
      prestart?: string;
    };

const SIGNAL_NAMES = new Map<number, string>();
import { constants } from 'node:os';
for (const [name, num] of Object.entries(constants.signals)) if (!SIGNAL_NAMES.has(num)) SIGNAL_NAMES.set(num, name);

/** A host directory for limits-only mode (no private tmpfs), owned by the sandbox user. */
export function hostWorkdir(plan: IsolationPlan): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-sandbox-'));
  chmodSync(dir, 0o700);
  if (plan.dropUser) chownSync(dir, NOBODY, NOBODY);
  return dir;
}

function killGroup(proc: ChildProcess): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

let nextId = 1;

export class PythonZygote {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  /** Resolves when the zygote process (and with it its namespace) is gone. */
  readonly exited: Promise<void>;
  dead = false;
  /**
   * The key of the compile step this zygote has started ahead of time, blocked on its source (a
   * FIFO): a request with the same compile step skips the compiler's start-up here.
   */
  prestarted: string | null = null;
  /** Has run pytest: pytest is imported in the zygote, so its next pytest run forks it warm. */
  pytestWarm = false;
  private pending: { id: number; resolve: (r: RawRun) => void; timer: NodeJS.Timeout; compiled: boolean } | null = null;
  private cancelled = false;
  private stderrTail = '';
  private readonly hostDir: string | null;

  constructor(plan: IsolationPlan, mounts: SandboxMounts, python: string) {
    this.hostDir = plan.level === 'limits' ? hostWorkdir(plan) : null;
    const argv = wrap(plan, { ...mounts, asPid1: true }, [python, '-I', '-c', ZYGOTE_SOURCE, this.hostDir ?? WORKDIR]);
    this.proc = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: plan.level === 'limits' ? {} : process.env,
    });
    let markReady: () => void = () => {};
    let markFailed: (e: Error) => void = () => {};
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    this.ready.catch(() => {});
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', () => resolve());
      this.proc.on('error', () => resolve());
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
    this.proc.stdin!.on('error', () => {});
    const lines = createInterface({ input: this.proc.stdout! });
    lines.on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.ready) return markReady();
      const pending = this.pending;
      if (!pending || msg.id !== pending.id) return;
      this.pending = null;
      clearTimeout(pending.timer);
      if (typeof msg.error === 'string') pending.resolve(failed(`python zygote: ${msg.error}`));
      else pending.resolve(fromZygote(msg as unknown as ZygoteAnswer, pending.compiled));
    });
    this.proc.on('error', (e) => this.die(`could not start python zygote: ${e.message}`, markFailed));
    this.proc.on('exit', (code, sig) =>
      this.die(
        `python zygote exited (${sig ?? code})${this.stderrTail ? ': ' + this.stderrTail.trim().split('\n').pop() : ''}`,
        markFailed,
      ),
    );
  }

  private die(why: string, markFailed: (e: Error) => void): void {
    if (this.dead) return;
    this.dead = true;
    markFailed(new Error(why));
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      clearTimeout(pending.timer);
      pending.resolve(failed(why));
    }
    if (this.hostDir) rmSync(this.hostDir, { recursive: true, force: true });
  }

  /** Run one program; resolves (never rejects) with the raw report. Aborting kills the zygote. */
  run(
    req: ProgramRequest,
    limits: Limits,
    how: ZygoteMode = { mode: 'python' },
    signal?: AbortSignal,
  ): Promise<RawRun> {
    if (this.dead) return Promise.resolve(failed('python zygote is not running'));
    if (signal?.aborted) return Promise.resolve(failed('cancelled: the client went away'));
    const id = nextId++;
    return new Promise((resolve) => {
      const steps = how.mode === 'exec' ? how.steps : [];
      const budget = steps.length ? steps.reduce((sum, s) => sum + s.limits.wallMs, 0) : limits.wallMs;
      // The zygote enforces the wall limit itself; this only catches a zygote that stopped answering.
      const timer = setTimeout(() => {
        this.kill();
      }, budget + 10_000);
      const onAbort = () => {
        this.cancelled = true;
        this.kill();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        id,
        resolve: (raw) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.cancelled ? failed('cancelled: the client went away') : raw);
        },
        timer,
        compiled: steps.length > 1,
      };
      const message = {
        id,
        mode: how.mode,
        source: req.source ?? 'main.py',
        code: req.code,
        stdin: req.stdin,
        files: req.files,
        fetch_files: req.fetchFiles,
        epilogue: req.epilogue ?? null,
        limits: zygoteLimits(limits),
        steps: steps.map((s) => ({
          argv: s.argv,
          env: s.env ?? {},
          memory_kind: s.memoryKind,
          stdin: s.stdin,
          limits: zygoteLimits(s.limits),
          fifos: s.fifos ?? [],
          own_session: s.ownSession ?? false,
        })),
        artifacts: how.mode === 'exec' ? (how.artifacts ?? []) : [],
        executable: how.mode === 'exec' ? (how.executable ?? []) : [],
        prestart: how.mode === 'exec' && how.prestart !== undefined,
      };
      // The zygote uses (or discards) what it prestarted for this request, and prestarts anew if asked.
      this.prestarted = how.mode === 'exec' && how.prestart !== undefined ? how.prestart : null;
      if (how.mode === 'pytest') this.pytestWarm = true;
      this.proc.stdin!.write(JSON.stringify(message) + '\n');
    });
  }

  kill(): void {
    killGroup(this.proc);
  }
}

interface ZygoteStep extends Omit<RawStep, 'signal'> {
  signal: number | null;
}

interface ZygoteAnswer {
  steps: ZygoteStep[];
  files: Record<string, string>;
  artifacts?: Record<string, string>;
}

function signalName(n: number | null): string | null {
  return typeof n === 'number' ? (SIGNAL_NAMES.get(n) ?? `signal ${n}`) : null;
}

/** The zygote's answer as a RawRun; `compiled`: the request's first step was a compile step. */
function fromZygote(msg: ZygoteAnswer, compiled: boolean): RawRun {
  const steps: RawStep[] = msg.steps.map((s) => ({ ...s, signal: signalName(s.signal) }));
  if (steps.length === 0) return failed('python zygote: no step ran');
  if (!compiled) return { ...steps[steps.length - 1]!, files: msg.files ?? {} };
  const compile = steps[0]!;
  if (steps.length === 1) return { ...EMPTY_STEP, files: {}, compile, compileFailed: true };
  return { ...steps[1]!, files: msg.files ?? {}, compile, artifacts: msg.artifacts };
}

const EMPTY_STEP: RawStep = {
  exit_code: null,
  signal: null,
  timed_out: false,
  output_exceeded: false,
  wall_ms: 0,
  cpu_ms: null,
  stdout: '',
  stderr: '',
};

function zygoteLimits(l: Limits) {
  return {
    wall_ms: l.wallMs,
    cpu_ms: l.cpuMs,
    memory_mb: l.memoryMb,
    output_bytes: l.outputBytes,
    file_bytes: l.fileBytes,
    processes: l.processes,
  };
}

export function failed(error: string): RawRun {
  return { ...EMPTY_STEP, files: {}, error };
}

/** The limits a NodeRunner is started with; runners are reusable only for equal keys. */
export function nodeLimitsKey(l: Limits): string {
  return [l.cpuMs, l.memoryMb, l.fileBytes, l.processes].join(':');
}

export class NodeRunner {
  readonly proc: ChildProcess;
  readonly key: string;
  readonly ready: Promise<void>;
  private readonly hostDir: string | null;
  private exited: Promise<{ code: number | null; signal: string | null }>;
  private filesJson = '';

  constructor(plan: IsolationPlan, mounts: SandboxMounts, node: string, limits: Limits) {
    this.key = nodeLimitsKey(limits);
    this.hostDir = plan.level === 'limits' ? hostWorkdir(plan) : null;
    const cpuS = Math.max(1, Math.ceil(limits.cpuMs / 1000));
    const rlimits = [
      'prlimit',
      `--nproc=${limits.processes}`,
      `--cpu=${cpuS}:${cpuS + 1}`,
      `--data=${limits.memoryMb * 1024 * 1024}`,
      `--fsize=${limits.fileBytes}`,
      '--nofile=256',
      '--core=0',
      '--',
    ];
    const heapMb = Math.max(16, limits.memoryMb - 64);
    const program = [node, `--max-old-space-size=${heapMb}`, '--v8-pool-size=2', '-e', RUNNER_SOURCE];
    // With bwrap the limits are set inside the new user namespace, so RLIMIT_NPROC counts only this sandbox's processes.
    const argv =
      plan.level === 'bwrap'
        ? wrap(plan, { ...mounts, asPid1: false }, [...rlimits, ...program])
        : [...rlimits, ...wrap(plan, mounts, program)];
    this.proc = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
      cwd: this.hostDir ?? undefined,
      env: plan.level === 'limits' ? {} : process.env,
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
      this.proc.on('error', () => resolve({ code: null, signal: null }));
    });
    const control = this.proc.stdio[4] as NodeJS.ReadableStream;
    this.ready = new Promise((resolve, reject) => {
      let sawReady = false;
      control.on('data', (chunk: Buffer) => {
        this.filesJson += chunk.toString();
        if (!sawReady && this.filesJson.includes('\n')) {
          sawReady = true;
          this.filesJson = this.filesJson.slice(this.filesJson.indexOf('\n') + 1);
          resolve();
        }
      });
      void this.exited.then(() => reject(new Error('node runner exited before it was ready')));
    });
    this.ready.catch(() => {});
    for (const s of [this.proc.stdin, this.proc.stdio[3]]) (s as NodeJS.WritableStream).on('error', () => {});
  }

  /** Run one program in this (single-use) process. Aborting kills it. */
  async run(req: ProgramRequest, limits: Limits, signal?: AbortSignal): Promise<RawRun> {
    const start = performance.now();
    const cap = limits.outputBytes;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let outputExceeded = false;
    let timedOut = false;
    const collect = (sink: Buffer[], which: 'out' | 'err') => (chunk: Buffer) => {
      const size = which === 'out' ? (outBytes += chunk.length) : (errBytes += chunk.length);
      if (size - chunk.length < cap) sink.push(chunk);
      if (size > cap && !outputExceeded) {
        outputExceeded = true;
        killGroup(this.proc);
      }
    };
    this.proc.stdout!.on('data', collect(out, 'out'));
    this.proc.stderr!.on('data', collect(err, 'err'));
    const closed = new Promise<void>((resolve) => {
      let open = 2;
      const done = () => --open === 0 && resolve();
      this.proc.stdout!.on('close', done);
      this.proc.stderr!.on('close', done);
    });
    const workdir = this.hostDir ?? WORKDIR;
    const control = this.proc.stdio[3] as NodeJS.WritableStream;
    // Absolute file names under /tmp and /dev/shm are used as they are inside a private namespace.
    const direct = this.hostDir === null;
    control.end(
      JSON.stringify({
        code: req.code,
        epilogue: req.epilogue ?? null,
        files: req.files,
        fetch_files: req.fetchFiles,
        workdir,
        source: req.source ?? 'main.js',
        direct,
      }),
    );
    this.proc.stdin!.end(req.stdin);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(this.proc);
    }, limits.wallMs);
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      killGroup(this.proc);
    };
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const exit = await this.exited;
    signal?.removeEventListener('abort', onAbort);
    const wall = performance.now() - start;
    clearTimeout(timer);
    if (cancelled) {
      this.dispose();
      return failed('cancelled: the client went away');
    }
    // Whatever the program left behind (children that outlived it) goes with its process group / namespace.
    killGroup(this.proc);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    this.dispose();
    let files: Record<string, string> = {};
    try {
      if (this.filesJson.trim()) files = JSON.parse(this.filesJson.trim().split('\n').pop()!);
    } catch {
      files = {};
    }
    return {
      exit_code: exit.code,
      signal: exit.signal,
      timed_out: timedOut,
      output_exceeded: outputExceeded,
      wall_ms: wall,
      cpu_ms: null,
      stdout: Buffer.concat(out).subarray(0, cap).toString('utf8'),
      stderr: Buffer.concat(err).subarray(0, cap).toString('utf8'),
      files,
    };
  }

  dispose(): void {
    killGroup(this.proc);
    if (this.hostDir) rmSync(this.hostDir, { recursive: true, force: true });
  }
}

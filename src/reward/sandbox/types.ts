// The code sandbox's public shapes: what a run asks for, what it returns, and the interface every
// sandbox implementation (warm pool, cold spawn; bubblewrap or limits-only) provides.

export type Language =
  | 'python'
  | 'pytest'
  | 'javascript'
  | 'typescript'
  | 'bash'
  | 'c'
  | 'cpp'
  | 'go'
  | 'java'
  | 'rust';
export const LANGUAGES: readonly Language[] = [
  'python',
  'pytest',
  'javascript',
  'typescript',
  'bash',
  'c',
  'cpp',
  'go',
  'java',
  'rust',
];
/** Other names accepted for a language (SandboxFusion's among them). */
export const LANGUAGE_ALIASES: Readonly<Record<string, Language>> = {
  python3: 'python',
  nodejs: 'javascript',
  js: 'javascript',
  ts: 'typescript',
  'c++': 'cpp',
  golang: 'go',
  sh: 'bash',
};

/**
 * ok: exit code 0 · error: non-zero exit · timeout: wall or CPU limit · memory: out of memory ·
 * output_limit: stdout or stderr over the cap · killed: ended by a signal · compile_error: the
 * compiler failed or passed its limits (`compile` says how; the program did not run) ·
 * sandbox_error: the sandbox itself failed (not the program's fault; safe to retry), or the
 * language's toolchain is not installed here (`message` says so).
 */
export type RunStatus =
  | 'ok'
  | 'error'
  | 'timeout'
  | 'memory'
  | 'output_limit'
  | 'killed'
  | 'compile_error'
  | 'sandbox_error';

/**
 * bwrap: bubblewrap namespaces (user, PID, network, mount, IPC, UTS), read-only system dirs,
 * private /tmp, unprivileged user, rlimits. limits: rlimits, unprivileged user when root and a
 * process group only — no filesystem or network isolation (bubblewrap missing).
 */
export type IsolationLevel = 'bwrap' | 'limits';

export interface Limits {
  /** Wall-clock limit for the run, ms. */
  wallMs: number;
  /** CPU-time limit, ms (rounded up to whole seconds by RLIMIT_CPU). */
  cpuMs: number;
  /** Address space (Python) / data segment + V8 heap (JavaScript), MiB. */
  memoryMb: number;
  /** Cap on stdout and on stderr, bytes each; more ends the run with output_limit. */
  outputBytes: number;
  /** Largest file the program may write, bytes (RLIMIT_FSIZE). */
  fileBytes: number;
  /** Processes + threads the program may have (RLIMIT_NPROC, counted inside its namespace). */
  processes: number;
}

export const DEFAULT_LIMITS: Limits = {
  wallMs: 10_000,
  cpuMs: 10_000,
  memoryMb: 512,
  outputBytes: 1 << 20,
  fileBytes: 16 << 20,
  processes: 64,
};

/** Hard ceilings a request may not exceed (the service and CLI validate against these). */
export const MAX_LIMITS: Limits = {
  wallMs: 120_000,
  cpuMs: 120_000,
  memoryMb: 8192,
  outputBytes: 16 << 20,
  fileBytes: 1 << 30,
  processes: 1024,
};

export interface RunSpec {
  language: Language;
  code: string;
  stdin?: string;
  /** Extra files for the working directory: relative name → base64 content. */
  files?: Record<string, string>;
  /** Files to read back after the run (relative names); returned base64 in `files`. */
  fetchFiles?: string[];
  /** Code run after `code` in the same module (tests; Python and JavaScript only); never written to disk. */
  epilogue?: string;
  limits?: Partial<Limits>;
  /** Wall and CPU limit of the compile step of compiled languages, ms (default 10 000). */
  compileTimeoutMs?: number;
  /** Aborting ends the run (or takes it out of the queue) at once; it reports sandbox_error. */
  signal?: AbortSignal;
}

/** The compile step of a compiled language. */
export interface CompileResult {
  status: Exclude<RunStatus, 'compile_error' | 'sandbox_error'>;
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  wall_ms: number;
  /** The same source was compiled before: this is that compile's result, and its output was reused. */
  cached?: boolean;
}

export interface RunResult {
  status: RunStatus;
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  wall_ms: number;
  cpu_ms: number | null;
  isolation: IsolationLevel;
  /** True when the run used a pre-started interpreter. */
  warm: boolean;
  files?: Record<string, string>;
  /** Compiled languages: the compile step (status compile_error when it failed). */
  compile?: CompileResult;
  /** What went wrong inside the sandbox when status is sandbox_error. */
  message?: string;
}

export interface CodeSandbox {
  readonly isolation: IsolationLevel;
  run(spec: RunSpec): Promise<RunResult>;
  /** Languages whose toolchain is installed here, and why each other one is not. */
  languages(): { available: Language[]; unavailable: Partial<Record<Language, string>> };
  /** Start the pooled interpreters now and wait until they are ready. */
  warmup(): Promise<void>;
  close(): Promise<void>;
}

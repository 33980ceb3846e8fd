// How sandboxed processes are started: bubblewrap when it works here, limits only otherwise.
// Probed once per process by really starting a sandbox; the level goes into every result.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IsolationLevel } from './types.ts';
import { RingrlError } from '../../errors.ts';

export const NOBODY = 65534;

export interface IsolationPlan {
  level: IsolationLevel;
  /** Drop to uid/gid 65534 with setpriv before starting (we are root and setpriv exists). */
  dropUser: boolean;
  /** bwrap run by root maps uid 65534 inside itself (used when unprivileged bwrap is not allowed). */
  bwrapAsRoot: boolean;
  /** Why bubblewrap is not used, when it is not. */
  why?: string;
}

export interface SandboxMounts {
  /** Tmpfs sizes, bytes. */
  workBytes: number;
  tmpBytes: number;
  /** Make the started process PID 1 of the namespace (the Python zygote). */
  asPid1: boolean;
  /** Extra read-only binds for interpreters installed outside /usr. */
  extraRoBinds: string[];
  /** Read-only binds of a host path to another place in the sandbox: [host, sandbox]. */
  mappedRoBinds?: [string, string][];
}

export const WORKDIR = '/work';

/** The JDK's configuration (Debian links $JAVA_HOME/conf to /etc/java-N-openjdk). */
const JAVA_ETC = existsSync('/etc')
  ? readdirSync('/etc')
      .filter((n) => /^java-\d+/.test(n))
      .map((n) => `/etc/${n}`)
  : [];

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return p;
  }
  return null;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function setprivArgs(): string[] {
  return ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs', '--'];
}

/** The bwrap command line (without the program). */
export function bwrapArgs(plan: IsolationPlan, mounts: SandboxMounts): string[] {
  const args = ['bwrap', '--unshare-all', '--unshare-user', '--die-with-parent', '--new-session'];
  if (mounts.asPid1) args.push('--as-pid-1');
  if (plan.bwrapAsRoot) args.push('--uid', String(NOBODY), '--gid', String(NOBODY));
  args.push('--ro-bind', '/usr', '/usr');
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    if (!existsSync(top)) continue;
    const st = lstatSync(top);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else args.push('--ro-bind', top, top);
  }
  for (const p of ['/etc/alternatives', '/etc/ld.so.cache', '/etc/localtime', ...JAVA_ETC])
    if (existsSync(p)) args.push('--ro-bind', p, p);
  for (const p of mounts.extraRoBinds) args.push('--ro-bind', p, p);
  for (const [host, inside] of mounts.mappedRoBinds ?? []) args.push('--ro-bind', host, inside);
  args.push('--proc', '/proc', '--dev', '/dev');
  args.push('--size', String(mounts.tmpBytes), '--tmpfs', '/dev/shm');
  args.push('--size', String(mounts.tmpBytes), '--tmpfs', '/tmp');
  args.push('--size', String(mounts.workBytes), '--tmpfs', WORKDIR);
  args.push('--remount-ro', '/');
  args.push('--chdir', WORKDIR, '--clearenv');
  args.push(
    '--setenv',
    'PATH',
    '/usr/local/bin:/usr/bin:/bin',
    '--setenv',
    'HOME',
    WORKDIR,
    '--setenv',
    'TMPDIR',
    '/tmp',
    '--setenv',
    'LANG',
    'C.UTF-8',
  );
  args.push('--');
  return args;
}

/** Full argv to start `program` under the plan. */
export function wrap(plan: IsolationPlan, mounts: SandboxMounts, program: string[]): string[] {
  if (plan.level === 'limits') return [...(plan.dropUser ? setprivArgs() : []), ...program];
  return [...(plan.dropUser ? setprivArgs() : []), ...bwrapArgs(plan, mounts), ...program];
}

let cached: IsolationPlan | null = null;

/** Detect the strongest isolation that works here (cached). */
export function detectIsolation(): IsolationPlan {
  if (cached) return cached;
  const canDrop = isRoot && which('setpriv') !== null;
  const probeMounts: SandboxMounts = { workBytes: 1 << 20, tmpBytes: 1 << 20, asPid1: false, extraRoBinds: [] };
  let why = 'bwrap (bubblewrap) is not installed';
  if (process.env.RINGRL_SANDBOX_NO_BWRAP === '1') why = 'RINGRL_SANDBOX_NO_BWRAP=1';
  else if (which('bwrap')) {
    const candidates: IsolationPlan[] = [];
    if (canDrop) candidates.push({ level: 'bwrap', dropUser: true, bwrapAsRoot: false });
    candidates.push({ level: 'bwrap', dropUser: false, bwrapAsRoot: isRoot });
    const errors: string[] = [];
    for (const plan of candidates) {
      const argv = wrap(plan, probeMounts, [
        '/bin/sh',
        '-c',
        'test "$(id -u)" = 65534 -o "$(id -u)" != 0 && touch /work/x',
      ]);
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
      if (r.status === 0) return (cached = plan);
      errors.push(
        `${plan.dropUser ? 'unprivileged ' : ''}bwrap: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}`,
      );
    }
    why = `bwrap does not work here (${errors.join('; ')})`;
  }
  cached = { level: 'limits', dropUser: canDrop, bwrapAsRoot: false, why };
  process.stderr.write(
    `ringrl sandbox: WARNING: ${why}; running programs with rlimits only — NO filesystem, network or PID isolation\n`,
  );
  return cached;
}

/** The Python interpreter sandboxes use: $RINGRL_SANDBOX_PYTHON, else /usr/bin/python3, else python3 on PATH. */
export function pythonPath(): string {
  const configured = process.env.RINGRL_SANDBOX_PYTHON;
  if (configured) return configured;
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  const found = which('python3');
  return found ? realpathSync(found) : 'python3';
}

export function nodePath(): string {
  return process.env.RINGRL_SANDBOX_NODE ?? process.execPath;
}

/** Directories to bind read-only so an interpreter outside /usr is visible in the sandbox. */
export function bindsFor(interpreter: string): string[] {
  if (interpreter.startsWith('/usr/') || !interpreter.startsWith('/')) return [];
  if (!existsSync(interpreter))
    throw new RingrlError(
      `sandbox: interpreter ${interpreter} does not exist (set RINGRL_SANDBOX_PYTHON / RINGRL_SANDBOX_NODE to an installed one)`,
    );
  return [dirname(dirname(realpathSync(interpreter)))];
}

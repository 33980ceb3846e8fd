// The languages the sandbox runs and how: which toolchain each needs, where it is installed, and
// the commands of its compile and run steps. Toolchains are looked up once per process, only in
// /usr (the part of the host a bubblewrap sandbox sees). Missing ones make the language
// unavailable with a message naming the Debian package to install.
//
// Cached toolchain start-up (built once per host, in the background, then bound read-only into
// every sandbox): a precompiled bits/stdc++.h for g++ and a class-data-sharing archive of javac's
// classes for the JVM. Go compiles with `go tool compile/link` against the precompiled standard
// library (Go ≤ 1.19 ships it) instead of `go build`; Rust links the standard library dynamically.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  chmodSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Language, Limits } from './types.ts';

/** How a language runs: in the Python zygote, as pytest, in a node runner, or as exec'd commands. */
export type LanguageKind = 'python' | 'pytest' | 'node' | 'typescript' | 'exec';

export interface ExecStep {
  argv: string[];
  env?: Record<string, string>;
  /** 'as': RLIMIT_AS; 'data': RLIMIT_DATA (for runtimes that reserve much more address space than they use). */
  memoryKind: 'as' | 'data';
  limits: Limits;
  /** Whether the step reads the run's stdin (the run step) or /dev/null-like empty input (compile). */
  stdin: boolean;
  /** Files in the working directory the step's commands stream through: FIFOs during the step, gone after it. */
  fifos?: string[];
  /**
   * A toolchain step whose processes stay in the session the step starts and that runs none of
   * the program's code (gcc's stages): after it, that session is killed rather than everything
   * in the namespace, so the next step's child can be forked while it runs (everything is still
   * killed after the last step).
   */
  ownSession?: boolean;
}

export interface LanguagePlan {
  kind: LanguageKind;
  /** File name the code is written to in the working directory. */
  source: string;
  /** exec: the compile step (if any) and the run step. */
  steps?: (run: Limits, compile: Limits) => ExecStep[];
  /** Compiled languages: file name patterns of what the compile step makes and the run step needs (cached by source). */
  artifacts?: string[];
  /**
   * The compile step reads the source once, front to back (gcc's stages run directly): a warm
   * zygote may start it ahead of the next run, blocked on opening the source (a FIFO).
   */
  prestart?: boolean;
}

/** Where toolchain caches live inside the sandbox (bwrap) — the host directory is bound there read-only. */
export const CACHE_MOUNT = '/ringrl-cache';

const SEARCH = ['/usr/local/bin', '/usr/bin', '/bin'];

function tool(name: string): string | null {
  for (const dir of SEARCH) {
    const p = `${dir}/${name}`;
    if (!existsSync(p)) continue;
    const real = realpathSync(p);
    if (real.startsWith('/usr/')) return p;
  }
  return null;
}

const PACKAGES: Partial<Record<Language, string>> = {
  c: 'gcc',
  cpp: 'g++',
  go: 'golang-go',
  java: 'default-jdk-headless',
  rust: 'rustc',
  pytest: 'python3-pytest',
  bash: 'bash',
};

/** The host directory of toolchain caches: private to this user, readable by the sandbox user. */
export function hostCacheDir(): string {
  const dir = process.env.RINGRL_SANDBOX_CACHE ?? join(tmpdir(), `ringrl-sandbox-cache-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = statSync(dir);
  if (process.getuid && st.uid !== process.getuid()) throw new Error(`sandbox cache ${dir} belongs to another user`);
  chmodSync(dir, 0o755);
  return dir;
}

interface Found {
  plans: Partial<Record<Language, LanguagePlan>>;
  unavailable: Partial<Record<Language, string>>;
}

function missing(lang: Language, what: string): string {
  return `language '${lang}' is not available on this sandbox: ${what} is not installed${PACKAGES[lang] ? ` (Debian package ${PACKAGES[lang]})` : ''}`;
}

/** The JVM's run-time options for a memory limit: heap ≈ 60% of it, bounded code cache and metaspace. */
function jvmRunFlags(memoryMb: number): string[] {
  return [
    '-XX:+UseSerialGC',
    '-XX:-UsePerfData',
    `-Xmx${Math.max(32, Math.floor(memoryMb * 0.6))}m`,
    '-XX:ReservedCodeCacheSize=64m',
    '-XX:MaxMetaspaceSize=128m',
    '-Xss8m',
  ];
}

/** Extra data-segment room the JVM needs beyond the Java heap (code cache, metaspace, thread stacks, GC). */
const JVM_OVERHEAD_MB = 512;

/**
 * Detect toolchains. `python` is the interpreter the zygotes run; `cache` is the cache directory
 * as the sandbox sees it (CACHE_MOUNT under bubblewrap, the host path otherwise).
 */
export function detectToolchains(python: string, cache: string, hostCache: string): Found {
  const plans: Partial<Record<Language, LanguagePlan>> = {};
  const unavailable: Partial<Record<Language, string>> = {};
  plans.python = { kind: 'python', source: 'main.py' };
  plans.javascript = { kind: 'node', source: 'main.js' };
  plans.typescript = { kind: 'typescript', source: 'main.ts' };
  if (hasPytest(python)) plans.pytest = { kind: 'pytest', source: 'test_main.py' };
  else unavailable.pytest = missing('pytest', `pytest for ${python}`);

  const bash = tool('bash');
  if (bash)
    plans.bash = {
      kind: 'exec',
      source: 'main.sh',
      steps: (run) => [{ argv: [bash, 'main.sh'], memoryKind: 'as', limits: run, stdin: true }],
    };
  else unavailable.bash = missing('bash', 'bash');

  // The gold linker links a small program faster than ld.bfd (part of Debian's binutils).
  const gold = tool('ld.gold') ? ['-fuse-ld=gold'] : [];
  const gcc = tool('gcc');
  if (gcc) {
    const flags = ['-std=gnu17', '-O2', '-pipe', ...gold, 'main.c', '-o', 'main', '-lm', '-lpthread'];
    const direct = directStages(gcc, flags, cache, hostCache);
    plans.c = {
      kind: 'exec',
      source: 'main.c',
      artifacts: ['main'],
      prestart: direct !== null,
      steps: (run, compile) => [
        cCompileStep(direct ? ['/bin/sh', '-c', direct.command([])] : [gcc, ...flags], compile, direct !== null),
        runMain(run),
      ],
    };
  } else unavailable.c = missing('c', 'gcc');

  const gxx = tool('g++');
  if (gxx) {
    // SandboxFusion's command (g++ -std=c++17, no optimisation); the precompiled header is used when
    // the program's first include is <bits/stdc++.h> (g++ ignores it otherwise).
    const flags = ['-std=c++17', '-pipe', ...gold, 'main.cpp', '-o', 'main', '-lpthread'];
    const direct = directStages(gxx, flags, cache, hostCache);
    plans.cpp = {
      kind: 'exec',
      source: 'main.cpp',
      artifacts: ['main'],
      prestart: direct !== null,
      steps: (run, compile) => {
        const pch = existsSync(join(hostCache, 'pch/bits/stdc++.h.gch')) ? ['-I', `${cache}/pch`] : [];
        const argv = direct
          ? ['/bin/sh', '-c', direct.command(pch)]
          : [gxx, ...flags.slice(0, -4), ...pch, ...flags.slice(-4)];
        return [cCompileStep(argv, compile, direct !== null), runMain(run)];
      },
    };
  } else unavailable.cpp = missing('cpp', 'g++');

  const go = tool('go');
  if (go) {
    const goroot = dirname(dirname(realpathSync(go)));
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const toolDir = join(goroot, 'pkg/tool', `linux_${arch}`);
    const env = {
      GOROOT: goroot,
      GOCACHE: '/tmp/go-cache',
      GOPATH: '/tmp/go',
      GO111MODULE: 'off',
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      CGO_ENABLED: '0',
    };
    const precompiled =
      existsSync(join(goroot, 'pkg', `linux_${arch}`, 'fmt.a')) && existsSync(join(toolDir, 'compile'));
    plans.go = {
      kind: 'exec',
      source: 'main.go',
      artifacts: ['main'],
      steps: (run, compile) => [
        ...(precompiled
          ? [
              {
                argv: [
                  '/bin/sh',
                  '-c',
                  `${toolDir}/compile -p main -complete -o main.o main.go && exec ${toolDir}/link -s -w -o main main.o`,
                ],
                env,
                memoryKind: 'data' as const,
                limits: compile,
                stdin: false,
              },
            ]
          : [
              {
                argv: [go, 'build', '-o', 'main', 'main.go'],
                env,
                memoryKind: 'data' as const,
                limits: compile,
                stdin: false,
              },
            ]),
        { argv: ['./main'], memoryKind: 'data', limits: run, stdin: true },
      ],
    };
  } else unavailable.go = missing('go', 'go');

  const javac = tool('javac');
  const java = tool('java');
  if (javac && java) {
    plans.java = {
      kind: 'exec',
      source: 'Main.java',
      artifacts: ['*.class'],
      steps: (run, compile) => {
        const jsa = existsSync(join(hostCache, 'javac.jsa')) ? [`-J-XX:SharedArchiveFile=${cache}/javac.jsa`] : [];
        return [
          {
            argv: [javac, ...JAVAC_FLAGS, ...jsa, '-encoding', 'UTF-8', '-cp', '.', 'Main.java'],
            memoryKind: 'data',
            limits: compile,
            stdin: false,
          },
          {
            argv: [java, ...jvmRunFlags(run.memoryMb), '-ea', '-cp', '.', 'Main'],
            memoryKind: 'data',
            limits: { ...run, memoryMb: run.memoryMb + JVM_OVERHEAD_MB },
            stdin: true,
          },
        ];
      },
    };
  } else unavailable.java = missing('java', javac ? 'java' : 'javac');

  const rustc = tool('rustc');
  const rustLib = rustc ? rustLibDir(rustc) : null;
  if (rustc) {
    // Linking the standard library dynamically saves most of a small program's link time.
    const dyn = [
      ...(rustLib ? ['-C', 'prefer-dynamic', '-C', `link-arg=-Wl,-rpath,${rustLib}`] : []),
      ...gold.flatMap((g) => ['-C', `link-arg=${g}`]),
    ];
    plans.rust = {
      kind: 'exec',
      source: 'main.rs',
      artifacts: ['main'],
      steps: (run, compile) => [
        {
          argv: [rustc, '--edition', '2021', '-C', 'debuginfo=0', ...dyn, 'main.rs', '-o', 'main'],
          memoryKind: 'data',
          limits: compile,
          stdin: false,
        },
        runMain(run),
      ],
    };
  } else unavailable.rust = missing('rust', 'rustc');
  return { plans, unavailable };
}

interface DirectStages {
  /**
   * The shell command that compiles, assembles and links main.*, with extra compiler flags (`-I
   * dir`). The assembler starts with the compiler and reads its output as it comes, through
   * DIRECT_ASM (a FIFO the zygote makes); the exit status is the first failing stage's.
   */
  command: (compilerFlags: string[]) => string;
}

/** The compiler's assembly output, streamed to the assembler. */
const DIRECT_ASM = 'main.s';

/**
 * The compile step of C or C++: with `direct`, the compiler and assembler are started ahead of the
 * request in a session of their own, the assembler reading the compiler's output from a FIFO.
 */
function cCompileStep(argv: string[], limits: Limits, direct: boolean): ExecStep {
  return { argv, memoryKind: 'data', limits, stdin: false, fifos: direct ? [DIRECT_ASM] : [], ownSession: direct };
}

/** The run step of a compiled program. */
function runMain(limits: Limits): ExecStep {
  return { argv: ['./main'], memoryKind: 'as', limits, stdin: true };
}

const stagesFound = new Map<string, DirectStages | null>();

/**
 * The gcc driver's plan for a compile-and-link (`gcc -###`: the cc1, as and collect2 command lines
 * it would run), read once per process, so a compile runs those stages itself: no driver process,
 * no collect2, and ld.gold without the LTO plugin (which reads every object and archive member
 * the link sees). Same compiler flags, same link line; about 15% of a small C program's compile.
 * null when the plan is not the expected three commands (the driver runs then).
 */
function directStages(driver: string, flags: string[], cache: string, hostCache: string): DirectStages | null {
  const key = [driver, ...flags].join(' ');
  if (stagesFound.has(key)) return stagesFound.get(key)!;
  let found: DirectStages | null = null;
  const ld = tool('ld.gold');
  // Without -pipe: the stages pass files in the (tmpfs) working directory (the assembly through a FIFO).
  const plan = ['-###', ...flags.filter((f) => f !== '-pipe'), '-fno-use-linker-plugin'];
  const r = spawnSync(driver, plan, { encoding: 'utf8', timeout: 10_000 });
  const lines = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l.startsWith(' '))
    .map(shellWords);
  const [cc1, as, collect2] = lines;
  if (ld && r.status === 0 && lines.length === 3 && cc1 && as && collect2) {
    const asm = cc1[cc1.indexOf('-o') + 1];
    const obj = as[as.indexOf('-o') + 1];
    const linkArgs = libraryView(
      collect2.slice(1).filter((a) => !a.startsWith('-fuse-ld=')),
      cache,
      hostCache,
    );
    if (
      /\/cc1(plus)?$/.test(cc1[0]!) &&
      as.at(-1) === asm &&
      collect2[0]!.endsWith('/collect2') &&
      linkArgs.includes(obj!) &&
      !linkArgs.some((a) => a.startsWith('-plugin'))
    ) {
      const sub = (args: string[]) => args.map((a) => (a === asm ? DIRECT_ASM : a === obj ? 'main.o' : a));
      const assembler = as[0]!.startsWith('/') ? as[0]! : (tool(as[0]!) ?? as[0]!);
      // --no-map-whole-files: gold reads only the parts of the libraries it needs (same output, ~2 ms less).
      const stages = [sub(cc1), [assembler, ...sub(as.slice(1))], [ld, '--no-map-whole-files', ...sub(linkArgs)]];
      const line = (argv: string[]) => argv.map(shellQuote).join(' ');
      found = {
        command: (extra) =>
          `${line(stages[1]!)} & a=$!; ${line([stages[0]![0]!, ...extra, ...stages[0]!.slice(1)])}; c=$?; ` +
          `if [ $c != 0 ]; then kill $a 2>/dev/null; exit $c; fi; wait $a || exit $?; exec ${line(stages[2]!)}`,
      };
    }
  }
  stagesFound.set(key, found);
  return found;
}

/**
 * The link line with its library search path (-L, the driver's eight directories, two of them
 * 1,700-entry system directories that gold reads in full) replaced by one small directory of
 * links to exactly the files gold finds there: for each -lNAME the first libNAME.so or
 * libNAME.a in search order, and for each linker script among them (libc.so, libm.so,
 * libgcc_s.so) the files it names, found as gold finds them. The same files go into the link, so
 * the output is the same byte for byte (a test links both ways); ~3 ms less per link. The
 * directory lives in the toolchain cache, named by its contents. The line is returned unchanged
 * when anything is not as expected.
 */
export function libraryView(linkArgs: string[], cache: string, hostCache: string): string[] {
  const dirs = linkArgs.filter((a) => a.startsWith('-L')).map((a) => a.slice(2));
  if (dirs.length === 0 || linkArgs.includes('-L') || linkArgs.some((a) => /^-(Bstatic|static|-sysroot)/.test(a)))
    return linkArgs;
  const links = new Map<string, string>();
  const add = (name: string, path: string): boolean => {
    const had = links.get(name);
    links.set(name, path);
    return had === undefined || had === path;
  };
  const find = (names: string[], where: string[]): string | null => {
    for (const dir of where) for (const name of names) if (existsSync(join(dir, name))) return join(dir, name);
    return null;
  };
  const pending = linkArgs.filter((a) => a.startsWith('-l')).map((a) => a.slice(2));
  const seen = new Set<string>();
  while (pending.length > 0) {
    const lib = pending.pop()!;
    if (seen.has(lib)) continue;
    seen.add(lib);
    // Per directory, the shared library before the archive (gold's -Bdynamic search).
    const path = find([`lib${lib}.so`, `lib${lib}.a`], dirs);
    if (!path || !add(path.slice(path.lastIndexOf('/') + 1), path)) return linkArgs;
    const script = linkerScript(path);
    if (script === null) return linkArgs;
    for (const word of script) {
      if (word.startsWith('-l')) pending.push(word.slice(2));
      else if (!word.startsWith('/')) {
        // A file a script names without a directory: the script's own directory, then the search path.
        const found = find([word], [dirname(path), ...dirs]);
        if (!found || !add(word, found)) return linkArgs;
      }
    }
  }
  const entries = [...links].sort(([a], [b]) => a.localeCompare(b));
  const view = `ld-${createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 16)}`;
  const target = join(hostCache, view);
  try {
    if (!existsSync(target)) {
      const tmp = mkdtempSync(join(hostCache, '.ld-'));
      for (const [file, path] of entries) symlinkSync(path, join(tmp, file));
      chmodSync(tmp, 0o755);
      try {
        renameSync(tmp, target);
      } catch {
        rmSync(tmp, { recursive: true, force: true }); // another process made it first
      }
    }
  } catch {
    return linkArgs;
  }
  const first = linkArgs.findIndex((a) => a.startsWith('-L'));
  const rest = linkArgs.filter((a) => !a.startsWith('-L'));
  return [...rest.slice(0, first), `-L${cache}/${view}`, ...rest.slice(first)];
}

/**
 * The file and library names a linker script's INPUT/GROUP/AS_NEEDED lists hold ([] for an ELF
 * file or archive); null for a script with any other command (it may change the search).
 */
function linkerScript(path: string): string[] | null {
  // The first 64 KiB say what it is (archives such as libc.a run to megabytes: not read whole).
  const head = Buffer.alloc(1 << 16);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const read = head.subarray(0, n);
  if (read.subarray(0, 4).toString('latin1') === '\x7fELF' || read.subarray(0, 7).toString('latin1') === '!<arch>')
    return [];
  const text = read
    .toString('latin1')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/OUTPUT_FORMAT\s*\([^)]*\)/g, ' ');
  const words = text.match(/[^\s()]+/g) ?? [];
  const kept = words.filter((w) => !['GROUP', 'INPUT', 'AS_NEEDED'].includes(w));
  if (kept.some((w) => /^[A-Z_]+$/.test(w) || w.includes('=') || w.includes(';'))) return null;
  return kept;
}

/** Words of one `gcc -###` line (arguments are double-quoted there when they hold special characters). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!,
  );
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

const pytestFound = new Map<string, boolean>();

function hasPytest(python: string): boolean {
  let found = pytestFound.get(python);
  if (found === undefined) {
    found = spawnSync(python, ['-I', '-c', 'import pytest'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
    pytestFound.set(python, found);
  }
  return found;
}

const JAVAC_FLAGS = [
  '-J-XX:+UseSerialGC',
  '-J-XX:TieredStopAtLevel=1',
  '-J-XX:-UsePerfData',
  '-J-Xmx512m',
  '-J-Xshare:auto',
];

function rustLibDir(rustc: string): string | null {
  const root = join(dirname(dirname(realpathSync(rustc))), 'lib/rustlib');
  try {
    for (const target of readdirSync(root)) {
      const dir = join(root, target, 'lib');
      if (existsSync(dir) && readdirSync(dir).some((f) => /^libstd-.*\.so$/.test(f))) return dir;
    }
  } catch {
    /* no rustlib */
  }
  return null;
}

const building = new Map<string, Promise<void>>();

function buildOnce(key: string, target: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  if (existsSync(target)) return Promise.resolve();
  const running = building.get(key);
  if (running !== undefined) return running;
  const tmp = `${target}.${process.pid}.tmp`;
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  const done = new Promise<void>((resolve) => {
    const p = spawn('nice', ['-n', '10', ...argv.map((a) => a.replace('$OUT', tmp))], {
      stdio: 'ignore',
      env: env ?? process.env,
    });
    p.on('error', () => resolve());
    p.on('exit', (code) => {
      try {
        if (code === 0 && existsSync(tmp)) {
          chmodSync(tmp, 0o644);
          renameSync(tmp, target);
        } else rmSync(tmp, { force: true });
      } catch {
        /* another process won the race */
      }
      resolve();
    });
  });
  building.set(key, done);
  return done;
}

/**
 * Build the toolchain caches a language uses, in the background (at low priority); resolves when
 * done. Runs before then simply compile without them.
 */
export function buildToolchainCache(language: Language, hostCache: string): Promise<void> {
  const key = `${language}:${hostCache}`;
  let started = cacheBuilds.get(key);
  if (!started) cacheBuilds.set(key, (started = startCacheBuild(language, hostCache)));
  return started;
}

const cacheBuilds = new Map<string, Promise<void>>();

function startCacheBuild(language: Language, hostCache: string): Promise<void> {
  if (language === 'cpp') {
    const gxx = tool('g++');
    if (!gxx) return Promise.resolve();
    const machine = spawnSync(gxx, ['-dumpmachine'], { encoding: 'utf8' }).stdout.trim();
    const major = spawnSync(gxx, ['-dumpversion'], { encoding: 'utf8' }).stdout.trim().split('.')[0];
    const header = [
      `/usr/include/${machine}/c++/${major}/bits/stdc++.h`,
      `/usr/include/c++/${major}/bits/stdc++.h`,
    ].find((p) => existsSync(p));
    if (!header) return Promise.resolve();
    return buildOnce('cpp', join(hostCache, 'pch/bits/stdc++.h.gch'), [
      gxx,
      '-std=c++17',
      '-x',
      'c++-header',
      header,
      '-o',
      '$OUT',
    ]);
  }
  if (language === 'java') {
    const javac = tool('javac');
    if (!javac) return Promise.resolve();
    // A dynamic CDS archive of the classes javac loads compiling a small program.
    const dir = join(hostCache, 'javac-train');
    mkdirSync(dir, { recursive: true });
    const src = join(dir, 'Main.java');
    const program =
      'import java.util.*;\nimport java.io.*;\npublic class Main { public static void main(String[] a) throws IOException { BufferedReader r = new BufferedReader(new InputStreamReader(System.in)); List<Integer> l = new ArrayList<>(); Map<String, Integer> m = new HashMap<>(); System.out.println(l.size() + m.size()); } }\n';
    writeFileSync(src, program);
    return buildOnce('java', join(hostCache, 'javac.jsa'), [
      javac,
      ...JAVAC_FLAGS.filter((f) => !f.includes('Xshare')),
      '-J-XX:ArchiveClassesAtExit=$OUT',
      '-d',
      dir,
      src,
    ]);
  }
  return Promise.resolve();
}

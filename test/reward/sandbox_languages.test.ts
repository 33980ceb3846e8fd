// The adversarial suite for every language besides Python and JavaScript (sandbox_suite.ts covers
// those): one hostile program per language, compiled once (the compile cache reuses it), told by
// its stdin what to do — add, fork bomb, memory bomb, output flood, write outside the work dir,
// connect to the host, print its environment, kill its parent and everyone, leave an orphan,
// loop forever. Each check runs all languages at once. Languages whose toolchain is missing here
// are skipped with a note (CI installs them all: .ci/run).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ProcessSandbox } from '../../src/reward/sandbox/pool.ts';
import { detectIsolation } from '../../src/reward/sandbox/isolation.ts';
import type { Language, Limits, RunResult } from '../../src/reward/sandbox/types.ts';

const SECRET = `hunter3-${randomBytes(8).toString('hex')}`;
process.env.RINGRL_LANG_TEST_SECRET = SECRET;
const full = detectIsolation().level === 'bwrap';
// Java's JVM alone runs ~20 threads, which RLIMIT_NPROC counts: the fork bomb leaves room for them.
const FORK_PROCESSES = 48;

const C_LIKE = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <arpa/inet.h>
#include <sys/socket.h>
extern char **environ;
int main(void) {
  char cmd[64] = {0}, arg[256] = {0};
  if (scanf("%63s", cmd) != 1) return 2;
  if (!strcmp(cmd, "sum")) { long a, b; if (scanf("%ld %ld", &a, &b) != 2) return 2; printf("%ld\\n", a + b); return 0; }
  if (!strcmp(cmd, "fork")) { int n = 0; for (;;) { pid_t p = fork(); if (p < 0) break; if (p == 0) { sleep(60); _exit(0); } n++; } printf("blocked %d\\n", n); return 0; }
  if (!strcmp(cmd, "mem")) {
    for (;;) {
#ifdef __cplusplus
      char *p = new char[50 << 20];
#else
      char *p = (char *)malloc(50 << 20);
      if (!p) { fprintf(stderr, "Cannot allocate memory\\n"); return 1; }
#endif
      memset(p, 1, 50 << 20);
    }
  }
  if (!strcmp(cmd, "flood")) for (;;) fputs("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n", stdout);
  if (!strcmp(cmd, "write")) { while (scanf("%255s", arg) == 1) { FILE *f = fopen(arg, "w"); if (f && fputs("x", f) >= 0 && fclose(f) == 0) printf("wrote %s\\n", arg); } return 0; }
  if (!strcmp(cmd, "net")) {
    int port = 0; if (scanf("%d", &port) != 1) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in sa; memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET; sa.sin_port = htons(port); sa.sin_addr.s_addr = htonl(0x7f000001);
    puts(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 ? "connected" : "failed"); return 0;
  }
  if (!strcmp(cmd, "env")) { for (char **e = environ; *e; e++) puts(*e); return 0; }
  if (!strcmp(cmd, "kill")) { kill(getppid(), SIGKILL); kill(1, SIGKILL); kill(-1, SIGKILL); puts("alive"); return 0; }
  if (!strcmp(cmd, "orphan")) {
    if (scanf("%255s", arg) != 1) return 2;
    char line[300]; snprintf(line, sizeof line, "sleep 120; echo %s", arg);
    if (fork() == 0) { setsid(); execl("/bin/sh", "sh", "-c", line, (char *)0); _exit(1); }
    puts("spawned"); return 0;
  }
  if (!strcmp(cmd, "loop")) { volatile unsigned long i = 0; for (;;) i++; }
  return 3;
}
`;

const PROGRAMS: Partial<Record<Language, string>> = {
  c: C_LIKE,
  cpp: C_LIKE,
  go: `package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	r := bufio.NewReader(os.Stdin)
	var cmd string
	fmt.Fscan(r, &cmd)
	switch cmd {
	case "sum":
		var a, b int64
		fmt.Fscan(r, &a, &b)
		fmt.Println(a + b)
	case "fork":
		n := 0
		for exec.Command("/bin/sleep", "60").Start() == nil {
			n++
		}
		fmt.Println("blocked", n)
	case "mem":
		var keep [][]byte
		for {
			b := make([]byte, 50<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "flood":
		w := bufio.NewWriter(os.Stdout)
		for {
			w.WriteString("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n")
		}
	case "write":
		for {
			var p string
			if _, err := fmt.Fscan(r, &p); err != nil {
				break
			}
			if os.WriteFile(p, []byte("x"), 0o644) == nil {
				fmt.Println("wrote", p)
			}
		}
	case "net":
		var port int
		fmt.Fscan(r, &port)
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			fmt.Println("connected")
		} else {
			fmt.Println("failed")
		}
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "kill":
		syscall.Kill(os.Getppid(), syscall.SIGKILL)
		syscall.Kill(1, syscall.SIGKILL)
		syscall.Kill(-1, syscall.SIGKILL)
		fmt.Println("alive")
	case "orphan":
		var m string
		fmt.Fscan(r, &m)
		c := exec.Command("/bin/sh", "-c", "sleep 120; echo "+m)
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		c.Start()
		fmt.Println("spawned")
	case "loop":
		i := 0
		for {
			i++
			if i < 0 {
				fmt.Println(i)
			}
		}
	}
}
`,
  java: `import java.io.*;
import java.net.*;
import java.util.*;

public class Main {
  public static void main(String[] args) throws Exception {
    Scanner s = new Scanner(System.in);
    String cmd = s.next();
    switch (cmd) {
      case "sum": System.out.println(s.nextLong() + s.nextLong()); break;
      case "fork": {
        int n = 0; List<Process> kids = new ArrayList<>();
        try { for (;;) { kids.add(new ProcessBuilder("/bin/sleep", "60").start()); n++; } } catch (IOException | Error e) { }
        System.out.println("blocked " + n); break;
      }
      case "mem": { List<long[]> keep = new ArrayList<>(); for (;;) keep.add(new long[1 << 22]); }
      case "flood": for (;;) System.out.println("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
      case "write":
        while (s.hasNext()) { String p = s.next(); try (FileWriter w = new FileWriter(p)) { w.write("x"); System.out.println("wrote " + p); } catch (IOException e) { } }
        break;
      case "net": {
        int port = s.nextInt();
        try (Socket c = new Socket()) { c.connect(new InetSocketAddress("127.0.0.1", port), 1000); System.out.println("connected"); } catch (IOException e) { System.out.println("failed"); }
        break;
      }
      case "env": System.getenv().forEach((k, v) -> System.out.println(k + "=" + v)); break;
      case "kill":
        ProcessHandle.current().parent().ifPresent(ProcessHandle::destroyForcibly);
        ProcessHandle.of(1).ifPresent(ProcessHandle::destroyForcibly);
        System.out.println("alive"); break;
      case "orphan": new ProcessBuilder("/usr/bin/setsid", "/bin/sh", "-c", "sleep 120; echo " + s.next()).start(); System.out.println("spawned"); break;
      case "loop": { long i = 0; for (;;) i++; }
    }
  }
}
`,
  rust: `use std::io::{stdin, stdout, Read, Write};
use std::process::Command;

fn main() {
    let mut s = String::new();
    stdin().read_to_string(&mut s).unwrap();
    let w: Vec<&str> = s.split_whitespace().collect();
    match w[0] {
        "sum" => println!("{}", w[1].parse::<i64>().unwrap() + w[2].parse::<i64>().unwrap()),
        "fork" => {
            let mut kids = vec![];
            while let Ok(c) = Command::new("/bin/sleep").arg("60").spawn() { kids.push(c); }
            println!("blocked {}", kids.len());
        }
        "mem" => { let mut keep: Vec<Vec<u8>> = vec![]; loop { keep.push(vec![1u8; 50 << 20]); } }
        "flood" => { let o = stdout(); let mut l = o.lock(); loop { if writeln!(l, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_err() { return; } } }
        "write" => for p in &w[1..] { if std::fs::write(p, "x").is_ok() { println!("wrote {}", p); } },
        "net" => {
            let ok = std::net::TcpStream::connect(("127.0.0.1", w[1].parse::<u16>().unwrap())).is_ok();
            println!("{}", if ok { "connected" } else { "failed" });
        }
        "env" => for (k, v) in std::env::vars() { println!("{}={}", k, v); },
        "kill" => {
            println!("alive");
            stdout().flush().unwrap();
            let _ = Command::new("/bin/sh").arg("-c").arg(format!("kill -9 {} 1", std::os::unix::process::parent_id())).status();
        }
        "orphan" => { Command::new("/usr/bin/setsid").args(["/bin/sh", "-c", &format!("sleep 120; echo {}", w[1])]).spawn().unwrap(); println!("spawned"); }
        "loop" => { let mut i: u64 = 1; while i != 0 { i = i.wrapping_add(2); } }
        _ => std::process::exit(3),
    }
}
`,
  bash: `read -r cmd rest
case $cmd in
  sum) set -- $rest; echo $(( $1 + $2 ));;
  fork) n=0; while [ $n -lt 5000 ] && sleep 60 2>/dev/null & do n=$((n + 1)); done 2>/dev/null; echo "blocked $n";;
  mem) a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done;;
  flood) while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done;;
  write) for p in $rest; do (echo x > "$p") 2>/dev/null && echo "wrote $p"; done;;
  net) if (exec 3<>/dev/tcp/127.0.0.1/$rest) 2>/dev/null; then echo connected; else echo failed; fi;;
  env) env;;
  kill) kill -9 $PPID 1 2>/dev/null; kill -9 -1 2>/dev/null; echo alive;;
  orphan) setsid /bin/sh -c "sleep 120; echo $rest" >/dev/null 2>&1 & echo spawned;;
  loop) while :; do :; done;;
esac
`,
  typescript: `import * as fs from 'fs';
import * as net from 'net';
import { spawn } from 'child_process';
const [cmd, ...rest]: string[] = fs.readFileSync(0, 'utf8').trim().split(/\\s+/);
const actions: Record<string, () => void> = {
  sum: () => console.log(Number(rest[0]) + Number(rest[1])),
  fork: () => {
    let n = 0;
    try { for (;;) { const c = spawn('/bin/sleep', ['60']); c.on('error', () => {}); if (c.pid === undefined) break; n++; if (n > 2000) break; } } catch {}
    console.log('blocked', n);
  },
  mem: () => { const keep: number[][] = []; for (;;) keep.push(new Array(1e6).fill(1.5)); },
  flood: () => { for (;;) fs.writeSync(1, 'x'.repeat(1000)); },
  write: () => { for (const p of rest) { try { fs.writeFileSync(p, 'x'); console.log('wrote', p); } catch {} } },
  net: () => { const s = net.connect(Number(rest[0]), '127.0.0.1'); s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', () => console.log('failed')); },
  env: () => console.log(JSON.stringify(process.env)),
  kill: () => { for (const pid of [process.ppid, 1, -1]) { try { process.kill(pid, 'SIGKILL'); } catch {} } console.log('alive'); },
  orphan: () => { spawn('/bin/sh', ['-c', \`sleep 120; echo \${rest[0]}\`], { detached: true, stdio: 'ignore' }).unref(); console.log('spawned'); },
  loop: () => { for (;;) {} },
};
actions[cmd!]!();
`,
};

// pytest reads its orders from a file (pytest owns stdin); each test fails on purpose so pytest
// shows what it printed.
const PYTEST = `import os, socket, subprocess, signal, sys
CMD = open('cmd.txt').read().split()

def test_action():
    c = CMD[0]
    if c == 'sum':
        assert int(CMD[1]) + int(CMD[2]) == 5
        return
    if c == 'fork':
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    import time
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError:
            pass
        print('blocked', n)
    if c == 'mem':
        keep = []
        while True:
            keep.append(bytearray(50 << 20))
    if c == 'write':
        for p in CMD[1:]:
            try:
                open(p, 'w').write('x')
                print('wrote', p)
            except OSError:
                pass
    if c == 'net':
        try:
            socket.create_connection(('127.0.0.1', int(CMD[1])), timeout=1).close()
            print('connected')
        except OSError:
            print('failed')
    if c == 'env':
        print(dict(os.environ))
    if c == 'kill':
        for pid in (os.getppid(), 1, -1):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        print('alive')
    if c == 'orphan':
        subprocess.Popen(['/bin/sh', '-c', 'sleep 120; echo ' + CMD[1]], start_new_session=True)
        print('spawned')
    if c == 'loop':
        while True:
            pass
    assert False, 'show the output'
`;

/** Processes of the sandbox user on the host, with their command lines (not the sandbox's own: bwrap, zygotes, node runners). */
function sandboxUserProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!/^Uid:\s+65534\b/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (/^(bwrap|prlimit) |ringrl (Python zygote|JavaScript runner)/.test(cmdline)) continue;
      found.push(`${pid} ${cmdline}`);
    } catch {
      // gone while we looked
    }
  }
  return found;
}

async function eventually<T>(probe: () => T, check: (v: T) => boolean): Promise<T> {
  let value = probe();
  for (let i = 0; i < 60 && !check(value); i++) {
    await new Promise((r) => setTimeout(r, 50));
    value = probe();
  }
  return value;
}

describe('every language, hostile programs', () => {
  let sandbox: ProcessSandbox;
  let langs: Language[] = [];
  const run = (language: Language, input: string, limits: Partial<Limits> = {}) =>
    language === 'pytest'
      ? sandbox.run({
          language,
          code: PYTEST,
          files: { 'cmd.txt': Buffer.from(input).toString('base64') },
          limits: { wallMs: 10_000, cpuMs: 4000, ...limits },
        })
      : sandbox.run({
          language,
          code: PROGRAMS[language]!,
          stdin: input,
          limits: { wallMs: 10_000, cpuMs: 4000, ...limits },
          compileTimeoutMs: 60_000,
        });
  /** Run the same input in every language at once; results by language. */
  const all = async (input: string | ((l: Language) => string), limits: Partial<Limits> = {}) => {
    const results = await Promise.all(langs.map((l) => run(l, typeof input === 'string' ? input : input(l), limits)));
    return new Map(langs.map((l, i) => [l, results[i]!] as const));
  };
  const show = (l: Language, r: RunResult) =>
    `${l}: ${r.status} ${r.message ?? ''} ${r.compile?.stderr.slice(0, 300) ?? ''} ${r.stderr.slice(0, 300)}`;

  before(async () => {
    sandbox = new ProcessSandbox({ pythonWorkers: 8, nodeSpares: 1, toolchainCache: false });
    await sandbox.warmup();
    const { available, unavailable } = sandbox.languages();
    for (const [l, why] of Object.entries(unavailable)) console.log(`# skipping ${l}: ${why}`);
    langs = (['pytest', 'typescript', 'bash', 'c', 'cpp', 'go', 'java', 'rust'] as Language[]).filter((l) =>
      available.includes(l),
    );
  });
  after(() => sandbox.close());

  test('CI has every toolchain', () => {
    if (process.env.CI) assert.deepEqual(sandbox.languages().unavailable, {});
  });

  test('each program compiles once and adds (the compile is cached afterwards)', async () => {
    for (const [l, r] of await all('sum 2 3')) {
      assert.equal(r.status, 'ok', show(l, r));
      if (l !== 'pytest') assert.equal(r.stdout, '5\n', l);
    }
    for (const [l, r] of await all('sum 40 2')) {
      if (l !== 'pytest') assert.equal(r.stdout, '42\n', l);
      if (r.compile) assert.equal(r.compile.cached, true, l);
    }
  });

  test('infinite loop: timeout', async () => {
    for (const [l, r] of await all('loop', { wallMs: 2500, cpuMs: 1000 }))
      assert.equal(r.status, 'timeout', show(l, r));
  });

  test('fork bomb: bounded, nothing survives, the sandbox keeps working', async () => {
    const before = sandboxUserProcesses().length;
    for (const [l, r] of await all('fork', { processes: FORK_PROCESSES, wallMs: 6000 })) {
      assert.notEqual(r.status, 'sandbox_error', show(l, r));
      const forked = /blocked (\d+)/.exec(r.stdout)?.[1];
      if (forked !== undefined) assert.ok(Number(forked) < FORK_PROCESSES, `${l} forked ${forked}`);
    }
    const left = await eventually(
      () => sandboxUserProcesses(),
      (p) => p.length <= before,
    );
    assert.ok(left.length <= before, `forked children outlived the run: ${left.slice(0, 5).join('; ')}`);
    for (const [l, r] of await all('sum 2 3')) assert.equal(r.status, 'ok', show(l, r));
  });

  test('memory bomb: memory status', async () => {
    for (const [l, r] of await all('mem', { memoryMb: 256, wallMs: 15_000, cpuMs: 10_000 })) {
      // pytest reports the MemoryError as a failed test (on stdout).
      if (l === 'pytest') assert.match(r.stdout, /MemoryError/, show(l, r));
      else assert.equal(r.status, 'memory', show(l, r));
    }
  });

  test('output flood: output_limit, output capped', async () => {
    const flooding = langs.filter((l) => l !== 'pytest'); // pytest captures output into its own buffer
    const results = await Promise.all(flooding.map((l) => run(l, 'flood', { outputBytes: 100_000, wallMs: 10_000 })));
    results.forEach((r, i) => {
      assert.equal(r.status, 'output_limit', show(flooding[i]!, r));
      assert.ok(r.stdout.length <= 100_000);
    });
  });

  test('environment secrets are not visible', async () => {
    for (const [l, r] of await all('env')) {
      assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), `${l} leaked the secret`);
      assert.doesNotMatch(r.stdout, /RINGRL_LANG_TEST_SECRET/, l);
    }
  });

  test('no writes outside the working directory', { skip: !full && 'needs bubblewrap (mount namespace)' }, async () => {
    const hostFile = join(tmpdir(), `ringrl-escape-${randomBytes(6).toString('hex')}`);
    for (const [l, r] of await all(
      `write /etc/ringrl-x /usr/ringrl-x /ringrl-x ../ringrl-x /proc/ringrl-x ${hostFile}`,
    )) {
      const wrote = [...r.stdout.matchAll(/wrote (\S+)/g)].map((m) => m[1]).filter((p) => p !== hostFile);
      assert.deepEqual(wrote, [], show(l, r));
    }
    assert.equal(existsSync(hostFile), false);
  });

  test('no network: connecting to the host fails', {
    skip: !full && 'needs bubblewrap (network namespace)',
  }, async () => {
    let connections = 0;
    const server: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const results = await all(`net ${port}`);
    server.close();
    for (const [l, r] of results) assert.match(r.stdout, /failed/, show(l, r));
    assert.equal(connections, 0);
  });

  test('killing the parent and everyone: the sandbox and the host are fine', {
    skip: !full && 'needs bubblewrap (PID namespace)',
  }, async () => {
    for (const [l, r] of await all('kill')) assert.ok(['ok', 'killed', 'error'].includes(r.status), show(l, r));
    for (let i = 0; i < 2; i++) for (const [l, r] of await all('sum 2 3')) assert.equal(r.status, 'ok', show(l, r));
  });

  test('orphaned children are killed with the run', { skip: !full && 'needs bubblewrap (PID namespace)' }, async () => {
    const marker = `ringrl-orphan-${randomBytes(6).toString('hex')}`;
    for (const [l, r] of await all(`orphan ${marker}`)) assert.match(r.stdout, /spawned/, show(l, r));
    const survivors = await eventually(
      () => sandboxUserProcesses().filter((p) => p.includes(marker)),
      (s) => s.length === 0,
    );
    assert.deepEqual(survivors, []);
  });
});

describe('C and C++: the compile step started ahead of the next run', { skip: !full && 'needs bubblewrap' }, () => {
  // One zygote, so every run after the first finds the compiler its predecessor started.
  let warm: ProcessSandbox;
  let cold: ProcessSandbox;
  before(async () => {
    warm = new ProcessSandbox({ pythonWorkers: 1, nodeSpares: 1, toolchainCache: false });
    cold = new ProcessSandbox({ warm: false, toolchainCache: false });
    await warm.warmup();
  });
  after(async () => {
    await warm.close();
    await cold.close();
  });
  const probes: [Language, string][] = [
    ['c', 'int main(void) { return undefined_thing; }\n'],
    [
      'c',
      '#include <stdio.h>\nint main(void) {\n  char b[200] = {0};\n  FILE *f = fopen(__FILE__, "r");\n  fread(b, 1, 199, f);\n  printf("%s|%s|%d\\n", __FILE__, b, __INCLUDE_LEVEL__);\n}\n',
    ],
    ['c', '#include <stdio.h>\nint main(void) { int x = 1 / 0; printf("%d\\n", x) }\n'],
    ['cpp', '#include <bits/stdc++.h>\nint main() { std::cout << std::string(__FILE__) << undefined_thing; }\n'],
    ['cpp', '#include <iostream>\nint main() { std::cout << __FILE__ << " " << __LINE__ << std::endl; }\n'],
  ];

  test('gives what a compile started for the run gives (diagnostics, __FILE__, the source read back)', async () => {
    const available = warm.languages().available;
    for (const [language, code] of probes) {
      if (!available.includes(language)) continue;
      // Twice: the first may run without a prestarted compiler, the second has one.
      for (let i = 0; i < 2; i++) {
        const spec = { language, code: `${code}// ${i}\n`, compileTimeoutMs: 60_000 };
        const [w, c] = [await warm.run(spec), await cold.run(spec)];
        assert.equal(w.status, c.status, `${language}: ${w.compile?.stderr}`);
        assert.equal(w.compile?.stderr, c.compile?.stderr, language);
        assert.equal(w.stdout, c.stdout, language);
      }
    }
  });

  test('a Python run after a C run finds no compiler running and no FIFO in its directory', async () => {
    if (!warm.languages().available.includes('c')) return;
    const r = await warm.run({ language: 'c', code: 'int main(void) { return 0; }\n' });
    assert.equal(r.status, 'ok', r.compile?.stderr);
    const look = await warm.run({
      language: 'python',
      code: 'import os\nprint(sorted(os.listdir(".")))\nprint(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == sorted({1, os.getpid()}))',
    });
    assert.equal(look.stdout, "['main.py']\nTrue\n", look.stderr);
  });
});

// One adversarial suite, run against every sandbox configuration (warm pool and cold spawn;
// sandbox_warm.test.ts and sandbox_cold.test.ts run it, in parallel).
// Each hostile program must be contained with the right status, and the sandbox must keep
// working afterwards. Filesystem/network/PID containment needs bubblewrap: those tests run when
// it works here and are REQUIRED on CI (process.env.CI).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ProcessSandbox, type SandboxOptions } from '../../src/reward/sandbox/pool.ts';
import { detectIsolation } from '../../src/reward/sandbox/isolation.ts';
import { runCodeTests } from '../../src/reward/code.ts';

// Set before any sandbox starts, so a leak would show it.
const SECRET = `hunter2-${randomBytes(8).toString('hex')}`;
process.env.RINGRL_TEST_SECRET = SECRET;

const plan = detectIsolation();
const full = plan.level === 'bwrap';

test('isolation: bubblewrap is used where it works, and CI requires it', () => {
  if (process.env.CI) assert.equal(plan.level, 'bwrap', `CI requires full isolation: ${plan.why}`);
  if (!full) console.log(`# WARNING: sandbox isolation is limits-only here (${plan.why}); skipping containment tests`);
  assert.ok(plan.level === 'bwrap' || plan.why);
});

const FAST = { wallMs: 4000, cpuMs: 2000 };

/** Poll until check() holds (namespace teardown is asynchronous), then return its last value. */
async function eventually<T>(probe: () => T, check: (v: T) => boolean): Promise<T> {
  let value = probe();
  for (let i = 0; i < 40 && !check(value); i++) {
    await new Promise((r) => setTimeout(r, 50));
    value = probe();
  }
  return value;
}

/** Processes of the sandbox user on the host, with their command lines (read from /proc). */
function sandboxUserProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!/^Uid:\s+65534\b/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) continue;
      found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

export function suite(name: string, options: SandboxOptions) {
  describe(`sandbox (${name})`, () => {
    let sandbox: ProcessSandbox;
    before(async () => {
      sandbox = new ProcessSandbox(options);
      await sandbox.warmup();
    });
    after(() => sandbox.close());

    test('runs Python and JavaScript with stdin, stdout, stderr and exit codes', async () => {
      const py = await sandbox.run({
        language: 'python',
        code: 'import sys\nprint(input()[::-1])\nprint("err", file=sys.stderr)\nsys.exit(3)',
        stdin: 'hello\n',
      });
      assert.deepEqual([py.status, py.exit_code, py.stdout, py.stderr], ['error', 3, 'olleh\n', 'err\n']);
      assert.equal(py.isolation, plan.level);
      const js = await sandbox.run({
        language: 'javascript',
        code: 'const s = require("fs").readFileSync(0, "utf8"); console.log(s.trim().toUpperCase(), require.main === module)',
        stdin: 'abc',
      });
      assert.deepEqual([js.status, js.exit_code, js.stdout], ['ok', 0, 'ABC true\n']);
      const thrown = await sandbox.run({ language: 'python', code: 'raise ValueError("boom")' });
      assert.equal(thrown.status, 'error');
      assert.match(thrown.stderr, /main\.py", line 1[\s\S]*ValueError: boom/);
      assert.doesNotMatch(thrown.stderr, /zygote|in child/);
    });

    test('files go in and come back; the working directory starts empty', async () => {
      const files = { 'data/in.txt': Buffer.from('41').toString('base64') };
      for (const language of ['python', 'javascript'] as const) {
        const code =
          language === 'python'
            ? 'import os\nprint(sorted(os.listdir(".")))\nopen("out.txt", "w").write(str(int(open("data/in.txt").read()) + 1))'
            : 'const fs = require("fs"); console.log(JSON.stringify(fs.readdirSync(".").sort())); fs.writeFileSync("out.txt", String(Number(fs.readFileSync("data/in.txt", "utf8")) + 1))';
        const r = await sandbox.run({ language, code, files, fetchFiles: ['out.txt'] });
        assert.equal(r.status, 'ok', r.stderr);
        assert.match(r.stdout, language === 'python' ? /\['data', 'main.py'\]/ : /\["data","main.js"\]/);
        assert.equal(Buffer.from(r.files?.['out.txt'] ?? '', 'base64').toString(), '42');
      }
    });

    test('infinite loop: timeout (CPU limit and wall limit), both languages', async () => {
      const busy = await sandbox.run({
        language: 'python',
        code: 'while True: pass',
        limits: { wallMs: 10_000, cpuMs: 1000 },
      });
      assert.equal(busy.status, 'timeout');
      const sleepy = await sandbox.run({
        language: 'python',
        code: 'import time\ntime.sleep(60)',
        limits: { wallMs: 500 },
      });
      assert.equal(sleepy.status, 'timeout');
      const js = await sandbox.run({
        language: 'javascript',
        code: 'for (;;) {}',
        limits: { wallMs: 10_000, cpuMs: 1000 },
      });
      assert.equal(js.status, 'timeout');
    });

    test('fork bomb: process limit holds, nothing survives the run', async () => {
      const before = sandboxUserProcesses().length;
      const code =
        'import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print("blocked", n)\n';
      const r = await sandbox.run({ language: 'python', code, limits: { ...FAST, processes: 32 } });
      assert.equal(r.status, 'ok', r.stderr);
      const forked = Number(/blocked (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(forked < 32, `forked ${forked} processes`);
      const count = await eventually(
        () => sandboxUserProcesses().length,
        (n) => n <= before,
      );
      assert.ok(count <= before, 'forked children outlived the run');
      const after = await sandbox.run({ language: 'python', code: 'print("still fine")' });
      assert.equal(after.stdout, 'still fine\n');
    });

    test('memory bomb: memory status, both languages', async () => {
      const py = await sandbox.run({
        language: 'python',
        code: 'x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))',
        limits: { ...FAST, memoryMb: 256 },
      });
      assert.equal(py.status, 'memory', py.stderr.slice(-300));
      const js = await sandbox.run({
        language: 'javascript',
        code: 'const a = []; for (;;) a.push(new Array(1e6).fill(1.5))',
        limits: { wallMs: 20_000, cpuMs: 20_000, memoryMb: 160 },
      });
      assert.equal(js.status, 'memory', js.stderr.slice(-300));
    });

    test('huge output: output_limit, output capped', async () => {
      const py = await sandbox.run({
        language: 'python',
        code: 'while True:\n    print("x" * 1000)',
        limits: { wallMs: 15_000, cpuMs: 10_000, outputBytes: 100_000 },
      });
      assert.equal(py.status, 'output_limit');
      assert.ok(py.stdout.length <= 100_000);
      const js = await sandbox.run({
        language: 'javascript',
        code: 'const fs = require("fs"); for (;;) fs.writeSync(2, "y".repeat(1000))',
        limits: { wallMs: 15_000, cpuMs: 10_000, outputBytes: 100_000 },
      });
      assert.equal(js.status, 'output_limit');
      assert.ok(js.stderr.length <= 100_000);
      // console.log may queue in node's memory while the loop runs; it still ends as output_limit.
      const logged = await sandbox.run({
        language: 'javascript',
        code: 'for (let i = 0; i < 1e5; i++) console.log("y".repeat(1000))',
        limits: { wallMs: 15_000, cpuMs: 10_000, outputBytes: 100_000 },
      });
      assert.equal(logged.status, 'output_limit');
      // A byte over the cap, all of it still in the pipe when the program ends, is over the cap too.
      for (const [n, status] of [
        [1000, 'ok'],
        [1001, 'output_limit'],
      ] as const) {
        const r = await sandbox.run({
          language: 'python',
          code: `import sys\nsys.stdout.write("x" * ${n})`,
          limits: { outputBytes: 1000 },
        });
        assert.equal(r.status, status, `${n} bytes`);
        assert.equal(r.stdout.length, 1000);
      }
    });

    test('file size limit: a write past fileBytes fails', async () => {
      const r = await sandbox.run({
        language: 'python',
        code: 'open("big", "wb").write(b"x" * 2_000_000)',
        limits: { ...FAST, fileBytes: 1_000_000 },
      });
      assert.notEqual(r.status, 'ok');
      assert.match(r.stderr, /File too large|EFBIG|Errno 27/);
    });

    test('a child that outlives the program (or the timeout) is killed', {
      skip: !full && 'needs bubblewrap (PID namespace)',
    }, async () => {
      const marker = `ringrl-orphan-${randomBytes(6).toString('hex')}`;
      const code = `import subprocess\nsubprocess.Popen(["/bin/sh", "-c", "sleep 120; echo ${marker}"], start_new_session=True)\nprint("spawned")`;
      const r = await sandbox.run({ language: 'python', code, limits: FAST });
      assert.equal(r.stdout, 'spawned\n');
      const loop = `import subprocess\nsubprocess.Popen(["/bin/sh", "-c", "sleep 120; echo ${marker}"], start_new_session=True)\nwhile True: pass`;
      assert.equal(
        (await sandbox.run({ language: 'python', code: loop, limits: { wallMs: 1500, cpuMs: 1000 } })).status,
        'timeout',
      );
      const js = `require("child_process").spawn("/bin/sh", ["-c", "sleep 120; echo ${marker}"], { detached: true, stdio: "ignore" }).unref(); console.log("spawned")`;
      assert.equal((await sandbox.run({ language: 'javascript', code: js, limits: FAST })).stdout, 'spawned\n');
      const survivors = await eventually(
        () => sandboxUserProcesses().filter((p) => p.includes(marker)),
        (s) => s.length === 0,
      );
      assert.deepEqual(survivors, []);
    });

    test('no writes outside the working directory', {
      skip: !full && 'needs bubblewrap (mount namespace)',
    }, async () => {
      const hostFile = join(tmpdir(), `ringrl-escape-${randomBytes(6).toString('hex')}`);
      const targets = ['/etc/ringrl-x', '/usr/ringrl-x', '/ringrl-x', '../ringrl-x', '/proc/ringrl-x', hostFile];
      const code = `import json\nok = []\nfor p in ${JSON.stringify(targets)}:\n    try:\n        open(p, "w").write("x")\n        ok.append(p)\n    except OSError:\n        pass\nprint(json.dumps(ok))`;
      const r = await sandbox.run({ language: 'python', code });
      assert.equal(r.status, 'ok', r.stderr);
      // hostFile's path is the sandbox's private /tmp at most; the host's never gets it.
      assert.deepEqual(
        JSON.parse(r.stdout).filter((p: string) => p !== hostFile),
        [],
      );
      assert.equal(existsSync(hostFile), false);
    });

    test("no run reads another run's files (sequential and concurrent)", {
      skip: !full && 'needs bubblewrap (private tmpfs)',
    }, async () => {
      const secret = randomBytes(8).toString('hex');
      const write = `import time\nfor p in ["secret.txt", "/tmp/secret.txt", "/dev/shm/secret.txt"]:\n    open(p, "w").write("${secret}")\ntime.sleep(1.5)`;
      const scan = `import os\nhits = []\nfor root in ["/", "/tmp", "/dev/shm"]:\n    for d, dirs, names in os.walk(root):\n        dirs[:] = [x for x in dirs if os.path.join(d, x) not in ("/proc", "/usr", "/sys", "/dev")]\n        for n in names:\n            try:\n                if "${[...secret].reverse().join('')}"[::-1] in open(os.path.join(d, n), errors="ignore").read(1000):\n                    hits.append(os.path.join(d, n))\n            except OSError:\n                pass\nprint(hits)`;
      const [w, concurrent] = await Promise.all([
        sandbox.run({ language: 'python', code: write }),
        new Promise((r) => setTimeout(r, 300)).then(() => sandbox.run({ language: 'python', code: scan })),
      ]);
      assert.equal(w.status, 'ok', w.stderr);
      assert.equal(concurrent.stdout, '[]\n');
      // Afterwards, whichever zygote ran the writer is clean for the next run.
      for (let i = 0; i < 3; i++) assert.equal((await sandbox.run({ language: 'python', code: scan })).stdout, '[]\n');
    });

    test('directories a run locks (mode 000, read-only parents) are gone before the next run', {
      skip: !full && 'needs bubblewrap (private tmpfs)',
    }, async () => {
      const lock = `import os\nfor root in (".", "/tmp"):\n    os.makedirs(os.path.join(root, "a/b/c"))\n    open(os.path.join(root, "a/b/c/f"), "w").write("x")\n    os.chmod(os.path.join(root, "a/b"), 0)\n    os.chmod(os.path.join(root, "a"), 0o500)\nprint("locked")`;
      assert.equal((await sandbox.run({ language: 'python', code: lock })).stdout, 'locked\n');
      // Enough runs that the zygote which ran the lock has run the next one too.
      for (let i = 0; i < 4; i++) {
        const r = await sandbox.run({
          language: 'python',
          code: 'import os\nprint(os.listdir("."), os.listdir("/tmp"))',
        });
        assert.equal(r.stdout, "['main.py'] []\n", r.stderr);
      }
    });

    test('a program holds no descriptor of the sandbox but its stdio and its exit-status pipe', async () => {
      const r = await sandbox.run({
        language: 'python',
        code: 'import os\nfds = os.listdir("/proc/self/fd")  # the listing holds one itself\nprint(len(fds) - 1, sorted(int(f) for f in fds)[:3])',
      });
      assert.equal(r.stdout, '4 [0, 1, 2]\n', r.stderr);
    });

    test('each run draws its own random numbers', async () => {
      const code = 'import random\nprint(random.getrandbits(64))';
      const draws = new Set<string>();
      for (let i = 0; i < 4; i++) draws.add((await sandbox.run({ language: 'python', code })).stdout);
      assert.equal(draws.size, 4);
    });

    test("no run finds another run's program, input or tests among its interpreter's objects", async () => {
      const secret = randomBytes(8).toString('hex');
      const first = await sandbox.run({
        language: 'python',
        code: `# ${secret}\nprint(input())`,
        stdin: `${secret}\n`,
        epilogue: `tests = "${secret}"`,
      });
      assert.equal(first.stdout, `${secret}\n`);
      // Every container and frame reachable in the interpreter, searched for the secret (written
      // reversed here so the scan's own source does not hold it).
      const scan = `import gc, sys\ns = "${[...secret].reverse().join('')}"[::-1]\nhits = 0\ndef look(v):\n    global hits\n    if v is not s and (isinstance(v, str) and s in v or isinstance(v, (bytes, bytearray)) and s.encode() in v):\n        hits += 1\nfor o in gc.get_objects():\n    try:\n        for v in (o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()):\n            look(v)\n    except Exception:\n        pass\nf = sys._getframe()\nwhile f:\n    for v in list(f.f_locals.values()):\n        look(v)\n    f = f.f_back\nprint(hits)`;
      // Enough runs that each of the pool's zygotes (and its next child) has run one.
      for (let i = 0; i < 4; i++) {
        const r = await sandbox.run({ language: 'python', code: scan });
        assert.equal(r.stdout, '0\n', r.stderr);
      }
    });

    test('no network: connections to the host and beyond fail', {
      skip: !full && 'needs bubblewrap (network namespace)',
    }, async () => {
      let connections = 0;
      const server: Server = createServer((s) => {
        connections++;
        s.destroy();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      const code = `import socket\nfor addr in [("127.0.0.1", ${port}), ("1.1.1.1", 53), ("10.0.0.1", 80)]:\n    try:\n        socket.create_connection(addr, timeout=1).close()\n        print("connected", addr)\n    except OSError as e:\n        print("failed", addr[0])`;
      const r = await sandbox.run({ language: 'python', code });
      const js = await sandbox.run({
        language: 'javascript',
        code: `const s = require("net").connect(${port}, "127.0.0.1"); s.on("connect", () => { console.log("connected"); s.destroy(); }); s.on("error", () => console.log("failed"))`,
      });
      server.close();
      assert.doesNotMatch(r.stdout, /connected/);
      assert.equal(r.stdout.match(/failed/g)?.length, 3);
      assert.equal(js.stdout, 'failed\n');
      assert.equal(connections, 0);
    });

    test('signalling the parent (and everyone) does not hurt the sandbox or the host', {
      skip: !full && 'needs bubblewrap (PID namespace)',
    }, async () => {
      const code = `import os, signal\nfor pid in [os.getppid(), 1, ${process.pid}, -1]:\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError as e:\n        print(pid, type(e).__name__)\nprint("survived?")`;
      const r = await sandbox.run({ language: 'python', code });
      assert.ok(['ok', 'killed'].includes(r.status), r.status);
      const js = await sandbox.run({
        language: 'javascript',
        code: 'try { process.kill(process.ppid, "SIGKILL"); process.kill(1, "SIGKILL") } catch (e) { console.log(e.code) } console.log("alive")',
      });
      assert.ok(['ok', 'killed'].includes(js.status));
      for (let i = 0; i < 4; i++) {
        const next = await sandbox.run({ language: 'python', code: 'print(6 * 7)' });
        assert.equal(next.stdout, '42\n');
      }
    });

    test('a program that stops its parent does not stall the sandbox', {
      skip: !full && 'needs bubblewrap (PID namespace)',
    }, async () => {
      const r = await sandbox.run({
        language: 'python',
        code: 'import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nprint("stopped it")',
      });
      assert.equal(r.stdout, 'stopped it\n', r.stderr);
      for (let i = 0; i < 4; i++) {
        const next = await sandbox.run({ language: 'python', code: 'print(6 * 7)', limits: { wallMs: 5000 } });
        assert.equal(next.stdout, '42\n', next.stderr);
      }
    });

    test('bytes a run leaves on its descriptors never reach the next run', async () => {
      // Junk on every descriptor (the exit-status pipe among them); or a well-formed exit status
      // written early, after which the program goes on writing to stdout and ends with its own.
      const junk =
        'import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b"\\x07" * 40)\n    except OSError:\n        pass\nprint("done")';
      const early = `import os, stat, struct, time\ndef pipes():\n    for f in sorted(os.listdir("/proc/self/fd"), key=int):\n        try:\n            if int(f) > 2 and stat.S_ISFIFO(os.fstat(int(f)).st_mode):\n                yield int(f)\n        except OSError:\n            pass\nos.write(next(pipes()), struct.pack("<iq", 0, 0))\nfor i in range(50):\n    print("LATE", flush=True)\n    time.sleep(0.002)\nprint("done")`;
      for (const code of [junk, early, early]) {
        const r = await sandbox.run({ language: 'python', code });
        assert.equal(r.status, 'ok', r.stderr);
        for (let j = 0; j < 2; j++) {
          const next = await sandbox.run({ language: 'python', code: 'print(6 * 7)' });
          assert.equal(next.status, 'ok');
          assert.equal(next.stdout, '42\n');
          assert.equal(next.stderr, '');
        }
      }
    });

    test('environment secrets are not visible', async () => {
      const code = `import os\nprint(dict(os.environ))\nfor p in ["/proc/self/environ", "/proc/1/environ", "/proc/${process.pid}/environ", "/proc/${process.ppid}/environ"]:\n    try:\n        print(open(p, "rb").read())\n    except OSError as e:\n        print(p, type(e).__name__)`;
      const r = await sandbox.run({ language: 'python', code });
      assert.equal(r.status, 'ok', r.stderr);
      assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), 'secret leaked');
      const js = await sandbox.run({ language: 'javascript', code: 'console.log(JSON.stringify(process.env))' });
      assert.ok(!js.stdout.includes(SECRET));
      assert.doesNotMatch(js.stdout, /RINGRL_TEST_SECRET/);
    });

    test('runs as an unprivileged user', {
      skip: !full && process.getuid?.() !== 0 ? 'needs root or bubblewrap' : false,
    }, async () => {
      const r = await sandbox.run({ language: 'python', code: 'import os\nprint(os.getuid(), os.geteuid())' });
      assert.equal(r.stdout, '65534 65534\n');
    });

    test('exit(0) before the tests run does not pass (both languages)', async () => {
      const add = 'def add(a, b):\n    return a + b\n';
      const tests = { kind: 'assert' as const, code: 'assert add(2, 2) == 4' };
      assert.equal((await runCodeTests(sandbox, 'python', add, tests)).reward, 1);
      assert.equal((await runCodeTests(sandbox, 'python', 'def add(a, b):\n    return 5\n', tests)).reward, 0);
      for (const hack of ['import sys\nsys.exit(0)\n', 'import os\nos._exit(0)\n', 'exit()\n', 'raise SystemExit\n']) {
        const v = await runCodeTests(sandbox, 'python', hack + add, tests);
        assert.equal(v.reward, 0, hack);
        assert.match(v.reason, /exit\(0\) guard/);
      }
      const jsTests = { kind: 'assert' as const, code: 'require("assert").equal(add(2, 2), 4)' };
      assert.equal(
        (await runCodeTests(sandbox, 'javascript', 'function add(a, b) { return a + b }', jsTests)).reward,
        1,
      );
      assert.equal(
        (await runCodeTests(sandbox, 'javascript', 'process.exit(0); function add(a, b) { return a + b }', jsTests))
          .reward,
        0,
      );
    });

    test('stdin/stdout test cases', async () => {
      const v = await runCodeTests(sandbox, 'python', 'a, b = map(int, input().split())\nprint(a + b)', {
        kind: 'io',
        cases: [
          { stdin: '1 2\n', expected: '3' },
          { stdin: '5 5', expected: '10\n' },
        ],
      });
      assert.deepEqual([v.reward, v.passed, v.total], [1, 2, 2]);
      const wrong = await runCodeTests(sandbox, 'python', 'print(0)', {
        kind: 'io',
        cases: [{ stdin: '', expected: '1' }],
      });
      assert.deepEqual([wrong.reward, wrong.passed], [0, 0]);
    });
  });
}

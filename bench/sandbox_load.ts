// `npm run bench -- sandbox_load [--requests N] [--clients C] [--seconds S]`: load test of the
// reward service. Starts `ringrl sandbox serve` as a second process on loopback with a small
// concurrency and queue, fires a bounded number of mixed requests (Python/JavaScript runs, math,
// SandboxFusion /run_code, a few hostile programs) from many clients at once, and checks that
// every request got an answer: a result (200) or an explicit 429/503 (504 on /run_code) — none
// lost, no connection errors, no crash, /health still answering afterwards. Exits 1 otherwise.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { requests: { type: 'string' }, clients: { type: 'string' }, seconds: { type: 'string' } },
});
const REQUESTS = Number(values.requests ?? 600);
const CLIENTS = Number(values.clients ?? 48);
const DEADLINE_S = Number(values.seconds ?? 90);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    join(root, 'src/cli/bin.ts'),
    'sandbox',
    'serve',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--concurrency',
    '4',
    '--queue',
    '16',
    '--queue-timeout-ms',
    '3000',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let serverExit: string | null = null;
server.on('exit', (code, signal) => (serverExit = `${signal ?? code}`));
const base = await new Promise<string>((resolve, reject) => {
  const lines = createInterface({ input: server.stdout! });
  lines.on('line', (line) => {
    console.log(`[server] ${line}`);
    const m = /listening on (http:\/\/\S+)/.exec(line);
    if (m) resolve(m[1]!);
  });
  server.on('exit', () => reject(new Error('server exited before listening')));
});

const REQUEST_KINDS: [string, unknown][] = [
  ['/run', { language: 'python', code: 'print(sum(range(1000)))' }],
  ['/run', { language: 'javascript', code: 'console.log([1, 2, 3].map((x) => x * 2).join(","))' }],
  ['/verify/math', { completion: 'so the answer is \\boxed{\\frac{1}{2}}', answer: '0.5' }],
  ['/run_code', { code: 'print(input())', language: 'python', stdin: 'x', run_timeout: 5 }],
  [
    '/run',
    {
      language: 'python',
      code: 'a, b = map(int, input().split())\nprint(a + b)',
      tests: { kind: 'io', cases: [{ stdin: '2 3', expected: '5' }] },
    },
  ],
  ['/run', { language: 'python', code: 'while True: pass', limits: { wall_ms: 1000, cpu_ms: 500 } }],
  [
    '/run',
    {
      language: 'python',
      code: 'import os\nwhile True:\n    try: os.fork()\n    except OSError: break',
      limits: { processes: 16, wall_ms: 2000 },
    },
  ],
];

const counts = new Map<string, number>();
const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
let issued = 0;
let answered = 0;
const start = performance.now();
const deadline = start + DEADLINE_S * 1000;

await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    while (issued < REQUESTS && performance.now() < deadline) {
      const [path, body] = REQUEST_KINDS[issued++ % REQUEST_KINDS.length]!;
      try {
        const r = await fetch(base + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
        await r.json();
        bump(String(r.status));
        answered++;
      } catch (e) {
        bump(`lost: ${(e as Error).message}`);
      }
    }
  }),
);
const seconds = (performance.now() - start) / 1000;
const health = await fetch(base + '/health').then(
  (r) => r.status,
  (e: Error) => `unreachable: ${e.message}`,
);
const metrics = await fetch(base + '/metrics').then(
  (r) => r.text(),
  () => '',
);
const crashed = serverExit;
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));

const allowed = new Set(['200', '429', '503', '504']);
const bad = [...counts].filter(([k]) => !allowed.has(k));
console.log(
  `load test: ${issued} requests from ${CLIENTS} concurrent clients in ${seconds.toFixed(1)} s (${(answered / seconds).toFixed(1)} answers/s) against concurrency 4, queue 16`,
);
console.log(`answers by HTTP status: ${JSON.stringify(Object.fromEntries(counts))}`);
console.log(
  `runs by status (server metrics): ${metrics
    .split('\n')
    .filter((l) => l.startsWith('ringrl_runs_total') || l.startsWith('ringrl_rejected_total'))
    .join('; ')}`,
);
console.log(
  `server after the load: /health ${health}; server exit before shutdown: ${crashed ?? 'none'}; after SIGTERM: ${serverExit}`,
);
const ok = bad.length === 0 && answered === issued && health === 200 && crashed === null;
console.log(
  ok
    ? `PASS: every one of ${issued} requests was answered with a result or an explicit 429/503/504; none lost, no crash`
    : `FAIL: ${JSON.stringify(bad)}`,
);
console.log(
  JSON.stringify({
    bench: 'sandbox_load',
    requests: issued,
    answered,
    clients: CLIENTS,
    seconds: Math.round(seconds * 10) / 10,
    statuses: Object.fromEntries(counts),
    health,
    pass: ok,
  }),
);
process.exitCode = ok ? 0 : 1;

// `npm run bench -- sandbox`: latency and throughput of trivial Python and JavaScript programs
// through the warm pool, against a bare interpreter spawn (`python3 -c pass`, `node -e 0`, no
// sandbox at all) in the same run, at concurrency 1, 8 and 32; plus the cold sandbox (a fresh
// bubblewrap + interpreter per run) and math verifications per second on one core.
// ratio = bare-spawn p50 / warm-pool p50 for Python at concurrency 1 (above 1: ours is faster).
import { spawn } from 'node:child_process';
import { ProcessSandbox } from '../src/reward/sandbox/pool.ts';
import { pythonPath, nodePath } from '../src/reward/sandbox/isolation.ts';
import { verifyMath } from '../src/reward/math/verify.ts';
import { record } from './record.ts';

const CONCURRENCY = [1, 8, 32];
const RUNS: Record<number, number> = { 1: 40, 8: 80, 32: 160 };

interface Stats {
  p50: number;
  p99: number;
  per_s: number;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function measure(total: number, concurrency: number, once: () => Promise<unknown>): Promise<Stats> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        const t = performance.now();
        await once();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return { p50: round(percentile(latencies, 0.5)), p99: round(percentile(latencies, 0.99)), per_s: round(latencies.length / seconds) };
}

function bareSpawn(argv: string[]): () => Promise<void> {
  return () =>
    new Promise((resolve, reject) => {
      const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
    });
}

const python = pythonPath();
const node = nodePath();
const sandbox = new ProcessSandbox({ warm: true, pythonWorkers: 8, nodeSpares: 8 });
const cold = new ProcessSandbox({ warm: false });
await sandbox.warmup();

const table: Record<string, Record<string, Stats>> = {};
const row = (name: string, c: number, s: Stats) => {
  (table[name] ??= {})[`c${c}`] = s;
  console.log(`${name.padEnd(18)} c=${String(c).padEnd(3)} p50 ${s.p50.toFixed(2).padStart(8)} ms   p99 ${s.p99.toFixed(2).padStart(8)} ms   ${s.per_s.toFixed(1).padStart(7)} runs/s`);
};
const expectOk = (r: { status: string; stderr: string }) => {
  if (r.status !== 'ok') throw new Error(`sandbox run failed: ${r.status} ${r.stderr}`);
};

console.log(`sandbox bench: isolation ${sandbox.isolation}; python ${python}; node ${node}`);
for (const c of CONCURRENCY) {
  await measure(8, Math.min(c, 8), bareSpawn([python, '-c', 'pass'])); // warm the page cache
  row('bare python3', c, await measure(RUNS[c]!, c, bareSpawn([python, '-c', 'pass'])));
  row('warm-pool python', c, await measure(RUNS[c]!, c, async () => expectOk(await sandbox.run({ language: 'python', code: 'pass' }))));
  row('bare node', c, await measure(RUNS[c]! / 2, c, bareSpawn([node, '-e', '0'])));
  row('warm-pool node', c, await measure(RUNS[c]! / 2, c, async () => expectOk(await sandbox.run({ language: 'javascript', code: '0' }))));
}
row('cold python', 1, await measure(20, 1, async () => expectOk(await cold.run({ language: 'python', code: 'pass' }))));
row('cold node', 1, await measure(10, 1, async () => expectOk(await cold.run({ language: 'javascript', code: '0' }))));
await sandbox.close();
await cold.close();

// Math: plain numeric answers, one core (this thread), mixed true/false.
const inputs = Array.from({ length: 1000 }, (_, i) => [`Adding up we get ${i * 7}. So the answer is \\boxed{${i * 7 + (i % 3 === 0 ? 1 : 0)}}.`, String(i * 7)] as const);
let verified = 0;
let rewarded = 0;
const mathStart = performance.now();
while (performance.now() - mathStart < 2000) {
  for (const [completion, gold] of inputs) rewarded += verifyMath(completion, gold).reward;
  verified += inputs.length;
}
const mathPerS = Math.round(verified / ((performance.now() - mathStart) / 1000));
console.log(`math verifier: ${mathPerS} verifications/s on one core (plain numeric answers; ${rewarded} of ${verified} rewarded)`);

const peer = table['bare python3']!.c1!.p50;
const ours = table['warm-pool python']!.c1!.p50;
const ratio = Math.round((peer / ours) * 100) / 100;
console.log(`peer (bare \`python3 -c pass\` spawn, no sandbox): p50 ${peer} ms; ours (warm pool, ${sandbox.isolation} isolation): p50 ${ours} ms; ratio ${ratio} (bare/warm; target >= 2, i.e. warm <= 0.5x bare)`);
record({
  bench: 'sandbox',
  ours,
  peer,
  ratio,
  unit: 'p50 latency ms, trivial Python program, concurrency 1',
  isolation: sandbox.isolation,
  math_verifications_per_s: mathPerS,
  table,
});

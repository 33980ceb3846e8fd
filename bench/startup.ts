// `npm run bench -- startup [--runs 10]`: how long the compiled `ringrl` takes to start, against
// a bare `node -e 0` on the same machine in the same run (runs interleaved, medians compared).
// Measures `ringrl --help` and a one-line `ringrl reward math`: neither may load onnxruntime or
// the model code (src/cli/commands.ts loads each command's module only when it runs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { record } from './record.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist', 'cli', 'bin.js');
const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 10;
if (!existsSync(bin)) {
  console.error(`bench startup: ${bin} is missing; run npm run build first`);
  process.exit(2);
}
const input = join(mkdtempSync(join(tmpdir(), 'ringrl-startup-')), 'one.jsonl');
writeFileSync(input, JSON.stringify({ completion: 'so \\boxed{42}', answer: '42' }) + '\n');

const commands: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'ringrl --help': [bin, '--help'],
  'ringrl reward math (one line)': [bin, 'reward', 'math', '--input', input],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(commands)) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${name} exited with ${r.status}`);
    times[name]!.push(performance.now() - t0);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const peer = median(times['node -e 0']!);
const help = median(times['ringrl --help']!);
const reward = median(times['ringrl reward math (one line)']!);
console.log(`node -e 0 (peer): median ${peer.toFixed(0)} ms over ${runs} runs`);
console.log(`ringrl --help: median ${help.toFixed(0)} ms = ${(help / peer).toFixed(2)}× node -e 0 (target ≤ 8×)`);
console.log(`ringrl reward math, one line: median ${reward.toFixed(0)} ms = ${(reward / peer).toFixed(2)}× node -e 0`);
const r3 = (x: number) => Number(x.toFixed(3));
record({
  bench: 'startup',
  ours: r3(help),
  peer: r3(peer),
  ratio: r3(peer / help),
  unit: 'ms median start-up: ringrl --help (ours) vs node -e 0 (peer); ratio = peer/ours, slowdown = ours/peer',
  slowdown: r3(help / peer),
  reward_math_ms: r3(reward),
  reward_math_slowdown: r3(reward / peer),
  runs,
});

// What the C3PO++ benches share (bench/c3po.ts, bench/c3po-step.ts): the workload (its SFT recipe,
// cached model and RL settings) and the local engine's measured step-cost model.
import { LocalEngine, defaultKvSegments } from '../../src/engine/local.ts';
import type { StepCostModel } from '../../src/engine/simulated.ts';
import type { Policy } from '../../src/train/policy.ts';
import { join } from 'node:path';
import { cachedSftModel } from './rl.ts';

// The workload: arithmetic of difficulty 5, whose long multiplications give a long length tail
// (teacher responses p50 87, p90 281, max 1421 tokens), rolled out by a small model SFT'd on it.
// Φ is 256 decode steps of a full pool, so a partial spans σ = 4 iterations before it is dropped.
export const scale = { pool: 32, budget: 8192, retention: 4, maxLen: 1536 };
// configs/demo.yaml is the base; the keys the demo tunes for its own purpose are pinned to the
// pure long-CoT SFT (every teacher answer thinks) and the RL settings these figures were measured with.
export const data = ['data.difficulty=5', 'data.num_train=20000'];
// The SFT recipe (seeded, the same on every machine up to floating-point summation order). The
// first recipe (260 steps of 64 rows × 1536 tokens) left the model at 0-2% held-out: too few
// updates. Rows of 384 tokens cost a quarter as much per step and still hold most examples whole
// (p90 281 tokens; the few longer ones are cut, which only shortens their targets), so the same
// compute buys 450 updates. It is trained once into runs/bench-c3po/sft-r2 and checked by bench/c3po.ts.
export const sftSets = [
  ...data,
  'data.no_think_fraction=0',
  'sft.steps=450',
  'sft.batch_size=64',
  'sft.max_seq_len=384',
  'sft.eval_every=225',
  'eval.num_problems=100',
  `eval.max_new_tokens=${scale.maxLen}`,
];
export const workload = [
  ...data,
  'rl.optimizer.lr=2e-5',
  'rl.eval_every=0',
  `rollout.max_new_tokens=${scale.maxLen}`,
  `rollout.token_budget=${scale.budget}`,
  `rollout.pool_capacity=${scale.pool}`,
  `rollout.retention=${scale.retention}`,
  `eval.max_new_tokens=${scale.maxLen}`,
  'run.samples_per_step=100000', // every trajectory: the profile feeds their lengths to the simulator
];
export const sftDir = join('runs', 'bench-c3po', 'sft-r2');

/** The workload's model: `dir` if given, else the cached SFT (trained on first use). */
export function workloadModel(dir: string | undefined, threads: number): Promise<string> {
  return dir ? Promise.resolve(dir) : cachedSftModel('c3po', sftDir, sftSets, threads);
}

/** Milliseconds by some clock. */
export type Clock = () => number;
export const wallClock: Clock = () => performance.now();
/**
 * This process's CPU time (every thread's): on a machine shared with other jobs it counts the work
 * done, not the waits for a core. With one onnxruntime thread nothing spins, so it is the work.
 */
export const cpuClock: Clock = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Median decode-step time (robust to a noisy neighbour) with `batch` rows of `context` cached tokens. */
async function stepMs(policy: Policy, threads: number, batch: number, context: number, clock: Clock): Promise<number> {
  const engine = new LocalEngine(policy.config, { capacity: batch, prefillBatch: batch, runtime: { threads } });
  await engine.updateWeights(policy.weights, 0);
  engine.submit(
    Array.from({ length: batch }, (_, i) => ({
      id: String(i),
      prompt: Array(context).fill(5),
      params: { temperature: 1, maxNewTokens: 40, seed: i, stopTokens: [] },
    })),
  );
  await engine.step(); // prefill + first decode, untimed
  const times: number[] = [];
  while (times.length < 30 && engine.busy()) {
    const t0 = clock();
    await engine.step();
    times.push(clock() - t0);
  }
  return times.sort((x, y) => x - y)[times.length >> 1]!;
}

/**
 * The local engine's step-cost model, measured: decode-step time against the number of active
 * sequences at a short context (a line fitted to batches 1-64), its attention term from batch 32 at
 * 1000 cached positions, and prefill per token from a 128-token prompt.
 */
export async function measureCostModel(policy: Policy, threads: number, clock = wallClock): Promise<StepCostModel> {
  const runtime = { threads };
  const points: [number, number][] = [];
  for (const batch of [1, 8, 16, 32, 64]) points.push([batch, await stepMs(policy, threads, batch, 4, clock)]);
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  const slope =
    points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  // Prefill: one 128-token prompt that finishes at its first token (no decode step), best of 3.
  const prefillEngine = new LocalEngine(policy.config, { capacity: 1, runtime });
  await prefillEngine.updateWeights(policy.weights, 0);
  let prefillMs = Infinity;
  for (let i = 0; i < 4; i++) {
    prefillEngine.submit([{ id: `p${i}`, prompt: Array(128).fill(5), params: { temperature: 1, maxNewTokens: 1 } }]);
    const t0 = clock();
    await prefillEngine.step();
    if (i > 0) prefillMs = Math.min(prefillMs, clock() - t0);
  }
  // What the batch term leaves out: attention reads the cache, within each segment of the engine's
  // cache every row reaching it reads the longest row's positions there. For a model this small
  // those reads, not the weights, dominate a step at long context, and C3PO++'s pool is rich in
  // long partials.
  const longContextMs = await stepMs(policy, threads, 32, 1000, clock);
  const stepPerCachedMs = (longContextMs - points.find(([b]) => b === 32)![1]) / (32 * (1000 - 4));
  console.log(
    `engine step-cost model (measured): ${points.map(([b, ms]) => `batch ${b}: ${ms.toFixed(1)} ms`).join(', ')}; batch 32 at 1000 cached positions: ${longContextMs.toFixed(1)} ms`,
  );
  return {
    stepFixedMs: Math.max(0, my - slope * mx),
    stepPerSeqMs: slope,
    prefillPerTokenMs: prefillMs / 128,
    stepPerCachedMs,
    attention: 'padded',
    segments: defaultKvSegments(policy.config.maxPositions),
  };
}

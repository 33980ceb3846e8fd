// `npm run bench -- c3po [--model DIR] [--steps N] [--rounds N] [--threads N]`
//
// C3PO++ against the synchronous baseline (every started rollout finishes under the policy that
// started it; continuous batching inside the iteration) on identical work: same checkpoint, same
// prompts and seeds, same token budget Φ, pool Ω and group size, the real RL loop (`runRl`) with
// IcePop on the real engine. Sync finishes whatever it started, so it trains on more tokens per
// step than Φ; both arms are therefore compared per trained token (time per step at Φ trained
// tokens). Then the same scheduler code on the simulated engine: the measured CPU step-cost model
// (batch term plus the attention reads of the engine's segmented KV cache) at this workload's scale
// with a lognormal(σ = 1) length tail, the same with one dense cache, with ragged attention and with
// the batch term alone, and a GPU-like regime (step cost nearly flat in the batch, a paper-like tail
// up to 64K tokens) at cluster scale.
//
// C3PO++ runs twice on the real engine: with paused rollouts re-prefilled under the new weights
// (`rollout.paused_kv: recompute`, exact; what GPU systems do, where prefill is cheap) and with
// their KV cache kept across the update (`keep`; on a CPU a re-prefill costs about what decoding
// the tokens did). The headline ratio is the better of the two, and both are printed.
import { existsSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatConfig, loadConfig } from '../src/config/index.ts';
import { testExamplesFor, trainSourceFor } from '../src/data/index.ts';
import { LocalEngine, defaultKvSegments } from '../src/engine/local.ts';
import { SimulatedEngine, type StepCostModel } from '../src/engine/simulated.ts';
import { getVerifier } from '../src/reward/verifiers.ts';
import { RunDir } from '../src/report/index.ts';
import { RolloutScheduler } from '../src/rollout/scheduler.ts';
import type { PromptSource, RolloutMode } from '../src/rollout/types.ts';
import { runRl } from '../src/system/rl-run.ts';
import { sftCommand } from '../src/cli/sft.ts';
import { Policy } from '../src/train/policy.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    steps: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
  },
});
const steps = Number(values.steps),
  rounds = Number(values.rounds),
  threads = Number(values.threads);
const runtime = { threads };
const demoConfig = join(import.meta.dirname, '..', 'configs', 'demo.yaml');

// The workload: arithmetic of difficulty 5, whose long multiplications give a long length tail
// (teacher responses p50 87, p90 281, max 1421 tokens), rolled out by a small model SFT'd on it.
// The model is trained once (`ringrl sft`, about 9 minutes on 2 cores) and kept in runs/bench-c3po/sft.
// Φ is 256 decode steps of a full pool, so a partial spans σ = 4 iterations before it is dropped.
const scale = { pool: 32, budget: 8192, retention: 4, maxLen: 1536 };
// configs/demo.yaml is the base; the keys the demo tunes for its own purpose are pinned to the
// pure long-CoT SFT (every teacher answer thinks) and the RL settings these figures were measured with.
const data = ['data.difficulty=5', 'data.num_train=20000'];
const sftSets = [
  ...data,
  'data.no_think_fraction=0',
  'sft.steps=260',
  `sft.max_seq_len=${scale.maxLen}`,
  'sft.eval_every=0',
  'eval.num_problems=100',
  `eval.max_new_tokens=${scale.maxLen}`,
];
const workload = [
  ...data,
  'rl.optimizer.lr=2e-5',
  'rl.eval_every=0',
  `rollout.max_new_tokens=${scale.maxLen}`,
  `rollout.token_budget=${scale.budget}`,
  `rollout.pool_capacity=${scale.pool}`,
  `rollout.retention=${scale.retention}`,
  `eval.max_new_tokens=${scale.maxLen}`,
];

async function workloadModel(): Promise<string> {
  if (values.model) return values.model;
  const dir = join('runs', 'bench-c3po', 'sft');
  const trained = existsSync(dir) ? RunDir.open(dir).latestCheckpoint() : undefined;
  if (trained) return trained.dir;
  console.log(`bench c3po: training the workload's model once into ${dir} (ringrl sft on arithmetic difficulty 5)`);
  if (existsSync(dir)) renameSync(dir, `${dir}-incomplete-${Date.now()}`);
  await sftCommand.run([
    '--config',
    demoConfig,
    ...sftSets.flatMap((s) => ['--set', s]),
    '--threads',
    String(threads),
    '--out',
    dir,
  ]);
  return RunDir.open(dir).latestCheckpoint()!.dir;
}
const model = await workloadModel();

// The comparison needs a model that solves some problems: at ~0 reward every group has zero
// advantage, both arms train on nothing and "reward within noise" means nothing. The held-out
// accuracy of the cached SFT is in its run's metrics (its final eval); a --model is evaluated here.
const MIN_ACCURACY = 0.2;
async function workloadAccuracy(): Promise<number> {
  const runDir = join(model, '..', '..');
  if (!values.model && existsSync(join(runDir, 'metrics.jsonl'))) {
    const evals = RunDir.open(runDir)
      .readMetrics()
      .filter((r) => typeof r['eval/accuracy'] === 'number');
    if (evals.length) return evals.at(-1)!['eval/accuracy'] as number;
  }
  const config = loadConfig({ files: [demoConfig], sets: [...sftSets, 'eval.num_problems=50'] });
  const p = Policy.load(model, runtime);
  const { evaluate } = await import('../src/eval/evaluate.ts');
  const { loadTokenizer } = await import('../src/tokenizer/index.ts');
  const result = await evaluate(
    p.config,
    p.weights,
    loadTokenizer(model),
    await testExamplesFor(config.data, 50),
    getVerifier('arithmetic'),
    { k: 1, temperature: 0, maxNewTokens: scale.maxLen, runtime },
  );
  return result.accuracy;
}
const workloadAcc = await workloadAccuracy();
if (!(workloadAcc >= MIN_ACCURACY)) {
  console.error(
    `bench c3po: the workload model ${model} reaches ${(100 * workloadAcc).toFixed(1)}% held-out accuracy, below the ${100 * MIN_ACCURACY}% the comparison needs (at ~0 reward both arms train on nothing and their rewards cannot be compared); retrain it (delete runs/bench-c3po/sft and run the bench again) or pass --model DIR`,
  );
  process.exit(1);
}
console.log(
  `bench c3po: workload model ${model}: held-out accuracy ${(100 * workloadAcc).toFixed(1)}% (at least ${100 * MIN_ACCURACY}% needed)`,
);

// ── 1. the engine's step-cost model: decode-step time against the number of active sequences ──
const policy = Policy.load(model, runtime);

/** Median decode-step time (robust to a noisy neighbour) with `batch` rows of `context` cached tokens. */
async function stepMs(batch: number, context: number): Promise<number> {
  const engine = new LocalEngine(policy.config, { capacity: batch, prefillBatch: batch, runtime });
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
    const t0 = performance.now();
    await engine.step();
    times.push(performance.now() - t0);
  }
  return times.sort((x, y) => x - y)[times.length >> 1]!;
}

async function measureCostModel(): Promise<StepCostModel> {
  const points: [number, number][] = [];
  for (const batch of [1, 8, 16, 32, 64]) points.push([batch, await stepMs(batch, 4)]);
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
    const t0 = performance.now();
    await prefillEngine.step();
    if (i > 0) prefillMs = Math.min(prefillMs, performance.now() - t0);
  }
  // What the batch term leaves out: attention reads the cache, within each segment of the engine's
  // cache every row reaching it reads the longest row's positions there. For a model this small
  // those reads, not the weights, dominate a step at long context, and C3PO++'s pool is rich in
  // long partials.
  const longContextMs = await stepMs(32, 1000);
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

// ── 2. both arms on the real engine through the real RL loop ──
interface Arm {
  prefillPerStep: number;
  rolloutPerStep: number;
  e2ePerStep: number;
  occupancy: number;
  reward: number;
  rewardSe: number;
  trainedTokens: number;
  finalAccuracy: number;
}
type Row = Record<string, number>;
type ArmName = 'sync' | 'recompute' | 'keep';

/** One run of the real RL loop; its per-step metrics past the warm-up step, and the held-out accuracy after. */
async function runArm(name: ArmName): Promise<{ rows: Row[]; finalAccuracy: number }> {
  const mode: RolloutMode = name === 'sync' ? 'sync' : 'c3po';
  const config = loadConfig({
    files: [demoConfig],
    sets: [
      `model.dir=${JSON.stringify(model)}`,
      `rollout.mode=${mode}`,
      `rollout.paused_kv=${name === 'keep' ? 'keep' : 'recompute'}`,
      `rl.steps=${steps}`,
      'run.checkpoint_every=0',
      'eval.num_problems=16',
      `runtime.threads=${threads}`,
      ...workload,
    ],
  });
  const run = RunDir.create(join(mkdtempSync(join(tmpdir(), `ringrl-c3po-${name}-`)), 'run'), formatConfig(config));
  const result = await runRl({
    run,
    config,
    modelDir: model,
    resume: false,
    source: await trainSourceFor(config.data),
    evalExamples: await testExamplesFor(config.data, config.eval.num_problems),
    verify: getVerifier(config.data.task ?? 'arithmetic'),
    runtime,
  });
  // Steady state: the first step is warm-up (C3PO++ fills its pool with partials trained later),
  // so it is left out of both arms, as in the simulation below.
  const rows = run
    .readMetrics()
    .filter((r) => typeof r['reward/mean'] === 'number')
    .slice(1) as Row[];
  return { rows, finalAccuracy: result.after?.accuracy ?? NaN };
}

/** Per Φ trained tokens over every round; reward and held-out accuracy from the first round (later rounds repeat its seeds). */
function summarise(runs: { rows: Row[]; finalAccuracy: number }[]): Arm {
  const rows = runs.flatMap((r) => r.rows);
  const sum = (key: string) => rows.reduce((a, r) => a + r[key]!, 0);
  const trained = rows.reduce((a, r) => a + r['response_length/mean']! * r['train/samples']!, 0);
  const perStep = (seconds: number) => (seconds / trained) * scale.budget; // seconds per Φ trained tokens
  const last = runs[0]!.rows.slice(-3);
  const samples = last.reduce((a, r) => a + r['train/samples']!, 0);
  const reward = last.reduce((a, r) => a + r['reward/mean']! * r['train/samples']!, 0) / samples;
  return {
    prefillPerStep: perStep(sum('rollout/prefill_tokens')),
    rolloutPerStep: perStep(sum('time/rollout_s')),
    e2ePerStep: perStep(sum('time/step_s')),
    occupancy: sum('rollout/pool_occupancy') / rows.length,
    reward,
    rewardSe: Math.sqrt((reward * (1 - reward)) / samples), // binomial standard error of a 0/1 reward
    trainedTokens: trained / rows.length,
    finalAccuracy: runs[0]!.finalAccuracy,
  };
}

// ── 3. the same scheduler on the simulated engine ──
interface SimScale {
  pool: number;
  budget: number;
  retention: number;
  maxLen: number;
  median: number;
  promptLen: number;
}

async function simulate(
  mode: RolloutMode,
  cost: StepCostModel,
  s: SimScale,
  keepPausedCache = false,
  iterations = 12,
): Promise<number> {
  const engine = new SimulatedEngine({
    capacity: s.pool,
    cost,
    lengths: { median: s.median, sigma: 1 },
    seed: 7,
    keepPausedCache,
  });
  let n = 0;
  const prompts: PromptSource = {
    next: () => ({ id: `p${n}`, tokens: Array(s.promptLen).fill(1), meta: { i: n++ } }),
    cursor: () => n,
    seek: (c) => void (n = c),
  };
  const scheduler = new RolloutScheduler(engine, prompts, {
    mode,
    tokenBudget: s.budget,
    poolCapacity: s.pool,
    retention: s.retention,
    staleness: 2,
    groupSize: 8,
    sampling: { temperature: 1, maxNewTokens: s.maxLen },
  });
  let seconds = 0,
    tokens = 0;
  for (let it = 0; it < iterations; it++) {
    const batch = await scheduler.collect();
    if (it >= 2) {
      // past the warm-up, when the c3po pool has reached its steady state
      seconds += batch.stats['time/rollout_s'];
      tokens += batch.groups
        .flatMap((g) => g.members)
        .filter((m) => m.finishReason !== 'dropped')
        .reduce((a, m) => a + m.response.length, 0);
    }
    await engine.updateWeights(new Map(), it + 1);
    scheduler.policyUpdated(it + 1);
  }
  return (seconds / tokens) * s.budget; // seconds per Φ trained tokens
}

/** C3PO++ (paused KV kept) against sync, both simulated. */
const simSpeedup = async (cost: StepCostModel, s: SimScale) =>
  (await simulate('sync', cost, s)) / (await simulate('c3po', cost, s, true));

const cost = await measureCostModel();
console.log(
  `fitted: step ms = ${cost.stepFixedMs.toFixed(2)} + ${cost.stepPerSeqMs.toFixed(3)} × active + ${(1000 * cost.stepPerCachedMs!).toFixed(2)} µs × active × longest cached; prefill ${cost.prefillPerTokenMs.toFixed(3)} ms/token`,
);
// The arms take turns, `rounds` times over: a shared machine's drift then falls on all of them.
const runs: Record<ArmName, { rows: Row[]; finalAccuracy: number }[]> = { sync: [], recompute: [], keep: [] };
for (let round = 0; round < rounds; round++) {
  for (const name of ['sync', 'keep', 'recompute'] as const) {
    const started = performance.now();
    runs[name].push(await runArm(name));
    console.log(`round ${round + 1}/${rounds}: ${name} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}
const [sync, keep, recompute] = (['sync', 'keep', 'recompute'] as const).map((name) => summarise(runs[name]));
const c3po = keep.rolloutPerStep <= recompute.rolloutPerStep ? keep : recompute;
const rolloutSpeedup = sync.rolloutPerStep / c3po.rolloutPerStep;
const rewardWithinNoise = Math.abs(c3po.reward - sync.reward) <= 2 * Math.hypot(c3po.rewardSe, sync.rewardSe);
const e2eSpeedup = sync.e2ePerStep / c3po.e2ePerStep;
for (const [name, a] of [
  ['sync', sync],
  ['c3po++ (paused_kv recompute)', recompute],
  ['c3po++ (paused_kv keep)', keep],
] as const) {
  console.log(
    `${name}: rollout ${a.rolloutPerStep.toFixed(2)} s/step, end-to-end ${a.e2ePerStep.toFixed(2)} s/step (per Φ trained tokens), prefilled ${a.prefillPerStep.toFixed(0)} tokens/step, pool occupancy ${(100 * a.occupancy).toFixed(0)}%, trained ${a.trainedTokens.toFixed(0)} tokens/step, reward (last 3 steps) ${a.reward.toFixed(3)} ± ${a.rewardSe.toFixed(3)}, held-out ${(100 * a.finalAccuracy).toFixed(1)}%`,
  );
}
// The real workload's scale with a lognormal(σ = 1) tail around the teacher's median (87 tokens;
// prompts about 16), under four CPU cost models: the engine as built (segmented cache), one dense
// cache (every row reads the longest row's positions), ragged attention (each row reads only its
// own), and the batch term alone.
const cpuScale: SimScale = { ...scale, median: 87, promptLen: 16 };
const simCpu = await simSpeedup(cost, cpuScale);
const simCpuDense = await simSpeedup({ ...cost, segments: [] }, cpuScale);
const simCpuRagged = await simSpeedup({ ...cost, attention: 'ragged' }, cpuScale);
const simCpuBatchOnly = await simSpeedup({ ...cost, stepPerCachedMs: 0 }, cpuScale);
const gpu: StepCostModel = { stepFixedMs: 40, stepPerSeqMs: 0.01, prefillPerTokenMs: 0.0005 };
const gpuScale: SimScale = {
  pool: 2048,
  budget: (2048 * 2000) / 2,
  retention: 2,
  maxLen: 65536,
  median: 2000,
  promptLen: 64,
};
const simGpu = (await simulate('sync', gpu, gpuScale)) / (await simulate('c3po', gpu, gpuScale));
console.log(
  `real engine: C3PO++ rollout ${rolloutSpeedup.toFixed(2)}× and end-to-end ${e2eSpeedup.toFixed(2)}× faster than sync (paused_kv ${c3po === keep ? 'keep' : 'recompute'}; recompute ${(sync.rolloutPerStep / recompute.rolloutPerStep).toFixed(2)}×, keep ${(sync.rolloutPerStep / keep.rolloutPerStep).toFixed(2)}×; targets ≥ 1.2× rollout, reward within noise); final reward ${c3po.reward.toFixed(3)} vs ${sync.reward.toFixed(3)}: ${rewardWithinNoise ? 'within' : 'outside'} two standard errors`,
);
console.log(
  `simulated at this workload's scale, measured CPU cost model: ${simCpu.toFixed(2)}× (segmented KV cache, as the engine is); ${simCpuDense.toFixed(2)}× with one dense cache; ${simCpuRagged.toFixed(2)}× with ragged attention; ${simCpuBatchOnly.toFixed(2)}× with the batch term alone`,
);
console.log(
  `simulated GPU regime (40 ms + 0.01 ms/seq, 2048 slots, median 2K, max 64K): ${simGpu.toFixed(2)}× (target ≥ 2.5×)`,
);
const r = (x: number) => Number(x.toFixed(3));
record({
  bench: 'c3po',
  ours: r(c3po.rolloutPerStep),
  peer: r(sync.rolloutPerStep),
  ratio: r(rolloutSpeedup),
  unit: 'rollout s per step (Φ trained tokens), c3po vs sync',
  rollout_speedup: r(rolloutSpeedup),
  e2e_speedup: r(e2eSpeedup),
  rollout_speedup_sim: r(simGpu),
  rollout_speedup_sim_cpu: r(simCpu),
  rollout_speedup_sim_cpu_dense: r(simCpuDense),
  rollout_speedup_sim_cpu_ragged: r(simCpuRagged),
  rollout_speedup_sim_cpu_batch_only: r(simCpuBatchOnly),
  rollout_speedup_recompute: r(sync.rolloutPerStep / recompute.rolloutPerStep),
  rollout_speedup_keep: r(sync.rolloutPerStep / keep.rolloutPerStep),
  reward_c3po_recompute: r(recompute.reward),
  reward_c3po_keep: r(keep.reward),
  step_cost_model: {
    fixed_ms: r(cost.stepFixedMs),
    per_seq_ms: r(cost.stepPerSeqMs),
    prefill_per_token_ms: r(cost.prefillPerTokenMs),
    per_cached_position_us: r(1000 * cost.stepPerCachedMs!),
    kv_segments: cost.segments,
  },
  reward_c3po: r(c3po.reward),
  reward_sync: r(sync.reward),
  reward_se_c3po: r(c3po.rewardSe),
  reward_se_sync: r(sync.rewardSe),
  reward_within_noise: rewardWithinNoise,
  occupancy_c3po: r(c3po.occupancy),
  occupancy_sync: r(sync.occupancy),
  e2e_s_c3po: r(c3po.e2ePerStep),
  e2e_s_sync: r(sync.e2ePerStep),
  steps,
  rounds,
  threads,
  model,
  workload,
});

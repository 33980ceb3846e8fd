// `npm run bench -- c3po-step [--model DIR] [--iterations N] [--modes sync,keep] [--threads N] [--clock cpu|wall]
//                             [--kv-segments JSON] [--against DIR [--paired-mixes N]]`
//
// The decode step of the local engine under the row-length mixes that `npm run bench -- c3po`'s
// arms actually have, against the engine's own step-cost model (what the simulator charges). The
// real rollout scheduler drives the real engine on the bench's workload model and prompts, with
// its settings (Ω = 32, Φ = 8192, σ = 4), for a few iterations per mode and no training between
// them (the weights are republished unchanged, so C3PO++ pauses and resumes as in the RL loop):
// sampling is seeded, so every run replays the same steps. Each decode step is timed whole and in
// parts: onnxruntime's session.run, the input wrapping and output copies around it, and the
// host's KV-cache work (sizing, segment feeds with their masks, appending the new keys and values,
// re-ordering rows that grew into a segment, removing finished rows); the rest is feeds and
// per-row bookkeeping. The cost model's price for the same mix sits beside it.
//
// By default it counts this process's CPU time with one onnxruntime thread (`--clock cpu
// --threads 1`): on a machine shared with other jobs wall time measures the neighbours as much as
// the engine, while CPU time counts the work (one thread: no spinning workers). `--clock wall
// --threads 2` measures as bench/c3po.ts does.
//
// `--against DIR` (another checkout of ringrl, e.g. `git worktree add /tmp/base main`) sets this
// tree's engine beside DIR's on N of the replayed mixes per mode: each mix is prefilled into both
// engines and their decode steps alternate, so a neighbour's load falls on both alike.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { loadConfig, rolloutOptions } from '../src/config/index.ts';
import { encodeExamplePrompt, trainSourceFor } from '../src/data/index.ts';
import { LocalEngine } from '../src/engine/local.ts';
import { type StepCostModel, decodeStepMs } from '../src/engine/simulated.ts';
import { RolloutScheduler } from '../src/rollout/scheduler.ts';
import type { PromptSource } from '../src/rollout/types.ts';
import { CompiledGraph } from '../src/runtime/index.ts';
import { loadTokenizer } from '../src/tokenizer/index.ts';
import { Policy } from '../src/train/policy.ts';
import { cpuClock, measureCostModel, wallClock, workload, workloadModel } from './lib/c3po.ts';
import { demoConfig, loadAverage } from './lib/rl.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    iterations: { type: 'string', default: '4' },
    modes: { type: 'string', default: 'sync,keep' },
    threads: { type: 'string', default: '1' },
    clock: { type: 'string', default: 'cpu' },
    'kv-segments': { type: 'string' },
    against: { type: 'string' },
    'paired-mixes': { type: 'string', default: '8' },
  },
});
// Other segment starts for the same replay (a JSON list, [] = one dense cache): the mixes stay the
// same, since sampling does not depend on how the cache is cut.
const kvSegments = values['kv-segments'] === undefined ? undefined : (JSON.parse(values['kv-segments']) as number[]);
if (values.clock !== 'cpu' && values.clock !== 'wall')
  throw new Error(`--clock: expected cpu or wall, got '${values.clock}'`);
const clock = values.clock === 'cpu' ? cpuClock : wallClock;
const iterations = Number(values.iterations),
  threads = Number(values.threads);
if (!(Number.isInteger(iterations) && iterations >= 2))
  throw new Error(`--iterations: expected an integer >= 2 (the first is warm-up), got '${values.iterations}'`);
const modes = values.modes.split(',');
for (const m of modes) if (m !== 'sync' && m !== 'keep') throw new Error(`--modes: '${m}' is not sync or keep`);
const model = await workloadModel(values.model, threads);
const policy = Policy.load(model, { threads });
const tokenizer = loadTokenizer(model);

// ── timers around the engine's parts ──
const parts = ['run', 'wrap', 'fit', 'feeds', 'append', 'settle', 'remove'] as const;
type Part = (typeof parts)[number];
let timers: Record<Part, number> = Object.fromEntries(parts.map((p) => [p, 0])) as Record<Part, number>;
let inDecode = false;
function timed<T extends object, K extends keyof T>(target: T, key: K, part: Part | ((ms: number) => void)): void {
  const original = target[key] as (...args: unknown[]) => unknown;
  if (typeof original !== 'function') return;
  const add = typeof part === 'string' ? (ms: number) => inDecode && (timers[part] += ms) : part;
  (target as Record<K, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
    const t0 = clock();
    const result = original.apply(this, args);
    if (result instanceof Promise) return result.finally(() => add(clock() - t0));
    add(clock() - t0);
    return result;
  };
}
// CompiledGraph.run = wrapping the inputs + session.run + the output records.
let nativeMs = 0;
timed(
  (ort.InferenceSession as unknown as { prototype: { run: unknown } }).prototype,
  'run',
  (ms) => void (inDecode && (nativeMs += ms)),
);
timed(CompiledGraph.prototype, 'run', (ms) => void (inDecode && (timers.wrap += ms)));

interface StepRecord {
  ms: number;
  lengths: number[]; // each row's positions after the step (cached + the new one)
  fedPositions: number; // rows × slots over the segments fed
  timers: Record<Part, number>;
}

interface EngineInternals {
  decode(): Promise<unknown>;
  cache: { rows: { cacheLength: number }[]; fit(): void; feeds(): { rows: number; slots: number }[] };
}

async function replay(mode: 'sync' | 'keep'): Promise<StepRecord[]> {
  const config = loadConfig({
    files: [demoConfig],
    sets: [
      ...workload,
      `rollout.mode=${mode === 'sync' ? 'sync' : 'c3po'}`,
      `rollout.paused_kv=${mode === 'keep' ? 'keep' : 'recompute'}`,
    ],
  });
  const engine = new LocalEngine(policy.config, {
    capacity: config.rollout.pool_capacity,
    keepPausedCache: mode === 'keep',
    seed: config.run.seed,
    ...(kvSegments ? { kvSegments } : {}),
    runtime: { threads },
  });
  await engine.updateWeights(policy.weights, 0);
  const internals = engine as unknown as EngineInternals;
  const cache = internals.cache;
  for (const [key, part] of [
    ['fit', 'fit'],
    ['feeds', 'feeds'],
    ['append', 'append'],
    ['settle', 'settle'],
    ['remove', 'remove'],
  ] as const)
    timed(cache as unknown as Record<string, unknown>, key, part);
  let fedPositions = 0;
  const feeds = cache.feeds.bind(cache);
  cache.feeds = () => {
    const f = feeds();
    fedPositions = f.reduce((a, s) => a + s.rows * s.slots, 0);
    return f;
  };
  const steps: StepRecord[] = [];
  let lengthsBefore: number[] = []; // the rows' cached positions when the step sizes the cache (its first act)
  let recording = false;
  const decode = internals.decode.bind(engine);
  internals.decode = async () => {
    timers = Object.fromEntries(parts.map((p) => [p, 0])) as Record<Part, number>;
    nativeMs = 0;
    inDecode = true;
    const t0 = clock();
    const result = await decode();
    const ms = clock() - t0;
    inDecode = false;
    timers.run = nativeMs;
    timers.wrap -= nativeMs;
    if (recording) steps.push({ ms, lengths: lengthsBefore.map((l) => l + 1), fedPositions, timers });
    return result;
  };
  const fit = cache.fit.bind(cache);
  cache.fit = () => {
    lengthsBefore = cache.rows.map((r) => r.cacheLength);
    fit();
  };
  const source = await trainSourceFor(config.data, 'rl');
  const prompts: PromptSource = {
    next: () => {
      const ex = source.next();
      return { id: ex.source, tokens: encodeExamplePrompt(tokenizer, ex), meta: {} };
    },
    cursor: () => source.cursor,
    seek: (c) => void (source.cursor = c),
  };
  const scheduler = new RolloutScheduler(engine, prompts, rolloutOptions(config, tokenizer.stopIds), config.run.seed);
  for (let it = 0; it < iterations; it++) {
    recording = it > 0; // the first iteration is warm-up (C3PO++ fills its pool with partials)
    await scheduler.collect();
    await engine.updateWeights(policy.weights, it + 1);
    scheduler.policyUpdated(it + 1);
  }
  return steps;
}

const load = [loadAverage()];
const measured = await measureCostModel(policy, threads, clock);
const cost: StepCostModel = kvSegments ? { ...measured, segments: kvSegments } : measured;
const ragged: StepCostModel = { ...cost, attention: 'ragged' };
const fmt = (x: number, d = 2) => x.toFixed(d);
const summaries: Record<string, Record<string, number>> = {};
const mixes: Record<string, number[][]> = {};
for (const mode of modes as ('sync' | 'keep')[]) {
  load.push(loadAverage());
  const steps = await replay(mode);
  const n = steps.length;
  const mean = (f: (s: StepRecord) => number) => steps.reduce((a, s) => a + f(s), 0) / n;
  const real = mean((s) => s.ms);
  const predicted = mean((s) => decodeStepMs(cost, s.lengths));
  const summary: Record<string, number> = {
    steps: n,
    rows: mean((s) => s.lengths.length),
    longest: mean((s) => Math.max(...s.lengths)),
    mean_length: mean((s) => s.lengths.reduce((a, b) => a + b, 0) / s.lengths.length),
    real_ms: real,
    model_ms: predicted,
    model_ragged_ms: mean((s) => decodeStepMs(ragged, s.lengths)),
    positions_model: mean(
      (s) =>
        (decodeStepMs(cost, s.lengths) - decodeStepMs({ ...cost, stepPerCachedMs: 0 }, s.lengths)) /
        cost.stepPerCachedMs!,
    ),
    positions_ragged: mean((s) => s.lengths.reduce((a, b) => a + b, 0)),
    positions_fed: mean((s) => s.fedPositions),
  };
  for (const p of parts) summary[`${p}_ms`] = mean((s) => s.timers[p]);
  summary.other_ms = real - parts.reduce((a, p) => a + summary[`${p}_ms`]!, 0);
  summaries[mode] = summary;
  const count = Number(values['paired-mixes']);
  mixes[mode] = Array.from({ length: count }, (_, i) => steps[Math.floor(((i + 0.5) * n) / count)]!.lengths);
  console.log(
    `${mode}: ${n} decode steps, ${fmt(summary.rows!, 1)} rows (mean length ${fmt(summary.mean_length!, 0)}, longest ${fmt(summary.longest!, 0)}); real ${fmt(real)} ms per step, cost model ${fmt(predicted)} ms (${fmt(real / predicted)}× as much; ragged attention would be ${fmt(summary.model_ragged_ms!)} ms)`,
  );
  console.log(
    `  positions per step: the cost model reads ${fmt(summary.positions_model!, 0)}, each row its own ${fmt(summary.positions_ragged!, 0)}, the engine feeds ${fmt(summary.positions_fed!, 0)}`,
  );
  console.log(
    `  per step: ${[...parts, 'other' as const].map((p) => `${p} ${fmt(summary[`${p}_ms`]!, 3)}`).join(', ')} ms`,
  );
  // by the longest row, where the attention term shows
  const bins = [0, 128, 256, 512, 1024, Infinity];
  for (let b = 0; b + 1 < bins.length; b++) {
    const inBin = steps.filter((s) => Math.max(...s.lengths) > bins[b]! && Math.max(...s.lengths) <= bins[b + 1]!);
    if (!inBin.length) continue;
    const m = (f: (s: StepRecord) => number) => inBin.reduce((a, s) => a + f(s), 0) / inBin.length;
    console.log(
      `  longest in (${bins[b]}, ${bins[b + 1]}]: ${inBin.length} steps, ${fmt(
        m((s) => s.lengths.length),
        1,
      )} rows, real ${fmt(m((s) => s.ms))} ms (run ${fmt(m((s) => s.timers.run))}), cost model ${fmt(m((s) => decodeStepMs(cost, s.lengths)))} ms, fed ${fmt(
        m((s) => s.fedPositions),
        0,
      )} positions vs model ${fmt(
        m(
          (s) =>
            (decodeStepMs(cost, s.lengths) - decodeStepMs({ ...cost, stepPerCachedMs: 0 }, s.lengths)) /
            cost.stepPerCachedMs!,
        ),
        0,
      )}`,
    );
  }
}
load.push(loadAverage());

/** Median decode-step time of each engine class on one mix (rows of `lengths` positions), their steps alternating. */
async function pairedStepMs(engineClasses: (typeof LocalEngine)[], lengths: number[], steps = 16): Promise<number[]> {
  const engines = await Promise.all(
    engineClasses.map(async (Engine) => {
      const engine = new Engine(policy.config, { capacity: lengths.length, prefillBatch: 8, runtime: { threads } });
      await engine.updateWeights(policy.weights, 0);
      const params = { temperature: 1, maxNewTokens: steps + 2, stopTokens: [] };
      engine.submit(
        lengths.map((l, i) => ({ id: String(i), prompt: Array(l - 1).fill(5), params: { ...params, seed: i } })),
      );
      await engine.step(); // prefill every row + the first decode step, untimed
      return engine;
    }),
  );
  const times: number[][] = engines.map(() => []);
  for (let i = 0; i < steps; i++)
    for (const e of i % 2 ? [...engines.keys()].reverse() : engines.keys()) {
      const t0 = clock();
      await engines[e]!.step();
      times[e]!.push(clock() - t0);
    }
  return times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]!);
}

const paired: Record<string, Record<string, number>> = {};
if (values.against) {
  const other = (await import(join(resolve(values.against), 'src', 'engine', 'local.ts')))
    .LocalEngine as typeof LocalEngine;
  for (const mode of Object.keys(mixes)) {
    const results: number[][] = [];
    for (const lengths of mixes[mode]!) results.push(await pairedStepMs([LocalEngine, other], lengths));
    const mean = (k: number) => results.reduce((a, r) => a + r[k]!, 0) / results.length;
    paired[mode] = { mixes: results.length, this_ms: mean(0), against_ms: mean(1) };
    console.log(
      `${mode}, ${results.length} of its mixes, steps alternating: this tree ${fmt(mean(0))} ms per step, ${values.against} ${fmt(mean(1))} ms (${fmt(mean(1) / mean(0))}× as long); per mix: ${results.map(([a, b]) => `${fmt(a!)}/${fmt(b!)}`).join(', ')}`,
    );
  }
  load.push(loadAverage());
}
console.log(`load average (1 min) at the start, before each mode and at the end: ${load.join(', ')}`);
const keep = summaries.keep ?? summaries[modes[0]!]!;
const r = (x: number) => Number(x.toFixed(3));
record({
  bench: 'c3po-step',
  ours: r(keep.real_ms!),
  peer: r(keep.model_ms!),
  ratio: r(keep.model_ms! / keep.real_ms!),
  unit: 'ms per decode step (keep mix): real engine vs its cost model; ratio: model / real',
  modes: Object.fromEntries(
    Object.entries(summaries).map(([k, s]) => [k, Object.fromEntries(Object.entries(s).map(([a, b]) => [a, r(b)]))]),
  ),
  step_cost_model: {
    fixed_ms: r(cost.stepFixedMs),
    per_seq_ms: r(cost.stepPerSeqMs),
    per_cached_position_us: r(1000 * cost.stepPerCachedMs!),
  },
  ...(values.against ? { against: values.against, paired } : {}),
  load,
  iterations,
  threads,
  clock: values.clock,
  kv_segments: kvSegments ?? 'default',
  model,
});

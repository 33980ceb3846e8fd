// `npm run bench -- system [--steps N] [--threads N] [--engine http|local] [--sim-only | --no-sim] [--no-publish] [--sim-iterations N]`
//
// Placement: colocated (rollout, rewards, training and weight publication alternate) against
// disaggregated (the engines keep decoding under version v while the trainer trains v → v+1;
// docs/system.md), same config, compared per Φ trained tokens.
//   (a) this machine: `ringrl rl`'s own loop (runRl) on a fresh small model, C3PO++, with the
//       rollout engine in a `ringrl serve` worker (--engine http, default) or in-process (local),
//       with the per-phase breakdown (rollout, reward, train, publish, overlap) and busy fractions;
//   (b) a cluster: the same scheduler on 8 simulated engines (the c3po bench's GPU step-cost model,
//       a 64K-token lognormal tail) and one trainer of a stated throughput, both placements, sync
//       and C3PO++, in virtual time;
//   (c) weight publication to 2 local engines against memcpy (bench/system/publish.ts; see below).
// The JSON line's ratio is (a)'s colocated over disaggregated step time (> 1: disaggregated faster).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SimulatedEngine, type StepCostModel } from '../src/engine/simulated.ts';
import type { EngineStats, GeneratedSequence, GenerationRequest, RolloutEngine } from '../src/engine/types.ts';
import { saveModelDir } from '../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../src/model/presets.ts';
import type { MetricsRow } from '../src/report/index.ts';
import { RolloutScheduler } from '../src/rollout/scheduler.ts';
import type { PromptSource, RolloutMode } from '../src/rollout/types.ts';
import { builtinVocabSize, writeTokenizer } from '../src/tokenizer/index.ts';
import { loadAverage, runRlArm } from './lib/rl.ts';
import { benchPublication } from './system/publish.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    threads: { type: 'string', default: '2' },
    engine: { type: 'string', default: 'http' },
    'sim-only': { type: 'boolean', default: false },
    'no-sim': { type: 'boolean', default: false },
    'no-publish': { type: 'boolean', default: false },
    'sim-iterations': { type: 'string', default: '6' },
  },
});
const steps = Number(values.steps),
  threads = Number(values.threads);
if (!['http', 'local'].includes(values.engine))
  throw new Error(`--engine: expected http or local, got '${values.engine}'`);
const r3 = (x: number) => Number(x.toFixed(3));

// ── (a) this machine ──
type Phases = Record<'step' | 'rollout' | 'reward' | 'train' | 'publish' | 'overlap', number> & {
  trainedTokens: number;
  trainerBusy: number;
  engineBusy: number;
  overlapTokens: number;
  load: number;
};

/** Mean seconds per step of each phase past the warm-up step, and the step time per Φ trained tokens. */
function phases(rows: MetricsRow[], budget: number, load: number): Phases {
  const kept = rows.slice(1);
  const mean = (key: string) => kept.reduce((a, r) => a + (r[key] as number), 0) / kept.length;
  const trained = kept.reduce((a, r) => a + (r['response_length/mean'] as number) * (r['train/samples'] as number), 0);
  const perPhi = (key: string) => (kept.reduce((a, r) => a + (r[key] as number), 0) / trained) * budget;
  return {
    step: perPhi('time/step_s'),
    rollout: perPhi('time/rollout_s'),
    reward: perPhi('time/reward_s'),
    train: perPhi('time/train_s'),
    publish: perPhi('time/sync_s'),
    overlap: perPhi('time/overlap_s'),
    trainedTokens: trained / kept.length,
    trainerBusy: mean('system/trainer_busy_frac'),
    engineBusy: mean('system/engine_busy_frac'),
    overlapTokens: mean('overlap/generated_tokens') || 0,
    load,
  };
}

const local: Record<string, Phases> = {};
const budget = 2048;
if (!values['sim-only']) {
  // A fresh small model (1.08M parameters, char vocabulary): its responses end at EOS at random,
  // a geometric length tail under max_new_tokens — what matters here is time, not reward.
  const work = mkdtempSync(join(tmpdir(), 'ringrl-bench-system-'));
  const model = join(work, 'model');
  const config = presetConfig('small', { vocabSize: builtinVocabSize('char') });
  saveModelDir(model, config, initWeights(config, 0));
  writeTokenizer(model, 'char');
  const engine =
    values.engine === 'http' ? ['rollout.engine=http', 'rollout.engine_workers=1'] : ['rollout.engine=local'];
  const sets = [
    ...engine,
    'rollout.mode=c3po',
    `rollout.token_budget=${budget}`,
    'rollout.pool_capacity=32',
    'rollout.max_new_tokens=256',
    'rollout.retention=2',
    'rl.optimizer.lr=2e-5',
    `rl.steps=${steps}`,
    'rl.eval_every=0',
    'eval.num_problems=1',
    'run.checkpoint_every=0',
  ];
  for (const placement of ['colocated', 'disaggregated'] as const) {
    const load = loadAverage();
    const started = performance.now();
    const arm = await runRlArm(join(work, placement), model, [...sets, `system.placement=${placement}`], threads);
    local[placement] = phases(arm.steps, budget, load);
    console.log(`(a) ${placement}: ${((performance.now() - started) / 1000).toFixed(0)} s, load average ${load}`);
  }
  const fmt = (p: Phases) =>
    `step ${p.step.toFixed(2)} s = rollout ${p.rollout.toFixed(2)} + reward ${p.reward.toFixed(2)} + train ${p.train.toFixed(2)} + publish ${p.publish.toFixed(2)} (overlap ${p.overlap.toFixed(2)} s: ${p.overlapTokens.toFixed(0)} tokens decoded during training); trainer busy ${(100 * p.trainerBusy).toFixed(0)}%, engine busy ${(100 * p.engineBusy).toFixed(0)}%; trained ${p.trainedTokens.toFixed(0)} tokens/step; load ${p.load}`;
  console.log(
    `(a) this machine, ${values.engine === 'http' ? 'one ringrl serve worker' : 'the local engine'}, ${threads} threads, C3PO++, per ${budget} trained tokens:`,
  );
  console.log(`    colocated:     ${fmt(local.colocated!)}`);
  console.log(`    disaggregated: ${fmt(local.disaggregated!)}`);
  console.log(
    `    disaggregated is ${(local.colocated!.step / local.disaggregated!.step).toFixed(2)}× colocated's speed (> 1: faster)`,
  );
}

// ── (b) a cluster, simulated ──
/**
 * `n` simulated engines behind one RolloutEngine, stepped in lockstep: a step takes as long as the
 * slowest engine's; each engine's own busy time is kept (per-engine busy fractions). New sequences
 * go to the least-loaded engine; a resumed one may land on another (its re-prefill is paid there).
 */
class Fleet implements RolloutEngine {
  version = 0;
  readonly engines: SimulatedEngine[];
  /** Virtual seconds elapsed (the slowest engine's time per lockstep step). */
  clock = 0;
  private readonly owner = new Map<string, number>();
  private deadline = Infinity;
  private onDeadline: (() => void) | null = null;

  constructor(engines: SimulatedEngine[]) {
    this.engines = engines;
  }

  /** Resolves once the virtual clock has advanced `seconds` (the trainer's time, for overlap). */
  after(seconds: number): Promise<void> {
    this.deadline = this.clock + seconds;
    return new Promise((done) => (this.onDeadline = done));
  }

  submit(requests: GenerationRequest[]): void {
    for (const r of requests) {
      const load = this.engines.map((e) => e.stats().active + e.stats().waiting);
      const i = load.indexOf(Math.min(...load));
      this.owner.set(r.id, i);
      this.engines[i]!.submit([r]);
    }
  }

  async step(): Promise<GeneratedSequence[]> {
    const before = this.engines.map((e) => e.stats().busySeconds);
    const finished = (await Promise.all(this.engines.map((e) => e.step()))).flat();
    this.clock += Math.max(...this.engines.map((e, i) => e.stats().busySeconds - before[i]!));
    if (this.clock >= this.deadline) {
      this.deadline = Infinity;
      this.onDeadline?.();
    }
    return finished;
  }

  busy(): boolean {
    return this.engines.some((e) => e.busy());
  }

  async pause(): Promise<GeneratedSequence[]> {
    return (await Promise.all(this.engines.map((e) => e.pause()))).flat();
  }

  async updateWeights(weights: Map<string, Float32Array>, version: number): Promise<void> {
    for (const e of this.engines) await e.updateWeights(weights, version);
    this.version = version;
  }

  async busySecondsPerEngine(): Promise<number[]> {
    return this.engines.map((e) => e.stats().busySeconds);
  }

  stats(): EngineStats {
    const all = this.engines.map((e) => e.stats());
    const sum = (k: 'active' | 'waiting' | 'capacity' | 'generatedTokens' | 'prefillTokens') =>
      all.reduce((a, s) => a + s[k], 0);
    return {
      active: sum('active'),
      waiting: sum('waiting'),
      capacity: sum('capacity'),
      decodeSteps: Math.max(...all.map((s) => s.decodeSteps)),
      generatedTokens: sum('generatedTokens'),
      prefillTokens: sum('prefillTokens'),
      busySeconds: this.clock,
    };
  }
}

// The c3po bench's GPU regime: a decode step of 40 ms + 0.01 ms per sequence (weight-bound, flat in
// the batch), 128 slots per engine, lognormal lengths around 2K tokens up to 64K.
const gpu: StepCostModel = { stepFixedMs: 40, stepPerSeqMs: 0.01, prefillPerTokenMs: 0.0005 };
const cluster = { engines: 8, slots: 128, median: 2000, maxLen: 65536, promptLen: 64, retention: 2 };
const clusterBudget = (cluster.engines * cluster.slots * cluster.median) / 2;
// The trainer: stated, not measured. 50K trained tokens/s (forward, backward and the θ_old
// recompute), about twice the pool's decode rate at full occupancy (8 × 128 / 41.3 ms ≈ 25K
// tokens/s), so rollout dominates a step as in long-CoT RL; a weight publication takes 5 s (the
// paper's AState: about 4-6 s for 100B-1T parameters).
const trainerTokensPerS = 50_000,
  publishS = 5;

interface SimStep {
  step: number;
  rollout: number;
  train: number;
  publish: number;
  overlap: number;
  engineBusy: number[];
  trained: number;
}

async function simulate(mode: RolloutMode, placement: 'colocated' | 'disaggregated', iterations = 10) {
  const fleet = new Fleet(
    Array.from(
      { length: cluster.engines },
      () =>
        new SimulatedEngine({
          capacity: cluster.slots,
          cost: gpu,
          lengths: { median: cluster.median, sigma: 1 },
          seed: 7,
        }),
    ),
  );
  let n = 0;
  const prompts: PromptSource = {
    next: () => ({ id: `p${n}`, tokens: Array(cluster.promptLen).fill(1), meta: { i: n++ } }),
    cursor: () => n,
    seek: (c) => void (n = c),
  };
  const scheduler = new RolloutScheduler(fleet, prompts, {
    mode,
    tokenBudget: clusterBudget,
    poolCapacity: cluster.engines * cluster.slots,
    retention: cluster.retention,
    staleness: 2,
    groupSize: 8,
    sampling: { temperature: 1, maxNewTokens: cluster.maxLen },
  });
  const out: SimStep[] = [];
  for (let it = 0; it < iterations; it++) {
    const t0 = fleet.clock;
    const busy0 = await fleet.busySecondsPerEngine();
    const batch = await scheduler.collect({ keepDecoding: placement === 'disaggregated' });
    const rollout = fleet.clock - t0;
    const trained = batch.groups
      .flatMap((g) => g.members)
      .filter((m) => m.finishReason !== 'dropped')
      .reduce((a, m) => a + m.response.length, 0);
    const train = trained / trainerTokensPerS;
    let overlap = 0;
    if (placement === 'disaggregated') {
      const o = await scheduler.overlap(fleet.after(train));
      overlap = fleet.clock - t0 - rollout;
      if (o.decodeSteps === 0) overlap = 0;
      await scheduler.pauseForUpdate();
    }
    // The trainer and the engines run side by side: the step waits for the later of the two.
    const step = rollout + Math.max(train, overlap) + publishS;
    fleet.clock = t0 + step;
    await fleet.updateWeights(new Map(), it + 1);
    scheduler.policyUpdated(it + 1);
    const busy1 = await fleet.busySecondsPerEngine();
    if (it >= 2)
      out.push({
        step,
        rollout,
        train,
        publish: publishS,
        overlap: Math.min(overlap, train),
        engineBusy: busy1.map((b, i) => (b - busy0[i]!) / step),
        trained,
      });
  }
  const sum = (k: keyof Omit<SimStep, 'engineBusy'>) => out.reduce((a, s) => a + s[k], 0);
  const trainedTotal = sum('trained');
  const perPhi = (k: keyof Omit<SimStep, 'engineBusy'>) => (sum(k) / trainedTotal) * clusterBudget;
  const busy = out[0]!.engineBusy.map((_, i) => out.reduce((a, s) => a + s.engineBusy[i]!, 0) / out.length);
  return {
    step: perPhi('step'),
    rollout: perPhi('rollout'),
    train: perPhi('train'),
    publish: perPhi('publish'),
    overlap: perPhi('overlap'),
    trainerBusy: sum('train') / sum('step'),
    engineBusyMin: Math.min(...busy),
    engineBusyMax: Math.max(...busy),
    trainedPerStep: trainedTotal / out.length,
  };
}

const sim: Record<string, Awaited<ReturnType<typeof simulate>>> = {};
console.log(
  `(b) simulated cluster: ${cluster.engines} engines × ${cluster.slots} slots (40 ms + 0.01 ms/seq per step), lognormal lengths median ${cluster.median} to ${cluster.maxLen}, Φ ${clusterBudget}, σ ${cluster.retention}; one trainer at ${trainerTokensPerS / 1000}K tokens/s, publication ${publishS} s; per Φ trained tokens:`,
);
// (b) runs in virtual time: its figures do not depend on this machine (--no-sim skips it).
for (const mode of values['no-sim'] ? [] : (['sync', 'c3po'] as const))
  for (const placement of ['colocated', 'disaggregated'] as const) {
    const name = `${mode}/${placement}`;
    const started = performance.now();
    const s = await simulate(mode, placement, Number(values['sim-iterations']));
    sim[name] = s;
    console.log(
      `    ${name.padEnd(19)} step ${s.step.toFixed(1)} s = rollout ${s.rollout.toFixed(1)} + train ${s.train.toFixed(1)} + publish ${s.publish.toFixed(1)} − overlap ${s.overlap.toFixed(1)}; trainer busy ${(100 * s.trainerBusy).toFixed(0)}%, engines busy ${(100 * s.engineBusyMin).toFixed(0)}–${(100 * s.engineBusyMax).toFixed(0)}% (simulated in ${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
const simGain = (mode: string) => sim[`${mode}/colocated`]!.step / sim[`${mode}/disaggregated`]!.step;
if (!values['no-sim'])
  console.log(
    `    disaggregated over colocated: C3PO++ ${simGain('c3po').toFixed(2)}×, sync ${simGain('sync').toFixed(2)}× (sync drains its pool at the cut: nothing on-policy is left to decode while the trainer trains); C3PO++ disaggregated over sync colocated ${(sim['sync/colocated']!.step / sim['c3po/disaggregated']!.step).toFixed(2)}×`,
  );

// ── (c) weight publication to 2 local engines, against memcpy (bench/system/publish.ts) ──
process.stdout.write('(c) ');
const publication = values['no-publish'] || values['sim-only'] ? null : await benchPublication();

const simJson = Object.fromEntries(
  Object.entries(sim).map(([k, s]) => [k, Object.fromEntries(Object.entries(s).map(([f, v]) => [f, r3(v)]))]),
);
const a = local.colocated && local.disaggregated;
record({
  bench: 'system',
  ours: a ? r3(local.disaggregated!.step) : NaN,
  peer: a ? r3(local.colocated!.step) : NaN,
  ratio: a ? r3(local.colocated!.step / local.disaggregated!.step) : NaN,
  unit: 'step s per Φ trained tokens on this machine, disaggregated vs colocated',
  engine: values.engine,
  local: Object.fromEntries(
    Object.entries(local).map(([k, p]) => [k, Object.fromEntries(Object.entries(p).map(([f, v]) => [f, r3(v)]))]),
  ),
  sim: simJson,
  sim_gain_c3po: values['no-sim'] ? null : r3(simGain('c3po')),
  sim_gain_sync: values['no-sim'] ? null : r3(simGain('sync')),
  publication,
  steps,
  threads,
});

// `npm run bench -- icepop [--model DIR] [--precision P] [--lr X] [--steps N] [--seeds N]
//                          [--eval-every N] [--arms a,b,...] [--probe] [--threads N]`
//
// The paper's train/inference-mismatch experiment at laptop scale. From one SFT checkpoint of a
// small MoE (trained once and kept in runs/bench-icepop/sft), RL runs with the rollout engine in
// reduced precision while the trainer stays fp32, in five arms with the same seeds, data order and
// number of steps:
//   none       GRPO on the engine's samples; the ratio is against the recomputed θ_old only
//   tis        truncated importance sampling, w = min(k, 2)
//   icepop     w = k inside [0.5, 5], else 0 (rejected tokens stay in the denominator)
//   mis        verl's masked importance sampling: IcePop's weight, rejected tokens leave the denominator
//   icepop+r3  IcePop with routing replay: the trainer uses the engine's expert choices
// Rollouts are synchronous (every rollout ends under the policy that started it), so the only
// mismatch is the engine's precision (and, without R3, its routing flips).
//
// First a probe (`--probe` runs only it): one rollout batch of the checkpoint at every precision,
// scored by the fp32 trainer with and without routing replay, splits the mismatch KL into its
// routing part (what R3 removes) and its numeric part.
//
// Prints a table per arm (mean ± s.e. over seeds), writes a comparison report (one line per arm per
// metric) next to the runs, and ends with the JSON line {bench: "icepop", arms, precision, steps, seeds}.
// The defaults are the run in docs/algorithms.md (fp8, lr 1e-3, 12 steps, token budget 1024, one
// seed: what a shared 2-core machine allowed in about 25 minutes); --seeds 3 --steps 100 is the
// scale that would separate the arms.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.ts';
import { encodePrompt, trainSourceFor } from '../src/data/index.ts';
import { LocalEngine } from '../src/engine/local.ts';
import { type Precision, precisions } from '../src/engine/precision.ts';
import { generateAll } from '../src/engine/types.ts';
import { saveModelDir } from '../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../src/model/presets.ts';
import { type MetricsRow, RunDir, writeComparisonReport } from '../src/report/index.ts';
import { builtinVocabSize, loadTokenizer, writeTokenizer } from '../src/tokenizer/index.ts';
import { Policy } from '../src/train/policy.ts';
import { cachedSftModel, demoConfig, runRlArm } from './lib/rl.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    precision: { type: 'string', default: 'fp8' },
    lr: { type: 'string', default: '1e-3' },
    steps: { type: 'string', default: '12' },
    seeds: { type: 'string', default: '1' },
    'eval-every': { type: 'string', default: '6' },
    arms: { type: 'string', default: 'none,tis,icepop,mis,icepop+r3' },
    probe: { type: 'boolean', default: false },
    threads: { type: 'string', default: '2' },
    'token-budget': { type: 'string', default: '1024' },
  },
});
const precision = values.precision as Precision;
if (!precisions.includes(precision))
  throw new Error(`--precision: expected one of ${precisions.join(', ')}, got '${values.precision}'`);
const steps = Number(values.steps),
  seeds = Number(values.seeds),
  threads = Number(values.threads),
  evalEvery = Number(values['eval-every']);
const runtime = { threads };

const allArms = {
  none: ['rl.loss.correction=none'],
  tis: ['rl.loss.correction=tis', 'rl.loss.tis.cap=2'],
  icepop: ['rl.loss.correction=icepop', 'rl.loss.icepop.alpha=0.5', 'rl.loss.icepop.beta=5'],
  mis: ['rl.loss.correction=mis', 'rl.loss.icepop.alpha=0.5', 'rl.loss.icepop.beta=5'],
  'icepop+r3': [
    'rl.loss.correction=icepop',
    'rl.loss.icepop.alpha=0.5',
    'rl.loss.icepop.beta=5',
    'rl.loss.routing_replay=rollout',
  ],
} as const;
type ArmName = keyof typeof allArms;
const arms = values.arms.split(',') as ArmName[];
for (const a of arms)
  if (!(a in allArms)) throw new Error(`--arms: '${a}' is not one of ${Object.keys(allArms).join(', ')}`);

// The workload: the demo's hybrid-thinking arithmetic (difficulty 2) on a small MoE: 4 layers,
// d_model 128, 4 experts of d_ff 128, top-2 (the small-moe preset with narrower experts, so an
// SFT of 600 steps at batch 32 fits in about 15 minutes on 2 shared cores).
const sftSets = [
  'sft.steps=600',
  'sft.batch_size=32',
  'sft.eval_every=0',
  'eval.num_problems=100',
  'run.checkpoint_every=0',
];

async function workloadModel(): Promise<string> {
  if (values.model) return values.model;
  const dir = join('runs', 'bench-icepop', 'sft');
  const base = join('runs', 'bench-icepop', 'base-model');
  if (!(existsSync(dir) && RunDir.open(dir).latestCheckpoint())) {
    const config = presetConfig('small-moe', { vocabSize: builtinVocabSize('char'), intermediateSize: 128 });
    saveModelDir(base, config, initWeights(config, 0));
    writeTokenizer(base, 'char');
  }
  return cachedSftModel('icepop', dir, sftSets, threads, base);
}
const model = await workloadModel();

// ── 1. the probe: routing flips vs numerics at every precision, on one rollout batch ──
async function probe(p: Precision) {
  const policy = Policy.load(model, runtime);
  const tokenizer = loadTokenizer(model);
  const config = loadConfig({ files: [demoConfig], sets: [`model.dir=${JSON.stringify(model)}`] });
  const source = await trainSourceFor(config.data);
  const engine = new LocalEngine(policy.config, { capacity: 64, precision: p, seed: 1, runtime });
  await engine.updateWeights(policy.weights, 0);
  const prompts = Array.from({ length: 16 }, () => encodePrompt(tokenizer, source.next().prompt));
  const seqs = await generateAll(
    engine,
    prompts.flatMap((prompt, i) =>
      Array.from({ length: 4 }, (_, j) => ({
        id: `${i}/${j}`,
        prompt,
        params: { temperature: 1, maxNewTokens: 320, stopTokens: [tokenizer.eos], seed: i * 4 + j },
      })),
    ),
  );
  const full = seqs.map((s) => [...s.prompt, ...s.tokens]);
  const own = await policy.score(full);
  const replayed = await policy.score(
    full,
    1,
    seqs.map((s) => s.routes!),
  );
  const L = policy.config.numLayers,
    k = policy.config.moe!.topK;
  let flips = 0,
    routed = 0;
  const stats = (scored: { logprobs: number[][] }) => {
    const logK = seqs.flatMap((s, i) =>
      s.policyLogprobs.map((lp, t) => scored.logprobs[i]![s.prompt.length - 1 + t]! - lp),
    );
    const abs = logK.map(Math.abs).sort((a, b) => a - b);
    return {
      kl: logK.reduce((a, d) => a + Math.exp(d) - d - 1, 0) / logK.length,
      p99: abs[Math.ceil(0.99 * abs.length) - 1]!,
      max: abs.at(-1)!,
      masked: logK.filter((d) => d < Math.log(0.5) || d > Math.log(5)).length / logK.length,
    };
  };
  seqs.forEach((s, i) => {
    for (let pos = s.prompt.length - 1; pos < s.prompt.length + s.tokens.length - 1; pos++) {
      for (let l = 0; l < L; l++) {
        const at = (pos * L + l) * k;
        const a = new Set(s.routes!.slice(at, at + k)),
          b = own.routes![i]!.slice(at, at + k);
        routed++;
        if (b.some((e) => !a.has(e))) flips++;
      }
    }
  });
  const [total, numeric] = [stats(own), stats(replayed)];
  return {
    precision: p,
    tokens: seqs.reduce((a, s) => a + s.tokens.length, 0),
    flipFrac: flips / routed,
    total,
    numeric,
    routingShare: total.kl > 0 ? 1 - numeric.kl / total.kl : 0,
  };
}

const fmt = (x: number, d = 2) => (Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(d) : x.toFixed(d + 2));
const probes = [];
for (const p of (values.probe ? ['bf16', 'fp8', 'fp8-tensor', 'int8'] : [precision]) as Precision[]) {
  const r = await probe(p);
  probes.push(r);
  console.log(
    `probe ${p}: ${r.tokens} response tokens; routing flips ${(100 * r.flipFrac).toFixed(2)}% of (token, layer) routes; mismatch KL ${fmt(r.total.kl)} without replay, ${fmt(r.numeric.kl)} with (routing ${(100 * r.routingShare).toFixed(0)}%, numerics ${(100 * (1 - r.routingShare)).toFixed(0)}%); p99 |log k| ${fmt(r.total.p99)} → ${fmt(r.numeric.p99)}, max ${fmt(r.total.max)} → ${fmt(r.numeric.max)}; outside [0.5, 5]: ${(100 * r.total.masked).toFixed(3)}% → ${(100 * r.numeric.masked).toFixed(3)}%`,
  );
}
if (values.probe) process.exit(0);

// ── 2. the arms ──
type Row = MetricsRow;
const out = join('runs', 'bench-icepop', `arms-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(out, { recursive: true });
const dirs: Record<string, string[]> = Object.fromEntries(arms.map((a) => [a, []]));
interface RunSummary {
  finalReward: number;
  finalAccuracy: number;
  peakKl: number;
  finalKl: number;
  peakGrad: number;
  meanMasked: number;
  collapse: number | null;
}
const summaries: Record<string, RunSummary[]> = Object.fromEntries(arms.map((a) => [a, []]));
const num = (r: Row, key: string) => (typeof r[key] === 'number' ? (r[key] as number) : NaN);
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The first step whose 5-step trailing mean reward is more than 20% below its running maximum. */
function collapseStep(rows: Row[]): number | null {
  let best = -Infinity;
  for (let i = 4; i < rows.length; i++) {
    const trailing = meanOf(rows.slice(i - 4, i + 1).map((r) => num(r, 'reward/mean')));
    best = Math.max(best, trailing);
    if (best > 0 && trailing < 0.8 * best) return rows[i]!.step;
  }
  return null;
}

for (let seed = 0; seed < seeds; seed++) {
  for (const arm of arms) {
    const started = performance.now();
    const dir = join(out, `${arm.replace('+', '-')}-s${seed}`);
    const { run, finalAccuracy } = await runRlArm(
      dir,
      model,
      [
        'rollout.mode=sync',
        `rollout.precision=${precision}`,
        `rollout.token_budget=${values['token-budget']}`,
        'rollout.pool_capacity=64',
        `rl.optimizer.lr=${values.lr}`,
        `rl.steps=${steps}`,
        `rl.eval_every=${evalEvery}`,
        'eval.num_problems=64',
        'run.checkpoint_every=0',
        `run.seed=${seed}`,
        ...allArms[arm],
      ],
      threads,
    );
    const rows = run.readMetrics().filter((r) => typeof r['reward/mean'] === 'number');
    const s: RunSummary = {
      finalReward: meanOf(rows.slice(-5).map((r) => num(r, 'reward/mean'))),
      finalAccuracy,
      peakKl: Math.max(...rows.map((r) => num(r, 'mismatch/kl'))),
      finalKl: meanOf(rows.slice(-5).map((r) => num(r, 'mismatch/kl'))),
      peakGrad: Math.max(...rows.map((r) => num(r, 'grad/norm'))),
      meanMasked: meanOf(rows.map((r) => num(r, 'icepop/masked_frac'))),
      collapse: collapseStep(rows),
    };
    summaries[arm]!.push(s);
    dirs[arm]!.push(dir);
    console.log(
      `seed ${seed} ${arm}: ${((performance.now() - started) / 1000).toFixed(0)} s; reward (last 5) ${s.finalReward.toFixed(3)}, held-out ${(100 * s.finalAccuracy).toFixed(1)}%, mismatch KL peak ${fmt(s.peakKl)} final ${fmt(s.finalKl)}, peak grad norm ${s.peakGrad.toFixed(3)}, masked ${(100 * s.meanMasked).toFixed(3)}%, reward fell >20% below its running max: ${s.collapse ?? 'never'}`,
    );
  }
}

// ── 3. the table, the report, the JSON line ──
const meanSe = (xs: number[]) => {
  const m = meanOf(xs);
  const se = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1) / xs.length) : NaN;
  return { mean: m, se };
};
const cell = (xs: number[], f: (x: number) => string) => {
  const { mean, se } = meanSe(xs);
  return Number.isNaN(se) ? f(mean) : `${f(mean)} ± ${f(se)}`;
};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(
  `\nIcePop at laptop scale: ${precision} engine, fp32 trainer, lr ${values.lr}, ${steps} steps, ${seeds} seed(s) per arm (mean ± s.e. over seeds)`,
);
const header = [
  'arm',
  'final reward',
  'held-out acc',
  'peak mismatch KL',
  'final mismatch KL',
  'peak grad norm',
  'mean masked',
  'reward fell >20%',
];
const lines = arms.map((arm) => {
  const ss = summaries[arm]!;
  const collapses = ss.map((s) => s.collapse);
  return [
    arm,
    cell(
      ss.map((s) => s.finalReward),
      (x) => x.toFixed(3),
    ),
    cell(
      ss.map((s) => s.finalAccuracy),
      pct,
    ),
    cell(
      ss.map((s) => s.peakKl),
      (x) => fmt(x),
    ),
    cell(
      ss.map((s) => s.finalKl),
      (x) => fmt(x),
    ),
    cell(
      ss.map((s) => s.peakGrad),
      (x) => x.toFixed(3),
    ),
    cell(
      ss.map((s) => s.meanMasked),
      (x) => `${(100 * x).toFixed(3)}%`,
    ),
    collapses.map((c) => c ?? 'never').join(', '),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
for (const l of [header, ...lines]) console.log(l.map((c, i) => String(c).padEnd(widths[i]!)).join('  '));

const report = writeComparisonReport(
  arms.map((a) => ({ name: a, dirs: dirs[a]! })),
  {
    out: join(out, 'report.html'),
    title: `IcePop at laptop scale: ${precision} engine vs fp32 trainer`,
    note: `Arms ${arms.join(', ')}; lr ${values.lr}; ${steps} steps; ${seeds} seed(s) per arm (each line is the mean over seeds); small MoE (4 experts, top-2); sync rollouts.`,
    metrics: [
      'reward/mean',
      'eval/accuracy',
      'mismatch/kl',
      'mismatch/logp_diff_max',
      'mismatch/logp_diff_p99',
      'icepop/masked_frac',
      'grad/norm',
      'entropy/mean',
      'response_length/mean',
    ],
  },
);
console.log(`report: ${report.path}`);

const r = (x: number) => Number(x.toPrecision(4));
const armJson = Object.fromEntries(
  arms.map((arm) => {
    const ss = summaries[arm]!;
    const ms = (key: keyof Omit<RunSummary, 'collapse'>) => ({
      mean: r(meanSe(ss.map((s) => s[key])).mean),
      se: ss.length > 1 ? r(meanSe(ss.map((s) => s[key])).se) : null,
    });
    return [
      arm,
      {
        final_reward: ms('finalReward'),
        final_accuracy: ms('finalAccuracy'),
        peak_kl: ms('peakKl'),
        final_kl: ms('finalKl'),
        peak_grad_norm: ms('peakGrad'),
        mean_masked_frac: ms('meanMasked'),
        reward_drop_step: ss.map((s) => s.collapse ?? 'never'),
      },
    ];
  }),
);
// `record` wants ours/peer/ratio: IcePop's final reward against plain GRPO's (ratio > 1: IcePop ends higher).
const ice = summaries.icepop?.length ? meanSe(summaries.icepop.map((s) => s.finalReward)).mean : NaN;
const grpo = summaries.none?.length ? meanSe(summaries.none.map((s) => s.finalReward)).mean : NaN;
record({
  bench: 'icepop',
  ours: r(ice),
  peer: r(grpo),
  ratio: r(ice / grpo),
  unit: 'final reward (mean of the last 5 steps), icepop vs none',
  arms: armJson,
  precision,
  lr: Number(values.lr),
  probe: probes.map((p) => ({
    precision: p.precision,
    flip_frac: r(p.flipFrac),
    kl: r(p.total.kl),
    kl_replay: r(p.numeric.kl),
    routing_share: r(p.routingShare),
  })),
  report: report.path,
  model,
  steps,
  seeds,
});

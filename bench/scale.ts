// `npm run bench -- scale [--model DIR] [--new-tokens N] [--threads N] [--train-batch B] [--train-seq T]
//   [--train-steps S] [--rounds R] [--repeats N] [--parts decode,quantized,train]`
//
// The real-scale path on a Qwen3-0.6B-shaped checkpoint (`ringrl init --preset qwen3-0.6b`, made
// here when --model is not given): decode tokens/s at batch 1 and 8 and training tokens/s (one
// AdamW step on B x T tokens: the median of S timed steps after an untimed one), each against PyTorch CPU (bench/peers/decode_torch.py,
// train_torch.py) on the same model dir in the same run, with the peak RSS of every side; int8 and
// 4-bit decode against ringrl fp32, with their train/inference mismatch KL; the weight-read limit
// of batch-1 decode (fp32 weight bytes / memcpy bandwidth: the best of samples taken before every
// measurement, as one sample lands in another job's burst as easily as a round does); and model load time
// against reading the same bytes from disk. Every measurement runs in a child process of its own
// (one at a time), so each peak RSS is that side's alone; each comparison runs R rounds (default 2)
// with the sides' order swapped every round, and every round is printed with its load average and
// the cores other processes kept busy while it ran (the machine's busy CPU time during the child
// minus the child's own, per second: the load average lags and counts the measurement itself).
// Within a round, each side's decode process generates --repeats times (default 2) and keeps its
// best run (a 2-second run fits between other jobs' bursts more often than a whole round does).
// --parts runs a subset (the JSON line then holds only those parts; its ratio is training's, else
// batch-1 decode's).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { record } from './record.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'new-tokens': { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    'train-batch': { type: 'string', default: '2' },
    'train-seq': { type: 'string', default: '128' },
    'train-steps': { type: 'string', default: '3' },
    worker: { type: 'string' },
    precision: { type: 'string', default: 'fp32' },
    batch: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '2' },
    parts: { type: 'string', default: 'decode,quantized,train' },
  },
});
const rounds_ = Number(values.rounds),
  repeats = Number(values.repeats);
const parts = new Set(values.parts!.split(','));
const startLoad = loadavg()[0]!;
const threads = Number(values.threads),
  newTokens = Number(values['new-tokens']);
const trainBatch = Number(values['train-batch']),
  trainSeq = Number(values['train-seq']),
  trainSteps = Number(values['train-steps']);

if (values.worker) {
  await worker(values.worker, values.model!);
  process.exit(0);
}

/** Busy CPU time of the whole machine so far, in seconds (every core, every process). */
const busySeconds = () =>
  cpus().reduce((a, c) => a + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0) / 1000;

/**
 * One measurement in a child process: its JSON result line, its peak RSS (GNU time) and `others`,
 * the cores other processes kept busy on average while it ran.
 */
function child(
  command: string,
  args: string[],
  what: string,
): Record<string, unknown> & { rss_gb: number; others: number } {
  const busy = busySeconds(),
    start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS_KB %M CPU_S %U %S', command, ...args], {
    encoding: 'utf8',
    cwd: root,
    maxBuffer: 1 << 26,
  });
  const wall = (performance.now() - start) / 1000;
  const m = /RSS_KB (\d+) CPU_S ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) {
    console.error(`bench scale: ${what} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
    process.exit(1);
  }
  const others = Math.max(0, (busySeconds() - busy - Number(m[2]) - Number(m[3])) / wall);
  return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)!), rss_gb: Number(m[1]) / 2 ** 20, others }; // GiB (GNU time reports KiB)
}
const ours = (mode: string, extra: string[] = []) =>
  child(
    process.execPath,
    [
      '--import',
      'tsx',
      join(here, 'scale.ts'),
      '--worker',
      mode,
      '--model',
      model,
      '--threads',
      String(threads),
      '--new-tokens',
      String(newTokens),
      '--train-batch',
      String(trainBatch),
      '--train-seq',
      String(trainSeq),
      '--repeats',
      String(repeats),
      ...extra,
    ],
    `ringrl ${mode} ${extra.join(' ')}`,
  );
const python = (script: string, args: string[]) =>
  child(
    '/usr/bin/python3',
    [join(here, 'peers', script), '--model-dir', model, '--threads', String(threads), ...args],
    `PyTorch ${script}`,
  );

let model = values.model ?? '';
if (!model) {
  model = join(tmpdir(), 'ringrl-bench-qwen3-0.6b');
  if (!existsSync(join(model, 'config.json'))) {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src', 'cli', 'bin.ts'),
        'init',
        '--preset',
        'qwen3-0.6b',
        '--out',
        model,
        '--force',
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) process.exit(1);
  }
}
const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
const files = readdirSync(model)
  .filter((f) => f.endsWith('.safetensors'))
  .map((f) => join(model, f));
const fileBytes = files.reduce((a, f) => a + statSync(f).size, 0);
console.log(
  `model: ${model} (${config.model_type}, ${config.num_hidden_layers} layers, d_model ${config.hidden_size}, vocab ${config.vocab_size}, ${(fileBytes / 1e9).toFixed(2)} GB of ${config.torch_dtype} safetensors), ${threads} threads, ${newTokens} new tokens`,
);

// Weight-read limit and load time (in this process; the page cache is warmed first so both read from memory).
for (const f of files) readFileSync(f);
const t0 = performance.now();
for (const f of files) readFileSync(f);
const readSeconds = (performance.now() - t0) / 1000;
const load = ours('load');
const bandwidths = [memcpyBandwidth()]; // one more before every measurement; the best counts
const bandwidth = () => Math.max(...bandwidths);
const weightBytes = Number(load.params) * 4; // fp32: every parameter is read once per decode step (the tied table as the LM head)
const limit = () => bandwidth() / weightBytes;
console.log(
  `load: ringrl ${Number(load.seconds).toFixed(2)} s (peak RSS ${load.rss_gb.toFixed(2)} GiB for ${(weightBytes / 2 ** 30).toFixed(2)} GiB of fp32 weights) vs reading the same ${(fileBytes / 1e9).toFixed(2)} GB ${readSeconds.toFixed(2)} s → ${(Number(load.seconds) / readSeconds).toFixed(2)}× the read`,
);
const printLimit = () =>
  console.log(
    `memcpy ${(bandwidth() / 1e9).toFixed(2)} GB/s (best of ${bandwidths.length} samples so far, the lowest ${(Math.min(...bandwidths) / 1e9).toFixed(2)}) → batch-1 fp32 decode limit ${limit().toFixed(2)} tokens/s (${(weightBytes / 1e9).toFixed(2)} GB of weights per step)`,
  );
printLimit();

/**
 * One comparison: `rounds` rounds of (peer, ours), the order swapped every round so that a load
 * that drifts during the run hits both sides alike; each side's best round counts, and every round
 * is kept with the load average (1 min) it started under.
 */
type Run = Record<string, unknown> & { rss_gb: number; load: number; others: number };
const conditions = (r: Run) => `load ${r.load.toFixed(1)}, others ${r.others.toFixed(1)} cores`;
function pair(
  measurePeer: () => Run,
  measureOurs: () => Run,
): { peer: Run; ours: Run; rounds: string[]; peakRss: { peer: number; ours: number } } {
  let best: { peer?: Run; ours?: Run } = {};
  const rounds: string[] = [];
  const peakRss = { peer: 0, ours: 0 };
  for (let round = 0; round < rounds_; round++) {
    const order = round % 2 === 0 ? (['peer', 'ours'] as const) : (['ours', 'peer'] as const);
    for (const side of order) {
      const r = side === 'peer' ? measurePeer() : measureOurs();
      rounds.push(`${side} ${Number(r.tokens_per_s).toFixed(2)} (${conditions(r)})`);
      peakRss[side] = Math.max(peakRss[side], r.rss_gb);
      if (!best[side] || Number(r.tokens_per_s) > Number(best[side]!.tokens_per_s)) best = { ...best, [side]: r };
    }
  }
  return { peer: best.peer!, ours: best.ours!, rounds, peakRss };
}
const withLoad =
  <A extends unknown[]>(f: (...a: A) => Record<string, unknown> & { rss_gb: number; others: number }) =>
  (...a: A): Run => {
    bandwidths.push(memcpyBandwidth());
    const load = loadavg()[0]!;
    return { ...f(...a), load };
  };
const oursRun = withLoad(ours),
  peerRun = withLoad(python);

const decode: Record<string, ReturnType<typeof pair>> = {};
for (const batch of parts.has('decode') ? [1, 8] : []) {
  const peerArgs = [
    '--batch',
    String(batch),
    '--prompt-len',
    '16',
    '--new-tokens',
    String(newTokens),
    '--repeats',
    String(repeats),
  ];
  const d = pair(
    () => peerRun('decode_torch.py', peerArgs),
    () => oursRun('decode', ['--batch', String(batch)]),
  );
  decode[batch] = d;
  const o = Number(d.ours.tokens_per_s),
    p = Number(d.peer.tokens_per_s);
  const stepPerS = 1 / Number(d.ours.step_s);
  if (batch === 1) printLimit();
  console.log(
    `decode batch ${batch}: PyTorch ${p.toFixed(2)} tokens/s (RSS ${d.peakRss.peer.toFixed(2)} GiB), ringrl ${o.toFixed(2)} tokens/s (RSS ${d.peakRss.ours.toFixed(2)} GiB) → ${(o / p).toFixed(2)}×${batch === 1 ? `; ${(o / limit()).toFixed(2)} of the weight-read limit (decode steps alone, the prefill left out: ${stepPerS.toFixed(2)} steps/s = ${(stepPerS / limit()).toFixed(2)} of it)` : ''} [rounds: ${d.rounds.join(', ')}]`,
  );
}

// int8 and int4 against fp32 over the same rounds (the order reversed every round), each precision's best round.
const quantized: Record<
  string,
  {
    tokensPerS: number;
    speedup: number;
    stepsPerS: number;
    stepSpeedup: number;
    kl: number;
    maxAbs: number;
    rss: number;
    load: number;
    others: number;
  }
> = {};
const precisionRuns: Record<string, Run[]> = { fp32: [], int8: [], int4: [] };
for (let round = 0; round < (parts.has('quantized') ? rounds_ : 0); round++) {
  const order = round % 2 === 0 ? ['fp32', 'int8', 'int4'] : ['int4', 'int8', 'fp32'];
  for (const precision of order)
    precisionRuns[precision]!.push(oursRun('decode', ['--batch', '1', '--precision', precision]));
}
const bestOf = (runs: Run[]) => runs.reduce((a, b) => (Number(b.tokens_per_s) > Number(a.tokens_per_s) ? b : a));
const listRuns = (runs: Run[]) => runs.map((r) => `${Number(r.tokens_per_s).toFixed(2)} (${conditions(r)})`).join(', ');
// Decode steps alone (the prefill left out): a 16-token prompt's prefill is a large share of a
// 16-token generation, and 4-bit's prefill (MatMulNBits at 16 rows) is slower than int8's.
const bestSteps = (runs: Run[]) => Math.max(...runs.map((r) => 1 / Number(r.step_s)));
const fp32Best = parts.has('quantized') ? bestOf(precisionRuns.fp32!) : undefined;
for (const precision of parts.has('quantized') ? ['int8', 'int4'] : []) {
  const o = bestOf(precisionRuns[precision]!);
  quantized[precision] = {
    tokensPerS: Number(o.tokens_per_s),
    speedup: Number(o.tokens_per_s) / Number(fp32Best!.tokens_per_s),
    stepsPerS: bestSteps(precisionRuns[precision]!),
    stepSpeedup: bestSteps(precisionRuns[precision]!) / bestSteps(precisionRuns.fp32!),
    kl: Number(o.kl),
    maxAbs: Number(o.max_abs),
    rss: o.rss_gb,
    load: o.load,
    others: o.others,
  };
  console.log(
    `decode batch 1 ${precision}: ${Number(o.tokens_per_s).toFixed(2)} tokens/s → ${quantized[precision]!.speedup.toFixed(2)}× ringrl fp32 (${Number(fp32Best!.tokens_per_s).toFixed(2)} in the same rounds); decode steps alone ${quantized[precision]!.stepsPerS.toFixed(2)}/s → ${quantized[precision]!.stepSpeedup.toFixed(2)}× fp32's ${bestSteps(precisionRuns.fp32!).toFixed(2)}; mismatch vs the fp32 trainer KL(π_infer‖π_train) ${Number(o.kl).toExponential(2)}, max |Δlogp| ${Number(o.max_abs).toFixed(3)} [rounds: ${listRuns(precisionRuns[precision]!)}; fp32 ${listRuns(precisionRuns.fp32!)}]`,
  );
}
const train = parts.has('train')
  ? pair(
      () =>
        peerRun('train_torch.py', [
          '--batch',
          String(trainBatch),
          '--seq',
          String(trainSeq),
          '--steps',
          String(trainSteps),
          '--warmup',
          '1',
        ]),
      () => oursRun('train'),
    )
  : undefined;
if (train)
  console.log(
    `training (${trainBatch} x ${trainSeq} tokens, AdamW, fp32; ringrl recomputes in ${train.ours.segments} segments): PyTorch ${Number(train.peer.tokens_per_s).toFixed(1)} tokens/s (peak RSS ${train.peakRss.peer.toFixed(2)} GiB), ringrl ${Number(train.ours.tokens_per_s).toFixed(1)} tokens/s (peak RSS ${train.peakRss.ours.toFixed(2)} GiB) → ${(Number(train.ours.tokens_per_s) / Number(train.peer.tokens_per_s)).toFixed(2)}× [rounds: ${train.rounds.join(', ')}]`,
  );
if (decode[1]) {
  // The limit again with every memcpy sample of the run (the JSON line's figures).
  const o = Number(decode[1].ours.tokens_per_s),
    stepPerS = 1 / Number(decode[1].ours.step_s);
  printLimit();
  console.log(
    `batch-1 fp32 decode: ${(o / limit()).toFixed(2)} of the weight-read limit (decode steps alone: ${(stepPerS / limit()).toFixed(2)})`,
  );
}
const peerInfo = (train ?? decode[1])?.peer;
const blas = String(peerInfo?.blas ?? 'unknown');
if (peerInfo) console.log(`PyTorch ${peerInfo.torch} with BLAS ${blas}`);
const r2 = (x: number) => Number(x.toFixed(2));
const sides = (d: ReturnType<typeof pair>) => ({
  ours: r2(Number(d.ours.tokens_per_s)),
  peer: r2(Number(d.peer.tokens_per_s)),
  ratio: r2(Number(d.ours.tokens_per_s) / Number(d.peer.tokens_per_s)),
  peak_rss_gib: { ours: r2(d.peakRss.ours), peer: r2(d.peakRss.peer) },
  rounds: d.rounds,
});
const headline = train ?? decode[1];
const quantizedRecord = (precision: string) => ({
  tokens_per_s: r2(quantized[precision]!.tokensPerS),
  speedup: r2(quantized[precision]!.speedup),
  steps_per_s: r2(quantized[precision]!.stepsPerS),
  step_speedup: r2(quantized[precision]!.stepSpeedup),
  kl: Number(quantized[precision]!.kl.toExponential(2)),
  max_abs: r2(quantized[precision]!.maxAbs),
  load: r2(quantized[precision]!.load),
  others: r2(quantized[precision]!.others),
});
record({
  bench: 'scale',
  ours: headline ? r2(Number(headline.ours.tokens_per_s)) : NaN,
  peer: headline ? r2(Number(headline.peer.tokens_per_s)) : NaN,
  ratio: headline ? r2(Number(headline.ours.tokens_per_s) / Number(headline.peer.tokens_per_s)) : NaN,
  unit: train ? 'training tokens/s' : 'batch-1 decode tokens/s',
  parts: [...parts],
  ...(train ? { train: { ...sides(train), segments: train.ours.segments } } : {}),
  ...(decode[1]
    ? {
        decode_b1: {
          ...sides(decode[1]),
          limit: r2(limit()),
          of_limit: r2(Number(decode[1].ours.tokens_per_s) / limit()),
          steps_per_s: r2(1 / Number(decode[1].ours.step_s)),
          steps_of_limit: r2(1 / Number(decode[1].ours.step_s) / limit()),
        },
        decode_b8: sides(decode[8]!),
      }
    : {}),
  ...(fp32Best
    ? {
        quantized: {
          fp32_tokens_per_s: r2(Number(fp32Best.tokens_per_s)),
          int8: quantizedRecord('int8'),
          int4: quantizedRecord('int4'),
        },
      }
    : {}),
  memcpy_gb_s: r2(bandwidth() / 1e9),
  memcpy_samples_gb_s: bandwidths.map((b) => r2(b / 1e9)),
  weight_read_limit: r2(limit()),
  load_s: { ours: r2(Number(load.seconds)), read: r2(readSeconds), rss_gib: r2(load.rss_gb) },
  load_average: { start: r2(startLoad), end: r2(loadavg()[0]!) },
  peer_blas: blas,
  threads,
  new_tokens: newTokens,
  train_tokens: trainBatch * trainSeq,
  rounds: rounds_,
  repeats,
  model: config.model_type,
});

function memcpyBandwidth(): number {
  const size = 256 * 2 ** 20;
  const a = Buffer.alloc(size, 1),
    b = Buffer.alloc(size);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    a.copy(b);
    best = Math.min(best, performance.now() - t);
  }
  return (2 * size) / (best / 1000); // a copy reads and writes every byte; decode only reads, so count both
}

async function worker(mode: string, dir: string): Promise<void> {
  const { loadModelDir } = await import('../src/model/checkpoint.ts');
  const { configureRuntime } = await import('../src/runtime/index.ts');
  configureRuntime({ threads });
  const t = performance.now();
  const { config, weights } = loadModelDir(dir);
  const seconds = (performance.now() - t) / 1000;
  if (mode === 'load') {
    console.log(JSON.stringify({ seconds, params: [...weights.values()].reduce((a, w) => a + w.length, 0) }));
    return;
  }
  const { rng } = await import('../src/util/random.ts');
  const random = rng(7);
  const { Policy } = await import('../src/train/policy.ts');
  if (mode === 'decode') {
    const { LocalEngine } = await import('../src/engine/local.ts');
    const { generateAll } = await import('../src/engine/types.ts');
    const { mismatch } = await import('../src/cli/generate.ts');
    const batch = Number(values.batch),
      precision = values.precision as 'fp32';
    const engine = new LocalEngine(config, { capacity: batch, prefillBatch: batch, precision });
    await engine.updateWeights(weights, 0);
    const prompts = Array.from({ length: batch }, () =>
      Array.from({ length: 16 }, () => Math.floor(random() * 151643)),
    );
    await generateAll(engine, [
      { id: 'warm', prompt: prompts[0]!.slice(0, 4), params: { temperature: 1, maxNewTokens: 2 } },
    ]);
    const run = async (maxNewTokens: number) => {
      const start = performance.now();
      const results = await generateAll(
        engine,
        prompts.map((prompt, i) => ({ id: String(i), prompt, params: { temperature: 1, maxNewTokens, seed: i } })),
      );
      return { results, seconds: (performance.now() - start) / 1000 };
    };
    // Each repeat: the prompts' prefill and first token alone, then the whole run; the rest of a
    // run is decode steps. The fastest of each counts.
    let prefillSeconds = Infinity;
    let best: Awaited<ReturnType<typeof run>> | undefined;
    for (let i = 0; i < repeats; i++) {
      prefillSeconds = Math.min(prefillSeconds, (await run(1)).seconds);
      const r = await run(newTokens);
      if (!best || r.seconds < best.seconds) best = r;
    }
    const { results, seconds } = best!;
    const tokensPerS = (batch * newTokens) / seconds;
    const stepSeconds = (seconds - prefillSeconds) / (newTokens - 1);
    let m = { kl: 0, maxAbs: 0 };
    if (precision !== 'fp32') {
      const scored = await new Policy(config, weights).score(results.map((r) => [...r.prompt, ...r.tokens]));
      m = mismatch(
        results.map((r) => r.policyLogprobs),
        scored.logprobs.map((row, i) => row.slice(results[i]!.prompt.length - 1)),
      );
    }
    console.log(JSON.stringify({ tokens_per_s: tokensPerS, step_s: stepSeconds, kl: m.kl, max_abs: m.maxAbs }));
    return;
  }
  // train: one AdamW step (untimed warm-up first: it compiles the graph), then the timed steps.
  const { packSequences } = await import('../src/train/policy.ts');
  const { maskedCrossEntropy } = await import('../src/train/sft.ts');
  const { AdamW, adamWDefaults } = await import('../src/train/optimizer.ts');
  const policy = new Policy(config, weights);
  const optimizer = new AdamW({ ...adamWDefaults, lr: 1e-5 }); // as train_torch.py: clip 1.0, wd 0.01
  const tokens = Array.from({ length: trainBatch }, () =>
    Array.from({ length: trainSeq }, () => Math.floor(random() * 151643)),
  );
  const step = async () => {
    const batch = packSequences(tokens, config.vocabSize);
    const { grads } = await policy.lossAndGrads(
      maskedCrossEntropy,
      batch,
      { loss_mask: batch.mask },
      { scale: 1 / (trainBatch * (trainSeq - 1)), aux_weight: 0 },
    );
    await optimizer.update(policy.weights, grads);
    policy.recycle(grads);
  };
  await step();
  const stepSeconds: number[] = [];
  for (let i = 0; i < trainSteps; i++) {
    const start = performance.now();
    await step();
    stepSeconds.push((performance.now() - start) / 1000);
  }
  const median = [...stepSeconds].sort((a, b) => a - b)[Math.floor(stepSeconds.length / 2)]!;
  console.log(
    JSON.stringify({
      tokens_per_s: (trainBatch * trainSeq) / median,
      steps_s: stepSeconds,
      segments: policy.recomputeSegments,
    }),
  );
}

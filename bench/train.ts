// `npm run bench -- train [--steps N] [--warmup N] [--threads N] [--rounds N]`
//
// Training-step throughput (forward + backward + clip + AdamW, tokens/s) on the benchmark
// model (d_model 256, 4 layers, 4 heads, d_ff 1024, vocab 64; batch 16 × seq 128, fp32),
// ringrl against PyTorch CPU (bench/peers/train_torch.py, the same HF math) on the identical
// model dir in the same run, with the same thread count. Rounds alternate peer and ours so
// drift on a shared machine hits both. Also reports peak RSS of each process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Policy, packSequences } from '../src/train/policy.ts';
import { maskedCrossEntropy } from '../src/train/sft.ts';
import { AdamW } from '../src/train/optimizer.ts';
import { rng } from '../src/util/random.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
  },
});
const steps = Number(values.steps),
  warmup = Number(values.warmup),
  threads = Number(values.threads),
  rounds = Number(values.rounds);
const batchSize = 16,
  seq = 128;
const python = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));

const modelDir = join(mkdtempSync(join(tmpdir(), 'ringrl-bench-')), 'model');
const policy = Policy.fromPreset('bench', 0, { threads });
policy.save(modelDir);
console.log(
  `model: bench preset (${(policy.numParameters / 1e6).toFixed(2)}M parameters), batch ${batchSize} × seq ${seq}, fp32, ${threads} threads`,
);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function runPeer(): { stepMs: number[]; rssMb: number; torch: string } {
  const args = [
    join(here, 'peers', 'train_torch.py'),
    '--model-dir',
    modelDir,
    '--batch',
    String(batchSize),
    '--seq',
    String(seq),
    '--steps',
    String(steps),
    '--warmup',
    String(warmup),
    '--threads',
    String(threads),
  ];
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(
      `bench train: the PyTorch peer failed (${python} ${args.join(' ')}):\n${r.stderr || r.error}\nInstall it with: apt-get install python3-torch`,
    );
    process.exit(1);
  }
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  return { stepMs: out.step_ms_all, rssMb: out.peak_rss_mb, torch: out.torch };
}

const random = rng(1);
const sequences = Array.from({ length: batchSize }, () =>
  Array.from({ length: seq }, () => Math.floor(random() * policy.config.vocabSize)),
);
const batch = packSequences(sequences, policy.config.vocabSize);
const targets = batch.lengths.reduce((a, b) => a + b, 0);
const optimizer = new AdamW({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 });

async function ourStep(): Promise<number> {
  const t0 = performance.now();
  const { grads } = await policy.lossAndGrads(
    maskedCrossEntropy,
    batch,
    { loss_mask: batch.mask },
    { scale: 1 / targets, aux_weight: 0 },
  );
  await optimizer.update(policy.weights, grads);
  policy.recycle(grads);
  return performance.now() - t0;
}

const peerMs: number[] = [];
const oursMs: number[] = [];
let peerRss = 0;
let torchVersion = '';
for (let round = 0; round < rounds; round++) {
  const peer = runPeer();
  peerMs.push(...peer.stepMs);
  peerRss = Math.max(peerRss, peer.rssMb);
  torchVersion = peer.torch;
  for (let i = 0; i < (round === 0 ? warmup : 0); i++) await ourStep();
  for (let i = 0; i < steps; i++) oursMs.push(await ourStep());
  console.log(
    `round ${round + 1}/${rounds}: PyTorch median ${median(peer.stepMs).toFixed(0)} ms/step, ringrl median ${median(oursMs.slice(-steps)).toFixed(0)} ms/step`,
  );
}
const oursRss = process.resourceUsage().maxRSS / 1024;
const tokens = batchSize * seq;
const ours = tokens / (median(oursMs) / 1000);
const peer = tokens / (median(peerMs) / 1000);
const ratio = ours / peer;
console.log(
  `PyTorch ${torchVersion} CPU: ${peer.toFixed(0)} tokens/s (median ${median(peerMs).toFixed(0)} ms/step), peak RSS ${peerRss.toFixed(0)} MB`,
);
console.log(
  `ringrl (onnxruntime-node):  ${ours.toFixed(0)} tokens/s (median ${median(oursMs).toFixed(0)} ms/step), peak RSS ${oursRss.toFixed(0)} MB`,
);
console.log(`ratio: ringrl is ${ratio.toFixed(2)}× PyTorch's training throughput (target ≥ 1.5×)`);
record({
  bench: 'train',
  ours: Math.round(ours),
  peer: Math.round(peer),
  ratio: Number(ratio.toFixed(3)),
  unit: 'tokens/s',
  ours_step_ms: Number(median(oursMs).toFixed(1)),
  peer_step_ms: Number(median(peerMs).toFixed(1)),
  ours_peak_rss_mb: Math.round(oursRss),
  peer_peak_rss_mb: Math.round(peerRss),
  model: 'd256 L4 H4 ff1024 V64',
  batch: batchSize,
  seq,
  threads,
  steps: oursMs.length,
  torch: torchVersion,
});

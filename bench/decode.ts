// `npm run bench -- decode [--new-tokens N] [--threads N] [--repeats N]`
//
// Generation throughput (tokens/s) of the local engine at batch 1, 16 and 64 on the benchmark
// model (d_model 256, 4 layers, 4 heads, d_ff 1024, vocab 64), against a KV-cached PyTorch CPU
// decode of the identical model dir (bench/peers/decode_torch.py) in the same run and with the
// same thread count. Both sides prefill a 16-token prompt per sequence and sample N new tokens at
// temperature 1; the figure is batch × N / seconds (best of `repeats`). Also time-to-first-token
// for one 512-token prompt. The JSON line's ratio is ours / PyTorch at batch 64.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LocalEngine } from '../src/engine/local.ts';
import { generateAll } from '../src/engine/types.ts';
import { Policy } from '../src/train/policy.ts';
import { rng } from '../src/util/random.ts';
import { record } from './record.ts';

const { values } = parseArgs({
  options: {
    'new-tokens': { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '2' },
  },
});
const newTokens = Number(values['new-tokens']),
  threads = Number(values.threads),
  repeats = Number(values.repeats);
const promptLength = 16,
  ttftPrompt = 512,
  batches = [1, 16, 64];
const here = dirname(fileURLToPath(import.meta.url));

const modelDir = join(mkdtempSync(join(tmpdir(), 'ringrl-bench-')), 'model');
const policy = Policy.fromPreset('bench', 0, { threads });
policy.save(modelDir);
console.log(
  `model: bench preset (${(policy.numParameters / 1e6).toFixed(2)}M parameters), prompt ${promptLength}, ${newTokens} new tokens, fp32, ${threads} threads`,
);

function peer(
  batch: number,
  ttft: boolean,
): { tokensPerS: number; ttftMs: number | null; torch: string; blas: string } {
  const args = [
    join(here, 'peers', 'decode_torch.py'),
    '--model-dir',
    modelDir,
    '--batch',
    String(batch),
    '--prompt-len',
    String(promptLength),
    '--new-tokens',
    String(newTokens),
    '--threads',
    String(threads),
    '--repeats',
    String(repeats),
    ...(ttft ? ['--ttft-prompt', String(ttftPrompt)] : []),
  ];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(
      `bench decode: the PyTorch peer failed:\n${r.stderr || r.error}\nInstall it with: apt-get install python3-torch libopenblas0-pthread`,
    );
    process.exit(1);
  }
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  return { tokensPerS: out.tokens_per_s, ttftMs: out.ttft_ms, torch: out.torch, blas: out.blas };
}

const random = rng(2);
async function ours(batch: number): Promise<number> {
  const engine = new LocalEngine(policy.config, { capacity: batch, prefillBatch: batch, runtime: { threads } });
  await engine.updateWeights(policy.weights, 0);
  const prompts = Array.from({ length: batch }, () =>
    Array.from({ length: promptLength }, () => Math.floor(random() * policy.config.vocabSize)),
  );
  const run = () =>
    generateAll(
      engine,
      prompts.map((prompt, i) => ({
        id: String(i),
        prompt,
        params: { temperature: 1, maxNewTokens: newTokens, seed: i },
      })),
    );
  await generateAll(engine, [
    { id: 'warm', prompt: prompts[0]!.slice(0, 4), params: { temperature: 1, maxNewTokens: 4 } },
  ]);
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (batch * newTokens) / best;
}

async function oursTtft(): Promise<number> {
  const engine = new LocalEngine(policy.config, { capacity: 1, runtime: { threads } });
  await engine.updateWeights(policy.weights, 0);
  const prompt = Array.from({ length: ttftPrompt }, () => Math.floor(random() * policy.config.vocabSize));
  let best = Infinity;
  for (let r = 0; r < repeats + 1; r++) {
    // the first run also compiles the prefill graph
    const t0 = performance.now();
    await generateAll(engine, [{ id: 't', prompt, params: { temperature: 1, maxNewTokens: 1 } }]);
    if (r > 0) best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const rows: Record<string, { ours: number; peer: number; ratio: number }> = {};
let peerInfo = { torch: '', blas: '' };
let peerTtft = 0;
for (const batch of batches) {
  const p = peer(batch, batch === 1);
  peerInfo = p;
  if (p.ttftMs !== null) peerTtft = p.ttftMs;
  const o = await ours(batch);
  rows[batch] = { ours: o, peer: p.tokensPerS, ratio: o / p.tokensPerS };
  console.log(
    `batch ${String(batch).padStart(2)}: PyTorch ${p.tokensPerS.toFixed(0)} tokens/s, ringrl ${o.toFixed(0)} tokens/s → ${(o / p.tokensPerS).toFixed(2)}×`,
  );
}
const ttft = await oursTtft();
console.log(
  `time to first token, ${ttftPrompt}-token prompt: PyTorch ${peerTtft.toFixed(0)} ms, ringrl ${ttft.toFixed(0)} ms → ${(peerTtft / ttft).toFixed(2)}×`,
);
console.log(`PyTorch ${peerInfo.torch} (BLAS ${peerInfo.blas})`);
const at64 = rows[64]!;
console.log(`ratio: at batch 64 ringrl decodes ${at64.ratio.toFixed(2)}× PyTorch's tokens/s (target ≥ 2×)`);
const round = (x: number) => Number(x.toFixed(2));
record({
  bench: 'decode',
  ours: Math.round(at64.ours),
  peer: Math.round(at64.peer),
  ratio: round(at64.ratio),
  unit: 'tokens/s at batch 64',
  batch1: { ours: Math.round(rows[1]!.ours), peer: Math.round(rows[1]!.peer), ratio: round(rows[1]!.ratio) },
  batch16: { ours: Math.round(rows[16]!.ours), peer: Math.round(rows[16]!.peer), ratio: round(rows[16]!.ratio) },
  ttft_ms_512: { ours: Math.round(ttft), peer: Math.round(peerTtft), ratio: round(peerTtft / ttft) },
  new_tokens: newTokens,
  prompt: promptLength,
  threads,
  torch: peerInfo.torch,
  blas: peerInfo.blas,
});

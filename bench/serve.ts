// `npm run bench -- serve [--streams 64] [--new-tokens 64] [--threads 2] [--requests 200] [--publish-mb 200]`
//
// `ringrl serve` against the in-process engine, in one run on one machine:
// 1. decode throughput at `streams` concurrent /generate streams through a `ringrl serve` child
//    process vs the same sequences on an in-process LocalEngine (bench preset model, same threads,
//    same seeds: identical tokens); the JSON line's ratio is serve / in-process (target >= 0.85);
// 2. HTTP overhead per request: sequential one-token /generate requests vs the same one-token
//    generations in process, (HTTP - in-process) / request;
// 3. weight publication: publish a model of about `publish-mb` MB (HF dir + manifest, atomically
//    renamed; in /dev/shm when it has room, as a run does for engines on its host) and
//    /update_weights_from_disk on a server holding that architecture (it reads and verifies every
//    tensor's sha256), as GB/s against a plain file copy of the same bytes on the same file system
//    (target >= 0.5x).
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalEngine } from '../src/engine/local.ts';
import { generateAll } from '../src/engine/types.ts';
import { WeightPublisher } from '../src/engine/weights.ts';
import { saveModelDir } from '../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../src/model/presets.ts';
import { rng } from '../src/util/random.ts';
import { record } from './record.ts';
import { publicationModel, startServe } from './lib/serve.ts';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '64' },
    'new-tokens': { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    requests: { type: 'string', default: '200' },
    'publish-mb': { type: 'string', default: '200' },
    repeats: { type: 'string', default: '2' },
  },
});
const streams = Number(values.streams),
  newTokens = Number(values['new-tokens']),
  threads = Number(values.threads);
const requests = Number(values.requests),
  publishMb = Number(values['publish-mb']),
  repeats = Number(values.repeats);
const scratch = mkdtempSync(join(tmpdir(), 'ringrl-bench-serve-'));
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

function serve(modelDir: string, capacity: number): Promise<string> {
  const flags = ['--capacity', String(capacity), '--prefill-batch', '8', '--threads', String(threads)];
  return startServe(modelDir, flags, children);
}

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${url}: ${JSON.stringify(json)}`);
  return json;
}

// ---- 1 and 2: decode and per-request overhead on the bench model ------------------------------
const config = presetConfig('bench');
const weights = initWeights(config, 0);
const modelDir = join(scratch, 'bench-model');
saveModelDir(modelDir, config, weights);
console.log(
  `model: bench preset (d_model ${config.hiddenSize}, ${config.numLayers} layers), ${streams} streams × ${newTokens} new tokens, prompt 16, ${threads} threads`,
);
const random = rng(3);
const prompts = Array.from({ length: streams }, () =>
  Array.from({ length: 16 }, () => Math.floor(random() * config.vocabSize)),
);

const engine = new LocalEngine(config, { capacity: streams, prefillBatch: 8, runtime: { threads } });
await engine.updateWeights(weights, 0);
const local = async () => {
  const t0 = performance.now();
  const out = await generateAll(
    engine,
    prompts.map((prompt, i) => ({
      id: `r${i}-${t0}`,
      prompt,
      params: { temperature: 1, maxNewTokens: newTokens, seed: i },
    })),
  );
  return { seconds: (performance.now() - t0) / 1000, tokens: out.map((s) => s.tokens) };
};
const url = await serve(modelDir, streams);
const remote = async () => {
  const t0 = performance.now();
  const out = await Promise.all(
    prompts.map((prompt, i) =>
      post(`${url}/generate`, {
        input_ids: prompt,
        sampling_params: { temperature: 1, max_new_tokens: newTokens, sampling_seed: i, ignore_eos: true },
        return_logprob: true,
      }),
    ),
  );
  return { seconds: (performance.now() - t0) / 1000, tokens: out.map((o) => o.output_ids as number[]) };
};
await local();
await remote(); // warm both (graph compiles)
let bestLocal = Infinity,
  bestRemote = Infinity;
for (let r = 0; r < repeats; r++) {
  const a = await local();
  const b = await remote();
  if (JSON.stringify(a.tokens) !== JSON.stringify(b.tokens))
    throw new Error("bench serve: served tokens differ from the in-process engine's for the same seeds");
  bestLocal = Math.min(bestLocal, a.seconds);
  bestRemote = Math.min(bestRemote, b.seconds);
}
const localTps = (streams * newTokens) / bestLocal,
  serveTps = (streams * newTokens) / bestRemote;
const ratio = serveTps / localTps;
console.log(
  `decode, ${streams} concurrent streams: in-process ${localTps.toFixed(0)} tokens/s, through ringrl serve ${serveTps.toFixed(0)} tokens/s (same tokens): serve reaches ${(100 * ratio).toFixed(0)}% of in-process`,
);

// Per-request overhead: one-token requests one after another.
const oneLocal = async () => {
  const t0 = performance.now();
  for (let i = 0; i < requests; i++)
    await generateAll(engine, [
      { id: `o${i}-${t0}`, prompt: prompts[i % streams]!, params: { temperature: 1, maxNewTokens: 1, seed: i } },
    ]);
  return (performance.now() - t0) / requests;
};
const oneRemote = async () => {
  const t0 = performance.now();
  for (let i = 0; i < requests; i++)
    await post(`${url}/generate`, {
      input_ids: prompts[i % streams],
      sampling_params: { max_new_tokens: 1, sampling_seed: i },
    });
  return (performance.now() - t0) / requests;
};
const health = async () => {
  const t0 = performance.now();
  for (let i = 0; i < requests; i++) await (await fetch(`${url}/health`)).json();
  return (performance.now() - t0) / requests;
};
const remoteMs = Math.min(await oneRemote(), await oneRemote());
const localMs = Math.min(await oneLocal(), await oneLocal());
const healthMs = Math.min(await health(), await health());
const overheadMs = remoteMs - localMs;
console.log(
  `one-token requests, sequential: in-process ${localMs.toFixed(2)} ms, through ringrl serve ${remoteMs.toFixed(2)} ms: HTTP overhead ${overheadMs.toFixed(2)} ms per request (a bare GET /health round trip: ${healthMs.toFixed(2)} ms)`,
);

// ---- 3: weight publication -------------------------------------------------------------------
const big = publicationModel(publishMb);
const layers = big.numLayers;
const bigDir = join(scratch, 'big-model');
saveModelDir(bigDir, big, initWeights(big, 0));
const bigUrl = await serve(bigDir, 1);
// Where a run publishes for engines on this host: /dev/shm when it has room (else the run dir).
const publisher = new WeightPublisher(join(scratch, 'weights'), big, { shm: 'auto' });
const bytes = statSync(join(bigDir, 'model.safetensors')).size;
const bigWeights = initWeights(big, 1);
let bestPublish = Infinity,
  bestCopy = Infinity,
  bestWrite = Infinity,
  bestLoad = Infinity;
for (let r = 0; r < repeats + 2; r++) {
  bigWeights.get('model.norm.weight')![0] = r; // a new version each time
  const t0 = performance.now();
  const path = await publisher.publish(bigWeights, r + 1);
  const t1 = performance.now();
  publisher.assign(bigUrl, r + 1);
  await post(`${bigUrl}/update_weights_from_disk`, { model_path: resolve(path), weight_version: String(r + 1) });
  publisher.acknowledge(bigUrl, r + 1);
  const t2 = performance.now();
  // The peer: a plain copy of the same bytes on the same file system, into a new file (as a publication's is, the first time).
  const from = join(path, 'model.safetensors'),
    to = join(publisher.root, `copy-${r}.safetensors`);
  const t3 = performance.now();
  copyFileSync(from, to);
  const t4 = performance.now();
  rmSync(to);
  if (r < 2) continue; // the first two warm the page cache and the server's two buffer sets
  bestPublish = Math.min(bestPublish, (t2 - t0) / 1000);
  bestWrite = Math.min(bestWrite, (t1 - t0) / 1000);
  bestLoad = Math.min(bestLoad, (t2 - t1) / 1000);
  bestCopy = Math.min(bestCopy, (t4 - t3) / 1000);
}
await publisher.close();
const publishGbs = bytes / 1e9 / bestPublish,
  copyGbs = bytes / 1e9 / bestCopy;
console.log(
  `weight publication (${(bytes / 1e6).toFixed(0)} MB, ${layers} layers, in ${publisher.inMemory ? '/dev/shm' : 'the run dir'}): write + sha256 ${bestWrite.toFixed(3)} s, /update_weights_from_disk (read + verify + swap) ${bestLoad.toFixed(3)} s: ${publishGbs.toFixed(2)} GB/s (${bestPublish.toFixed(3)} s); plain file copy ${copyGbs.toFixed(2)} GB/s (${bestCopy.toFixed(3)} s): ${(publishGbs / copyGbs).toFixed(2)}x of a copy`,
);

record({
  bench: 'serve',
  ours: Math.round(serveTps),
  peer: Math.round(localTps),
  ratio: Number(ratio.toFixed(3)),
  unit: 'decode tokens/s through ringrl serve vs in process',
  streams,
  new_tokens: newTokens,
  threads,
  http_overhead_ms: Number(overheadMs.toFixed(3)),
  health_rtt_ms: Number(healthMs.toFixed(3)),
  request_ms_serve: Number(remoteMs.toFixed(3)),
  request_ms_local: Number(localMs.toFixed(3)),
  publish_gb_s: Number(publishGbs.toFixed(3)),
  copy_gb_s: Number(copyGbs.toFixed(3)),
  publish_vs_copy: Number((publishGbs / copyGbs).toFixed(3)),
  publish_write_s: Number(bestWrite.toFixed(4)),
  publish_load_s: Number(bestLoad.toFixed(4)),
  publish_shm: publisher.inMemory,
  publish_mb: Math.round(bytes / 1e6),
});
process.exit(0);

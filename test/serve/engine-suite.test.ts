// The shared engine suite (test/engine/engine-suite.ts) against the local engine and against
// HttpEngine driving `ringrl serve` in a child process.
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpEngine } from '../../src/engine/http.ts';
import { WeightPublisher } from '../../src/engine/weights.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import type { GeneratedSequence } from '../../src/engine/types.ts';
import { CAPACITY, type EngineHarness, engineSuite, localHarness } from '../engine/engine-suite.ts';
import { type ServeChild, getJson, postJson, spawnServe, tinyModelDir } from './helpers.ts';

const modelDir = tinyModelDir();
const weightsRoot = mkdtempSync(join(tmpdir(), 'ringrl-weights-'));
const config = loadModelDir(modelDir).config;
let server: ServeChild;

before(async () => {
  server = await spawnServe([
    '--model',
    modelDir,
    '--capacity',
    String(CAPACITY),
    '--prefill-batch',
    String(CAPACITY),
    '--threads',
    '1',
  ]);
});
after(async () => {
  await server?.stop();
  rmSync(weightsRoot, { recursive: true, force: true });
  rmSync(modelDir, { recursive: true, force: true });
});

engineSuite(
  'LocalEngine',
  () => modelDir,
  () => localHarness(() => config),
);

let engines = 0;
const info = async () =>
  (await getJson(`${server.url}/server_info`)) as { generated_tokens: number; decode_steps: number; requests: number };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function httpHarness(): EngineHarness {
  return {
    async engine(weights) {
      const engine = new HttpEngine({
        servers: [server.url],
        publisher: new WeightPublisher(join(weightsRoot, `e${engines++}`), config),
        stepMs: 200,
      });
      await engine.waitReady();
      await engine.updateWeights(weights, 0);
      return engine;
    },
    async advance(_engine, tokens) {
      const target = (await info()).generated_tokens + tokens;
      while ((await info()).generated_tokens < target) await sleep(2);
    },
    async runQueued(engine, requests) {
      // Hold the server so every request is queued before its first step, as the local harness does.
      await postJson(`${server.url}/pause_generation`, { mode: 'in_place' });
      engine.submit(requests);
      while ((await info()).requests < requests.length) await sleep(5);
      const before = (await info()).decode_steps;
      await postJson(`${server.url}/continue_generation`, {});
      const done = new Map<string, GeneratedSequence>();
      while (engine.busy()) for (const s of await engine.step()) done.set(s.id, s);
      const results = requests.map((r) => done.get(r.id)!);
      return { results, decodeSteps: (await info()).decode_steps - before };
    },
    async close(engine) {
      (engine as HttpEngine).close();
    },
  };
}

engineSuite('HttpEngine → ringrl serve (child process)', () => modelDir, httpHarness);

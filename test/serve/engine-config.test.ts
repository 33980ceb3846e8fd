// rollout.engine / servers / engine_workers: config checks, the CLI shorthands, and the worker
// lifecycle (started, answering /health, gone after stop()).
import { test } from 'node:test';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { engineFlagSets } from '../../src/cli/config-flags.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { createRunEngine } from '../../src/system/engines.ts';
import { HttpEngine } from '../../src/engine/http.ts';
import { tinyModelDir } from './helpers.ts';
import { byCodeUnit } from '../../src/util/order.ts';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('config: engine http needs servers or workers; servers and workers exclude each other; URLs are checked', () => {
  const load = (...sets: string[]) => loadConfig({ sets });
  assert.equal(load().rollout.engine, 'local');
  const http = load(...engineFlagSets({ servers: 'http://127.0.0.1:30000,http://10.0.0.2:30000' }));
  assert.deepEqual(
    [http.rollout.engine, http.rollout.servers],
    ['http', ['http://127.0.0.1:30000', 'http://10.0.0.2:30000']],
  );
  assert.equal(load(...engineFlagSets({ 'engine-workers': '2' })).rollout.engine_workers, 2);
  assert.throws(() => load('rollout.engine=http'), /rollout\.servers: engine http needs server URLs/);
  assert.throws(
    () => load('rollout.engine_workers=2'),
    /rollout\.engine: must be http when rollout\.servers or rollout\.engine_workers is set/,
  );
  assert.throws(
    () => load('rollout.engine=http', 'rollout.engine_workers=1', 'rollout.servers=["http://a:1"]'),
    /rollout\.engine_workers: set rollout\.servers or rollout\.engine_workers, not both/,
  );
  assert.throws(
    () => load('rollout.engine=http', 'rollout.servers=["localhost:30000"]'),
    /rollout\.servers\.0: .*a base URL like http:\/\/127\.0\.0\.1:30000/,
  );
  assert.throws(() => load('rollout.weights_url=http://10.0.0.5'), /rollout\.weights_url: .*a URL like/);
  assert.throws(
    () => new HttpEngine({ servers: ['ftp://x'], origin: '--servers' }),
    /--servers\[0\]: expected a base URL/,
  );
});

test('engine workers: ringrl serve children answer /health and are gone after close()', async () => {
  const modelDir = tinyModelDir();
  const weightsDir = mkdtempSync(join(tmpdir(), 'ringrl-workers-'));
  try {
    const port = await freePort();
    const config = loadConfig({
      sets: [
        'rollout.engine=http',
        'rollout.engine_workers=1',
        'rollout.pool_capacity=8',
        'runtime.threads=1',
        `rollout.weights_url=http://127.0.0.1:${port}`,
      ],
    });
    const { config: model, weights } = loadModelDir(modelDir);
    const { engine, close } = await createRunEngine({ config, model, modelDir, weightsDir });
    const http = engine as HttpEngine;
    assert.equal(http.servers.length, 1);
    await engine.updateWeights(weights, 3);
    const info = (await (await fetch(`${http.servers[0]}/server_info`)).json()) as Record<string, unknown>;
    assert.deepEqual([info.weight_version, info.capacity], ['3', 8]);
    // rollout.weights_url: the run serves its snapshots for servers on other machines.
    const manifest = (await (await fetch(`http://127.0.0.1:${port}/v3/manifest.json`)).json()) as {
      tensors: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(manifest.tensors).sort(byCodeUnit), [...weights.keys()].sort(byCodeUnit));
    await close();
    await assert.rejects(fetch(`${http.servers[0]}/health`), 'the worker is gone');
  } finally {
    rmSync(modelDir, { recursive: true, force: true });
    rmSync(weightsDir, { recursive: true, force: true });
  }
});

// AState: versions flipped under load are never mixed (every token's version checked by a
// recompute with exactly that version's weights); a corrupted snapshot is refused and the old
// version keeps serving; versions are collected once no engine uses them; a snapshot fetched over
// HTTP resumes after a dropped connection and is verified.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpEngine } from '../../src/engine/http.ts';
import { SnapshotLoader, loadSnapshot } from '../../src/engine/snapshot.ts';
import { WeightPublisher } from '../../src/engine/weights.ts';
import { type Weights, loadModelDir } from '../../src/model/checkpoint.ts';
import { initWeights } from '../../src/model/presets.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { startServer } from '../../src/serve/server.ts';
import { Policy } from '../../src/train/policy.ts';
import { getJson, postJson, tinyModelDir } from './helpers.ts';
import { closeSync, openSync } from 'node:fs';

const dir = tinyModelDir();
const { config, weights: initial } = loadModelDir(dir);
const scratch = mkdtempSync(join(tmpdir(), 'ringrl-astate-'));
const server = await startServer({ modelDir: dir, port: 0, capacity: 8, runtime: { threads: 1 } });
const url = server.url;
after(async () => {
  await server.app.close();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const generated = async () => (await getJson(`${url}/server_info`)).generated_tokens as number;

/** Flip one bit in the data of tensor `name` of a published snapshot. */
function corrupt(versionDir: string, name: string): void {
  const file = join(versionDir, 'model.safetensors');
  const fd = openSync(file, 'r');
  const { entries, base } = readSafetensorsHeader(file, fd);
  closeSync(fd);
  const bytes = readFileSync(file);
  bytes[base + entries.get(name)!.data_offsets[0] + 5]! ^= 0x10;
  writeFileSync(file, bytes);
}

test('torn reads: versions flipped under load; every token matches a recompute with exactly its version', async () => {
  const versions = new Map<string, Weights>([['default', initial]]);
  const publisher = new WeightPublisher(join(scratch, 'flip'), config, { keep: 4 });
  const paths: string[] = [];
  for (let v = 1; v <= 4; v++) {
    versions.set(String(v), initWeights(config, 100 + v, 0.2));
    paths.push(await publisher.publish(versions.get(String(v))!, v));
  }
  // 12 sequences on 8 slots: some start under a later version than others.
  const prompts = Array.from({ length: 12 }, (_, i) => [3 + i, 10 + i, 20 + ((7 * i) % 30)]);
  const running = prompts.map((prompt, i) =>
    postJson(`${url}/generate`, {
      input_ids: prompt,
      sampling_params: { max_new_tokens: 100, temperature: 1, sampling_seed: i, ignore_eos: true },
      return_logprob: true,
    }),
  );
  for (const [i, path] of paths.entries()) {
    const start = await generated();
    while ((await generated()) < start + 80) await sleep(1);
    const update = await postJson(`${url}/update_weights_from_disk`, {
      model_path: path,
      weight_version: String(i + 1),
    });
    assert.equal(update.body.success, true, JSON.stringify(update.body));
  }
  const results = (await Promise.all(running)).map((r) => r.body);
  const policies = new Map([...versions].map(([name, w]) => [name, new Policy(config, w, { threads: 1 })]));
  const seen = new Set<string>();
  let flipped = 0;
  let discriminating = 0;
  for (const [i, out] of results.entries()) {
    const tokenVersions: string[] = out.meta_info.output_token_weight_versions;
    const logprobs: number[] = out.meta_info.output_token_logprobs.map((r: number[]) => r[0]);
    assert.equal(tokenVersions.length, out.output_ids.length);
    const order = [...versions.keys()];
    tokenVersions.forEach((v, t) => {
      assert.ok(versions.has(v), `sequence ${i} token ${t}: unknown version ${v}`);
      if (t > 0) assert.ok(order.indexOf(v) >= order.indexOf(tokenVersions[t - 1]!), `sequence ${i}: versions go back`);
    });
    if (new Set(tokenVersions).size > 1) flipped++;
    const full = [...prompts[i]!, ...out.output_ids];
    const recomputed = new Map<string, number[]>();
    for (const [name, policy] of policies)
      recomputed.set(name, (await policy.score([full])).logprobs[0]!.slice(prompts[i]!.length - 1));
    tokenVersions.forEach((v, t) => {
      seen.add(v);
      const own = recomputed.get(v)![t]!;
      assert.ok(
        Math.abs(logprobs[t]! - own) <= 1e-4,
        `sequence ${i} token ${t} (version ${v}): served ${logprobs[t]} vs recompute ${own}`,
      );
      // The check has teeth: under any other version this token's log-prob is clearly different.
      const others = [...recomputed].filter(([name]) => name !== v).map(([, lp]) => Math.abs(lp[t]! - own));
      if (Math.min(...others) > 1e-2) discriminating++;
    });
  }
  assert.ok(seen.size >= 3, `tokens from at least 3 versions (saw ${[...seen]})`);
  assert.ok(flipped >= 4, `sequences that crossed a flip: ${flipped}`);
  const tokens = results.reduce((n, r) => n + r.output_ids.length, 0);
  assert.ok(discriminating > 0.9 * tokens, `${discriminating} of ${tokens} tokens tell the versions apart`);
  await publisher.close();
});

test('a corrupted snapshot (one flipped bit) is refused by its checksum in one line naming the tensor; the old version keeps serving', async () => {
  const publisher = new WeightPublisher(join(scratch, 'corrupt'), config);
  const good = initWeights(config, 7, 0.2);
  await postJson(`${url}/update_weights_from_disk`, {
    model_path: await publisher.publish(good, 10),
    weight_version: '10',
  });
  const request = {
    input_ids: [4, 5, 6],
    sampling_params: { max_new_tokens: 12, temperature: 1, sampling_seed: 3, ignore_eos: true },
    return_logprob: true,
  };
  const before = (await postJson(`${url}/generate`, request)).body;
  const bad = await publisher.publish(initWeights(config, 8, 0.2), 11);
  corrupt(bad, 'model.layers.1.mlp.down_proj.weight');
  const refused = await postJson(`${url}/update_weights_from_disk`, { model_path: bad, weight_version: '11' });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.success, false);
  assert.match(
    refused.body.error,
    /^model_path: \S+\/v11\/model\.safetensors: tensor 'model\.layers\.1\.mlp\.down_proj\.weight' does not match its sha256 in manifest\.json \(\w+… vs \w+…\); the snapshot is corrupt$/,
  );
  assert.doesNotMatch(refused.body.error, /\n/);
  assert.deepEqual(await getJson(`${url}/get_weight_version`), { weight_version: '10' });
  const afterRefusal = (await postJson(`${url}/generate`, request)).body;
  assert.deepEqual(afterRefusal.output_ids, before.output_ids, 'same weights, same seed: same tokens');
  assert.deepEqual(afterRefusal.meta_info.output_token_logprobs, before.meta_info.output_token_logprobs);
  assert.equal(afterRefusal.meta_info.weight_version, '10');
  // The refused load went into the spare buffers; a good version after it loads as usual.
  const next = await publisher.publish(initial, 12);
  assert.equal(
    (await postJson(`${url}/update_weights_from_disk`, { model_path: next, weight_version: '12' })).status,
    200,
  );
  assert.equal((await postJson(`${url}/generate`, request)).body.meta_info.weight_version, '12');
  await publisher.close();
});

test('garbage collection: a version an engine loads or serves is kept; one no engine uses is deleted', async () => {
  const publisher = new WeightPublisher(join(scratch, 'gc'), config);
  const on = () => publisher.versions().sort((a, b) => a - b);
  for (const v of [1, 2, 3]) await publisher.publish(initial, v);
  assert.deepEqual(on(), [3], 'no engine: only the newest is kept');
  publisher.acknowledge('A', 3);
  publisher.acknowledge('B', 3);
  await publisher.publish(initial, 4);
  publisher.assign('A', 4);
  await publisher.publish(initial, 5);
  assert.deepEqual(on(), [3, 4, 5], 'v3 served by A and B, v4 being loaded by A');
  publisher.acknowledge('A', 5);
  assert.deepEqual(on(), [3, 5], 'v4: A moved past it and nobody else loads it');
  publisher.assign('B', 5);
  assert.deepEqual(on(), [3, 5], 'B serves v3 while it loads v5');
  publisher.acknowledge('B', 5);
  assert.deepEqual(on(), [5]);
  await publisher.publish(initial, 6);
  publisher.acknowledge('A', 6);
  assert.deepEqual(on(), [5, 6], 'B still serves v5');
  publisher.release('B'); // B is gone
  assert.deepEqual(on(), [6]);

  // Through HttpEngine: two servers, each acknowledged after it reports the new version.
  const second = await startServer({ modelDir: dir, port: 0, capacity: 2, runtime: { threads: 1 } });
  const engines = new WeightPublisher(join(scratch, 'gc-http'), config);
  const engine = new HttpEngine({ servers: [url, second.url], publisher: engines });
  try {
    for (const v of [21, 22, 23]) {
      await engine.updateWeights(initWeights(config, v, 0.2), v);
      assert.deepEqual(engines.versions(), [v]);
      assert.deepEqual([...engines.inUse()], [v]);
    }
    // A server that cannot be reached is lost: it pins no version (when it is back it loads the newest).
    const vanishing = await startServer({ modelDir: dir, port: 0, capacity: 2, runtime: { threads: 1 } });
    const mixed = new WeightPublisher(join(scratch, 'gc-mixed'), config);
    const pair = new HttpEngine({ servers: [url, vanishing.url], publisher: mixed });
    await pair.updateWeights(initial, 30);
    assert.deepEqual([...mixed.inUse()], [30]);
    await vanishing.app.close();
    await pair.updateWeights(initial, 31);
    assert.deepEqual(mixed.versions(), [31], 'v30 was served only by the lost server');
    pair.close();
    await mixed.close();
  } finally {
    engine.close();
    await second.app.close();
    await engines.close();
  }
});

/** A TCP proxy that cuts its connection once, after `cutAfter` bytes toward the client; counts Range requests. */
async function flakyProxy(target: string, cutAfter: number): Promise<{ url: string; ranges: number; close(): void }> {
  const { hostname, port } = new URL(target);
  const state = { url: '', ranges: 0, cut: false, close: () => proxy.close() };
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    let sent = 0;
    client.on('data', (d) => {
      if (/\r\nrange: bytes=\d+-/i.test(d.toString('latin1'))) state.ranges++;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      sent += d.length;
      if (!state.cut && sent > cutAfter) {
        state.cut = true;
        client.write(d.subarray(0, d.length - (sent - cutAfter)));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
  state.url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  return state;
}

test('a snapshot fetched over HTTP resumes after a dropped connection (Range) and is verified', async () => {
  const publisher = new WeightPublisher(join(scratch, 'http'), config);
  const weights = initWeights(config, 42, 0.2);
  const path = await publisher.publish(weights, 1);
  const origin = await publisher.serve();
  const size = readFileSync(join(path, 'model.safetensors')).length;
  const proxy = await flakyProxy(origin, Math.floor(size / 3));
  try {
    const loaded = await loadSnapshot(`${proxy.url}/v1`);
    assert.ok(proxy.ranges >= 1, 'the download resumed with a Range request');
    assert.equal(loaded.manifest!.version, 1);
    for (const [name, data] of weights) assert.deepEqual(Array.from(loaded.weights.get(name)!), Array.from(data), name);

    // A remote engine gets the URL as model_path (SGLang's update_weights_from_disk) and fetches it.
    const remote = await postJson(`${url}/update_weights_from_disk`, {
      model_path: `${origin}/v1`,
      weight_version: 'http-1',
    });
    assert.equal(remote.status, 200, JSON.stringify(remote.body));
    assert.deepEqual(await getJson(`${url}/get_weight_version`), { weight_version: 'http-1' });

    // A corrupt file over HTTP is refused like one on disk; a missing version is one line too.
    corrupt(path, 'model.embed_tokens.weight');
    await assert.rejects(
      new SnapshotLoader().load(`${origin}/v1`),
      /^RingrlError: http:\/\/\S+\/v1\/model\.safetensors: tensor 'model\.embed_tokens\.weight' does not match its sha256/,
    );
    await assert.rejects(
      new SnapshotLoader().load(`${origin}/v9`),
      /\/v9\/config\.json: HTTP 404: v9\/config\.json is not published/,
    );
    assert.equal(existsSync(path), true);
    assert.deepEqual(readdirSync(publisher.root), ['v1']);
  } finally {
    proxy.close();
    await publisher.close();
  }
});

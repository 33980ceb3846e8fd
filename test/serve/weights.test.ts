// Versioned weight publication: HF model dirs renamed into place, a sha256 per tensor checked on
// load, old versions collected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSnapshot } from '../../src/engine/snapshot.ts';
import { WeightPublisher } from '../../src/engine/weights.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';

test('publish writes v<N> as a loadable HF dir with per-tensor sha256; keeps the newest two; a flipped byte is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ringrl-publish-'));
  try {
    const config = presetConfig('tiny');
    const publisher = new WeightPublisher(root, config, { keep: 2 });
    const versions = [0, 1, 2, 3].map((v) => ({ v, weights: initWeights(config, v) }));
    for (const { v, weights } of versions) assert.equal(await publisher.publish(weights, v), join(root, `v${v}`));
    assert.deepEqual(
      readdirSync(root)
        .filter((f) => !f.startsWith('.spare'))
        .sort(),
      ['v2', 'v3'],
      'old versions collected, no temp dirs left',
    );
    const loaded = await loadSnapshot(join(root, 'v3'));
    assert.equal(loaded.manifest!.version, 3);
    // The manifest's hashes are sha256 of the tensors' bytes as stored in model.safetensors.
    const stored = readSafetensors(join(root, 'v3', 'model.safetensors'));
    for (const [name, t] of stored) {
      const digest = createHash('sha256')
        .update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
        .digest('hex');
      assert.equal(loaded.manifest!.tensors[name]!.sha256, digest, name);
      assert.deepEqual(Array.from(loaded.weights.get(name)!), Array.from(versions[3]!.weights.get(name)!), name);
    }
    // Re-publishing a version replaces it in one rename.
    await publisher.publish(versions[0]!.weights, 3);
    assert.equal(
      (await loadSnapshot(join(root, 'v3'))).weights.get('model.norm.weight')![0],
      versions[0]!.weights.get('model.norm.weight')![0],
    );
    const file = join(root, 'v2', 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(file, bytes);
    await assert.rejects(
      loadSnapshot(join(root, 'v2')),
      /model\.safetensors: tensor '.+' does not match its sha256 in manifest\.json .*; the snapshot is corrupt$/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

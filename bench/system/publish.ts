// AState's weight publication to 2 local engines, against memcpy of the same bytes (issue 17,
// must-show (c); part of `npm run bench -- system`; alone: `npx tsx bench/system/publish.ts
// [--mb 200] [--repeats 3]`).
//
// Two `ringrl serve` children hold a model of about `mb` MB (fp32). Each round publishes a new
// version the way a run does (`HttpEngine.updateWeights`: the snapshot written once, in /dev/shm
// when it has room, each tensor's sha256 hashed while it is written) and has both engines load it
// (read + verify every tensor + swap, in parallel), until both report the new version. The peer is
// Buffer.copy of the same bytes (warm buffers), measured in the same run. Also printed: one thread
// of sha256 on the same bytes, the floor under any verified publication.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { HttpEngine } from '../../src/engine/http.ts';
import { WeightPublisher } from '../../src/engine/weights.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { initWeights } from '../../src/model/presets.ts';
import { publicationModel, startServe } from '../lib/serve.ts';

export interface PublicationOptions {
  /** Model size in MB (fp32). Default 200. */
  mb?: number;
  /** Timed rounds (after two warm-up rounds). Default 3. */
  repeats?: number;
}

function serve(modelDir: string, children: ChildProcess[]): Promise<string> {
  return startServe(modelDir, ['--capacity', '1', '--threads', '1'], children);
}

export async function benchPublication(opts: PublicationOptions = {}): Promise<Record<string, number>> {
  const mb = opts.mb ?? 200;
  const repeats = opts.repeats ?? 3;
  const config = publicationModel(mb);

  const scratch = mkdtempSync(join(tmpdir(), 'ringrl-bench-publish-'));
  const children: ChildProcess[] = [];
  const publisher = new WeightPublisher(join(scratch, 'weights'), config, { shm: 'auto' });
  try {
    const modelDir = join(scratch, 'model');
    const weights = initWeights(config, 0);
    saveModelDir(modelDir, config, weights);
    const urls = await Promise.all([serve(modelDir, children), serve(modelDir, children)]);
    const engine = new HttpEngine({ servers: urls, publisher });
    await engine.waitReady();
    let bytes = 0;
    for (const w of weights.values()) bytes += w.byteLength;

    const flat = Buffer.alloc(bytes);
    const target = Buffer.alloc(bytes);
    let at = 0;
    for (const w of weights.values()) {
      flat.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), at);
      at += w.byteLength;
    }
    let best = Infinity,
      bestMemcpy = Infinity,
      bestSha = Infinity;
    for (let r = 0; r < repeats + 2; r++) {
      weights.get('model.norm.weight')![0] = r; // a new version each round
      const t0 = performance.now();
      await engine.updateWeights(weights, r + 1);
      const t1 = performance.now();
      flat.copy(target);
      const t2 = performance.now();
      createHash('sha256').update(flat).digest();
      const t3 = performance.now();
      if (r < 2) continue; // warm: page cache, the engines' spare buffers, the hash workers
      best = Math.min(best, (t1 - t0) / 1000);
      bestMemcpy = Math.min(bestMemcpy, (t2 - t1) / 1000);
      bestSha = Math.min(bestSha, (t3 - t2) / 1000);
    }
    engine.close();
    const gb = bytes / 1e9;
    const ours = gb / best,
      peer = gb / bestMemcpy,
      sha = gb / bestSha;
    console.log(
      `weight publication to 2 local engines (${(bytes / 1e6).toFixed(0)} MB fp32, ${publisher.inMemory ? '/dev/shm' : 'run dir'}; written once with sha256 per tensor, each engine reads and verifies it): ${ours.toFixed(2)} GB/s (${best.toFixed(3)} s); memcpy (Buffer.copy) of the same bytes ${peer.toFixed(2)} GB/s: publication runs at ${ours / peer >= 1 ? `${(ours / peer).toFixed(2)}x` : `${(100 * (ours / peer)).toFixed(0)}% of`} memcpy (target 80%); sha256 alone, one thread: ${sha.toFixed(2)} GB/s (${(100 * (sha / peer)).toFixed(0)}% of memcpy)`,
    );
    return {
      publish_gb_s: Number(ours.toFixed(3)),
      publish_memcpy_gb_s: Number(peer.toFixed(3)),
      publish_vs_memcpy: Number((ours / peer).toFixed(3)),
      publish_sha256_gb_s: Number(sha.toFixed(3)),
      publish_s: Number(best.toFixed(4)),
      publish_mb: Math.round(bytes / 1e6),
      publish_engines: 2,
    };
  } finally {
    await publisher.close();
    for (const c of children) c.kill('SIGTERM');
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { mb: { type: 'string', default: '200' }, repeats: { type: 'string', default: '3' } },
  });
  const figures = await benchPublication({ mb: Number(values.mb), repeats: Number(values.repeats) });
  console.log(JSON.stringify({ bench: 'system/publish', ...figures }));
  process.exit(0);
}

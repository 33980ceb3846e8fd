// RINGRL_PROFILE: sessions trace their first runs into a directory, and `ringrl profile` sums the
// traces by operator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { input } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/session.ts';
import { profileFiles, summarizeProfile } from '../../src/runtime/profile.ts';

async function runGraph(runs: number): Promise<void> {
  const x = input('x', 'float32', ['n', 4]);
  const w = input('w', 'float32', [4, 3]);
  const graph = await CompiledGraph.create([x, w], { y: x.matmul(w).exp() });
  for (let i = 0; i < runs; i++)
    await graph.run({
      x: { dtype: 'float32', data: new Float32Array(8).fill(i), dims: [2, 4] },
      w: { dtype: 'float32', data: new Float32Array(12).fill(0.5), dims: [4, 3] },
    });
  await graph.release();
}

test('RINGRL_PROFILE: a session traces its first RINGRL_PROFILE_RUNS runs (or fewer, written at release)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-profile-'));
  process.env.RINGRL_PROFILE = dir;
  process.env.RINGRL_PROFILE_RUNS = '3';
  try {
    await runGraph(5); // traced: runs 1-3
    await runGraph(2); // traced: both, the file written when the session is released
    const summaries = profileFiles(dir).map(summarizeProfile);
    assert.deepEqual(
      summaries.map((s) => s.runs),
      [3, 2],
    );
    for (const s of summaries) {
      assert.deepEqual(
        s.operators.map((o) => [o.op, o.count]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        [
          ['Exp', s.runs],
          ['MatMul', s.runs],
        ],
      );
      assert.ok(s.kernelMs > 0);
    }
  } finally {
    delete process.env.RINGRL_PROFILE;
    delete process.env.RINGRL_PROFILE_RUNS;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('profile files: bad paths and files that are not profiles are one-line errors naming them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-profile-'));
  try {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"not": "a trace"}');
    assert.throws(() => summarizeProfile(bad), /bad\.json: not an onnxruntime profile \(expected a JSON array\)/);
    writeFileSync(bad, '[{');
    assert.throws(() => summarizeProfile(bad), /bad\.json: not an onnxruntime profile/);
    assert.throws(() => profileFiles(join(dir, 'missing')), /missing: no such file or directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// AdamW + global-norm clipping against torch.optim.AdamW (fixture from make_adamw_fixture.py),
// and an exact round trip of the optimizer state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adamwKernel, adamwModule } from '../../src/train/adamw-simd.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { adamwTensor } from '../../src/train/update-worker.ts';
import { rng } from '../../src/util/random.ts';
import { assertClose } from '../helpers.ts';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'adamw.json'), 'utf8'));
const toWeights = (o: Record<string, number[]>) =>
  new Map(Object.entries(o).map(([k, v]) => [k, Float32Array.from(v)]));

for (const [threads, options] of [
  ['one thread', {}],
  ['two threads', { parallelFrom: 0 }],
] as const)
  test(`AdamW with clipping follows torch.optim.AdamW step by step (${threads})`, async () => {
    const weights = toWeights(fixture.start);
    const opt = new AdamW(fixture.config, options);
    for (const [i, step] of fixture.steps.entries()) {
      const { gradNorm } = await opt.update(weights, toWeights(step.grads));
      assertClose([gradNorm], [step.grad_norm], 1e-5, `step ${i} grad norm`);
      for (const [name, expected] of Object.entries(step.after as Record<string, number[]>))
        assertClose(weights.get(name)!, expected, 1e-6, `step ${i} ${name}`);
    }
  });

test('the second thread changes nothing: weights, moments and norms are bit-identical to one thread', async () => {
  // Several tensors of different sizes (the worker takes the largest), one a view it cannot take.
  const random = rng(3);
  const sizes = { big: 5000, mid: 3000, small: 700, 'norm.weight': 64, tail: 10 };
  const fill = (n: number, s: number) => Float32Array.from({ length: n }, () => (random() - 0.5) * s);
  const start = new Map(Object.entries(sizes).map(([k, n]) => [k, fill(n, 1)]));
  const shared = new Float32Array(20);
  start.set('view', shared.subarray(5, 15));
  const copy = (w: Map<string, Float32Array>) => new Map([...w].map(([k, v]) => [k, Float32Array.from(v)]));
  const one = copy(start),
    two = copy(start);
  two.set('view', new Float32Array(20).subarray(5, 15));
  two.get('view')!.set(start.get('view')!);
  const a = new AdamW({ ...fixture.config, maxGradNorm: 0.5 }),
    b = new AdamW({ ...fixture.config, maxGradNorm: 0.5 }, { parallelFrom: 0 });
  for (let step = 0; step < 3; step++) {
    const grads = new Map([...start].map(([k, w]) => [k, fill(w.length, 2)]));
    const gradsTwo = copy(grads);
    const lent = gradsTwo.get('big')!;
    const ra = await a.update(one, grads),
      rb = await b.update(two, gradsTwo);
    assert.equal(rb.gradNorm, ra.gradNorm);
    assert.equal(rb.clipped, true);
    assert.equal(lent.length, 0, 'the largest gradient went to the worker (its old array is detached)');
    assert.deepEqual(Array.from(gradsTwo.get('big')!), Array.from(grads.get('big')!), 'gradients come back intact');
    for (const [name, w] of one) assert.deepEqual(Array.from(two.get(name)!), Array.from(w), `step ${step} ${name}`);
  }
  const dirA = mkdtempSync(join(tmpdir(), 'ringrl-opt-')),
    dirB = mkdtempSync(join(tmpdir(), 'ringrl-opt-'));
  a.save(dirA);
  b.save(dirB);
  assert.deepEqual(
    readFileSync(join(dirB, 'optimizer.safetensors')),
    readFileSync(join(dirA, 'optimizer.safetensors')),
  );
});

test('the SIMD kernel (float32) matches AdamW in float64 across chunk boundaries and a ragged tail', () => {
  const kernel = adamwKernel(adamwModule());
  const n = 2 * kernel.chunk + 3;
  const random = rng(11);
  const fill = (s: number, lo = 0) => Float32Array.from({ length: n }, () => lo + random() * s);
  const w = fill(2, -1),
    g = fill(4, -2),
    m = fill(0.2, -0.1),
    v = fill(0.01);
  const k = [0.7, 0.9, 0.999, 1 / Math.sqrt(1 - 0.999 ** 3), 1e-3 / (1 - 0.9 ** 3), 1e-8];
  const expected = { w: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * k[0]!;
    expected.m[i] = k[1]! * m[i]! + (1 - k[1]!) * gi;
    expected.v[i] = k[2]! * v[i]! + (1 - k[2]!) * gi * gi;
    expected.w[i] = w[i]! * 0.99 - (k[4]! * expected.m[i]!) / (Math.sqrt(expected.v[i]!) * k[3]! + k[5]!);
  }
  adamwTensor(kernel, w, g, m, v, k, 0.99);
  assertClose(m, expected.m, 1e-7, 'm');
  assertClose(v, expected.v, 1e-8, 'v');
  assertClose(w, expected.w, 1e-6, 'w');
});

test('optimizer state saves and loads exactly; training continues identically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-opt-'));
  const a = toWeights(fixture.start);
  const optA = new AdamW(fixture.config);
  await optA.update(a, toWeights(fixture.steps[0].grads));
  optA.save(dir);
  const b = new Map([...a].map(([k, v]) => [k, Float32Array.from(v)]));
  const optB = AdamW.load(dir, b);
  assert.equal(optB.step, 1);
  await optA.update(a, toWeights(fixture.steps[1].grads));
  await optB.update(b, toWeights(fixture.steps[1].grads));
  for (const [name, w] of a) assert.deepEqual(Array.from(b.get(name)!), Array.from(w));
});

for (const [threads, options] of [
  ['one thread', {}],
  ['two threads', { parallelFrom: 0 }],
] as const)
  test(`a non-finite gradient leaves the weights untouched and says why (${threads})`, async () => {
    const weights = toWeights(fixture.start);
    const before = new Map([...weights].map(([k, v]) => [k, Array.from(v)]));
    const grads = toWeights(fixture.steps[0].grads);
    grads.get('a.weight')![2] = NaN;
    const opt = new AdamW(fixture.config, options);
    await assert.rejects(opt.update(weights, grads), /gradient norm is NaN; refusing to update/);
    for (const [name, w] of weights) assert.deepEqual(Array.from(w), before.get(name));
    assert.equal(opt.step, 0);
  });

test('corrupt optimizer state is a one-line error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-opt-'));
  writeFileSync(join(dir, 'optimizer.json'), '{"step": ');
  assert.throws(() => AdamW.load(dir, new Map()), new RegExp(`${join(dir, 'optimizer.json')}: malformed JSON`));
});

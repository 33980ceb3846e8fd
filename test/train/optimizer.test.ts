// AdamW + global-norm clipping against torch.optim.AdamW (fixture from make_adamw_fixture.py),
// and an exact round trip of the optimizer state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW } from '../../src/train/optimizer.ts';
import { assertClose } from '../helpers.ts';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'adamw.json'), 'utf8'));
const toWeights = (o: Record<string, number[]>) =>
  new Map(Object.entries(o).map(([k, v]) => [k, Float32Array.from(v)]));

test('AdamW with clipping follows torch.optim.AdamW step by step', () => {
  const weights = toWeights(fixture.start);
  const opt = new AdamW(fixture.config);
  for (const [i, step] of fixture.steps.entries()) {
    const { gradNorm } = opt.update(weights, toWeights(step.grads));
    assertClose([gradNorm], [step.grad_norm], 1e-5, `step ${i} grad norm`);
    for (const [name, expected] of Object.entries(step.after as Record<string, number[]>))
      assertClose(weights.get(name)!, expected, 1e-6, `step ${i} ${name}`);
  }
});

test('optimizer state saves and loads exactly; training continues identically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-opt-'));
  const a = toWeights(fixture.start);
  const optA = new AdamW(fixture.config);
  optA.update(a, toWeights(fixture.steps[0].grads));
  optA.save(dir);
  const b = new Map([...a].map(([k, v]) => [k, Float32Array.from(v)]));
  const optB = AdamW.load(dir, b);
  assert.equal(optB.step, 1);
  optA.update(a, toWeights(fixture.steps[1].grads));
  optB.update(b, toWeights(fixture.steps[1].grads));
  for (const [name, w] of a) assert.deepEqual(Array.from(b.get(name)!), Array.from(w));
});

test('a non-finite gradient leaves the weights untouched and says why', () => {
  const weights = toWeights(fixture.start);
  const before = Array.from(weights.get('a.weight')!);
  const grads = toWeights(fixture.steps[0].grads);
  grads.get('a.weight')![2] = NaN;
  assert.throws(() => new AdamW(fixture.config).update(weights, grads), /gradient norm is NaN; refusing to update/);
  assert.deepEqual(Array.from(weights.get('a.weight')!), before);
});

test('corrupt optimizer state is a one-line error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-opt-'));
  writeFileSync(join(dir, 'optimizer.json'), '{"step": ');
  assert.throws(() => AdamW.load(dir, new Map()), new RegExp(`${join(dir, 'optimizer.json')}: malformed JSON`));
});

// The mismatch guard fires on a sustained rise (warn, act, stop, `patience` steps apart, the stop
// naming metric, threshold and step) and never on a flat series, however noisy or spiky.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MismatchGuard, parseMismatchGuardConfig } from '../../src/algo/mismatch-guard.ts';
import { normal, rng } from '../../src/util/random.ts';

const on = { enabled: true, window: 10, rise: 4, patience: 5 };

/** Run a series through a guard; the steps at which it warned, acted and stopped. */
function run(series: { kl: number; masked: number }[], remedy = false) {
  const guard = new MismatchGuard(on);
  const events: { step: number; action: string; message: string }[] = [];
  for (const [i, s] of series.entries()) {
    const v = guard.observe(i + 1, { 'mismatch/kl': s.kl, 'icepop/masked_frac': s.masked });
    if (v.action !== 'none') events.push({ step: i + 1, action: v.action, message: v.message });
    if (v.action === 'act' && remedy) guard.remedied();
    if (v.action === 'stop') break;
  }
  return events;
}

test('a rising KL (x1.08 a step under lognormal noise) is warned about, acted on, then stopped with a one-line message', () => {
  const gauss = normal(rng(3));
  const series = Array.from({ length: 200 }, (_, t) => ({
    kl: 1e-3 * 1.08 ** t * Math.exp(0.3 * gauss()),
    masked: 1e-4,
  }));
  const events = run(series);
  assert.deepEqual(
    events.map((e) => e.action),
    ['warn', 'act', 'stop'],
  );
  const [warn, act, stop] = events;
  assert.equal(act!.step - warn!.step, 5);
  assert.equal(stop!.step - act!.step, 5);
  // The rise is caught well before the KL is 100x its start (1.08^60 = 100).
  assert.ok(warn!.step < 45, `warned only at step ${warn!.step}`);
  assert.match(
    stop!.message,
    new RegExp(
      `^mismatch guard at step ${stop!.step}: mismatch/kl median [0-9.e-]+ over steps \\d+-${stop!.step} exceeds the threshold [0-9.e-]+ \\(4x its baseline median`,
    ),
  );
  assert.ok(!stop!.message.includes('\n'));
});

test('after a remedy the guard judges the following steps afresh: a remedy that works stops nothing', () => {
  // KL rises, then (after the act) drops back to its baseline.
  let acted = -1;
  const guard = new MismatchGuard(on);
  const gauss = normal(rng(5));
  const actions: string[] = [];
  for (let step = 1; step <= 150; step++) {
    const kl = acted < 0 ? 1e-3 * 1.1 ** step : 1e-3;
    const v = guard.observe(step, { 'mismatch/kl': kl * Math.exp(0.2 * gauss()) });
    if (v.action !== 'none') actions.push(v.action);
    if (v.action === 'act') (acted = step), guard.remedied();
  }
  assert.deepEqual(actions, ['warn', 'act']);
});

test('a remedy that does not work: the rise persists on the steps after it and the run stops', () => {
  const series = Array.from({ length: 200 }, (_, t) => ({ kl: 1e-3 * 1.08 ** t, masked: 0 }));
  const events = run(series, true);
  assert.deepEqual(
    events.map((e) => e.action),
    ['warn', 'act', 'stop'],
  );
  assert.ok(events[2]!.step - events[1]!.step >= 10, 'the recent window refills before the stop');
});

test('a rising masked fraction fires too, naming icepop/masked_frac', () => {
  const series = Array.from({ length: 200 }, (_, t) => ({ kl: 1e-3, masked: Math.min(0.5, 1e-3 * 1.1 ** t) }));
  const events = run(series);
  assert.equal(events.at(-1)!.action, 'stop');
  assert.match(events.at(-1)!.message, /icepop\/masked_frac median/);
});

test('flat noisy series never fire: lognormal noise (sigma 0.5), spikes of 20x every 7th step, 300 steps, several seeds', () => {
  for (const seed of [1, 2, 3, 4]) {
    const gauss = normal(rng(seed));
    const series = Array.from({ length: 300 }, (_, t) => ({
      kl: 2e-3 * Math.exp(0.5 * gauss()) * (t % 7 === 6 ? 20 : 1),
      masked: 1e-3 * Math.exp(0.5 * gauss()),
    }));
    assert.deepEqual(run(series), [], `seed ${seed}`);
  }
});

test('off by default: a rising series passes silently', () => {
  const guard = new MismatchGuard();
  for (let step = 1; step <= 100; step++)
    assert.equal(guard.observe(step, { 'mismatch/kl': 1e-3 * 1.2 ** step }).action, 'none');
});

test('bad guard config is one line naming the key', () => {
  assert.throws(() => parseMismatchGuardConfig({ rise: 1 }), /mismatch guard config: rise: /);
  assert.throws(() => parseMismatchGuardConfig({ windw: 3 }), /windw: unknown key/);
});

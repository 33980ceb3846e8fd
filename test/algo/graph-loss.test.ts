// The training-graph policy loss (policyLossSpec) against the host reference, through the
// graph's own autodiff in float64: loss, d loss / d logprobs and metrics on random batches for
// every configuration; IcePop's zero gradient outside the band and k-scaling inside it, in the
// graph and end to end through the tiny model's parameter gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, grad, input } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/index.ts';
import {
  type PolicyLossBatch,
  type PolicyLossConfigInput,
  Policy,
  aggregationWeights,
  combineMetrics,
  computePolicyLoss,
  finishPolicyMetrics,
  packSequences,
  parsePolicyLossConfig,
  policyLossSpec,
} from '../../src/index.ts';
import { countedMask } from '../../src/algo/corrections.ts';
import { f64, maxAbsDiff, rng } from '../helpers.ts';
import { normal } from '../../src/util/random.ts';

const T = 7;

async function compileLoss(configInput: PolicyLossConfigInput) {
  const spec = policyLossSpec(configInput);
  const logprobs = input('logprobs', 'float64', ['B', 'T']);
  const entropy = input('entropy', 'float64', ['B', 'T']);
  const extra: Record<string, Tensor> = {};
  for (const name of spec.tokenInputs) extra[name] = input(name, 'float64', ['B', 'T']);
  for (const name of spec.scalarInputs) extra[name] = input(name, 'float64', []);
  const { loss, metrics = {} } = spec.build({ logprobs, entropy }, extra);
  const [dLogprobs] = grad(loss, [logprobs]);
  const outputs: Record<string, Tensor> = { loss, dLogprobs: dLogprobs! };
  for (const [name, t] of Object.entries(metrics)) outputs[`metric:${name}`] = t;
  const compiled = await CompiledGraph.create([logprobs, entropy, ...Object.values(extra)], outputs, { threads: 1 });
  return { spec, compiled };
}

/** A random right-padded batch: lengths 0..T (one empty row), mismatch wide enough to leave IcePop's band. */
function randomBatch(seed: number): Required<Omit<PolicyLossBatch, 'lossWeights'>> {
  const uniform = rng(seed);
  const gauss = normal(uniform);
  const lengths = [T, 0, 1 + Math.floor(uniform() * (T - 1)), 1 + Math.floor(uniform() * (T - 1))];
  const rows = (f: (b: number, t: number) => number) =>
    lengths.map((len, b) => Array.from({ length: T }, (_, t) => (t < len ? f(b, t) : 0)));
  const old = rows(() => -0.1 - 3 * uniform());
  const logprobs = rows((b, t) => old[b]![t]! + 0.25 * gauss());
  const advantage = lengths.map((_, b) => (b === 3 ? 0 : gauss()));
  return {
    logprobs,
    oldLogprobs: old,
    rolloutLogprobs: rows((b, t) => old[b]![t]! - 0.9 * gauss()),
    advantages: rows((b) => advantage[b]!),
    mask: rows(() => (uniform() < 0.85 ? 1 : 0)),
    refLogprobs: rows((b, t) => logprobs[b]![t]! + 0.3 * gauss()),
    entropy: rows(() => 3 * uniform()),
  };
}

/** log k per token, as the policy step computes it for countedMask (mis drops rejected tokens from the aggregation). */
const logK = (batch: Required<Omit<PolicyLossBatch, 'lossWeights'>>, config: { bypass: boolean }) =>
  batch.oldLogprobs.map((row, i) => row.map((old, t) => (config.bypass ? 0 : old - batch.rolloutLogprobs[i]![t]!)));

const dense = (rows: number[][]) => f64(rows.flat(), [rows.length, rows[0]!.length]);

async function runGraph(
  compiled: CompiledGraph,
  names: string[],
  batch: Required<Omit<PolicyLossBatch, 'lossWeights'>>,
  configInput: PolicyLossConfigInput,
) {
  const config = parsePolicyLossConfig(configInput);
  const tokens = batch.mask.flat().filter((m) => m > 0).length;
  const sources: Record<string, number[][]> = {
    rollout_logprobs: batch.rolloutLogprobs,
    old_logprobs: batch.oldLogprobs,
    ref_logprobs: batch.refLogprobs,
    advantages: batch.advantages,
    response_mask: batch.mask,
    loss_weight: aggregationWeights(countedMask(batch.mask, logK(batch, config), config), config),
  };
  const feeds = {
    logprobs: dense(batch.logprobs),
    entropy: dense(batch.entropy),
    metric_scale: f64([1 / tokens], []),
    ...Object.fromEntries(names.map((n) => [n, dense(sources[n]!)])),
  };
  const out = await compiled.run(feeds);
  const raw: Record<string, number> = {};
  for (const [name, t] of Object.entries(out)) if (name.startsWith('metric:')) raw[name.slice(7)] = Number(t.data[0]);
  return {
    loss: Number(out.loss!.data[0]),
    dLogprobs: Array.from(out.dLogprobs!.data as Float64Array),
    metrics: finishPolicyMetrics(combineMetrics([raw])),
  };
}

const configs: PolicyLossConfigInput[] = [];
for (const correction of ['none', 'tis', 'icepop', 'mis'] as const) {
  for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'budget'] as const) {
    configs.push({ correction, aggregation, budget: 16, clip: { low: 0.2, high: 0.28 } });
  }
}
for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'budget'] as const)
  configs.push({ correction: 'none', bypass: true, aggregation, budget: 16 });
configs.push({
  correction: 'icepop',
  icepop: { alpha: 0.8, beta: 1.5 },
  kl: { coef: 0.05, estimator: 'k1' },
  entropy: { coef: 0.01 },
});
configs.push({
  correction: 'tis',
  tis: { cap: 1.5 },
  aggregation: 'seq-mean-token-mean',
  clip: { low: 0.1, high: 0.1 },
  kl: { coef: 0.2, estimator: 'k3' },
  entropy: { coef: 0.03 },
});

test('graph loss, d loss / d logprobs and metrics equal the host reference (<= 1e-6) on random batches for every configuration', async () => {
  for (const config of configs) {
    const { spec, compiled } = await compileLoss(config);
    for (const seed of [1, 2, 3]) {
      const batch = randomBatch(seed * 100 + configs.indexOf(config));
      const reference = computePolicyLoss(
        parsePolicyLossConfig(config).kl.coef > 0 ? batch : { ...batch, refLogprobs: undefined },
        config,
      );
      const graph = await runGraph(compiled, spec.tokenInputs, batch, config);
      const what = `${JSON.stringify(config)} seed ${seed}`;
      assert.ok(Math.abs(graph.loss - reference.loss) <= 1e-6, `${what}: loss ${graph.loss} vs ${reference.loss}`);
      const gradDiff = maxAbsDiff(graph.dLogprobs, reference.gradLogprobs.flat());
      assert.ok(gradDiff <= 1e-6, `${what}: gradient differs by ${gradDiff}`);
      assert.ok(
        reference.gradLogprobs.flat().some((g) => g !== 0),
        `${what}: a batch with some gradient`,
      );
      for (const [name, value] of Object.entries(reference.metrics)) {
        assert.ok(name in graph.metrics, `${what}: graph lacks metric ${name}`);
        assert.ok(
          Math.abs(graph.metrics[name]! - value) <= 1e-6,
          `${what}: metric ${name} ${graph.metrics[name]} vs ${value}`,
        );
      }
    }
  }
});

test('graph IcePop: out-of-band tokens get exactly zero gradient through autodiff; in-band tokens are scaled by k', async () => {
  const base = { aggregation: 'budget', budget: 10, clip: { low: 0.2, high: 0.2 } } as const;
  const icepop = await compileLoss({ ...base, correction: 'icepop' });
  const none = await compileLoss({ ...base, correction: 'none' });
  let outside = 0;
  let inside = 0;
  for (const seed of [7, 8, 9]) {
    const batch = randomBatch(seed);
    const gIce = (await runGraph(icepop.compiled, icepop.spec.tokenInputs, batch, { ...base, correction: 'icepop' }))
      .dLogprobs;
    const gNone = (await runGraph(none.compiled, none.spec.tokenInputs, batch, { ...base, correction: 'none' }))
      .dLogprobs;
    batch.mask.flat().forEach((m, j) => {
      if (!m) return;
      const logK = batch.oldLogprobs.flat()[j]! - batch.rolloutLogprobs.flat()[j]!;
      if (logK < Math.log(0.5) || logK > Math.log(5)) {
        assert.equal(gIce[j], 0, `token ${j} with k = ${Math.exp(logK)} must get exactly 0`);
        if (gNone[j] !== 0) outside++;
      } else {
        assert.ok(
          Math.abs(gIce[j]! - Math.exp(logK) * gNone[j]!) <= 1e-12,
          `token ${j}: ${gIce[j]} vs k * ${gNone[j]}`,
        );
        if (gNone[j] !== 0) inside++;
      }
    });
  }
  assert.ok(
    outside >= 3 && inside >= 5,
    `the batches exercise both sides (${outside} masked, ${inside} kept with gradient)`,
  );
});

test('tiny model: IcePop equals the uncorrected loss with advantages scaled by M(k); all-masked batches give all-zero parameter gradients', async () => {
  const policy = Policy.fromPreset('tiny', 3, { threads: 1 });
  const uniform = rng(5);
  const sequences = [
    [1, 2, 3, 4, 5, 6],
    [7, 8, 9, 10],
    [11, 12, 13, 14, 15],
  ];
  const batch = packSequences(sequences, 64);
  const n = batch.B * batch.T;
  const logK = Float32Array.from({ length: n }, () => (uniform() - 0.5) * 4); // k in [e^-2, e^2]: some outside [0.5, 5]
  const old = Float32Array.from({ length: n }, () => -4 + uniform());
  const rollout = old.map((o, i) => o - logK[i]!);
  const advantages = Float32Array.from({ length: n }, (_, i) => (Math.floor(i / batch.T) === 1 ? -1 : 1));
  const weight = batch.mask.map((m) => m / 12);
  const run = (config: PolicyLossConfigInput, feeds: Record<string, Float32Array>) =>
    policy.lossAndGrads(
      policyLossSpec(config),
      batch,
      { response_mask: batch.mask, loss_weight: weight, old_logprobs: old, ...feeds },
      { metric_scale: 1 / 12 },
    );
  const withIcePop = await run({ correction: 'icepop' }, { rollout_logprobs: rollout, advantages });
  const scaled = advantages.map((a, i) =>
    logK[i]! < Math.log(0.5) || logK[i]! > Math.log(5) ? 0 : a * Math.exp(logK[i]!),
  );
  const uncorrected = await run({ correction: 'none' }, { rollout_logprobs: rollout, advantages: scaled });
  assert.ok(
    withIcePop.metrics['icepop/masked_low_frac']! > 0 && withIcePop.metrics['icepop/masked_high_frac']! > 0,
    'some tokens on both sides are masked',
  );
  for (const [name, g] of withIcePop.grads) {
    const h = uncorrected.grads.get(name)!;
    const scale = Math.max(1e-3, ...Array.from(h, Math.abs));
    assert.ok(
      maxAbsDiff(g, h) <= 1e-5 * scale,
      `${name}: IcePop gradient differs from the M(k)-scaled one by ${maxAbsDiff(g, h)}`,
    );
  }
  const allOut = rollout.map((_, i) => old[i]! + (i % 2 ? 3 : -3)); // k = e^-3 or e^3 everywhere
  const masked = await run({ correction: 'icepop' }, { rollout_logprobs: allOut, advantages });
  assert.equal(masked.loss, 0);
  for (const [name, g] of masked.grads)
    assert.ok(
      g.every((x) => x === 0),
      `${name}: every gradient entry exactly 0`,
    );
});

test('graph edge cases match the reference: k exactly at alpha and beta, all tokens masked by IcePop, all masked by the response mask', async () => {
  const ln = Math.log;
  const config = { correction: 'icepop', aggregation: 'token-mean' } as const;
  const { spec, compiled } = await compileLoss(config);
  const zeros = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ];
  const edges = {
    logprobs: [
      [0.1, -0.1, 0, 0],
      [0, 0, 0, 0],
    ],
    oldLogprobs: zeros,
    refLogprobs: zeros,
    entropy: [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ],
    rolloutLogprobs: [
      [-ln(0.5), -ln(5), -(ln(0.5) - 1e-12), -(ln(5) + 1e-12)],
      [3, -3, 0, 0],
    ],
    advantages: [
      [1, -1, 1, 1],
      [2, 2, 0, 0],
    ],
    mask: [
      [1, 1, 1, 1],
      [1, 1, 0, 0],
    ],
  };
  const allMaskedByResponse = {
    ...edges,
    mask: [
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ],
  };
  for (const [what, batch] of [
    ['band edges and out-of-band row', edges],
    ['response mask all 0', allMaskedByResponse],
  ] as const) {
    const reference = computePolicyLoss(batch, config);
    const graph = await runGraph(compiled, spec.tokenInputs, batch, config);
    assert.ok(
      Number.isFinite(graph.loss) && Math.abs(graph.loss - reference.loss) <= 1e-12,
      `${what}: loss ${graph.loss} vs ${reference.loss}`,
    );
    assert.ok(
      maxAbsDiff(graph.dLogprobs, reference.gradLogprobs.flat()) <= 1e-12,
      `${what}: gradients ${graph.dLogprobs} vs ${reference.gradLogprobs.flat()}`,
    );
  }
  const graph = await runGraph(compiled, spec.tokenInputs, edges, config);
  // In-band edges: -a * w * A * r with a = 1/6, w = 0.5 and 5; just outside the band and the whole second row: exactly 0.
  assert.ok(
    Math.abs(graph.dLogprobs[0]! - (-0.5 * Math.exp(0.1)) / 6) <= 1e-12 &&
      Math.abs(graph.dLogprobs[1]! - (5 * Math.exp(-0.1)) / 6) <= 1e-12,
    `edge gradients ${graph.dLogprobs.slice(0, 2)}`,
  );
  assert.deepEqual(graph.dLogprobs.slice(2), [0, 0, 0, 0, 0, 0]);
});

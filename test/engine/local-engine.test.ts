// The local engine against the trainer and against independent computations: log-prob parity,
// behaviour log-probs of truncated sampling, continuous batching, pause/update/resume, seeds,
// greedy decoding, reduced precision and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { input, type Tensor } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/index.ts';
import { loadModelDir, type Weights } from '../../src/model/checkpoint.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { forward, parameterShapes } from '../../src/model/llama.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import {
  type GeneratedSequence,
  type GenerationRequest,
  type SamplingParams,
  generateAll,
} from '../../src/engine/types.ts';
import { Policy } from '../../src/train/policy.ts';
import { initWeights } from '../../src/model/presets.ts';
import { RingrlError } from '../../src/errors.ts';
import { idealRefillSteps } from '../helpers.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');

async function engineFor(
  config: ModelConfig,
  weights: Weights,
  opts: ConstructorParameters<typeof LocalEngine>[1] = {},
): Promise<LocalEngine> {
  const engine = new LocalEngine(config, { runtime: { threads: 1 }, ...opts });
  await engine.updateWeights(weights, 0);
  return engine;
}

/** Full next-token logits [T][V] of one sequence, from the training forward (independent of the engine). */
async function fullLogits(config: ModelConfig, weights: Weights, tokens: number[]): Promise<number[][]> {
  const params: Record<string, Tensor> = {};
  for (const [name, shape] of parameterShapes(config)) params[name] = input(name, 'float32', shape);
  const ids = input('ids', 'int64', ['B', 'T']);
  const graph = await CompiledGraph.create(
    [...Object.values(params), ids],
    { logits: forward(config, params, ids).logits },
    { threads: 1 },
  );
  const feeds: Parameters<typeof graph.run>[0] = {
    ids: { dtype: 'int64', data: BigInt64Array.from(tokens.map(BigInt)), dims: [1, tokens.length] },
  };
  for (const [name, shape] of parameterShapes(config))
    feeds[name] = { dtype: 'float32', data: weights.get(name)!, dims: shape };
  const flat = (await graph.run(feeds)).logits!.data as Float32Array;
  const V = config.vocabSize;
  return Array.from({ length: tokens.length }, (_, t) => Array.from(flat.subarray(t * V, (t + 1) * V)));
}

/** log q(token) for q = softmax(logits / T) truncated to top-k then top-p, renormalised — written from the definition. */
function truncatedLogprob(logits: number[], token: number, p: SamplingParams): { logq: number; kept: Set<number> } {
  const scaled = logits.map((l) => l / p.temperature);
  const max = Math.max(...scaled);
  const z = scaled.reduce((a, l) => a + Math.exp(l - max), 0);
  const probs = scaled.map((l) => Math.exp(l - max) / z);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]!);
  const kept = new Set<number>();
  let mass = 0;
  for (const [rank, i] of order.entries()) {
    if (p.topK && rank >= p.topK) break;
    if (p.topP !== undefined && mass >= p.topP) break;
    kept.add(i);
    mass += probs[i]!;
  }
  return { logq: Math.log(probs[token]! / mass), kept };
}

// Segment starts of 3 and 7 positions put these sequences' caches across all three segments.
for (const [modelType, kvSegments] of [
  ['llama'],
  ['qwen2'],
  ['qwen3'],
  ['mixtral'],
  ['llama', [3, 7]],
  ['mixtral', [3, 7]],
] as [string, number[]?][]) {
  test(`${modelType}${kvSegments ? ` (KV cache segments at ${kvSegments})` : ''}: engine policy log-probs equal the trainer's recompute (≤ 1e-5); behaviour log-probs equal the truncated distribution`, async () => {
    const { config, weights } = loadModelDir(join(fixtures, modelType));
    const engine = await engineFor(config, weights, { capacity: 3, kvSegments });
    const settings: SamplingParams[] = [
      { temperature: 1, maxNewTokens: 12 },
      { temperature: 0.7, topK: 5, maxNewTokens: 9 },
      { temperature: 1.3, topP: 0.8, maxNewTokens: 15 },
      { temperature: 1, topK: 8, topP: 0.6, maxNewTokens: 7 },
    ];
    const requests = settings.map((params, i) => ({
      id: String(i),
      prompt: [1 + i, 7, 3, 30 - i].slice(0, 2 + i),
      params: { ...params, seed: 40 + i },
    }));
    const results = await generateAll(engine, requests);
    const policy = new Policy(config, weights, { threads: 1 });
    for (const [i, r] of results.entries()) {
      const params = requests[i]!.params;
      assert.equal(r.tokens.length, params.maxNewTokens);
      const full = [...r.prompt, ...r.tokens];
      const { logprobs } = await policy.score([full], params.temperature);
      const recompute = logprobs[0]!.slice(r.prompt.length - 1);
      r.policyLogprobs.forEach((lp, t) =>
        assert.ok(Math.abs(lp - recompute[t]!) <= 1e-5, `seq ${i} token ${t}: engine ${lp} vs trainer ${recompute[t]}`),
      );
      const logits = await fullLogits(config, weights, full);
      r.tokens.forEach((token, t) => {
        const { logq, kept } = truncatedLogprob(logits[r.prompt.length - 1 + t]!, token, params);
        assert.ok(kept.has(token), `seq ${i} token ${t}: sampled ${token} outside the truncated set`);
        assert.ok(
          Math.abs(r.behaviorLogprobs[t]! - logq) <= 1e-5,
          `seq ${i} token ${t}: behaviour ${r.behaviorLogprobs[t]} vs ${logq}`,
        );
      });
    }
  });
}

test('continuous batching: decode steps match immediate slot refilling, far below static batches', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const capacity = 4;
  const lengths = [40, 3, 5, 2, 38, 4, 6, 3, 2, 35, 5, 4];
  const engine = await engineFor(config, weights, { capacity, prefillBatch: capacity });
  const requests = lengths.map((n, i) => ({
    id: String(i),
    prompt: [1, 2],
    params: { temperature: 1, maxNewTokens: n, seed: i },
  }));
  const results = await generateAll(engine, requests);
  assert.deepEqual(
    results.map((r) => r.tokens.length),
    lengths,
  );
  const steps = idealRefillSteps(lengths, capacity);
  const staticBatches = Array.from(
    { length: Math.ceil(lengths.length / capacity) },
    (_, b) => Math.max(...lengths.slice(b * capacity, (b + 1) * capacity)) - 1,
  ).reduce((a, b) => a + b);
  const actual = engine.stats().decodeSteps;
  assert.equal(actual, steps, `decode steps ${actual} vs ideal refilling ${steps}`);
  assert.ok(actual < 0.6 * staticBatches, `decode steps ${actual} vs static batching ${staticBatches}`);
});

test('a segmented KV cache decodes exactly what a dense one does, through row moves, pauses with kept caches and resumes', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'qwen2'));
  const lengths = [40, 3, 25, 2, 38, 4, 16, 3, 2, 35, 5, 4];
  const requests = lengths.map((n, i) => ({
    id: String(i),
    prompt: [1, 2, 3, 4, 5, 6].slice(0, 1 + (i % 6)),
    params: { temperature: 1, maxNewTokens: n, seed: i },
  }));
  const run = async (kvSegments: number[]) => {
    const engine = await engineFor(config, weights, {
      capacity: 5,
      prefillBatch: 2,
      keepPausedCache: true,
      kvSegments,
    });
    engine.submit(requests);
    for (let s = 0; s < 12; s++) await engine.step();
    const done = new Map<string, GeneratedSequence>();
    for (const s of await engine.step()) done.set(s.id, s);
    const partial = await engine.pause();
    for (const s of await generateAll(
      engine,
      partial.map((p) => ({ ...requests[Number(p.id)]!, resumeFrom: p })),
    ))
      done.set(s.id, s);
    return { done, prefilled: engine.stats().prefillTokens };
  };
  const dense = await run([]);
  const segmented = await run([4, 16]);
  for (const [id, d] of dense.done) {
    const s = segmented.done.get(id)!;
    assert.deepEqual(s.tokens, d.tokens, `sequence ${id}: tokens`);
    s.policyLogprobs.forEach((lp, t) =>
      assert.ok(
        Math.abs(lp - d.policyLogprobs[t]!) <= 1e-5,
        `sequence ${id} token ${t}: ${lp} vs ${d.policyLogprobs[t]}`,
      ),
    );
  }
  assert.equal(segmented.prefilled, dense.prefilled, 'the kept caches resumed without a re-prefill in both');
});

test('pause, update weights, resume: versions switch at the pause and resumed log-probs match the new weights', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'qwen3'));
  const engine = await engineFor(config, weights, { capacity: 2 });
  const requests: GenerationRequest[] = [0, 1, 2].map((i) => ({
    id: String(i),
    prompt: [3, 4 + i],
    params: { temperature: 1, maxNewTokens: 20, seed: i },
  }));
  engine.submit(requests);
  for (let s = 0; s < 5; s++) await engine.step();
  const partial = await engine.pause();
  assert.equal(partial.length, 3);
  assert.ok(!engine.busy());
  const cut = new Map(partial.map((p) => [p.id, p.tokens.length]));
  assert.ok(partial.some((p) => p.tokens.length > 0) && partial.every((p) => p.finishReason === null));
  const updated = initWeights(config, 99, 0.1);
  await engine.updateWeights(updated, 1);
  const resumed = await generateAll(
    engine,
    requests.map((r) => ({ ...r, resumeFrom: partial.find((p) => p.id === r.id) })),
  );
  const oldPolicy = new Policy(config, weights, { threads: 1 });
  const newPolicy = new Policy(config, updated, { threads: 1 });
  for (const r of resumed) {
    const k = cut.get(r.id)!;
    assert.equal(r.tokens.length, 20);
    assert.deepEqual(r.versions, [...Array(k).fill(0), ...Array(20 - k).fill(1)], `versions of ${r.id}`);
    const full = [...r.prompt, ...r.tokens];
    const before = (await oldPolicy.score([full])).logprobs[0]!.slice(1);
    const after = (await newPolicy.score([full])).logprobs[0]!.slice(1);
    r.policyLogprobs.forEach((lp, t) => {
      const expected = t < k ? before[t]! : after[t]!;
      assert.ok(Math.abs(lp - expected) <= 1e-5, `${r.id} token ${t} (v${r.versions[t]}): ${lp} vs ${expected}`);
    });
  }
});

test('keepPausedCache: resumed rows continue from their cache (no re-prefill); unclaimed rows are released', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const requests: GenerationRequest[] = [0, 1, 2, 3].map((i) => ({
    id: String(i),
    prompt: [3, 4 + i, 5],
    params: { temperature: 1, maxNewTokens: 16, seed: i },
  }));
  const reference = await generateAll(await engineFor(config, weights, { capacity: 3 }), requests);

  // Same weights across the pause (a version bump only): resuming must reproduce an uninterrupted run exactly.
  const engine = await engineFor(config, weights, { capacity: 3, keepPausedCache: true });
  engine.submit(requests);
  for (let s = 0; s < 6; s++) await engine.step();
  const partial = await engine.pause();
  assert.ok(!engine.busy() && engine.stats().active === 0, 'parked rows are not busy');
  await engine.updateWeights(weights, 1); // allowed: nothing decodes while parked
  const prefilled = engine.stats().prefillTokens;
  const resumed = await generateAll(
    engine,
    requests.map((r) => ({ ...r, resumeFrom: partial.find((p) => p.id === r.id) })),
  );
  const waitingAtPause = partial.filter((p) => p.tokens.length === 0);
  const expectedPrefill = waitingAtPause.reduce((a, p) => a + p.prompt.length, 0);
  assert.equal(engine.stats().prefillTokens - prefilled, expectedPrefill, 'only never-started sequences are prefilled');
  resumed.forEach((r, i) => {
    assert.deepEqual(r.tokens, reference[i]!.tokens, `tokens of ${r.id}`);
    r.policyLogprobs.forEach((lp, t) =>
      assert.ok(Math.abs(lp - reference[i]!.policyLogprobs[t]!) <= 1e-5, `${r.id} token ${t}`),
    );
  });

  // New weights: tokens after the cut carry the new version and differ from a recompute under the new
  // weights only through the stale keys/values; a sequence not resubmitted is released, not resumed.
  const engine2 = await engineFor(config, weights, { capacity: 3, keepPausedCache: true });
  engine2.submit(requests.slice(0, 3));
  for (let s = 0; s < 6; s++) await engine2.step();
  const partial2 = await engine2.pause();
  const updated = initWeights(config, 99, 0.1);
  await engine2.updateWeights(updated, 1);
  const kept = requests.slice(1, 3).map((r) => ({ ...r, resumeFrom: partial2.find((p) => p.id === r.id) }));
  const done = await generateAll(engine2, kept);
  assert.equal(engine2.stats().active + engine2.stats().waiting, 0);
  assert.deepEqual(
    done.map((d) => d.id),
    ['1', '2'],
  );
  const newPolicy = new Policy(config, updated, { threads: 1 });
  const recompute = await engineFor(config, updated, { capacity: 3 });
  for (const d of done) {
    const k = partial2.find((p) => p.id === d.id)!.tokens.length;
    assert.ok(k > 0 && k < 16);
    assert.deepEqual(d.versions, [...Array(k).fill(0), ...Array(16 - k).fill(1)]);
    const exact = (await newPolicy.score([[...d.prompt, ...d.tokens]])).logprobs[0]!.slice(d.prompt.length - 1);
    const gap = d.policyLogprobs.slice(k).map((lp, t) => Math.abs(lp - exact[k + t]!));
    assert.ok(Math.max(...gap) > 1e-4, 'stale keys/values change the log-probs after the cut');
    // The recompute engine, resumed from the same cut, does match the new weights exactly.
    const [exactResume] = await generateAll(recompute, [
      { ...requests[Number(d.id)]!, resumeFrom: partial2.find((p) => p.id === d.id) },
    ]);
    const full = (await newPolicy.score([[...d.prompt, ...exactResume!.tokens]])).logprobs[0]!.slice(
      d.prompt.length - 1,
    );
    exactResume!.policyLogprobs.slice(k).forEach((lp, t) => assert.ok(Math.abs(lp - full[k + t]!) <= 1e-5));
  }
});

test('updating weights while sequences decode is refused (pause first)', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const engine = await engineFor(config, weights);
  engine.submit([{ id: 'a', prompt: [1], params: { temperature: 1, maxNewTokens: 10 } }]);
  await engine.step();
  await assert.rejects(engine.updateWeights(weights, 1), /pause\(\) first/);
});

test('seeded sampling is reproducible and independent of batch composition; temperature 0 is greedy', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'mixtral'));
  const params = { temperature: 1, maxNewTokens: 12, seed: 7 };
  const alone = await generateAll(await engineFor(config, weights), [{ id: 'x', prompt: [5, 6], params }]);
  const crowd = await generateAll(await engineFor(config, weights, { capacity: 2 }), [
    { id: 'y', prompt: [9, 9, 9, 1], params: { ...params, seed: 8 } },
    { id: 'x', prompt: [5, 6], params },
    { id: 'z', prompt: [2], params: { ...params, seed: 9, maxNewTokens: 3 } },
  ]);
  assert.deepEqual(crowd[1]!.tokens, alone[0]!.tokens);
  const other = await generateAll(await engineFor(config, weights), [
    { id: 'x', prompt: [5, 6], params: { ...params, seed: 8 } },
  ]);
  assert.notDeepEqual(other[0]!.tokens, alone[0]!.tokens);

  const [greedy] = await generateAll(await engineFor(config, weights), [
    { id: 'g', prompt: [5, 6], params: { temperature: 0, maxNewTokens: 8 } },
  ]);
  assert.deepEqual(greedy!.behaviorLogprobs, Array(8).fill(0));
  const logits = await fullLogits(config, weights, [5, 6, ...greedy!.tokens]);
  greedy!.tokens.forEach((token, t) => {
    const row = logits[1 + t]!;
    assert.equal(token, row.indexOf(Math.max(...row)), `greedy token ${t} is the argmax`);
  });
});

test('stop tokens end a sequence with finish_reason stop and keep the stop token', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const [free] = await generateAll(await engineFor(config, weights), [
    { id: 'a', prompt: [1, 2], params: { temperature: 1, maxNewTokens: 30, seed: 3 } },
  ]);
  const stop = free!.tokens[4]!;
  const [stopped] = await generateAll(await engineFor(config, weights), [
    { id: 'a', prompt: [1, 2], params: { temperature: 1, maxNewTokens: 30, seed: 3, stopTokens: [stop] } },
  ]);
  assert.equal(stopped!.finishReason, 'stop');
  assert.equal(stopped!.tokens.at(-1), stop);
  assert.deepEqual(stopped!.tokens, free!.tokens.slice(0, stopped!.tokens.length));
});

test('reduced precision: fp8 and int8 rollouts differ from the fp32 trainer; fp32 does not', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'qwen2'));
  const policy = new Policy(config, weights, { threads: 1 });
  const gap: Record<string, number> = {};
  for (const precision of ['fp32', 'bf16', 'fp8', 'int8', 'int4'] as const) {
    const results = await generateAll(
      await engineFor(config, weights, { precision }),
      [0, 1, 2].map((i) => ({
        id: String(i),
        prompt: [i + 1, 4],
        params: { temperature: 1, maxNewTokens: 16, seed: i },
      })),
    );
    const scored = await policy.score(results.map((r) => [...r.prompt, ...r.tokens]));
    gap[precision] = Math.max(
      ...results.flatMap((r, i) => r.policyLogprobs.map((lp, t) => Math.abs(lp - scored.logprobs[i]![t + 1]!))),
    );
  }
  assert.ok(gap.fp32! < 1e-5, `fp32 gap ${gap.fp32}`);
  for (const p of ['bf16', 'fp8', 'int8', 'int4'])
    assert.ok(gap[p]! > 1e-4, `${p} gap ${gap[p]} should be a real mismatch`);
  assert.ok(gap.fp8! > gap.bf16!, `fp8 (${gap.fp8}) is coarser than bf16 (${gap.bf16})`);
});

test('int8/int4 engines compile their packed weights as constants and recompile on a weight update', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'qwen2'));
  const updated: Weights = new Map([...weights].map(([name, w]) => [name, w.map((v, i) => v + 0.05 * Math.sin(i))]));
  const requests = [0, 1].map((i) => ({
    id: String(i),
    prompt: [i + 1, 4],
    params: { temperature: 0, maxNewTokens: 8 },
  }));
  for (const precision of ['int8', 'int4'] as const) {
    const engine = await engineFor(config, weights, { precision });
    const before = await generateAll(engine, requests);
    await engine.updateWeights(updated, 1);
    const after = await generateAll(engine, requests);
    const fresh = await generateAll(await engineFor(config, updated, { precision }), requests);
    assert.deepEqual(
      after.map((r) => r.policyLogprobs),
      fresh.map((r) => r.policyLogprobs),
      `${precision}: after the update = an engine built on the new weights`,
    );
    assert.notDeepEqual(
      after.map((r) => r.policyLogprobs),
      before.map((r) => r.policyLogprobs),
      `${precision}: the update changed what it decodes`,
    );
  }
});

test('bad requests are one-line errors naming the request and the field', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const engine = await engineFor(config, weights);
  const base = { temperature: 1, maxNewTokens: 4 };
  const cases: [GenerationRequest, RegExp][] = [
    [{ id: 'p0', prompt: [1, 32], params: base }, /request 'p0': prompt\[1\] = 32 is outside the vocabulary \[0, 32\)/],
    [
      { id: 'p1', prompt: Array(200).fill(1), params: base },
      /request 'p1': prompt of 200 tokens .* does not fit the model's context of 128/,
    ],
    [{ id: 'p2', prompt: [1], params: { ...base, topP: 1.5 } }, /request 'p2': top_p must be in \(0, 1\], got 1\.5/],
    [{ id: 'p3', prompt: [1], params: { ...base, topP: 0 } }, /request 'p3': top_p must be in \(0, 1\], got 0/],
    [
      { id: 'p4', prompt: [1], params: { ...base, temperature: -0.5 } },
      /request 'p4': temperature must be a number >= 0, got -0\.5/,
    ],
    [{ id: 'p5', prompt: [], params: base }, /request 'p5': prompt must be a non-empty array/],
  ];
  for (const [request, pattern] of cases) assert.throws(() => engine.submit([request]), pattern);
  assert.ok(!engine.busy(), 'rejected requests are not queued');
});

test('bad engine options and mis-shaped weights are one-line user errors', () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  for (const prefillBatch of [0, 1.5]) {
    assert.throws(
      () => new LocalEngine(config, { prefillBatch }),
      (e: Error) => e instanceof RingrlError && /engine: prefillBatch must be a positive integer/.test(e.message),
    );
  }
  const broken = new Map(weights);
  broken.set('model.norm.weight', new Float32Array(3));
  assert.throws(
    () => new Policy(config, broken),
    (e: Error) =>
      e instanceof RingrlError && /model: weight 'model\.norm\.weight' is missing or not of shape/.test(e.message),
  );
});

test('a long waiting queue does not grow the KV cache beyond what the longest sequence needs', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const engine = await engineFor(config, weights, { capacity: 4, prefillBatch: 2 });
  const requests = Array.from({ length: 40 }, (_, i) => ({
    id: String(i),
    prompt: [1, 2, 3],
    params: { temperature: 1, maxNewTokens: 10, seed: i },
  }));
  engine.submit(requests);
  let peak = 0;
  while (engine.busy()) {
    await engine.step();
    peak = Math.max(peak, engine.cacheSlots);
  }
  assert.ok(peak <= 64, `cache grew to ${peak} positions per row for sequences of at most 13 tokens`);
});

test('the KV cache shrinks back once the longest sequence has finished', async () => {
  const { config, weights } = loadModelDir(join(fixtures, 'llama'));
  const engine = await engineFor(config, weights, { capacity: 4 });
  const slots = () => engine.cacheSlots;
  const long = { id: 'long', prompt: Array(100).fill(3), params: { temperature: 1, maxNewTokens: 2, seed: 1 } };
  const short = Array.from({ length: 3 }, (_, i) => ({
    id: `s${i}`,
    prompt: [1, 2, 3],
    params: { temperature: 1, maxNewTokens: 30, seed: i },
  }));
  engine.submit([long, ...short]);
  const done = new Map<string, number[]>();
  for (const s of await engine.step()) done.set(s.id, s.tokens);
  assert.ok(slots() >= 101, `the cache holds the 100-token prompt (${slots()})`);
  const reference = await generateAll(await engineFor(config, weights, { capacity: 4 }), short);
  let smallest = Infinity;
  while (engine.busy()) {
    for (const s of await engine.step()) done.set(s.id, s.tokens);
    if (engine.busy()) smallest = Math.min(smallest, slots());
  }
  assert.ok(
    done.get('long')!.length === 2 && smallest <= 64,
    `the short sequences kept ${smallest} positions per row after the long one finished`,
  );
  assert.equal(slots(), 0, 'released when idle');
  short.forEach((r, i) => assert.deepEqual(done.get(r.id), reference[i]!.tokens, `${r.id} is unchanged by the shrink`));
});

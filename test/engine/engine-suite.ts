// One engine test suite, run against every RolloutEngine implementation (the local engine, and
// HttpEngine driving `ringrl serve` in a child process): same tokens and log-probs as the local
// engine for the same seeds, log-probs against the trainer's recompute, pause / weight update /
// resume with per-token versions, and continuous batching with ideal slot refilling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Weights, loadModelDir } from '../../src/model/checkpoint.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { initWeights } from '../../src/model/presets.ts';
import { LocalEngine } from '../../src/engine/local.ts';
import {
  type GeneratedSequence,
  type GenerationRequest,
  type RolloutEngine,
  type SamplingParams,
  generateAll,
} from '../../src/engine/types.ts';
import { Policy } from '../../src/train/policy.ts';
import { idealRefillSteps } from '../helpers.ts';

/** Every implementation is built with capacity 4 and prefill batch 4 over the suite's model. */
export const CAPACITY = 4;

export interface EngineHarness {
  /** A fresh engine holding `weights` as version 0. */
  engine(weights: Weights): Promise<RolloutEngine>;
  /** Run until at least `tokens` more tokens have been generated. */
  advance(engine: RolloutEngine, tokens: number): Promise<void>;
  /** Run `requests` to completion, all queued before the first step; also the decode steps that took. */
  runQueued(
    engine: RolloutEngine,
    requests: GenerationRequest[],
  ): Promise<{ results: GeneratedSequence[]; decodeSteps: number }>;
  close?(engine: RolloutEngine): Promise<void>;
}

export function localHarness(config: () => ModelConfig): EngineHarness {
  return {
    async engine(weights) {
      const engine = new LocalEngine(config(), { capacity: CAPACITY, prefillBatch: CAPACITY, runtime: { threads: 1 } });
      await engine.updateWeights(weights, 0);
      return engine;
    },
    async advance(engine, tokens) {
      const target = engine.stats().generatedTokens + tokens;
      while (engine.stats().generatedTokens < target && engine.busy()) await engine.step();
    },
    async runQueued(engine, requests) {
      const before = engine.stats().decodeSteps;
      const results = await generateAll(engine, requests);
      return { results, decodeSteps: engine.stats().decodeSteps - before };
    },
  };
}

/** The suite's cases, registered as node:test tests named `${label}: ...`. */
export function engineSuite(label: string, modelDir: () => string, harness: () => EngineHarness): void {
  const model = () => loadModelDir(modelDir());
  const withEngine = async <T>(
    weights: Weights,
    fn: (engine: RolloutEngine, h: EngineHarness) => Promise<T>,
  ): Promise<T> => {
    const h = harness();
    const engine = await h.engine(weights);
    try {
      return await fn(engine, h);
    } finally {
      await h.close?.(engine);
    }
  };

  test(`${label}: same seeds give the local engine's tokens and log-probs (≤ 1e-5); policy log-probs equal the trainer's recompute`, async () => {
    const { config, weights } = model();
    const settings: SamplingParams[] = [
      { temperature: 1, maxNewTokens: 10 },
      { temperature: 0.7, topK: 5, maxNewTokens: 8 },
      { temperature: 1.3, topP: 0.8, maxNewTokens: 12 },
      { temperature: 1, topK: 8, topP: 0.6, maxNewTokens: 6 },
      { temperature: 0, maxNewTokens: 7 },
    ];
    const requests: GenerationRequest[] = settings.map((params, i) => ({
      id: `s${i}`,
      prompt: [10 + i, 20, 30 - i].slice(0, 1 + (i % 3)),
      params: { ...params, seed: 40 + i },
    }));
    // The reference decodes each request alone: a sequence's samples must not depend on its batch.
    const reference: GeneratedSequence[] = [];
    for (const r of requests) {
      const alone = new LocalEngine(config, { capacity: 1, runtime: { threads: 1 } });
      await alone.updateWeights(weights, 0);
      reference.push(...(await generateAll(alone, [r])));
    }
    const results = await withEngine(weights, (engine) => generateAll(engine, requests));
    const policy = new Policy(config, weights, { threads: 1 });
    for (const [i, r] of results.entries()) {
      const ref = reference[i]!;
      assert.deepEqual(r.tokens, ref.tokens, `${r.id}: tokens`);
      assert.equal(r.finishReason, 'length');
      assert.deepEqual(r.versions, Array(r.tokens.length).fill(0));
      r.behaviorLogprobs.forEach((lp, t) =>
        assert.ok(
          Math.abs(lp - ref.behaviorLogprobs[t]!) <= 1e-5,
          `${r.id} token ${t}: behaviour ${lp} vs ${ref.behaviorLogprobs[t]}`,
        ),
      );
      const temperature = requests[i]!.params.temperature || 1;
      const recompute = (await policy.score([[...r.prompt, ...r.tokens]], temperature)).logprobs[0]!.slice(
        r.prompt.length - 1,
      );
      r.policyLogprobs.forEach((lp, t) =>
        assert.ok(Math.abs(lp - recompute[t]!) <= 1e-5, `${r.id} token ${t}: policy ${lp} vs trainer ${recompute[t]}`),
      );
    }
  });

  test(`${label}: pause, weight update, resume: per-token versions switch at the cut; log-probs are the old then the new weights'`, async () => {
    const { config, weights } = model();
    const updated = initWeights(config, 99, 0.2);
    const max = 100;
    const requests: GenerationRequest[] = [0, 1, 2, 3, 4, 5].map((i) => ({
      id: `p${i}`,
      prompt: [3 + i, 4],
      params: { temperature: 1, maxNewTokens: max, seed: i },
    }));
    const done = new Map<string, GeneratedSequence>();
    const cut = new Map<string, number>();
    await withEngine(weights, async (engine, h) => {
      engine.submit(requests);
      await h.advance(engine, 8);
      const partial = await engine.pause();
      for (const p of partial) cut.set(p.id, p.tokens.length);
      assert.ok(
        partial.every((p) => p.finishReason === null),
        'paused sequences come back unfinished',
      );
      assert.ok(
        partial.some((p) => p.tokens.length > 0),
        'some sequence was cut mid-way',
      );
      await engine.updateWeights(updated, 1);
      assert.equal(engine.version, 1);
      engine.submit(partial.map((p) => ({ ...requests.find((r) => r.id === p.id)!, resumeFrom: p })));
      while (engine.busy()) for (const s of await engine.step()) done.set(s.id, s);
    });
    assert.equal(done.size, requests.length, 'every sequence finished once');
    const oldPolicy = new Policy(config, weights, { threads: 1 });
    const newPolicy = new Policy(config, updated, { threads: 1 });
    for (const r of done.values()) {
      const k = cut.get(r.id) ?? r.tokens.length; // not in the pause: finished before it
      assert.equal(r.tokens.length, max);
      assert.deepEqual(r.versions, [...Array(k).fill(0), ...Array(max - k).fill(1)], `versions of ${r.id}`);
      const full = [...r.prompt, ...r.tokens];
      const before = (await oldPolicy.score([full])).logprobs[0]!.slice(r.prompt.length - 1);
      const after = (await newPolicy.score([full])).logprobs[0]!.slice(r.prompt.length - 1);
      r.policyLogprobs.forEach((lp, t) => {
        const expected = t < k ? before[t]! : after[t]!;
        assert.ok(Math.abs(lp - expected) <= 1e-5, `${r.id} token ${t} (v${r.versions[t]}): ${lp} vs ${expected}`);
      });
    }
  });

  test(`${label}: continuous batching: decode steps equal immediate slot refilling`, async () => {
    const { weights } = model();
    const lengths = [40, 3, 5, 2, 38, 4, 6, 3, 2, 35, 5, 4];
    const requests = lengths.map((n, i) => ({
      id: `c${i}`,
      prompt: [1, 2],
      params: { temperature: 1, maxNewTokens: n, seed: i },
    }));
    const { results, decodeSteps } = await withEngine(weights, (engine, h) => h.runQueued(engine, requests));
    assert.deepEqual(
      results.map((r) => r.tokens.length),
      lengths,
    );
    const steps = idealRefillSteps(lengths, CAPACITY);
    assert.equal(decodeSteps, steps, `decode steps ${decodeSteps} vs ideal refilling ${steps}`);
  });
}

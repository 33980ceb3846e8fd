// Evaluation: generate k responses per problem with the local KV-cached engine, verify them and
// summarise accuracy, pass@k, avg@k and response lengths.
//
// Definitions (docs/eval.md): accuracy = greedy (temperature 0) single-sample accuracy;
// avg@k = mean correctness over the k samples of each problem, averaged over problems;
// pass@k = fraction of problems with at least one correct sample among k. With k = 1 and
// temperature 0 all three are the same number and only one generation pass runs.
import { createLocalEngine } from '../engine/local.ts';
import type { GenerationRequest, RolloutEngine } from '../engine/types.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Weights } from '../model/checkpoint.ts';
import type { RuntimeOptions } from '../runtime/index.ts';
import type { TextTokenizer } from '../tokenizer/index.ts';
import { type Example, encodeExamplePrompt } from '../data/example.ts';
import { lengthStats, thinks } from '../data/tasks/index.ts';
import { mean } from '../util/stats.ts';
import type { Verifier } from '../reward/verifiers.ts';

export interface EvalOptions {
  /** Samples per problem for pass@k / avg@k. */
  k: number;
  /** Sampling temperature for the k samples (the accuracy pass is always greedy). */
  temperature: number;
  topP?: number;
  maxNewTokens: number;
  /** Sequences decoded concurrently. */
  capacity?: number;
  seed?: number;
  runtime?: RuntimeOptions;
  /** Generate with this engine (e.g. an HttpEngine on servers holding these weights) instead of a local one. */
  engine?: RolloutEngine;
  /** Called as samples finish, with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface EvalSample {
  source: string;
  sample: number;
  response: string;
  reward: number;
  reason: string;
  tokens: number;
  finishReason: string | null;
}

export interface EvalResult {
  problems: number;
  k: number;
  temperature: number;
  accuracy: number;
  passAtK: number;
  avgAtK: number;
  responseLength: { mean: number; p50: number; p90: number; max: number };
  /** Fraction of samples that hit max_new_tokens without EOS. */
  truncated: number;
  /** Fraction of samples whose `<think>` block is not empty (hybrid-thinking models may answer directly). */
  thinking: number;
  samples: EvalSample[];
  seconds: number;
}

export async function evaluate(
  config: ModelConfig,
  weights: Weights,
  tokenizer: TextTokenizer,
  examples: Example[],
  verify: Verifier,
  options: EvalOptions,
): Promise<EvalResult> {
  const start = performance.now();
  const engine =
    options.engine ??
    (await createLocalEngine(config, weights, {
      capacity: options.capacity ?? 64,
      seed: options.seed ?? 0,
      ...(options.runtime ? { runtime: options.runtime } : {}),
    }));
  const prompts = examples.map((ex) => encodeExamplePrompt(tokenizer, ex));
  const maxNewTokens = (i: number) =>
    Math.max(1, Math.min(options.maxNewTokens, config.maxPositions - prompts[i]!.length));
  const total = examples.length * (options.k + (options.k === 1 && options.temperature === 0 ? 0 : 1));
  let done = 0;

  const run = async (sampling: boolean): Promise<EvalSample[][]> => {
    const requests: GenerationRequest[] = [];
    examples.forEach((_, i) => {
      for (let s = 0; s < (sampling ? options.k : 1); s++) {
        requests.push({
          id: `${i}:${s}`,
          prompt: prompts[i]!,
          params: {
            temperature: sampling ? options.temperature : 0,
            topP: options.topP ?? 1,
            maxNewTokens: maxNewTokens(i),
            stopTokens: [...tokenizer.stopIds],
            seed: (options.seed ?? 0) * 1_000_003 + i * 97 + s,
          },
        });
      }
    });
    // Everything is submitted at once (continuous batching keeps every slot busy through the
    // long tail); progress is reported as sequences finish.
    // A verifier may be asynchronous (a program run in the sandbox): scoring overlaps decoding,
    // and a sample the sandbox failed to judge counts as not correct, with the reason.
    const out: EvalSample[][] = examples.map(() => []);
    const scoring: Promise<void>[] = [];
    engine.submit(requests);
    while (engine.busy()) {
      const finished = await engine.step();
      for (const seq of finished) {
        const [i, s] = seq.id.split(':').map(Number) as [number, number];
        const tokens = tokenizer.stopIds.includes(seq.tokens.at(-1)!) ? seq.tokens.slice(0, -1) : seq.tokens;
        const response = tokenizer.decode(tokens, { skipSpecial: true });
        scoring.push(
          (async () => {
            const verdict = await Promise.resolve(verify(response, examples[i]!.answer)).catch((e: Error) => ({
              reward: 0,
              reason: `unscored: ${e.message}`,
            }));
            out[i]!.push({
              source: examples[i]!.source,
              sample: s,
              response,
              reward: verdict.reward,
              reason: verdict.reason,
              tokens: seq.tokens.length,
              finishReason: seq.finishReason,
            });
          })(),
        );
      }
      if (finished.length) options.onProgress?.((done += finished.length), total);
    }
    await Promise.all(scoring);
    for (const group of out) group.sort((a, b) => a.sample - b.sample);
    return out;
  };

  const greedy = await run(false);
  const sampled = options.k === 1 && options.temperature === 0 ? greedy : await run(true);
  const samples = sampled.flat();
  return {
    problems: examples.length,
    k: options.k,
    temperature: options.temperature,
    accuracy: mean(greedy.map((g) => (g[0]!.reward > 0 ? 1 : 0))),
    passAtK: mean(sampled.map((ss) => (ss.some((s) => s.reward > 0) ? 1 : 0))),
    avgAtK: mean(sampled.map((ss) => mean(ss.map((s) => (s.reward > 0 ? 1 : 0))))),
    responseLength: lengthStats(samples.map((s) => s.tokens)),
    truncated: mean(samples.map((s) => (s.finishReason === 'length' ? 1 : 0))),
    thinking: mean(samples.map((s) => (thinks(s.response) ? 1 : 0))),
    samples: greedy === sampled ? samples : [...greedy.flat(), ...samples],
    seconds: (performance.now() - start) / 1000,
  };
}

/** The summary as the `eval/*` metrics the SFT and RL loops log (names in src/report/metrics.ts). */
export function evalMetrics(r: EvalResult): Record<string, number> {
  return {
    'eval/accuracy': r.accuracy,
    'eval/response_length/mean': r.responseLength.mean,
    'eval/response_length/p90': r.responseLength.p90,
    'eval/response_length/max': r.responseLength.max,
    'eval/truncated_frac': r.truncated,
    'eval/thinking_frac': r.thinking,
    'time/eval_s': r.seconds,
  };
}

/** The summary as a fixed-width table (what `ringrl eval` prints). */
export function formatEvalTable(r: EvalResult, title: string): string {
  const rows: [string, string][] = [
    ['problems', String(r.problems)],
    ['accuracy (greedy)', `${(100 * r.accuracy).toFixed(1)}%`],
    [`pass@${r.k} (T=${r.temperature})`, `${(100 * r.passAtK).toFixed(1)}%`],
    [`avg@${r.k} (T=${r.temperature})`, `${(100 * r.avgAtK).toFixed(1)}%`],
    ['response tokens mean', r.responseLength.mean.toFixed(1)],
    ['response tokens p50/p90/max', `${r.responseLength.p50} / ${r.responseLength.p90} / ${r.responseLength.max}`],
    ['truncated (no EOS)', `${(100 * r.truncated).toFixed(1)}%`],
    ['thinking (non-empty <think>)', `${(100 * r.thinking).toFixed(1)}%`],
    ['seconds', r.seconds.toFixed(1)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return [title, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

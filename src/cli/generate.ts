import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { readTokenLists } from './logprobs.ts';
import { configureRuntime } from '../runtime/index.ts';
import { loadModelDir } from '../model/checkpoint.ts';
import { LocalEngine, validateParams } from '../engine/local.ts';
import { type Precision, precisions } from '../engine/precision.ts';
import { type GenerationRequest, type RolloutEngine, type SamplingParams, generateAll } from '../engine/types.ts';
import { HttpEngine } from '../engine/http.ts';
import { Policy } from '../train/policy.ts';
import { RingrlError } from '../errors.ts';

export const generateCommand: Command = {
  name: 'generate',
  help: `usage: ringrl generate --model DIR --prompts FILE.json --max-new-tokens N [--temperature T]
                       [--top-k K] [--top-p P] [--n SAMPLES] [--seed S] [--stop ID,...]
                       [--precision ${precisions.join('|')}] [--capacity C] [--threads N]
                       [--report-mismatch] [--servers URL,URL]

Reads {"prompts": [[token ids], ...]} and prints one JSON line per sample:
  {"prompt_index", "sample_index", "tokens", "behavior_logprobs", "policy_logprobs", "finish_reason"}
tokens are the generated tokens (without the prompt). behavior_logprobs are under the distribution
actually sampled from (temperature, top-k/top-p, renormalised; 0 for greedy); policy_logprobs under
the full softmax at the temperature (temperature 1 for greedy).

--report-mismatch rescoring every sample with the fp32 trainer adds "trainer_logprobs" to each line
and prints the mismatch (mean and max |Δlogp|, KL(π_infer‖π_train) k3 estimate) to stderr: non-zero
with --precision fp8/int8/int4/bf16, ~1e-6 with fp32.

--servers URL,URL generates on SGLang-protocol servers (ringrl serve or SGLang) holding the same
model instead of in this process (RINGRL_API_KEY is sent as the bearer key).

examples:
  ringrl generate --model runs/tiny --prompts p.json --max-new-tokens 32 --temperature 1 --n 4
  ringrl generate --model runs/tiny --prompts p.json --max-new-tokens 32 --precision fp8 --report-mismatch`,
  async run(argv) {
    const { values } = parseFlags('generate', argv, {
      model: { type: 'string' },
      prompts: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      n: { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string' },
      precision: { type: 'string' },
      capacity: { type: 'string' },
      threads: { type: 'string' },
      'report-mismatch': { type: 'boolean' },
      servers: { type: 'string' },
    });
    const file = requireFlag('generate', values, 'prompts');
    const maxNewTokens = numberFlag(
      'generate',
      'max-new-tokens',
      requireFlag('generate', values, 'max-new-tokens'),
      0,
      { integer: true, min: 1 },
    );
    const n = numberFlag('generate', 'n', values.n, 1, { integer: true, min: 1 });
    const seed = numberFlag('generate', 'seed', values.seed, 0, { integer: true, min: 0 });
    const capacity = numberFlag('generate', 'capacity', values.capacity, 64, { integer: true, min: 1 });
    const precision = (values.precision ?? 'fp32') as Precision;
    if (!precisions.includes(precision))
      throw new UsageError(`ringrl generate: --precision must be one of ${precisions.join(', ')}, got '${precision}'`);
    if (values.threads !== undefined)
      configureRuntime({ threads: numberFlag('generate', 'threads', values.threads, 0, { integer: true, min: 1 }) });
    // Sampling values are checked by the engine's validator so its messages name the prompt.
    const params: SamplingParams = {
      temperature: values.temperature === undefined ? 1 : Number(values.temperature),
      topK: values['top-k'] === undefined ? undefined : Number(values['top-k']),
      topP: values['top-p'] === undefined ? undefined : Number(values['top-p']),
      maxNewTokens,
      stopTokens: values.stop?.split(',').map(Number),
    };
    const { config, weights } = loadModelDir(requireFlag('generate', values, 'model'));
    const prompts = readTokenLists(file, 'prompts', 'prompt');
    const requests: GenerationRequest[] = [];
    prompts.forEach((prompt, i) => {
      const where = `${file}: prompt ${i}`;
      validateParams(params, where, config.vocabSize);
      const bad = prompt.findIndex((t) => t < 0 || t >= config.vocabSize);
      if (bad >= 0)
        throw new RingrlError(
          `${where}: token ${bad} = ${prompt[bad]} is outside the model's vocabulary [0, ${config.vocabSize})`,
        );
      if (prompt.length >= config.maxPositions)
        throw new RingrlError(
          `${where}: ${prompt.length} tokens do not fit the model's context of ${config.maxPositions}`,
        );
      for (let s = 0; s < n; s++)
        requests.push({ id: `${i}:${s}`, prompt, params: { ...params, seed: seed * 1_000_003 + i * 1009 + s } });
    });
    let engine: RolloutEngine & { close?: () => void };
    if (values.servers) engine = await connectServers(values.servers);
    else {
      engine = new LocalEngine(config, { capacity, precision });
      await engine.updateWeights(weights, 0);
    }
    const results = await generateAll(engine, requests);
    engine.close?.();
    let trainer: number[][] | undefined;
    if (values['report-mismatch']) {
      const policy = new Policy(config, weights);
      const temperature = params.temperature === 0 ? 1 : params.temperature;
      const scored = await policy.score(
        results.map((r) => [...r.prompt, ...r.tokens]),
        temperature,
      );
      trainer = scored.logprobs.map((row, i) => row.slice(results[i]!.prompt.length - 1));
    }
    results.forEach((r, i) => {
      const [promptIndex, sampleIndex] = r.id.split(':').map(Number);
      console.log(
        JSON.stringify({
          prompt_index: promptIndex,
          sample_index: sampleIndex,
          tokens: r.tokens,
          behavior_logprobs: r.behaviorLogprobs,
          policy_logprobs: r.policyLogprobs,
          finish_reason: r.finishReason,
          ...(trainer ? { trainer_logprobs: trainer[i] } : {}),
        }),
      );
    });
    if (trainer) {
      const m = mismatch(
        results.map((r) => r.policyLogprobs),
        trainer,
      );
      console.error(
        `mismatch vs fp32 trainer (${precision} rollout, ${m.tokens} tokens): mean |Δlogp| ${m.meanAbs.toExponential(3)}, max |Δlogp| ${m.maxAbs.toExponential(3)}, KL(π_infer‖π_train) k3 ${m.kl.toExponential(3)}`,
      );
    }
    const stats = engine.stats();
    console.error(
      `generated ${stats.generatedTokens} tokens in ${stats.busySeconds.toFixed(2)} s (${(stats.generatedTokens / stats.busySeconds).toFixed(0)} tokens/s, ${stats.decodeSteps} decode steps)`,
    );
  },
};

/** Train/inference mismatch over sampled tokens; KL(π_infer‖π_train) by the k3 estimator. */
export function mismatch(
  infer: number[][],
  train: number[][],
): { meanAbs: number; maxAbs: number; kl: number; tokens: number } {
  let sum = 0,
    max = 0,
    kl = 0,
    count = 0;
  infer.forEach((row, i) =>
    row.forEach((li, t) => {
      const d = train[i]![t]! - li; // log(π_train / π_infer)
      sum += Math.abs(d);
      max = Math.max(max, Math.abs(d));
      kl += Math.exp(d) - 1 - d;
      count++;
    }),
  );
  return { meanAbs: count ? sum / count : 0, maxAbs: max, kl: count ? kl / count : 0, tokens: count };
}

/** An HttpEngine on --servers URL,URL (bearer key from RINGRL_API_KEY), once every server answers /health. */
export async function connectServers(list: string): Promise<HttpEngine> {
  const key = process.env.RINGRL_API_KEY;
  const engine = new HttpEngine({
    servers: list.split(',').filter(Boolean),
    origin: '--servers',
    ...(key ? { apiKey: key } : {}),
  });
  await engine.waitReady(30_000);
  return engine;
}

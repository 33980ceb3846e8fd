// One policy-gradient update of a Policy: the graph policy loss over micro-batches, gradients
// summed, one AdamW step. The aggregation weights and metric scale are computed over the whole
// step first, so the result does not depend on the micro-batch size.
import { RingrlError } from '../errors.ts';
import { GradAccumulator, NonFiniteUpdate, type AdamW } from '../train/optimizer.ts';
import { type PackedBatch, type Policy, packSequences } from '../train/policy.ts';
import { aggregationWeights } from './aggregation.ts';
import { countedMask } from './corrections.ts';
import { type PolicyLossConfig, type PolicyLossConfigInput, parsePolicyLossConfig } from './config.ts';
import { policyLossSpec } from './loss/graph.ts';
import { combineMetrics, finishPolicyMetrics } from './loss/metrics.ts';

export interface PolicyStepSample {
  prompt: number[];
  response: number[];
  /** Per response token: log pi_infer from the rollout engine. */
  rolloutLogprobs: number[];
  /** Per response token. */
  advantages: number[];
  /** Per response token, 1 = train on it (default: all 1). */
  responseMask?: number[];
  /** log pi_train(theta_old) per response token; recomputed here when missing (unless bypass). */
  oldLogprobs?: number[];
  /** log pi_ref per response token (kl.coef > 0). */
  refLogprobs?: number[];
  /** MoE: the rollout engine's experts per context position (GeneratedSequence.routes); replayed when routing_replay is 'rollout'. */
  routes?: number[];
}

export interface PolicyStepOptions {
  /** Sampling temperature the log-probs are computed at (default 1). */
  temperature?: number;
  /** Sequences per forward/backward (default: all at once). */
  microBatchSize?: number;
  /** Learning-rate override for this step (schedules). */
  lr?: number;
  /** Replay each sample's recorded routes in the trainer's MoE layers (routing_replay: rollout). */
  replayRoutes?: boolean;
}

/** log-probs of each response token under `policy` (the recompute of log pi_train(theta_old)). */
export async function responseLogprobs(
  policy: Policy,
  samples: readonly Pick<PolicyStepSample, 'prompt' | 'response' | 'routes'>[],
  options: PolicyStepOptions = {},
): Promise<number[][]> {
  const out: number[][] = [];
  for (const chunk of chunks(samples, options.microBatchSize)) {
    const { logprobs } = await policy.score(
      chunk.map((s) => [...s.prompt, ...s.response]),
      options.temperature ?? 1,
      replayed(chunk, options),
    );
    chunk.forEach((s, i) => out.push(logprobs[i]!.slice(s.prompt.length - 1)));
  }
  return out;
}

export async function policyGradientStep(
  policy: Policy,
  optimizer: AdamW,
  samples: readonly PolicyStepSample[],
  configInput: PolicyLossConfigInput | PolicyLossConfig = {},
  options: PolicyStepOptions = {},
): Promise<{ loss: number; metrics: Record<string, number> }> {
  const config = parsePolicyLossConfig(configInput);
  if (samples.length === 0) throw new RingrlError('policy step: no samples');
  samples.forEach((s, i) => checkSample(s, i, config));
  options = { ...options, replayRoutes: options.replayRoutes ?? config.routing_replay === 'rollout' };
  const needOld = !config.bypass && samples.some((s) => !s.oldLogprobs);
  const recomputed = needOld ? await responseLogprobs(policy, samples, options) : [];
  const rows = samples.map((s, i) => ({
    ...s,
    oldLogprobs: s.oldLogprobs ?? recomputed[i],
    responseMask: s.responseMask ?? s.response.map(() => 1),
  }));

  const masks = rows.map((s) => s.responseMask);
  const logK = rows.map((s) =>
    config.bypass ? s.response.map(() => 0) : s.oldLogprobs!.map((old, t) => old - s.rolloutLogprobs[t]!),
  );
  const weights = aggregationWeights(countedMask(masks, logK, config), config);
  const tokens = masks.reduce((a, row) => a + row.filter((m) => m > 0).length, 0);
  const spec = policyLossSpec(config);
  const accumulator = new GradAccumulator();
  const parts: Record<string, number>[] = [];
  let loss = 0;
  let offset = 0;
  for (const chunk of chunks(rows, options.microBatchSize)) {
    const batch = packSequences(
      chunk.map((s) => [...s.prompt, ...s.response]),
      policy.config.vocabSize,
    );
    const feeds = tokenFeeds(batch, chunk, weights.slice(offset, offset + chunk.length), spec.tokenInputs);
    offset += chunk.length;
    const out = await policy.lossAndGrads(
      spec,
      batch,
      feeds,
      { metric_scale: tokens > 0 ? 1 / tokens : 0 },
      options.temperature ?? 1,
      replayed(chunk, options),
    );
    loss += out.loss;
    parts.push(out.metrics);
    accumulator.add(out.grads);
  }
  if (!Number.isFinite(loss))
    throw new NonFiniteUpdate(`policy step: loss is ${loss}; refusing to update the weights (last good weights kept)`);
  const { gradNorm } = await optimizer.update(policy.weights, accumulator.sums, options.lr);
  policy.recycle(accumulator.sums);
  const tail: Record<string, number> = config.bypass
    ? {}
    : {
        'mismatch/logp_diff_p99': quantile(
          logK.flatMap((row, i) => row.filter((_, t) => masks[i]![t]! > 0).map(Math.abs)),
          0.99,
        ),
      };
  return { loss, metrics: { ...finishPolicyMetrics(combineMetrics(parts)), ...tail, 'grad/norm': gradNorm } };
}

/** The samples' recorded routes when routing replay is on (every sample must carry them). */
function replayed(
  samples: readonly Pick<PolicyStepSample, 'routes'>[],
  options: PolicyStepOptions,
): number[][] | undefined {
  if (!options.replayRoutes) return undefined;
  const missing = samples.findIndex((s) => !s.routes);
  if (missing >= 0)
    throw new RingrlError(
      `policy step: routing_replay is 'rollout' but sample ${missing} has no recorded routes (an MoE model's engine records them; a dense model has none)`,
    );
  return samples.map((s) => s.routes!);
}

/** The q-quantile of `values` (nearest rank); 0 for none. */
function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

type Row = PolicyStepSample & { oldLogprobs?: number[]; responseMask: number[] };

/** Per-response-token values placed at the [B, T] positions that score them (token j of a
 * response after a prompt of P tokens is scored at position P - 1 + j). */
function tokenFeeds(
  batch: PackedBatch,
  rows: readonly Row[],
  weights: readonly number[][],
  names: readonly string[],
): Record<string, Float32Array> {
  const sources: Record<string, (row: Row, i: number) => readonly number[]> = {
    rollout_logprobs: (r) => r.rolloutLogprobs,
    old_logprobs: (r) => r.oldLogprobs!,
    ref_logprobs: (r) => r.refLogprobs!,
    advantages: (r) => r.advantages,
    response_mask: (r) => r.responseMask,
    loss_weight: (_, i) => weights[i]!,
  };
  const feeds: Record<string, Float32Array> = {};
  for (const name of names) {
    const data = new Float32Array(batch.B * batch.T);
    rows.forEach((row, b) => {
      const values = sources[name]!(row, b);
      const start = b * batch.T + row.prompt.length - 1;
      for (let j = 0; j < row.response.length; j++) data[start + j] = values[j]!;
    });
    feeds[name] = data;
  }
  return feeds;
}

function checkSample(s: PolicyStepSample, i: number, config: PolicyLossConfig): void {
  if (s.prompt.length < 1)
    throw new RingrlError(`policy step: sample ${i}: prompt is empty; expected at least one token`);
  const perToken: [keyof PolicyStepSample, boolean][] = [
    ['rolloutLogprobs', true],
    ['advantages', true],
    ['responseMask', false],
    ['oldLogprobs', false],
    ['refLogprobs', config.kl.coef > 0],
  ];
  for (const [name, required] of perToken) {
    const values = s[name] as number[] | undefined;
    if (values === undefined) {
      if (required)
        throw new RingrlError(
          `policy step: sample ${i}: ${name} is required${name === 'refLogprobs' ? ' when kl.coef > 0' : ''}`,
        );
    } else if (values.length !== s.response.length) {
      throw new RingrlError(
        `policy step: sample ${i}: ${name} has ${values.length} values for ${s.response.length} response tokens`,
      );
    }
  }
}

function chunks<T>(items: readonly T[], size = items.length): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)));
  return out;
}

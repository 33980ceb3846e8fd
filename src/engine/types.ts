// The rollout-engine interface the C3PO++ scheduler drives, implemented by the local KV-cached
// engine (local.ts) and the simulated engine (simulated.ts). Sequences are addressed by caller-chosen ids; every generated token carries
// the log-probabilities IcePop needs and the weight version that produced it.

export interface SamplingParams {
  /** 0 = greedy (behaviour log-prob 0); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most probable tokens (0 or undefined = off). */
  topK?: number;
  /** Keep the smallest set of most probable tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** Generated tokens at most (counting tokens generated before a pause). */
  maxNewTokens: number;
  /** Generation ends after emitting any of these (the stop token is kept in `tokens`). */
  stopTokens?: number[];
  /** Per-sequence seed: the same seed, prompt and weights give the same tokens. */
  seed?: number;
}

export interface GenerationRequest {
  id: string;
  prompt: number[];
  params: SamplingParams;
  /** Tokens generated before a pause: resumed by re-prefilling prompt + these under the current weights. */
  resumeFrom?: GeneratedSequence;
}

export type FinishReason = 'stop' | 'length';

export interface GeneratedSequence {
  id: string;
  prompt: number[];
  /** Generated tokens (without the prompt). */
  tokens: number[];
  /** log-prob under the distribution actually sampled from (temperature, top-k/top-p, renormalised). */
  behaviorLogprobs: number[];
  /** log-prob under the full softmax at the sampling temperature. */
  policyLogprobs: number[];
  /** Weight version that produced each token. */
  versions: number[];
  /**
   * MoE models: the experts the engine routed each context position through (prompt, then every
   * generated token fed back), flattened [position][layer][top-k]; what routing replay (R3) feeds
   * the trainer. A re-prefilled resume records its positions again under the new weights.
   */
  routes?: number[];
  /** null while unfinished (a paused partial rollout). */
  finishReason: FinishReason | null;
}

export interface EngineStats {
  /** Sequences decoding now. */
  active: number;
  /** Submitted sequences waiting for a slot. */
  waiting: number;
  /** Concurrent sequences the engine decodes at most. */
  capacity: number;
  /** Decode steps run since creation (one step advances every active sequence by one token). */
  decodeSteps: number;
  /** Tokens generated since creation. */
  generatedTokens: number;
  /** Context tokens prefilled since creation (prompts, and the re-prefill of resumed sequences). */
  prefillTokens: number;
  /** Wall-clock seconds spent in prefill and decode since creation. */
  busySeconds: number;
  /** Of busySeconds, those spent prefilling (engines that time it). */
  prefillSeconds?: number;
  /** Positions the prefills computed, padding included (engines that pad a prefill batch to its longest context). */
  prefillPaddedTokens?: number;
}

export interface RolloutEngine {
  /** The weight version new tokens are tagged with. */
  readonly version: number;
  /** Queue sequences; they start as slots free up (continuous batching). */
  submit(requests: GenerationRequest[]): void;
  /** Advance: fill free slots, run one decode step; return the sequences that finished in it. */
  step(): Promise<GeneratedSequence[]>;
  /** True while any sequence is active or waiting. */
  busy(): boolean;
  /** Stop every unfinished sequence (active and waiting) and hand them back, unfinished. */
  pause(): Promise<GeneratedSequence[]>;
  /** Make a step() that is waiting for sequences to finish return now (engines whose step waits). */
  interrupt?(): void;
  /**
   * Seconds each engine behind this one (a server, a worker) has spent decoding since it started,
   * as the engine itself counts them; engines that are one engine report stats().busySeconds.
   */
  busySecondsPerEngine?(): Promise<number[]>;
  /** Load new weights (name → float32 values, HF names) as version `version`. */
  updateWeights(weights: Map<string, Float32Array>, version: number): Promise<void>;
  stats(): EngineStats;
}

/** Run every request to completion (convenience for eval and tests). */
export async function generateAll(engine: RolloutEngine, requests: GenerationRequest[]): Promise<GeneratedSequence[]> {
  engine.submit(requests);
  const done = new Map<string, GeneratedSequence>();
  while (engine.busy()) for (const seq of await engine.step()) done.set(seq.id, seq);
  return requests.map((r) => done.get(r.id)!);
}

/** A sequence that has generated nothing yet. */
export function emptySequence(r: GenerationRequest): GeneratedSequence {
  return {
    id: r.id,
    prompt: r.prompt,
    tokens: [],
    behaviorLogprobs: [],
    policyLogprobs: [],
    versions: [],
    finishReason: null,
  };
}

/** A paused sequence's copy to resume into (its arrays are not shared; unfinished again). */
export function cloneSequence(s: GeneratedSequence): GeneratedSequence {
  return {
    ...s,
    tokens: [...s.tokens],
    behaviorLogprobs: [...s.behaviorLogprobs],
    policyLogprobs: [...s.policyLogprobs],
    versions: [...s.versions],
    ...(s.routes ? { routes: [...s.routes] } : {}),
    finishReason: null,
  };
}

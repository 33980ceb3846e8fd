// SGLang's native endpoints, with SGLang's field names and conventions, as slime
// (slime/rollout/sglang_rollout.py) and AReaL (areal/engine/sglang_remote.py) call them:
// /generate, /update_weights_from_disk, /pause_generation, /continue_generation, /abort_request,
// /flush_cache, /health, /health_generate, /get_model_info, /server_info, /get_weight_version.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ModelConfig } from '../model/config.ts';
import type { SamplingParams } from '../engine/types.ts';
import type { LoadedSnapshot } from '../engine/snapshot.ts';
import { RingrlError } from '../errors.ts';
import {
  type ServeContext,
  BadRequest,
  neutral,
  checkContext,
  decode,
  parseBody,
  promptIds,
  stopMatcher,
  stopTokens,
  trimAtStop,
} from './context.ts';
import type { ServedSequence } from './loop.ts';
import { openSse } from './sse.ts';

const int = z.number().int();

const samplingSchema = z.strictObject({
  max_new_tokens: int.min(0).nullish(),
  temperature: z.number().min(0).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: int.refine((k) => k === -1 || k >= 1, { message: 'expected -1 (no top-k) or an integer >= 1' }).nullish(),
  min_p: neutral(0),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  stop_token_ids: z.array(int.min(0)).nullish(),
  ignore_eos: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  spaces_between_special_tokens: z.boolean().nullish(),
  no_stop_trim: z.boolean().nullish(),
  seed: int.min(0).nullish(),
  sampling_seed: int.min(0).nullish(),
  n: neutral(1),
  frequency_penalty: neutral(0),
  presence_penalty: neutral(0),
  repetition_penalty: neutral(1),
  min_new_tokens: neutral(0),
  json_schema: neutral(null),
  regex: neutral(null),
  ebnf: neutral(null),
  logit_bias: neutral(null),
  custom_params: z.record(z.string(), z.unknown()).nullish(),
});
type SglangSampling = z.infer<typeof samplingSchema>;

const generateSchema = z.strictObject({
  text: z.union([z.string(), z.array(z.string())]).nullish(),
  input_ids: z.union([z.array(int), z.array(z.array(int))]).nullish(),
  sampling_params: z.union([samplingSchema, z.array(samplingSchema)]).nullish(),
  return_logprob: z.union([z.boolean(), z.array(z.boolean())]).nullish(),
  logprob_start_len: z.union([int, z.array(int)]).nullish(),
  top_logprobs_num: neutral(0),
  return_text_in_logprobs: z.boolean().nullish(),
  rid: z.union([z.string(), z.array(z.string())]).nullish(),
  stream: z.boolean().nullish(),
  image_data: neutral(null),
  return_routed_experts: neutral(false),
  return_hidden_states: neutral(false),
  lora_path: neutral(null),
});

const updateSchema = z.strictObject({
  model_path: z.string().min(1),
  load_format: z.string().nullish(),
  weight_version: z.union([z.string(), z.number()]).nullish(),
  abort_all_requests: z.boolean().nullish(),
  abort_all_request: z.boolean().nullish(), // AReaL's spelling
  flush_cache: z.boolean().nullish(),
  is_async: z.boolean().nullish(),
  torch_empty_cache: z.boolean().nullish(),
  keep_pause: z.boolean().nullish(),
  recapture_cuda_graph: z.boolean().nullish(),
  token_step: int.nullish(),
});

const pauseSchema = z.strictObject({ mode: z.enum(['abort', 'retract', 'in_place']).nullish() });
const abortSchema = z.strictObject({ rid: z.string().nullish(), abort_all: z.boolean().nullish() });

/** SGLang's sampling params → the engine's, with SGLang's defaults (max_new_tokens 128, top_k -1). */
function toSampling(
  ctx: ServeContext,
  sp: SglangSampling | undefined,
): { params: SamplingParams; stop: string[]; skipSpecial: boolean; noStopTrim: boolean } {
  const s: SglangSampling = sp ?? {};
  const seed = s.sampling_seed ?? s.seed ?? undefined;
  return {
    params: {
      temperature: s.temperature ?? 1,
      topP: s.top_p ?? 1,
      topK: s.top_k === -1 || s.top_k == null ? 0 : s.top_k,
      maxNewTokens: s.max_new_tokens ?? 128,
      stopTokens: stopTokens(ctx, s.stop_token_ids ?? undefined, s.ignore_eos ?? false),
      ...(seed !== undefined ? { seed } : {}),
    },
    stop: s.stop == null ? [] : typeof s.stop === 'string' ? [s.stop] : s.stop,
    skipSpecial: s.skip_special_tokens ?? true,
    noStopTrim: s.no_stop_trim ?? false,
  };
}

function finishReason(served: ServedSequence): Record<string, unknown> {
  if (served.finish === 'stop') return { type: 'stop', matched: served.matched ?? null };
  if (served.finish === 'length') return { type: 'length', length: served.seq.tokens.length };
  return { type: 'abort', message: served.seq.tokens.length ? 'Abort in running batch' : 'Abort before prefill' };
}

interface OutputOptions {
  rid: string;
  returnLogprob: boolean;
  textInLogprobs: boolean;
  skipSpecial: boolean;
  noStopTrim: boolean;
  started: number;
}

/** One /generate result in SGLang's shape (plus ringrl's behavior_logprobs and per-token versions). */
function output(
  ctx: ServeContext,
  served: ServedSequence | null,
  seq: ServedSequence['seq'],
  o: OutputOptions,
): Record<string, unknown> {
  let text = decode(ctx, seq.tokens, o.skipSpecial);
  if (served && !o.noStopTrim) text = trimAtStop(text, served.matched);
  const meta: Record<string, unknown> = {
    id: o.rid,
    finish_reason: served ? finishReason(served) : null,
    prompt_tokens: seq.prompt.length,
    completion_tokens: seq.tokens.length,
    cached_tokens: 0,
    e2e_latency: (performance.now() - o.started) / 1000,
    weight_version: served?.versions.at(-1) ?? ctx.loop.weightVersion,
  };
  if (o.returnLogprob) {
    // SGLang's log-prob: log softmax(logits / temperature) over the whole vocabulary (its sampler
    // truncates top-k/top-p inside the sampling kernel only) = ringrl's policy log-prob.
    meta.output_token_logprobs = seq.tokens.map((t, i) => [
      seq.policyLogprobs[i],
      t,
      o.textInLogprobs ? decode(ctx, [t], false) : null,
    ]);
    meta.behavior_logprobs = [...seq.behaviorLogprobs];
    if (served) meta.output_token_weight_versions = served.versions;
  }
  return { text, output_ids: [...seq.tokens], meta_info: meta };
}

/** An index-aligned per-prompt value from a scalar-or-list field; names the field on a length mismatch. */
function perPrompt<T>(value: T | T[] | null | undefined, n: number, field: string): (T | undefined)[] {
  if (!Array.isArray(value)) return Array(n).fill(value ?? undefined);
  if (value.length !== n)
    throw new BadRequest(`body.${field}: a list of ${value.length} for ${n} prompts; expected one per prompt`);
  return value;
}

export function sglangRoutes(app: FastifyInstance, ctx: ServeContext): void {
  app.post('/generate', async (request, reply) => {
    const body = parseBody(generateSchema, request.body);
    const started = performance.now();
    if ((body.input_ids == null) === (body.text == null))
      throw new BadRequest('body: give input_ids or text (exactly one)');
    const batch = body.input_ids != null ? Array.isArray(body.input_ids[0]) : Array.isArray(body.text);
    const field = body.input_ids != null ? 'input_ids' : 'text';
    const raw = (
      body.input_ids != null ? (batch ? body.input_ids : [body.input_ids]) : batch ? body.text : [body.text]
    ) as (string | number[])[];
    if (!raw.length) throw new BadRequest(`body.${field}: an empty batch`);
    const n = raw.length;
    const samplings = perPrompt(body.sampling_params, n, 'sampling_params').map((sp) => toSampling(ctx, sp));
    const logprob = perPrompt(body.return_logprob, n, 'return_logprob');
    const rids = perPrompt(body.rid, n, 'rid').map((r) => r ?? ctx.nextId('gen'));
    if (new Set(rids).size !== n) throw new BadRequest('body.rid: request ids must be unique');
    const prompts = raw.map((p, i) => promptIds(ctx, p, batch ? `body.${field}[${i}]` : `body.${field}`));
    prompts.forEach((p, i) => checkContext(ctx, p, batch ? `body.${field}[${i}]` : `body.${field}`));
    const options = (i: number): OutputOptions => ({
      rid: rids[i]!,
      returnLogprob: logprob[i] ?? false,
      textInLogprobs: body.return_text_in_logprobs ?? false,
      skipSpecial: samplings[i]!.skipSpecial,
      noStopTrim: samplings[i]!.noStopTrim,
      started,
    });
    if (body.stream && batch) throw new BadRequest('body.stream: streaming takes one prompt, not a batch');

    // max_new_tokens 0 (slime's guard for a finished partial) needs no engine.
    const run = (i: number, onProgress?: (seq: ServedSequence['seq']) => void): Promise<ServedSequence> => {
      const { params, stop, skipSpecial } = samplings[i]!;
      const prompt = prompts[i]!;
      if (params.maxNewTokens === 0)
        return Promise.resolve({
          seq: {
            id: rids[i]!,
            prompt,
            tokens: [],
            behaviorLogprobs: [],
            policyLogprobs: [],
            versions: [],
            finishReason: 'length',
          },
          finish: 'length',
          versions: [],
        });
      return ctx.loop.generate({
        id: rids[i]!,
        prompt,
        params,
        stopText: stopMatcher(ctx, stop, skipSpecial),
        ...(onProgress ? { onProgress } : {}),
      });
    };
    const record = (s: ServedSequence) =>
      ctx.metrics.finished(s.seq.prompt.length, s.seq.tokens.length, (performance.now() - started) / 1000);

    if (body.stream) {
      const sse = openSse(reply, () => void ctx.loop.abort(rids[0]!));
      // Cumulative chunks (SGLang's default) resend everything so far; incremental ones only what is new.
      let sent = 0;
      const chunk = (result: ServedSequence | null, seq: ServedSequence['seq']) => {
        if (!ctx.incrementalStreaming) return output(ctx, result, seq, options(0));
        const from = sent;
        sent = seq.tokens.length;
        const part = {
          ...seq,
          tokens: seq.tokens.slice(from),
          policyLogprobs: seq.policyLogprobs.slice(from),
          behaviorLogprobs: seq.behaviorLogprobs.slice(from),
        };
        const out = output(ctx, result && { ...result, versions: result.versions.slice(from) }, part, options(0));
        (out.meta_info as Record<string, unknown>).completion_tokens = seq.tokens.length;
        return out;
      };
      const done = run(0, (seq) => sse.send(chunk(null, seq)));
      const served = await done.catch((e: Error) => (sse.send({ error: e.message }), null));
      if (served) {
        record(served);
        sse.send(chunk(served, served.seq));
      }
      sse.end();
      return reply;
    }
    // Every prompt must be valid before any starts: submit all, then abort the rest if one throws.
    const started_: Promise<ServedSequence>[] = [];
    try {
      for (let i = 0; i < n; i++) started_.push(run(i));
    } catch (error) {
      for (let i = 0; i < started_.length; i++) void ctx.loop.abort(rids[i]!);
      await Promise.allSettled(started_);
      throw error;
    }
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) for (const rid of rids) if (ctx.loop.has(rid)) void ctx.loop.abort(rid);
    });
    const results = await Promise.all(started_);
    results.forEach(record);
    const outputs = results.map((s, i) => output(ctx, s, s.seq, options(i)));
    return batch ? outputs : outputs[0];
  });

  // The snapshot is read and verified while the loop keeps generating under the old weights; the
  // switch happens between two steps, so every token is from one version or the next, never a mix.
  // Loads run one at a time (the loader has one spare buffer).
  let loads: Promise<unknown> = Promise.resolve();
  app.post('/update_weights_from_disk', async (request, reply) => {
    const body = parseBody(updateSchema, request.body);
    const update = loads.then(async () => {
      let loaded: LoadedSnapshot;
      try {
        loaded = await ctx.weights.load(body.model_path, ctx.apiKey ? { apiKey: ctx.apiKey } : {});
        sameArchitecture(ctx.config, loaded.config, body.model_path);
      } catch (error) {
        if (!(error instanceof RingrlError)) throw error;
        return { error: `model_path: ${error.message}` };
      }
      const name = body.weight_version != null ? String(body.weight_version) : ctx.loop.weightVersion;
      const paused = await ctx.loop.updateWeights(
        loaded.weights,
        name,
        body.abort_all_requests ?? body.abort_all_request ?? false,
      );
      ctx.weights.commit(loaded);
      ctx.modelDir = body.model_path;
      return { name, paused };
    });
    loads = update.catch(() => {});
    const result = await update;
    if ('error' in result) {
      const message = result.error;
      return reply.code(400).send({ error: message, success: false, message, num_paused_requests: 0 });
    }
    return {
      success: true,
      message: `Succeeded to update model weights (weight_version ${result.name}).`,
      num_paused_requests: result.paused,
    };
  });

  app.post('/pause_generation', async (request) => {
    const { mode } = parseBody(pauseSchema, request.body);
    const count = await ctx.loop.pause(mode === 'abort' || mode == null ? 'abort' : 'in_place');
    return {
      success: true,
      message: `paused (${mode ?? 'abort'}); ${count} requests ${mode === 'abort' || mode == null ? 'aborted' : 'held'}`,
    };
  });

  app.post('/continue_generation', async (request) => {
    parseBody(z.strictObject({}), request.body);
    ctx.loop.resume();
    return { success: true, message: 'generation continues' };
  });

  app.post('/abort_request', async (request) => {
    const body = parseBody(abortSchema, request.body);
    if (!body.abort_all && body.rid == null) throw new BadRequest('body: give rid or abort_all: true');
    const aborted = await ctx.loop.abort(body.abort_all ? null : body.rid!);
    return { success: true, num_aborted: aborted };
  });

  const flush = async (_request: unknown, reply: FastifyReply) => {
    // The local engine keeps no prefix cache across requests: nothing to flush.
    return reply.type('text/plain').send('Cache flushed.\n');
  };
  app.get('/flush_cache', flush);
  app.post('/flush_cache', flush);

  app.get('/health', async () => ({}));
  app.get('/health_generate', async (_request, reply) => {
    if (ctx.loop.paused) return { status: 'paused' };
    try {
      await ctx.loop.generate({ id: ctx.nextId('health'), prompt: [0], params: { temperature: 0, maxNewTokens: 1 } });
      return {};
    } catch (error) {
      return reply.code(503).send({ error: `health_generate failed: ${(error as Error).message.split('\n')[0]}` });
    }
  });

  const modelInfo = () => ({
    model_path: ctx.modelDir,
    tokenizer_path: ctx.tokenizer ? ctx.modelDir : null,
    is_generation: true,
    preferred_sampling_params: null,
    weight_version: ctx.loop.weightVersion,
    model_type: ctx.config.modelType,
    vocab_size: ctx.config.vocabSize,
    max_context_length: ctx.config.maxPositions,
  });
  app.get('/get_model_info', async () => modelInfo());
  app.get('/model_info', async () => modelInfo());
  app.get('/get_weight_version', async () => ({ weight_version: ctx.loop.weightVersion }));
  const serverInfo = () => {
    const s = ctx.loop.engine.stats();
    return {
      ...modelInfo(),
      served_model_name: ctx.modelName,
      engine: 'ringrl',
      capacity: s.capacity,
      precision: ctx.loop.engine.precision,
      paused: ctx.loop.paused,
      requests: ctx.loop.size,
      active: s.active,
      waiting: s.waiting,
      decode_steps: s.decodeSteps,
      generated_tokens: s.generatedTokens,
      prefill_tokens: s.prefillTokens,
      busy_seconds: s.busySeconds,
    };
  };
  app.get('/server_info', async () => serverInfo());
  app.get('/get_server_info', async () => serverInfo());
}

/** The loaded config must describe the served architecture; names the first field that differs. */
function sameArchitecture(served: ModelConfig, loaded: ModelConfig, dir: string): void {
  for (const key of Object.keys(served) as (keyof ModelConfig)[]) {
    const a = JSON.stringify(served[key]),
      b = JSON.stringify(loaded[key]);
    if (a !== b)
      throw new RingrlError(
        `${dir}/config.json: ${key} is ${b}, the served model's is ${a}; weights must have the same architecture`,
      );
  }
}

// The OpenAI API on the same engine: /v1/completions, /v1/chat/completions (the model dir's chat
// template, rendered by @huggingface/jinja through src/tokenizer), /v1/models; SSE streaming for
// both. vLLM's extensions that RL clients use are accepted too (return_tokens_as_token_ids,
// top_k, ignore_eos, stop_token_ids, skip_special_tokens). `logprobs` are what /generate returns:
// log softmax at the request's temperature over the whole vocabulary (docs/serve.md).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { GeneratedSequence, SamplingParams } from '../engine/types.ts';
import {
  type ServeContext,
  BadRequest,
  neutral,
  checkContext,
  decode,
  parseBody,
  promptIds,
  requireTokenizer,
  stopMatcher,
  stopTokens,
  trimAtStop,
} from './context.ts';
import type { ServedSequence } from './loop.ts';
import { openSse } from './sse.ts';

const int = z.number().int();

const common = {
  model: z.string().nullish(),
  temperature: z.number().min(0).max(100).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: int.min(1).max(64).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z
    .strictObject({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() })
    .nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  seed: int.nullish(),
  user: z.string().nullish(),
  presence_penalty: neutral(0),
  frequency_penalty: neutral(0),
  logit_bias: neutral(null),
  // vLLM extensions
  top_k: int.refine((k) => k === -1 || k >= 0, { message: 'expected -1 or 0 (no top-k) or an integer >= 1' }).nullish(),
  min_p: neutral(0),
  repetition_penalty: neutral(1),
  ignore_eos: z.boolean().nullish(),
  stop_token_ids: z.array(int.min(0)).nullish(),
  skip_special_tokens: z.boolean().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
};

const completionSchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), z.array(int).min(1), z.array(z.array(int).min(1)).min(1)]),
  max_tokens: int.min(1).nullish(),
  logprobs: int
    .min(0)
    .max(0, { message: "top logprobs are not implemented; use logprobs: 0 (the sampled token's log-prob)" })
    .nullish(),
  echo: neutral(false),
  best_of: neutral(1),
  suffix: neutral(null),
});

const content = z.union([z.string(), z.array(z.strictObject({ type: z.literal('text'), text: z.string() }))]);
const chatSchema = z.strictObject({
  ...common,
  messages: z.array(z.looseObject({ role: z.string(), content: content.nullish() })).min(1),
  max_tokens: int.min(1).nullish(),
  max_completion_tokens: int.min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: neutral(0),
  add_generation_prompt: z.boolean().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  response_format: neutral(null),
  tools: neutral(null),
  tool_choice: neutral(null),
  parallel_tool_calls: z.boolean().nullish(),
});

type Common = z.infer<z.ZodObject<typeof common>>;

interface Choice {
  index: number;
  prompt: number[];
  params: SamplingParams;
}

function samplingOf(
  ctx: ServeContext,
  body: Common,
  maxTokens: number,
  prompt: number[],
  index: number,
): SamplingParams {
  const seed = body.seed == null ? undefined : (Math.imul(body.seed >>> 0, 65537) + index) >>> 0;
  return {
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: body.top_k == null || body.top_k === -1 ? 0 : body.top_k,
    // As vLLM: max_tokens beyond the context is cut to what fits.
    maxNewTokens: Math.max(1, Math.min(maxTokens, ctx.config.maxPositions - prompt.length)),
    stopTokens: stopTokens(ctx, body.stop_token_ids ?? undefined, body.ignore_eos ?? false),
    ...(seed !== undefined ? { seed } : {}),
  };
}

const finishOf = (s: ServedSequence) => (s.finish === 'abort' ? 'abort' : s.finish);
const usage = (results: ServedSequence[], promptTokens: number) => {
  const completion = results.reduce((a, r) => a + r.seq.tokens.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
};

export function openaiRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const created = () => Math.floor(Date.now() / 1000);

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [
      {
        id: ctx.modelName,
        object: 'model',
        created: created(),
        owned_by: 'ringrl',
        root: ctx.modelDir,
        max_model_len: ctx.config.maxPositions,
      },
    ],
  }));

  /** Run every choice; stream deltas through `onDelta` if given. Aborts the rest if one submission is refused. */
  const runChoices = async (
    choices: Choice[],
    stop: string[] | undefined,
    skipSpecial: boolean,
    id: string,
    onProgress?: (c: Choice, seq: GeneratedSequence) => void,
  ): Promise<ServedSequence[]> => {
    const rids = choices.map((c) => `${id}-${c.index}`);
    const running: Promise<ServedSequence>[] = [];
    try {
      for (const [i, c] of choices.entries()) {
        running.push(
          ctx.loop.generate({
            id: rids[i]!,
            prompt: c.prompt,
            params: c.params,
            stopText: stopMatcher(ctx, stop, skipSpecial),
            ...(onProgress ? { onProgress: (seq) => onProgress(c, seq) } : {}),
          }),
        );
      }
    } catch (error) {
      for (let i = 0; i < running.length; i++) void ctx.loop.abort(rids[i]!);
      await Promise.allSettled(running);
      throw error;
    }
    const results = await Promise.all(running);
    for (const r of results) ctx.metrics.finished(r.seq.prompt.length, r.seq.tokens.length, 0);
    return results;
  };
  const abortAll = (id: string, count: number) => {
    for (let i = 0; i < count; i++) if (ctx.loop.has(`${id}-${i}`)) void ctx.loop.abort(`${id}-${i}`);
  };

  /**
   * Stream `choices` as server-sent events, OpenAI-style: per choice, each step's new text as one
   * chunk built by `piece` (a completion's `text`, a chat's `delta`) with its log-probs, the final
   * chunk with the finish reason, then the usage when asked; a failure becomes an SSE error event.
   */
  const streamChoices = async (
    reply: FastifyReply,
    run: {
      id: string;
      object: string;
      choices: Choice[];
      stop: string[] | undefined;
      skipSpecial: boolean;
      promptTokens: number;
      includeUsage: boolean;
      textOf: (s: ServedSequence) => string;
      piece: (text: string, seq: GeneratedSequence, fromToken: number, fromText: number) => Record<string, unknown>;
      opening?: (c: Choice) => Record<string, unknown>;
    },
  ) => {
    const { id, object, choices, skipSpecial } = run;
    const sent = new Map<number, { tokens: number; text: number }>();
    const sse = openSse(reply, () => abortAll(id, choices.length));
    const chunk = (choice: Record<string, unknown>) =>
      sse.send({ id, object, created: created(), model: ctx.modelName, choices: [choice] });
    if (run.opening) for (const c of choices) chunk(run.opening(c));
    const emit = (c: Choice, seq: GeneratedSequence, final?: ServedSequence) => {
      const at = sent.get(c.index) ?? { tokens: 0, text: 0 };
      const text = final ? run.textOf(final) : decode(ctx, seq.tokens, skipSpecial);
      if (seq.tokens.length > at.tokens || final) {
        chunk({
          index: c.index,
          ...run.piece(text.slice(at.text), seq, at.tokens, at.text),
          finish_reason: final ? finishOf(final) : null,
        });
      }
      sent.set(c.index, { tokens: seq.tokens.length, text: Math.max(at.text, text.length) });
    };
    try {
      const results = await runChoices(choices, run.stop, skipSpecial, id, (c, seq) => emit(c, seq));
      results.forEach((r, i) => emit(choices[i]!, r.seq, r));
      if (run.includeUsage)
        sse.send({
          id,
          object,
          created: created(),
          model: ctx.modelName,
          choices: [],
          usage: usage(results, run.promptTokens),
        });
    } catch (error) {
      sse.send({ error: { message: (error as Error).message.split('\n')[0], type: 'invalid_request_error' } });
    }
    sse.end();
    return reply;
  };

  app.post('/v1/completions', async (request, reply) => {
    const body = parseBody(completionSchema, request.body);
    const p = body.prompt;
    const prompts =
      typeof p === 'string' ? [p] : typeof p[0] === 'number' ? [p as number[]] : (p as (string | number[])[]);
    const ids = prompts.map((x, i) => promptIds(ctx, x, prompts.length > 1 ? `body.prompt[${i}]` : 'body.prompt'));
    ids.forEach((x, i) => checkContext(ctx, x, prompts.length > 1 ? `body.prompt[${i}]` : 'body.prompt'));
    const n = body.n ?? 1;
    const choices: Choice[] = ids.flatMap((prompt, pi) =>
      Array.from({ length: n }, (_, s) => ({
        index: pi * n + s,
        prompt,
        params: samplingOf(ctx, body, body.max_tokens ?? 16, prompt, pi * n + s),
      })),
    );
    const id = ctx.nextId('cmpl');
    const skipSpecial = body.skip_special_tokens ?? true;
    const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const wantLogprobs = body.logprobs != null;
    const tokenName = (t: number) => (body.return_tokens_as_token_ids ? `token_id:${t}` : decode(ctx, [t], false));
    const logprobsOf = (seq: GeneratedSequence, from = 0, offset = 0) => {
      const tokens = seq.tokens.slice(from).map(tokenName);
      const text_offset: number[] = [];
      tokens.reduce((at, t) => (text_offset.push(at), at + t.length), offset);
      return { tokens, token_logprobs: seq.policyLogprobs.slice(from), top_logprobs: null, text_offset };
    };
    const textOf = (s: ServedSequence) => servedText(ctx, s, skipSpecial, body.include_stop_str_in_output);

    if (body.stream) {
      return streamChoices(reply, {
        id,
        object: 'text_completion',
        choices,
        stop,
        skipSpecial,
        promptTokens: ids.reduce((a, x) => a + x.length, 0) * n,
        includeUsage: body.stream_options?.include_usage ?? false,
        textOf,
        piece: (text, seq, fromToken, fromText) => ({
          text,
          logprobs: wantLogprobs ? logprobsOf(seq, fromToken, fromText) : null,
        }),
      });
    }
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abortAll(id, choices.length);
    });
    const results = await runChoices(choices, stop, skipSpecial, id);
    return {
      id,
      object: 'text_completion',
      created: created(),
      model: ctx.modelName,
      choices: results.map((r, i) => ({
        index: choices[i]!.index,
        text: textOf(r),
        logprobs: wantLogprobs ? logprobsOf(r.seq) : null,
        finish_reason: finishOf(r),
      })),
      usage: usage(results, ids.reduce((a, x) => a + x.length, 0) * n),
    };
  });

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(chatSchema, request.body);
    const tokenizer = requireTokenizer(ctx, 'body.messages');
    const messages = body.messages.map((m) => ({
      ...m,
      content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join(''),
    }));
    let rendered: string;
    try {
      rendered = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: body.add_generation_prompt ?? true });
    } catch (error) {
      throw new BadRequest(`body.messages: the chat template failed (${(error as Error).message.split('\n')[0]})`);
    }
    const prompt = promptIds(ctx, rendered, 'body.messages');
    checkContext(ctx, prompt, 'body.messages');
    const n = body.n ?? 1;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? ctx.config.maxPositions;
    const choices: Choice[] = Array.from({ length: n }, (_, i) => ({
      index: i,
      prompt,
      params: samplingOf(ctx, body, maxTokens, prompt, i),
    }));
    const id = ctx.nextId('chatcmpl');
    const skipSpecial = body.skip_special_tokens ?? true;
    const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const tokenLogprobs = (seq: GeneratedSequence, from = 0) =>
      seq.tokens.slice(from).map((t, i) => {
        const token = body.return_tokens_as_token_ids ? `token_id:${t}` : decode(ctx, [t], false);
        return {
          token,
          logprob: seq.policyLogprobs[from + i]!,
          bytes: [...Buffer.from(token, 'utf8')],
          top_logprobs: [],
        };
      });
    const textOf = (s: ServedSequence) => servedText(ctx, s, skipSpecial, body.include_stop_str_in_output);

    if (body.stream) {
      return streamChoices(reply, {
        id,
        object: 'chat.completion.chunk',
        choices,
        stop,
        skipSpecial,
        promptTokens: prompt.length * n,
        includeUsage: body.stream_options?.include_usage ?? false,
        textOf,
        opening: (c) => ({
          index: c.index,
          delta: { role: 'assistant', content: '' },
          logprobs: null,
          finish_reason: null,
        }),
        piece: (text, seq, fromToken) => ({
          delta: { content: text },
          logprobs: body.logprobs ? { content: tokenLogprobs(seq, fromToken) } : null,
        }),
      });
    }
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abortAll(id, n);
    });
    const results = await runChoices(choices, stop, skipSpecial, id);
    return {
      id,
      object: 'chat.completion',
      created: created(),
      model: ctx.modelName,
      choices: results.map((r, i) => ({
        index: i,
        message: { role: 'assistant', content: textOf(r) },
        logprobs: body.logprobs ? { content: tokenLogprobs(r.seq) } : null,
        finish_reason: finishOf(r),
      })),
      usage: usage(results, prompt.length * n),
    };
  });
}

/** A choice's text: decoded, cut before the stop string it matched unless the request keeps it. */
function servedText(ctx: ServeContext, s: ServedSequence, skipSpecial: boolean, keepStop?: boolean | null): string {
  const text = decode(ctx, s.seq.tokens, skipSpecial);
  return keepStop ? text : trimAtStop(text, s.matched);
}

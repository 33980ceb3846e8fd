// What every route of `ringrl serve` shares: the loop, the model's shape and tokenizer, metrics,
// and the translation from a request's text/stop settings to what the engine understands.
import { z } from 'zod';
import { RingrlError } from '../errors.ts';
import type { SnapshotLoader } from '../engine/snapshot.ts';
import type { ModelConfig } from '../model/config.ts';
import type { TextTokenizer } from '../tokenizer/index.ts';
import type { ServeMetrics } from './metrics.ts';
import type { ServingLoop } from './loop.ts';

export interface ServeContext {
  loop: ServingLoop;
  config: ModelConfig;
  tokenizer: TextTokenizer | null;
  /** The model dir the server started from (and the one loaded last). */
  modelDir: string;
  modelName: string;
  metrics: ServeMetrics;
  /** Reads and verifies weight versions (/update_weights_from_disk) into memory the engine keeps. */
  weights: SnapshotLoader;
  /** The server's key, also sent when fetching a snapshot from a trainer's URL. */
  apiKey?: string;
  /** Streamed /generate chunks carry only the new tokens (SGLang's --incremental-streaming-output). */
  incrementalStreaming: boolean;
  /** A fresh request id. */
  nextId(prefix: string): string;
}

/** A field the peers' APIs have and ringrl serve does not implement: accepted at its neutral value only. */
export const neutral = (value: unknown) =>
  z
    .unknown()
    .refine((v) => v === undefined || v === null || v === value, {
      message: `not implemented by ringrl serve; expected ${JSON.stringify(value)} or absent`,
    })
    .optional();

/** A request body field that failed: HTTP 400 with one line naming it. */
export class BadRequest extends RingrlError {
  override name = 'BadRequest';
}

/** Parse with zod; the first issue becomes one line `field.path: what was expected`. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, root = 'body'): z.infer<S> {
  if (body === undefined || body === null) body = {};
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { issue, path: at } = deepest(result.error.issues[0]!, []);
  const path = [root, ...at.map(String)].join('.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`
      : issue.message.replace(/^Invalid input: /, '');
  throw new BadRequest(`${path}: ${message}`);
}

/** Of a union's alternatives, the issue that got furthest into the value names the field best. */
function deepest(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { issue: z.core.$ZodIssue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code !== 'invalid_union' || !issue.errors.length) return { issue, path };
  const best = issue.errors
    .map((branch) => deepest(branch[0]!, path))
    .sort((a, b) => b.path.length - a.path.length)[0]!;
  return best.path.length > path.length ? best : { issue, path };
}

export function requireTokenizer(ctx: ServeContext, field: string): TextTokenizer {
  if (!ctx.tokenizer)
    throw new BadRequest(`${field}: this model dir has no tokenizer.json, so text cannot be tokenised; send token ids`);
  return ctx.tokenizer;
}

export function decode(ctx: ServeContext, tokens: readonly number[], skipSpecial = true): string {
  return ctx.tokenizer ? ctx.tokenizer.decode(tokens, { skipSpecial }) : '';
}

/** A stop-string matcher over the decoded response, or undefined when there are none. */
export function stopMatcher(
  ctx: ServeContext,
  stop: string[] | undefined,
  skipSpecial = true,
): ((tokens: number[]) => string | null) | undefined {
  if (!stop?.length) return undefined;
  requireTokenizer(ctx, 'stop');
  return (tokens) => {
    const text = decode(ctx, tokens, skipSpecial);
    return stop.find((s) => text.includes(s)) ?? null;
  };
}

/** Cut the response text before the first stop string (OpenAI and SGLang both trim it). */
export function trimAtStop(text: string, matched: string | number | undefined): string {
  if (typeof matched !== 'string') return text;
  const at = text.indexOf(matched);
  return at >= 0 ? text.slice(0, at) : text;
}

/** Stop token ids of a request: its own, plus EOS unless ignore_eos. */
export function stopTokens(ctx: ServeContext, ids: number[] | undefined, ignoreEos: boolean): number[] {
  const eos = ctx.tokenizer?.eos;
  return [...(ids ?? []), ...(!ignoreEos && eos !== undefined ? [eos] : [])];
}

/** Token ids of a prompt given as ids (checked against the vocabulary) or text. */
export function promptIds(ctx: ServeContext, prompt: string | number[], field: string): number[] {
  if (typeof prompt === 'string') {
    const ids = requireTokenizer(ctx, field).encode(prompt);
    if (!ids.length) throw new BadRequest(`${field}: the text tokenises to no tokens`);
    return ids;
  }
  if (!prompt.length) throw new BadRequest(`${field}: must be a non-empty list of token ids`);
  const bad = prompt.findIndex((t) => t < 0 || t >= ctx.config.vocabSize);
  if (bad >= 0)
    throw new BadRequest(
      `${field}[${bad}]: token id ${prompt[bad]} is outside the vocabulary [0, ${ctx.config.vocabSize})`,
    );
  return prompt;
}

/** Check a prompt plus the tokens to generate fit the context; names the field. */
export function checkContext(ctx: ServeContext, prompt: number[], field: string): void {
  const limit = ctx.config.maxPositions;
  if (prompt.length >= limit)
    throw new BadRequest(
      `${field}: ${prompt.length} prompt tokens do not fit the model's context of ${limit} (at most ${limit - 1})`,
    );
}

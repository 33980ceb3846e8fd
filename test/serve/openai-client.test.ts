// The official `openai` npm client against `ringrl serve`: completions and chat completions,
// n: 2, log-probs (checked against an in-process engine run), streaming, errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import OpenAI from 'openai';
import { LocalEngine } from '../../src/engine/local.ts';
import { generateAll } from '../../src/engine/types.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { startServer } from '../../src/serve/server.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { tinyModelDir } from './helpers.ts';

const dir = tinyModelDir(2);
const { config, weights } = loadModelDir(dir);
const tokenizer = loadTokenizer(dir);
const server = await startServer({
  modelDir: dir,
  port: 0,
  capacity: 4,
  apiKey: 'k',
  servedModelName: 'tiny',
  runtime: { threads: 1 },
});
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 });
after(async () => {
  await server.app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The same seeded request, decoded in process. */
async function reference(prompt: number[], maxNewTokens: number, seed: number, temperature = 1) {
  const engine = new LocalEngine(config, { capacity: 1, runtime: { threads: 1 } });
  await engine.updateWeights(weights, 0);
  return (
    await generateAll(engine, [
      { id: 'r', prompt, params: { temperature, maxNewTokens, stopTokens: [tokenizer.eos], seed } },
    ])
  )[0]!;
}
// The server derives choice i's seed from the request's: (seed × 65537 + i) mod 2^32.
const choiceSeed = (seed: number, i: number) => (Math.imul(seed, 65537) + i) >>> 0;

test('models and completions: text prompt, n: 2, logprobs: 0, token-id prompts with return_tokens_as_token_ids', async () => {
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['tiny'],
  );
  const prompt = '5+8=';
  const out = await client.completions.create({
    model: 'tiny',
    prompt,
    max_tokens: 6,
    n: 2,
    seed: 4,
    temperature: 1,
    logprobs: 0,
  });
  assert.equal(out.object, 'text_completion');
  assert.equal(out.choices.length, 2);
  const ids = tokenizer.encode(prompt);
  for (const [i, choice] of out.choices.entries()) {
    const ref = await reference(ids, 6, choiceSeed(4, i));
    assert.equal(choice.index, i);
    assert.equal(choice.text, tokenizer.decode(ref.tokens, { skipSpecial: true }));
    assert.equal(choice.finish_reason, ref.finishReason);
    assert.deepEqual(
      choice.logprobs!.tokens,
      ref.tokens.map((t) => tokenizer.decode([t])),
    );
    choice.logprobs!.token_logprobs!.forEach((lp, t) =>
      assert.ok(Math.abs(lp - ref.policyLogprobs[t]!) <= 1e-5, `choice ${i} token ${t}`),
    );
  }
  assert.equal(out.usage!.prompt_tokens, 2 * ids.length);

  // vLLM-style RL use: token ids in, token ids back.
  const byIds = await client.completions.create({
    model: 'tiny',
    prompt: ids,
    max_tokens: 5,
    seed: 9,
    logprobs: 0,
    return_tokens_as_token_ids: true,
  } as OpenAI.CompletionCreateParamsNonStreaming);
  const ref = await reference(ids, 5, choiceSeed(9, 0));
  assert.deepEqual(
    byIds.choices[0]!.logprobs!.tokens,
    ref.tokens.map((t) => `token_id:${t}`),
  );
});

test("chat completions: the model dir's chat template, logprobs: true, n: 2", async () => {
  const messages = [{ role: 'user' as const, content: '2+2=' }];
  const out = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 5,
    n: 2,
    seed: 1,
    logprobs: true,
  });
  assert.equal(out.object, 'chat.completion');
  const ids = tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }));
  assert.equal(out.usage!.prompt_tokens, 2 * ids.length);
  for (const [i, choice] of out.choices.entries()) {
    const ref = await reference(ids, 5, choiceSeed(1, i));
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, tokenizer.decode(ref.tokens, { skipSpecial: true }));
    assert.equal(choice.logprobs!.content!.length, ref.tokens.length);
    choice.logprobs!.content!.forEach((c, t) => {
      assert.equal(c.token, tokenizer.decode([ref.tokens[t]!]));
      assert.ok(Math.abs(c.logprob - ref.policyLogprobs[t]!) <= 1e-5);
    });
  }
});

test('streaming: completions and chat deltas add up to the non-streamed answer', async () => {
  const full = await client.completions.create({ model: 'tiny', prompt: '9-3=', max_tokens: 8, seed: 2 });
  let text = '';
  let finish: string | null = null;
  const stream = await client.completions.create({
    model: 'tiny',
    prompt: '9-3=',
    max_tokens: 8,
    seed: 2,
    stream: true,
  });
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(chunks >= 2);
  assert.equal(text, full.choices[0]!.text);
  assert.equal(finish, full.choices[0]!.finish_reason);

  const messages = [{ role: 'user' as const, content: 'hi' }];
  const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, seed: 3 });
  let content = '';
  const chatStream = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 6,
    seed: 3,
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of chatStream) {
    content += chunk.choices[0]?.delta.content ?? '';
    usage = chunk.usage ?? usage;
  }
  assert.equal(content, chat.choices[0]!.message.content);
  assert.deepEqual(usage, chat.usage);
});

test('errors reach the client as OpenAI errors: 400 naming the field, 401 for a wrong key', async () => {
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 4, logprobs: 3 }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match(e.message, /body\.logprobs: top logprobs are not implemented; use logprobs: 0/);
      return true;
    },
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [], max_tokens: 4 }),
    /body\.messages: /,
  );
  const stranger = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
});

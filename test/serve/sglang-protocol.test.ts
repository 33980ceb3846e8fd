// SGLang's native protocol as its RL clients speak it: requests built exactly as slime
// (slime/rollout/sglang_rollout.py: generate) and AReaL (areal/engine/sglang_remote.py: agenerate,
// update_weights_from_disk) build them, every response field checked against an in-process
// engine run; pause/continue/abort semantics; bad input and API keys.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalEngine } from '../../src/engine/local.ts';
import { type GenerationRequest, generateAll } from '../../src/engine/types.ts';
import { WeightPublisher } from '../../src/engine/weights.ts';
import { loadModelDir, saveModelDir } from '../../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { startServer } from '../../src/serve/server.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { getJson, postJson, tinyModelDir } from './helpers.ts';
import { byCodeUnit } from '../../src/util/order.ts';

const dir = tinyModelDir(1);
const scratch = mkdtempSync(join(tmpdir(), 'ringrl-proto-'));
const { config, weights } = loadModelDir(dir);
const tokenizer = loadTokenizer(dir);
const server = await startServer({ modelDir: dir, port: 0, capacity: 4, runtime: { threads: 1 } });
const url = server.url;
after(async () => {
  await server.app.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** The same request decoded by an in-process local engine: the reference for tokens and log-probs. */
async function reference(request: GenerationRequest, w = weights) {
  const engine = new LocalEngine(config, { capacity: 1, runtime: { threads: 1 } });
  await engine.updateWeights(w, 0);
  return (await generateAll(engine, [request]))[0]!;
}

function checkOutput(
  out: any,
  prompt: number[],
  expected: { tokens: number[]; behaviorLogprobs: number[]; policyLogprobs: number[] },
  finish: Record<string, unknown>,
  version = 'default',
) {
  assert.deepEqual(Object.keys(out).sort(byCodeUnit), ['meta_info', 'output_ids', 'text']);
  assert.deepEqual(out.output_ids, expected.tokens);
  assert.equal(out.text, tokenizer.decode(expected.tokens, { skipSpecial: true }));
  const m = out.meta_info;
  assert.equal(typeof m.id, 'string');
  assert.deepEqual(m.finish_reason, finish);
  assert.equal(m.prompt_tokens, prompt.length);
  assert.equal(m.completion_tokens, expected.tokens.length);
  assert.equal(m.weight_version, version);
  assert.equal(m.output_token_logprobs.length, expected.tokens.length);
  m.output_token_logprobs.forEach(([lp, id, text]: [number, number, string | null], i: number) => {
    assert.equal(id, expected.tokens[i]);
    assert.equal(text, null);
    // SGLang's meaning: the full softmax at the temperature (ringrl's policy log-prob).
    assert.ok(
      Math.abs(lp - expected.policyLogprobs[i]!) <= 1e-5,
      `token ${i}: logprob ${lp} vs ${expected.policyLogprobs[i]}`,
    );
  });
  m.behavior_logprobs.forEach((lp: number, i: number) =>
    assert.ok(Math.abs(lp - expected.behaviorLogprobs[i]!) <= 1e-5),
  );
  assert.deepEqual(m.output_token_weight_versions, Array(expected.tokens.length).fill(version));
}

test("slime: /generate with slime's sampling params, then its partial-rollout resume (input_ids = prompt + response, max_new_tokens reduced)", async () => {
  const prompt = tokenizer.encode('12+30=');
  // GenerateState.sampling_params and generate()'s payload, as slime builds them.
  const samplingParams = {
    temperature: 0.8,
    top_p: 0.9,
    top_k: -1,
    max_new_tokens: 10,
    stop: null,
    stop_token_ids: null,
    skip_special_tokens: true,
    no_stop_trim: true,
    spaces_between_special_tokens: false,
    custom_params: { return_top_p_token_ids: true },
    sampling_seed: 7,
  };
  const { status, body } = await postJson(`${url}/generate`, {
    sampling_params: samplingParams,
    return_logprob: true,
    input_ids: prompt,
  });
  assert.equal(status, 200, JSON.stringify(body));
  const expected = await reference({
    id: 'r',
    prompt,
    params: { temperature: 0.8, topP: 0.9, maxNewTokens: 10, stopTokens: [tokenizer.eos], seed: 7 },
  });
  const finish =
    expected.finishReason === 'stop' ? { type: 'stop', matched: tokenizer.eos } : { type: 'length', length: 10 };
  checkOutput(body, prompt, expected, finish);

  // slime's resume of an aborted sample: sample.tokens (prompt + response so far) as input_ids.
  const sofar = body.output_ids.slice(0, 4);
  const resumed = await postJson(`${url}/generate`, {
    sampling_params: { ...samplingParams, max_new_tokens: 10 - 4 },
    return_logprob: true,
    input_ids: [...prompt, ...sofar],
  });
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body.meta_info.prompt_tokens, prompt.length + 4);
  assert.ok(resumed.body.meta_info.completion_tokens <= 6);
  // max_new_tokens 0 (slime's guard) answers at once with nothing generated.
  const zero = await postJson(`${url}/generate`, {
    sampling_params: { ...samplingParams, max_new_tokens: 0 },
    return_logprob: true,
    input_ids: prompt,
  });
  assert.deepEqual([zero.status, zero.body.output_ids, zero.body.meta_info.finish_reason.type], [200, [], 'length']);
});

test("AReaL: agenerate's payload; pause_generation (no body), update_weights_from_disk with abort_all_request, continue_generation", async () => {
  const prompt = tokenizer.encode('7*6=');
  const payload = {
    input_ids: [...prompt],
    image_data: null,
    sampling_params: {
      top_p: 1.0,
      top_k: -1,
      max_new_tokens: 12,
      temperature: 1.0,
      stop_token_ids: [tokenizer.eos],
      frequency_penalty: 0.0,
      sampling_seed: 3,
    },
    return_logprob: true,
    stream: false,
  };
  const { status, body } = await postJson(`${url}/generate`, payload);
  assert.equal(status, 200, JSON.stringify(body));
  const expected = await reference({
    id: 'a',
    prompt,
    params: { temperature: 1, maxNewTokens: 12, stopTokens: [tokenizer.eos], seed: 3 },
  });
  checkOutput(
    body,
    prompt,
    expected,
    expected.finishReason === 'stop' ? { type: 'stop', matched: tokenizer.eos } : { type: 'length', length: 12 },
  );

  // AReaL's update_weights: POST /pause_generation (no body), /update_weights_from_disk, /continue_generation.
  const updated = initWeights(config, 5, 0.2);
  const publisher = new WeightPublisher(join(scratch, 'areal'), config);
  const path = await publisher.publish(updated, 1);
  assert.equal((await fetch(`${url}/pause_generation`, { method: 'POST' })).status, 200);
  const update = await postJson(`${url}/update_weights_from_disk`, { model_path: path, abort_all_request: true });
  assert.deepEqual(Object.keys(update.body).sort(byCodeUnit), ['message', 'num_paused_requests', 'success']);
  assert.equal(update.body.success, true);
  assert.equal(update.body.num_paused_requests, 0);
  assert.equal((await fetch(`${url}/continue_generation`, { method: 'POST' })).status, 200);
  const after = await postJson(`${url}/generate`, payload);
  checkOutput(
    after.body,
    prompt,
    await reference(
      { id: 'a', prompt, params: { temperature: 1, maxNewTokens: 12, stopTokens: [tokenizer.eos], seed: 3 } },
      updated,
    ),
    after.body.meta_info.finish_reason,
  );
  // A named version (slime passes weight_version) tags what follows.
  const named = await postJson(`${url}/update_weights_from_disk`, {
    model_path: dir,
    weight_version: '7',
    abort_all_requests: false,
    flush_cache: true,
  });
  assert.equal(named.body.success, true);
  assert.deepEqual(await getJson(`${url}/get_weight_version`), { weight_version: '7' });
  const tagged = await postJson(`${url}/generate`, payload);
  assert.equal(tagged.body.meta_info.weight_version, '7');
  checkOutput(tagged.body, prompt, expected, tagged.body.meta_info.finish_reason, '7');
});

test('pause_generation abort ends requests with their partial output; AReaL-style resume completes them; in_place holds and continues', async () => {
  const prompt = [5, 6, 7];
  const sp = { max_new_tokens: 100, temperature: 1, sampling_seed: 11, ignore_eos: true };
  const running = postJson(`${url}/generate`, {
    input_ids: prompt,
    sampling_params: sp,
    return_logprob: true,
    rid: 'long',
  });
  while (
    ((await getJson(`${url}/server_info`)).generated_tokens as number) < 1 ||
    (await getJson(`${url}/server_info`)).active === 0
  )
    await new Promise((r) => setTimeout(r, 2));
  const paused = await postJson(`${url}/pause_generation`, { mode: 'abort' });
  assert.equal(paused.status, 200);
  const { body } = await running;
  const m = body.meta_info;
  assert.equal(m.finish_reason.type, 'abort');
  assert.ok(m.completion_tokens > 0 && m.completion_tokens < 100, `aborted after ${m.completion_tokens} tokens`);
  assert.equal(m.output_token_logprobs.length, m.completion_tokens);
  await postJson(`${url}/continue_generation`, {});
  const resumed = await postJson(`${url}/generate`, {
    input_ids: [...prompt, ...body.output_ids],
    sampling_params: { ...sp, max_new_tokens: 100 - m.completion_tokens },
    return_logprob: true,
  });
  assert.equal(resumed.body.meta_info.finish_reason.type, 'length');
  assert.equal(m.completion_tokens + resumed.body.meta_info.completion_tokens, 100);

  await postJson(`${url}/pause_generation`, { mode: 'in_place' });
  const held = postJson(`${url}/generate`, {
    input_ids: prompt,
    sampling_params: { ...sp, max_new_tokens: 5 },
    rid: 'held',
  });
  while ((await getJson(`${url}/server_info`)).requests !== 1) await new Promise((r) => setTimeout(r, 2));
  const info = await getJson(`${url}/server_info`);
  assert.equal(info.paused, true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await getJson(`${url}/server_info`)).requests, 1, 'held while paused');
  await postJson(`${url}/continue_generation`, {});
  assert.deepEqual((await held).body.meta_info.finish_reason, { type: 'length', length: 5 });

  // abort_request by rid
  const victim = postJson(`${url}/generate`, {
    input_ids: prompt,
    sampling_params: { ...sp, max_new_tokens: 120 },
    rid: 'victim',
  });
  while ((await getJson(`${url}/server_info`)).requests !== 1) await new Promise((r) => setTimeout(r, 2));
  assert.equal((await postJson(`${url}/abort_request`, { rid: 'victim' })).status, 200);
  assert.equal((await victim).body.meta_info.finish_reason.type, 'abort');
});

test('batches, text prompts, stop strings, streaming and the info endpoints', async () => {
  const batch = await postJson(`${url}/generate`, {
    input_ids: [
      [1, 2],
      [3, 4, 5],
    ],
    sampling_params: [
      { max_new_tokens: 3, ignore_eos: true },
      { max_new_tokens: 4, ignore_eos: true },
    ],
    rid: ['b0', 'b1'],
  });
  assert.equal(batch.body.length, 2);
  assert.deepEqual(
    batch.body.map((o: any) => [o.meta_info.id, o.meta_info.completion_tokens]),
    [
      ['b0', 3],
      ['b1', 4],
    ],
  );
  assert.equal(batch.body[0].meta_info.output_token_logprobs, undefined, 'no log-probs unless return_logprob');

  const text = await postJson(`${url}/generate`, {
    text: '3+4=',
    sampling_params: { max_new_tokens: 12, temperature: 1, sampling_seed: 2, ignore_eos: true },
  });
  assert.equal(text.body.meta_info.prompt_tokens, tokenizer.encode('3+4=').length);
  // A stop string: the 6th generated character. Generation ends there and the text is cut before it.
  const full: string = text.body.text;
  const stop = full[5]!;
  const stopped = await postJson(`${url}/generate`, {
    text: '3+4=',
    sampling_params: { max_new_tokens: 12, temperature: 1, sampling_seed: 2, ignore_eos: true, stop },
  });
  assert.deepEqual(stopped.body.meta_info.finish_reason, { type: 'stop', matched: stop });
  assert.equal(stopped.body.text, full.slice(0, full.indexOf(stop)));

  const res = await fetch(`${url}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      input_ids: [1, 2],
      sampling_params: { max_new_tokens: 6, sampling_seed: 1, ignore_eos: true },
      stream: true,
      return_logprob: true,
    }),
  });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const events = (await res.text())
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.ok(chunks.length >= 2, `${chunks.length} chunks`);
  assert.deepEqual(chunks.at(-1).meta_info.finish_reason, { type: 'length', length: 6 });
  assert.ok(chunks.slice(0, -1).every((c: any) => c.meta_info.finish_reason === null && c.output_ids.length <= 6));

  // --incremental-streaming-output: each chunk has only its new tokens; joined they are the whole.
  const incremental = await startServer({
    modelDir: dir,
    port: 0,
    capacity: 4,
    runtime: { threads: 1 },
    incrementalStreaming: true,
  });
  try {
    const parts = (
      await (
        await fetch(`${incremental.url}/generate`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            input_ids: [1, 2],
            sampling_params: { max_new_tokens: 6, sampling_seed: 1, ignore_eos: true },
            stream: true,
            return_logprob: true,
          }),
        })
      ).text()
    )
      .split('\n\n')
      .filter((e) => e && e !== 'data: [DONE]')
      .map((e) => JSON.parse(e.replace(/^data: /, '')));
    const whole = chunks.at(-1);
    assert.deepEqual(
      parts.flatMap((c: any) => c.output_ids),
      whole.output_ids,
    );
    assert.deepEqual(
      parts.flatMap((c: any) => c.meta_info.output_token_logprobs),
      whole.meta_info.output_token_logprobs,
    );
    let total = 0;
    assert.deepEqual(
      parts.map((c: any) => c.meta_info.completion_tokens),
      parts.map((c: any) => (total += c.output_ids.length)),
      'completion_tokens is the running total',
    );
    assert.equal(total, 6);
    assert.deepEqual(parts.at(-1).meta_info.finish_reason, { type: 'length', length: 6 });
  } finally {
    await incremental.app.close();
  }

  assert.equal((await fetch(`${url}/health`)).status, 200);
  assert.equal((await fetch(`${url}/health_generate`)).status, 200);
  const info = await getJson(`${url}/get_model_info`);
  assert.equal(info.is_generation, true);
  assert.equal(info.model_path, dir);
  assert.equal((await fetch(`${url}/flush_cache`, { method: 'POST' })).status, 200);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /ringrl_num_running_reqs 0/);
  assert.match(metrics, /ringrl_generation_tokens_total \d+/);
});

test('bad input: HTTP 400 with one line naming the field; the server keeps serving', async () => {
  const other = join(scratch, 'other');
  const otherConfig = presetConfig('tiny', {
    vocabSize: config.vocabSize,
    maxPositions: 128,
    hiddenSize: 48,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 8,
  });
  saveModelDir(other, otherConfig, initWeights(otherConfig, 0));
  const corrupt = await new WeightPublisher(join(scratch, 'corrupt'), config).publish(weights, 4);
  const st = join(corrupt, 'model.safetensors');
  const bytes = readFileSync(st);
  bytes[bytes.length - 3] ^= 0x40;
  writeFileSync(st, bytes);
  const cases: [string, unknown, RegExp][] = [
    ['/generate', '{"input_ids": [1, 2', /^body: malformed JSON/],
    [
      '/generate',
      { input_ids: [1, 2], sampling_params: { temperature: 'hot' } },
      /^body\.sampling_params\.temperature: expected number, received string$/,
    ],
    [
      '/generate',
      { input_ids: [1, 2], sampling_params: { max_new_tokens: 4, top_k: 0 } },
      /^body\.sampling_params\.top_k: expected -1 \(no top-k\) or an integer >= 1$/,
    ],
    [
      '/generate',
      { input_ids: [1, 2], sampling_params: { frequency_penalty: 0.5 } },
      /^body\.sampling_params\.frequency_penalty: not implemented by ringrl serve; expected 0 or absent$/,
    ],
    ['/generate', { input_ids: [1, 2], temperature: 1 }, /^body: unknown field 'temperature'$/],
    ['/generate', { input_ids: [1, 'x'] }, /^body\.input_ids\[1\]: expected number, received string$/],
    [
      '/generate',
      { input_ids: [1, 9999] },
      /^body\.input_ids\[1\]: token id 9999 is outside the vocabulary \[0, 101\)$/,
    ],
    [
      '/generate',
      { input_ids: Array(200).fill(1) },
      /^body\.input_ids: 200 prompt tokens do not fit the model's context of 128/,
    ],
    ['/generate', { sampling_params: {} }, /^body: give input_ids or text \(exactly one\)$/],
    [
      '/update_weights_from_disk',
      { model_path: join(scratch, 'missing') },
      /^model_path: .*missing: model directory does not exist/,
    ],
    [
      '/update_weights_from_disk',
      { model_path: other },
      /^model_path: .*other\/config\.json: hiddenSize is 48, the served model's is 32; weights must have the same architecture$/,
    ],
    [
      '/update_weights_from_disk',
      { model_path: corrupt },
      /^model_path: .*model\.safetensors: tensor '.*' does not match its sha256 in manifest\.json .*the snapshot is corrupt$/,
    ],
    ['/update_weights_from_disk', {}, /^body\.model_path: expected string, received undefined$/],
    ['/pause_generation', { mode: 'later' }, /^body\.mode: /],
  ];
  for (const [path, body, pattern] of cases) {
    const { status, body: answer } = await postJson(`${url}${path}`, body);
    assert.equal(status, 400, `${path} ${JSON.stringify(body).slice(0, 60)}: ${JSON.stringify(answer)}`);
    assert.equal(typeof answer.error, 'string');
    assert.ok(!answer.error.includes('\n'), 'one line');
    assert.match(answer.error, pattern);
  }
  assert.equal(
    (await getJson(`${url}/get_weight_version`)).weight_version,
    '7',
    'a refused update leaves the weights alone',
  );
  const ok = await postJson(`${url}/generate`, {
    input_ids: [1, 2],
    sampling_params: { max_new_tokens: 3, ignore_eos: true },
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.meta_info.completion_tokens, 3);
});

test('API key: every endpoint but /health wants Authorization: Bearer KEY (401 otherwise); no key off loopback is refused', async () => {
  const keyed = await startServer({ modelDir: dir, port: 0, capacity: 2, apiKey: 'sesame', runtime: { threads: 1 } });
  try {
    const body = { input_ids: [1, 2], sampling_params: { max_new_tokens: 2 } };
    assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
    const missing = await postJson(`${keyed.url}/generate`, body);
    assert.deepEqual(
      [missing.status, missing.body],
      [401, { error: 'missing API key: send Authorization: Bearer KEY' }],
    );
    const wrong = await postJson(`${keyed.url}/generate`, body, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(`${keyed.url}/server_info`)).status, 401);
    const v1 = await postJson(`${keyed.url}/v1/completions`, { model: 'x', prompt: [1] });
    assert.equal(v1.status, 401);
    assert.equal(v1.body.error.type, 'authentication_error');
    const right = await postJson(`${keyed.url}/generate`, body, { authorization: 'Bearer sesame' });
    assert.equal(right.status, 200);
  } finally {
    await keyed.app.close();
  }
  await assert.rejects(
    startServer({ modelDir: dir, host: '0.0.0.0', port: 0 }),
    /--host 0\.0\.0\.0: a server reachable from other machines needs an API key/,
  );
});

// `ringrl serve`: the local engine behind SGLang's native RL endpoints and the OpenAI API.
import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { type Precision, precisions } from '../engine/precision.ts';
import { configureRuntime } from '../runtime/index.ts';
import { startServer } from '../serve/server.ts';

const HELP = `usage: ringrl serve --model DIR [--port 30000] [--host 127.0.0.1] [--api-key KEY]
                    [--capacity 64] [--prefill-batch 8] [--precision ${precisions.join('|')}]
                    [--weight-version NAME] [--served-model-name NAME] [--seed N] [--threads N]
                    [--incremental-streaming-output]

Serves a model dir with the local KV-cached engine, continuously batching every concurrent
request (one engine loop; requests join and leave between decode steps). Endpoints:

  SGLang (what slime and AReaL call): POST /generate, /update_weights_from_disk,
    /pause_generation {mode: abort|in_place}, /continue_generation, /abort_request, /flush_cache;
    GET /health, /health_generate, /get_model_info, /server_info, /get_weight_version
  OpenAI: POST /v1/completions, /v1/chat/completions (SSE with stream: true); GET /v1/models
  GET /metrics (Prometheus)

output_token_logprobs (and OpenAI logprobs) mean what SGLang's mean: log softmax(logits /
temperature) over the whole vocabulary (ringrl's policy log-prob). /generate also returns
meta_info.behavior_logprobs (the distribution actually sampled from, after top-k/top-p). Weights loaded by /update_weights_from_disk that carry a
manifest.json (as ringrl publishes them) are checked tensor by tensor (sha256) first.

The server listens on 127.0.0.1 unless --host is given; with --api-key KEY (or RINGRL_API_KEY)
every endpoint but /health wants "Authorization: Bearer KEY". A host other than loopback needs a
key. --port 0 picks a free port. With --incremental-streaming-output (SGLang's flag) a streamed
/generate sends each chunk's new tokens only, not everything so far (meta_info.completion_tokens
stays the total). Protocol details: docs/serve.md.

examples:
  ringrl serve --model runs/arith-sft/checkpoints/400
  ringrl serve --model models/qwen --port 30001 --capacity 32 --precision bf16
  RINGRL_API_KEY=secret ringrl serve --model models/qwen --host 0.0.0.0`;

export const serveCommand: Command = {
  name: 'serve',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('serve', argv, {
      model: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'api-key': { type: 'string' },
      capacity: { type: 'string' },
      'prefill-batch': { type: 'string' },
      precision: { type: 'string' },
      'weight-version': { type: 'string' },
      'served-model-name': { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      // Exit when stdin closes: a parent (ringrl rl --engine-workers) that dies takes its servers with it.
      'exit-with-stdin': { type: 'boolean' },
      'incremental-streaming-output': { type: 'boolean' },
    });
    if (positionals.length)
      throw new UsageError(`ringrl serve: unexpected argument '${positionals[0]}' (see ringrl serve --help)`);
    const precision = (values.precision ?? 'fp32') as Precision;
    if (!precisions.includes(precision))
      throw new UsageError(`ringrl serve: --precision must be one of ${precisions.join(', ')}, got '${precision}'`);
    if (values.threads !== undefined)
      configureRuntime({ threads: numberFlag('serve', 'threads', values.threads, 0, { integer: true, min: 1 }) });
    const apiKey = values['api-key'] ?? process.env.RINGRL_API_KEY;
    const server = await startServer({
      modelDir: requireFlag('serve', values, 'model'),
      host: values.host ?? '127.0.0.1',
      port: numberFlag('serve', 'port', values.port, 30000, { integer: true, min: 0, max: 65535 }),
      capacity: numberFlag('serve', 'capacity', values.capacity, 64, { integer: true, min: 1 }),
      prefillBatch: numberFlag('serve', 'prefill-batch', values['prefill-batch'], 8, { integer: true, min: 1 }),
      seed: numberFlag('serve', 'seed', values.seed, 0, { integer: true, min: 0 }),
      precision,
      ...(apiKey ? { apiKey } : {}),
      ...(values['weight-version'] ? { weightVersion: values['weight-version'] } : {}),
      ...(values['served-model-name'] ? { servedModelName: values['served-model-name'] } : {}),
      ...(values['incremental-streaming-output'] ? { incrementalStreaming: true } : {}),
    });
    console.log(
      `ringrl serve: listening on ${server.url} (${server.ctx.modelDir}, capacity ${server.ctx.loop.engine.capacity}, ${precision})`,
    );
    await new Promise<void>((resolve) => {
      const stop = () =>
        void server.app.close().then(() => {
          process.stdin.destroy(); // a watched stdin would keep the process alive
          resolve();
        });
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (values['exit-with-stdin']) {
        process.stdin.on('end', stop).on('close', stop).resume();
      }
    });
  },
};

// `ringrl eval`: accuracy, pass@k, avg@k and response lengths of a model on a built-in task's
// held-out split or a dataset file; a JSON file and a printed table.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Command, UsageError } from './command.ts';
import { uiFlagsHelp } from './ui.ts';
import { startConfigCommand } from './config-flags.ts';
import { loadModelDir } from '../model/checkpoint.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import { testExamplesFor } from '../data/index.ts';
import { getVerifier, verifierNames } from '../reward/verifiers.ts';
import { evaluate, formatEvalTable } from '../eval/evaluate.ts';
import { connectServers } from './generate.ts';

const SETS = {
  model: 'model.dir',
  task: 'data.task',
  difficulty: 'data.difficulty',
  data: 'data.test_file',
  n: 'eval.num_problems',
  k: 'eval.k',
  temperature: 'eval.temperature',
  'top-p': 'eval.top_p',
  'max-new-tokens': 'eval.max_new_tokens',
  threads: 'runtime.threads',
  seed: 'run.seed',
} as const;

const HELP = `usage: ringrl eval --model DIR (--task NAME [--difficulty N] | --data FILE [--verifier NAME])
                   [--n N] [--k K] [--temperature T] [--top-p P] [--max-new-tokens N]
                   [--out FILE.json] [--config FILE]... [--set KEY.PATH=VALUE]... [--threads N] [--seed N]
                   [--servers URL,URL]
${uiFlagsHelp}

Generates with the local KV-cached engine and verifies every response:
  accuracy   greedy (temperature 0), one sample per problem
  pass@k     fraction of problems with at least one correct sample among k (at --temperature)
  avg@k      mean fraction of correct samples per problem
  lengths    response tokens: mean, p50, p90, max; and the fraction cut at --max-new-tokens
--task evaluates the task's test split (never seen in training); --data reads a JSONL/Parquet file
(fields as in docs/data.md) and verifies with --verifier (default: the --task's verifier if given,
else math: ${verifierNames.join(', ')}). Writes the summary and every sample to --out (default
DIR/eval_results.json) and prints a table. --servers generates on SGLang-protocol servers (ringrl serve
or SGLang) that hold the same model (RINGRL_API_KEY is sent as the bearer key), not in this process.

examples:
  ringrl eval --model runs/arith-sft/checkpoints/400 --task arithmetic --difficulty 2 --n 200
  ringrl eval --model runs/arith-sft/checkpoints/400 --task arithmetic --n 100 --k 8 --temperature 1
  ringrl eval --model models/qwen --data aime.jsonl --verifier math --n 30 --max-new-tokens 4096`;

export const evalCommand: Command = {
  name: 'eval',
  help: HELP,
  async run(argv) {
    // --data is the held-out file (data.test_file): evaluating a file is not training on one.
    const own = { out: { type: 'string' }, verifier: { type: 'string' }, servers: { type: 'string' } } as const;
    const { values, config, ui } = startConfigCommand('eval', argv, own, SETS);
    if (values.task === undefined && values.data === undefined)
      throw new UsageError('ringrl eval: give --task NAME or --data FILE (see ringrl eval --help)');
    const modelDir = config.model.dir;
    if (!modelDir) throw new UsageError('ringrl eval: --model is required (see ringrl eval --help)');
    const { config: modelConfig, weights } = loadModelDir(modelDir);
    const tokenizer = loadTokenizer(modelDir);
    const verifierName = values.verifier ?? (values.task !== undefined ? config.data.task! : 'math');
    const verify = getVerifier(verifierName);
    const examples = await testExamplesFor(config.data, config.eval.num_problems);
    const { k, temperature, top_p: topP, max_new_tokens: maxNewTokens } = config.eval;
    if (k > 1 && temperature === 0)
      ui.warn('--k > 1 with temperature 0: the k samples are identical (greedy); pass --temperature 1 for pass@k');
    const what = config.data.test_file ?? `${config.data.task} (difficulty ${config.data.difficulty}, test split)`;
    ui.info(`evaluating ${modelDir} on ${examples.length} problems of ${what}, k=${k}, verifier ${verifierName}`);
    const bar = ui.progress('eval', {
      total: examples.length * (k === 1 && temperature === 0 ? 1 : k + 1),
      unit: 'sample',
    });
    const engine = values.servers ? await connectServers(values.servers) : undefined;
    let result: Awaited<ReturnType<typeof evaluate>>;
    try {
      result = await evaluate(modelConfig, weights, tokenizer, examples, verify, {
        k,
        temperature,
        topP,
        maxNewTokens,
        seed: config.run.seed,
        onProgress: (done) => bar.update(done),
        ...(engine ? { engine } : {}),
      });
    } finally {
      await engine?.close();
      await verify.close?.();
    }
    bar.done({ accuracy: `${(100 * result.accuracy).toFixed(1)}%` });
    const out = values.out ?? join(modelDir, 'eval_results.json');
    mkdirSync(dirname(out), { recursive: true });
    const { samples, ...summary } = result;
    writeFileSync(
      out,
      JSON.stringify({ model: modelDir, data: what, verifier: verifierName, ...summary, samples }, null, 2) + '\n',
    );
    ui.result({ ...summary, out }, `${formatEvalTable(result, `eval ${modelDir} on ${what}`)}\n  wrote ${out}`);
  },
};

// `ringrl rl`: reinforcement learning with IcePop + C3PO++ (by default) on verifiable rewards,
// configured like every command (defaults < --config files < --set < shorthand flags).
import { join } from 'node:path';
import { type Command, UsageError } from './command.ts';
import { engineFlagSets, engineFlags, runDirFromFlags, startConfigCommand } from './config-flags.ts';
import { uiFlagsHelp, type Ui } from './ui.ts';
import { testExamplesFor, trainSourceFor } from '../data/index.ts';
import { getVerifier } from '../reward/verifiers.ts';
import { readModelConfig } from '../model/config.ts';
import { checkTokenizerFits, loadTokenizer } from '../tokenizer/index.ts';
import { type RlEvent, runRl } from '../system/rl-run.ts';

const shorthands = {
  model: 'model.dir',
  task: 'data.task',
  difficulty: 'data.difficulty',
  data: 'data.train_file',
  'test-data': 'data.test_file',
  steps: 'rl.steps',
  mode: 'rollout.mode',
  correction: 'rl.loss.correction',
  engine: 'rollout.engine',
  placement: 'system.placement',
  threads: 'runtime.threads',
  seed: 'run.seed',
} as const;

const HELP = `usage: ringrl rl [--config FILE]... [--set KEY.PATH=VALUE]... [--out RUN_DIR | --resume RUN_DIR]
                 [--model DIR] [--task NAME [--difficulty N] | --data FILE] [--test-data FILE]
                 [--steps N] [--mode c3po|sync|async] [--correction icepop|tis|none]
                 [--engine local|http] [--servers URL,URL | --engine-workers N]
                 [--placement colocated|disaggregated] [--threads N] [--seed N]
${uiFlagsHelp}

Reinforcement learning on verifiable rewards: the C3PO++ scheduler rolls out groups of
rollout.group_size samples per prompt until rollout.token_budget response tokens have finished
(unfinished ones are paused and resumed under the next policy), the task's verifier scores them,
GRPO advantages are computed per group, and the policy loss (IcePop by default) updates the model;
the new weights are published to the engine as the next version. Held-out accuracy is measured
before the first and after the last step. Config keys: docs/config.md (sections rl, rollout, eval,
run); the algorithms: docs/algorithms.md; the loop: docs/rl.md.

Rollouts run in this process by default (rollout.engine local). --servers URL,URL rolls out on
SGLang-protocol servers (ringrl serve or SGLang; weights are published to <run>/weights/v<N> and
loaded with /update_weights_from_disk); --engine-workers N starts N ringrl serve processes on
loopback ports for the run and stops them when it ends (docs/serve.md). --placement disaggregated
keeps the engines decoding under the current weights while the trainer trains (docs/system.md).

The run directory gets config.yaml, metrics.jsonl, samples.jsonl and checkpoints/<step>/ (model dir
with tokenizer, optimizer/ and rl_state.json holding the scheduler pool with its partial rollouts
and the data cursor). --resume RUN_DIR continues from its newest checkpoint: steps, metrics and
samples continue without gaps or duplicates.

shorthands: --model (model.dir) --task (data.task) --difficulty (data.difficulty) --data (data.train_file)
            --test-data (data.test_file) --steps (rl.steps) --mode (rollout.mode)
            --correction (rl.loss.correction) --engine (rollout.engine) --placement (system.placement)
            --threads (runtime.threads) --seed (run.seed)
            --servers URL,URL (rollout.servers, engine http) --engine-workers N (rollout.engine_workers, engine http)

examples:
  ringrl rl --model runs/arith-sft/checkpoints/400 --task arithmetic --steps 30 --out runs/arith-rl
  ringrl rl --model runs/qwen3-tiny --data examples/gsm8k-sample.parquet --test-data examples/math-sample.parquet
  ringrl rl --model runs/qwen3-tiny --data train.parquet --set data.chat_template_kwargs.enable_thinking=false
  ringrl rl --model models/sft --set rollout.mode=sync --set rl.loss.correction=none   # the GRPO baseline
  ringrl rl --config configs/rl.yaml --set rollout.precision=fp8                        # real mismatch
  ringrl rl --model models/sft --engine-workers 2                                      # rollouts on 2 ringrl serve processes
  ringrl rl --model models/sft --engine-workers 2 --placement disaggregated            # ... decoding while the trainer trains
  ringrl rl --model models/qwen --servers http://gpu1:30000,http://gpu2:30000           # on SGLang servers
  ringrl rl --resume runs/arith-rl`;

/** Progress and event lines shared by `ringrl rl` and the demo. */
export function rlEventPrinter(
  ui: Ui,
  steps: number,
  label = 'rl',
): { onEvent: (e: RlEvent) => void; done: () => void } {
  const bar = ui.progress(label, { total: steps, unit: 'step' });
  return {
    onEvent(e) {
      if (e.type === 'start')
        ui.info(
          `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : 'starting RL'} (${(e.parameters / 1e6).toFixed(2)}M parameters)`,
        );
      else if (e.type === 'eval')
        ui.info(
          `step ${e.step}: held-out accuracy ${(100 * e.result.accuracy).toFixed(1)}% (${e.result.problems} problems, ${e.result.seconds.toFixed(0)}s)`,
        );
      else if (e.type === 'checkpoint') ui.info(`checkpoint ${e.dir}`);
      else if (e.type === 'guard') ui.warn(e.message);
      else if (e.type === 'skipped') ui.info(`step ${e.step}: skipped ${e.reasons.length} update(s): ${e.reasons[0]}`);
      else if (e.type === 'log') e.level === 'warn' ? ui.warn(e.message) : ui.info(e.message);
      else if (e.type === 'rollback') ui.info(`step ${e.step}: ${e.reason}; rolling back to checkpoint ${e.to}`);
      else {
        const m = e.metrics;
        bar.update(e.step, {
          reward: m['reward/mean'] ?? 0,
          len: Math.round(m['response_length/mean'] ?? 0),
          masked: m['icepop/masked_frac'] ?? 0,
          'tok/s': Math.round(m['rollout/tokens_per_s'] ?? 0),
          pool: m['c3po/retained'] ?? 0,
          ...(m['reward/unscored'] ? { unscored: m['reward/unscored'] } : {}),
        });
      }
    },
    done: () => bar.done({}),
  };
}

export const rlCommand: Command = {
  name: 'rl',
  help: HELP,
  async run(argv) {
    const { values, config, ui } = startConfigCommand(
      'rl',
      argv,
      { out: { type: 'string' }, resume: { type: 'string' }, ...engineFlags },
      shorthands,
      engineFlagSets,
    );
    const resumeDir = values.resume;
    if (!config.model.dir && !resumeDir)
      throw new UsageError(
        'ringrl rl: model.dir is required (--model DIR): RL starts from a trained checkpoint, e.g. the output of ringrl sft',
      );
    // Everything a bad input can fail is read before the run dir is created: nothing is written.
    const source = await trainSourceFor(config.data, 'rl');
    const evalExamples = await testExamplesFor(config.data, config.eval.num_problems, { optional: true });
    if (!evalExamples.length) ui.info('no held-out data (data.test_file, --test-data FILE): training rewards only');
    const verify = getVerifier(config.data.task ?? 'math');
    if (!resumeDir) {
      const dir = config.model.dir!;
      checkTokenizerFits(loadTokenizer(dir), readModelConfig(join(dir, 'config.json')).vocabSize, dir);
    }
    const run = runDirFromFlags('rl', values, config);
    ui.info(`run dir ${run.path}`);
    const printer = rlEventPrinter(ui, config.rl.steps);
    const result = await runRl({
      run,
      config,
      modelDir: config.model.dir ?? '',
      resume: resumeDir !== undefined,
      source,
      evalExamples,
      verify,
      onEvent: printer.onEvent,
    }).finally(() => verify.close?.());
    printer.done();
    const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);
    ui.result(
      {
        run_dir: run.path,
        steps: result.step,
        accuracy_before: result.before?.accuracy ?? null,
        accuracy_after: result.after?.accuracy ?? null,
      },
      `rl done: ${result.step} steps; held-out accuracy ${pct(result.before?.accuracy)} → ${pct(result.after?.accuracy)}; run dir ${run.path}`,
    );
  },
};

// `ringrl sft`: supervised fine-tuning on teacher chain-of-thought, configured like every command
// (defaults < --config files < --set), with plain flags as shorthands for the common keys.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Command } from './command.ts';
import { runDirFromFlags, startConfigCommand } from './config-flags.ts';
import { uiFlagsHelp } from './ui.ts';
import { optimizerOptions } from '../config/index.ts';
import { initWeights, presetConfig } from '../model/presets.ts';
import { saveModelDir } from '../model/checkpoint.ts';
import { builtinVocabSize, writeTokenizer } from '../tokenizer/index.ts';
import { testExamplesFor, trainSourceFor } from '../data/index.ts';
import { getVerifier } from '../reward/verifiers.ts';
import { runSft } from '../system/sft-run.ts';

/** Shorthand flags and the config key each one sets. */
const shorthands = {
  model: 'model.dir',
  task: 'data.task',
  difficulty: 'data.difficulty',
  data: 'data.train_file',
  'test-data': 'data.test_file',
  steps: 'sft.steps',
  threads: 'runtime.threads',
  seed: 'run.seed',
} as const;

const HELP = `usage: ringrl sft [--config FILE]... [--set KEY.PATH=VALUE]... [--out RUN_DIR | --resume RUN_DIR]
                  [--model DIR] [--task NAME [--difficulty N] | --data FILE] [--test-data FILE]
                  [--steps N] [--threads N] [--seed N]
${uiFlagsHelp}

Supervised fine-tuning with a prompt-masked next-token loss on packed rows, AdamW with warmup
and schedule, held-out evaluation (greedy generation, verified) every sft.eval_every steps and at
the end, checkpoints every run.checkpoint_every steps. Without model.dir a fresh model.preset
model with the char tokenizer is initialised into RUN_DIR/base-model. Config keys: docs/config.md
(sections model, data, sft, eval, run, runtime); the loop: docs/sft.md.

The run directory (default runs/sft-<time>, or run.dir/run.name, or --out) gets config.yaml,
metrics.jsonl, samples.jsonl (eval completions) and checkpoints/<step>/ (a model dir with
tokenizer, optimizer/ and trainer_state.json). --resume RUN_DIR continues from its newest
checkpoint with its config.yaml (flags and --set apply on top, e.g. more --steps).

shorthands: --model (model.dir) --task (data.task) --difficulty (data.difficulty)
            --data (data.train_file) --test-data (data.test_file) --steps (sft.steps)
            --threads (runtime.threads) --seed (run.seed)

examples:
  ringrl sft --task arithmetic --difficulty 2 --steps 400 --out runs/arith-sft
  ringrl init --preset small --tokenizer char --out models/small && ringrl sft --model models/small --task countdown
  ringrl sft --data train.jsonl --test-data test.jsonl --model models/qwen --set sft.optimizer.lr=1e-5
  ringrl sft --resume runs/arith-sft --steps 800`;

export const sftCommand: Command = {
  name: 'sft',
  help: HELP,
  async run(argv) {
    const { values, config, ui } = startConfigCommand(
      'sft',
      argv,
      { out: { type: 'string' }, resume: { type: 'string' } },
      shorthands,
    );
    // Bad data fails before the run dir is created: nothing is written.
    const source = await trainSourceFor(config.data);
    const examples = await testExamplesFor(config.data, config.eval.num_problems);
    const verify = getVerifier(config.data.task ?? 'math');
    const run = runDirFromFlags('sft', values, config);
    let modelDir = config.model.dir;
    if (!modelDir) {
      // From scratch: a preset sized to the char tokenizer, written once into the run dir.
      modelDir = join(run.path, 'base-model');
      if (!existsSync(join(modelDir, 'model.safetensors'))) {
        const modelConfig = presetConfig(config.model.preset!, { vocabSize: builtinVocabSize('char') });
        saveModelDir(modelDir, modelConfig, initWeights(modelConfig, config.model.init_seed));
        writeTokenizer(modelDir, 'char');
      }
    }
    ui.info(`run dir ${run.path}`);
    const bar = ui.progress('sft', { total: config.sft.steps, unit: 'step' });
    let evalLine = '';
    const result = await runSft({
      run,
      modelDir,
      resume: values.resume !== undefined,
      source,
      options: {
        steps: config.sft.steps,
        batchSize: config.sft.batch_size,
        maxSeqLen: config.sft.max_seq_len,
        pack: config.sft.pack,
        microBatchTokens: config.sft.micro_batch_tokens,
        optimizer: optimizerOptions(config.sft.optimizer),
        evalEvery: config.sft.eval_every,
        checkpointEvery: config.run.checkpoint_every,
        keepCheckpoints: config.run.keep_checkpoints,
        eval: { examples, verify, maxNewTokens: config.eval.max_new_tokens },
        samplesPerEval: config.run.samples_per_step,
      },
      onEvent(e) {
        if (e.type === 'start')
          ui.info(
            `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : `training ${modelDir}`} (${(e.parameters / 1e6).toFixed(2)}M parameters) on ${e.source}; held-out: ${examples.length} problems`,
          );
        else if (e.type === 'step')
          bar.update(e.step, {
            loss: e.loss,
            'tok/s': Math.round(e.tokens / e.seconds),
            lr: e.lr,
            ...(evalLine ? { 'held-out': evalLine } : {}),
          });
        else if (e.type === 'eval') {
          evalLine = `${(100 * e.result.accuracy).toFixed(1)}%`;
          ui.info(
            `step ${e.step}: held-out accuracy ${evalLine} (${e.result.problems} problems, response tokens p50 ${e.result.responseLength.p50} max ${e.result.responseLength.max}, ${e.result.seconds.toFixed(0)}s)`,
          );
        } else if (e.type === 'checkpoint') ui.info(`checkpoint ${e.dir}`);
      },
    }).finally(() => verify.close?.());
    bar.done({ 'held-out': evalLine });
    const checkpoint = run.latestCheckpoint();
    ui.result(
      {
        run_dir: run.path,
        steps: result.step,
        accuracy: result.lastEval?.accuracy ?? null,
        checkpoint: checkpoint?.dir ?? null,
      },
      `sft done: ${result.step} steps, held-out accuracy ${result.lastEval ? `${(100 * result.lastEval.accuracy).toFixed(1)}%` : 'n/a'}; checkpoint ${checkpoint?.dir ?? 'none'}`,
    );
  },
};

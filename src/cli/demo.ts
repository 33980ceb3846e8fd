// `ringrl demo` (what `npm start` runs): the whole pipeline on built-in defaults —
// a fresh small model, hybrid-thinking SFT on the arithmetic task, held-out eval, RL with IcePop +
// C3PO++, eval again, and a report. It is the real commands run in sequence (`ringrl sft`,
// `ringrl rl`, `ringrl report`) on configs/demo.yaml, so the demo exercises exactly what users run.
import { existsSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, UsageError, parseFlags } from './command.ts';
import { sftCommand } from './sft.ts';
import { rlCommand } from './rl.ts';
import { createUi, uiFlags, uiFlagsHelp } from './ui.ts';
import { RunDir, writeReport } from '../report/index.ts';

const demoConfig = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs', 'demo.yaml');

export const demoCommand: Command = {
  name: 'demo',
  help: `usage: ringrl demo [--out DIR] [--seed N] [--set KEY.PATH=VALUE]...
${uiFlagsHelp}

Runs the whole pipeline on configs/demo.yaml: a fresh small model (char tokenizer), hybrid-thinking
SFT on the built-in arithmetic task (80% of teacher answers direct, 20% worked out in <think>),
held-out accuracy, RL with IcePop + C3PO++ (rewards from the task's verifier), held-out accuracy
again, and DIR/report.html. Prints the accuracy and the fraction of answers that think, before and
after RL. DIR (default runs/demo) gets sft/ and rl/ run directories; an existing DIR is moved
aside to DIR-<time> first, so nothing is lost. --seed N seeds the model's initialisation and all
sampling (default 0); --set applies to both phases (keys in docs/config.md).

examples:
  npm start
  ringrl demo --seed 1 --out runs/demo-seed1
  ringrl demo --set sft.steps=200 --set rl.steps=10      # a quicker, weaker run`,
  async run(argv) {
    const { values, positionals } = parseFlags('demo', argv, {
      ...uiFlags,
      out: { type: 'string' },
      seed: { type: 'string' },
      set: { type: 'string', multiple: true },
    });
    if (positionals.length)
      throw new UsageError(`ringrl demo: unexpected argument '${positionals[0]}' (see ringrl demo --help)`);
    const ui = createUi(values);
    const out = values.out ?? join('runs', 'demo');
    if (existsSync(out)) {
      const aside = `${out}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(out, aside);
      ui.info(`moved the previous ${out} to ${aside}`);
    }
    // --seed varies the whole run: the fresh model's initialisation and every sampling seed.
    const seed = values.seed ? ['--seed', values.seed, '--set', `model.init_seed=${values.seed}`] : [];
    const shared = [
      '--config',
      demoConfig,
      ...seed,
      ...(values.set ?? []).flatMap((s) => ['--set', s]),
      ...(values.quiet ? ['-q'] : []),
      ...(values.jsonl ? ['--jsonl'] : []),
    ];
    const started = performance.now();

    ui.info('── 1/3 hybrid-thinking SFT from scratch ──');
    const sftDir = join(out, 'sft');
    await sftCommand.run([...shared, '--out', sftDir]);
    const sftCheckpoint = RunDir.open(sftDir).latestCheckpoint();
    if (!sftCheckpoint) throw new UsageError(`ringrl demo: SFT wrote no checkpoint in ${sftDir}`);

    ui.info('── 2/3 RL with IcePop + C3PO++ ──');
    const rlDir = join(out, 'rl');
    await rlCommand.run([...shared, '--model', sftCheckpoint.dir, '--out', rlDir]);

    ui.info('── 3/3 report ──');
    const report = writeReport(rlDir, { out: join(out, 'report.html') });
    const evals = RunDir.open(rlDir)
      .readMetrics()
      .filter((r) => typeof r['eval/accuracy'] === 'number');
    const [before, after] = [evals[0]?.['eval/accuracy'], evals.at(-1)?.['eval/accuracy']] as (number | undefined)[];
    const [thinkingBefore, thinkingAfter] = [
      evals[0]?.['eval/thinking_frac'],
      evals.at(-1)?.['eval/thinking_frac'],
    ] as (number | undefined)[];
    const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);
    const minutes = (performance.now() - started) / 60000;
    ui.result(
      {
        before,
        after,
        gain_points: before !== undefined && after !== undefined ? 100 * (after - before) : null,
        thinking_before: thinkingBefore,
        thinking_after: thinkingAfter,
        minutes,
        report: report.path,
        sft_dir: sftDir,
        rl_dir: rlDir,
      },
      `demo done in ${minutes.toFixed(1)} min: held-out accuracy after SFT ${pct(before)} → after RL ${pct(after)} (answers that think: ${pct(thinkingBefore)} → ${pct(thinkingAfter)})\nreport: ${report.path}`,
    );
  },
};

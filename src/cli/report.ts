// `ringrl report RUN_DIR`: write the run's self-contained report.html.
import { type Command, UsageError, numberFlag, parseFlags } from './command.ts';
import { createUi, uiFlags, uiFlagsHelp } from './ui.ts';
import { writeReport } from '../report/report.ts';

const HELP = `usage: ringrl report RUN_DIR [--out FILE] [--samples N] [--quiet | --jsonl]

Writes RUN_DIR/report.html: one self-contained page (chart library inlined, no network access)
with a chart for every metric series in metrics.jsonl, grouped by name prefix (reward, eval,
response_length, icepop, mismatch, rollout, time, ...), a summary table, the newest samples
from samples.jsonl and the resolved config. Damaged lines (a torn last line from a crash, a
corrupt line) are skipped with a warning and listed in the report. See docs/report.md.

flags:
  --out FILE    write here instead of RUN_DIR/report.html
  --samples N   newest samples to show (default 50)
${uiFlagsHelp}

examples:
  ringrl report runs/demo
  ringrl report runs/demo --out /tmp/demo.html --samples 10
  ringrl report test/report/fixtures/synthetic-run --out /tmp/synthetic.html`;

export const reportCommand: Command = {
  name: 'report',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('report', argv, {
      ...uiFlags,
      out: { type: 'string' },
      samples: { type: 'string' },
    });
    const ui = createUi(values);
    if (positionals.length !== 1)
      throw new UsageError(
        `ringrl report: expected one RUN_DIR argument, got ${positionals.length} (see ringrl report --help)`,
      );
    const maxSamples = numberFlag('report', 'samples', values.samples, 50, { integer: true, min: 0 });
    const summary = writeReport(positionals[0]!, {
      maxSamples,
      warn: (m) => ui.warn(m),
      ...(values.out ? { out: values.out } : {}),
    });
    ui.result(
      {
        path: summary.path,
        charts: summary.charts,
        series: summary.series,
        rows: summary.rows,
        samples: summary.samples,
        warnings: summary.warnings.length,
      },
      `wrote ${summary.path} (${summary.series} series in ${summary.charts} charts from ${summary.rows} steps, ${summary.samples} samples${summary.warnings.length ? `, ${summary.warnings.length} damaged lines skipped` : ''})`,
    );
  },
};

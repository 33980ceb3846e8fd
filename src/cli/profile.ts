// `ringrl profile PATH...`: where onnxruntime's time went, by operator, from RINGRL_PROFILE traces.
import { type Command, UsageError, numberFlag, parseFlags } from './command.ts';
import { createUi, uiFlags, uiFlagsHelp } from './ui.ts';
import { profileFiles, summarizeProfile } from '../runtime/profile.ts';

const HELP = `usage: ringrl profile PATH... [--top N] [--quiet | --jsonl]

Sums onnxruntime profiles by operator: for each file, the runs it recorded, their wall time, the
kernels' share of it and the operators that took the most time. Record profiles by running any
command with RINGRL_PROFILE=DIR: every onnxruntime session then traces its first
RINGRL_PROFILE_RUNS runs (default 10) into DIR/ringrl-<pid>-<n>_<time>.json, one file per
session (Chrome trace format: open one in chrome://tracing or Perfetto for the timeline).
PATH is such a file or the directory. See docs/develop.md. For example:
  RINGRL_PROFILE=/tmp/prof RINGRL_PROFILE_RUNS=3 ringrl generate --model DIR --prompts p.json --max-new-tokens 8

flags:
  --top N   operators to list per file (default 12)
${uiFlagsHelp}

examples:
  ringrl profile /tmp/prof
  ringrl profile /tmp/prof/ringrl-4242-0_2026-12-02_10-00-00_000.json --top 30`;

export const profileCommand: Command = {
  name: 'profile',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('profile', argv, { ...uiFlags, top: { type: 'string' } });
    const ui = createUi(values);
    if (positionals.length === 0)
      throw new UsageError('ringrl profile: expected a profile file or directory (see ringrl profile --help)');
    const top = numberFlag('profile', 'top', values.top, 12, { integer: true, min: 1 });
    const files = positionals.flatMap(profileFiles);
    if (files.length === 0) throw new UsageError(`ringrl profile: no .json profiles in ${positionals.join(', ')}`);
    for (const file of files) {
      const s = summarizeProfile(file);
      const perRun = (ms: number) => (s.runs ? ms / s.runs : 0).toFixed(3);
      const lines = [
        `${file}: ${s.runs} runs, ${perRun(s.runMs)} ms a run, kernels ${perRun(s.kernelMs)} ms (${((100 * s.kernelMs) / (s.runMs || 1)).toFixed(0)}%)`,
        ...s.operators
          .slice(0, top)
          .map(
            (o) =>
              `  ${o.op.padEnd(24)} ${perRun(o.ms).padStart(10)} ms a run  ${((100 * o.ms) / (s.kernelMs || 1)).toFixed(1).padStart(5)}%  ${String(o.count).padStart(7)} calls`,
          ),
      ];
      ui.result(
        {
          file,
          runs: s.runs,
          run_ms: s.runMs,
          kernel_ms: s.kernelMs,
          operators: s.operators.slice(0, top).map((o) => ({ op: o.op, ms: o.ms, count: o.count })),
        },
        lines.join('\n'),
      );
    }
  },
};

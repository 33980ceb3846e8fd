// `ringrl reward math --input FILE.jsonl`: score completions against gold answers.
import { parseFlags, requireFlag, UsageError, type Command } from './command.ts';
import { verifyMath } from '../reward/math/verify.ts';
import { RingrlError } from '../errors.ts';
import { parseJsonLine, readTextFile } from '../util/files.ts';

const HELP = `usage: ringrl reward math --input FILE.jsonl [--fallback last_number|none]

Reads lines {"completion": "...", "answer": "..."} and prints one JSON line per input:
  {"reward": 0|1, "extracted": "...", "reason": "..."}
The answer is the last \\boxed{} (several boxes joined by commas or "and" are one list), else
"the final answer is ...", else the last $...$ formula, else the last number in the prose, as
Math-Verify takes it (a number after the last formula wins); --fallback none takes no number from
the prose. Equivalence follows Math-Verify: labels, chains, inequalities, intervals, sets,
matrices. See docs/rewards.md.

example:
  echo '{"completion": "so \\\\boxed{\\\\frac{1}{2}}", "answer": "0.5"}' > in.jsonl
  ringrl reward math --input in.jsonl`;

export const rewardCommand: Command = {
  name: 'reward',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'math')
      throw new UsageError(
        `ringrl reward: expected the subcommand 'math', got '${sub ?? ''}' (see ringrl reward --help)`,
      );
    const { values, positionals } = parseFlags('reward math', rest, {
      input: { type: 'string' },
      fallback: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`ringrl reward math: unexpected argument '${positionals[0]}'`);
    const input = requireFlag('reward math', values, 'input');
    const fallback = values.fallback ?? 'last_number';
    if (fallback !== 'none' && fallback !== 'last_number')
      throw new UsageError(`ringrl reward math: --fallback must be none or last_number, got '${fallback}'`);
    const lines = readTextFile(input, 'JSON lines {"completion": ..., "answer": ...} (--input)').split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${input}:${i + 1}`;
      const row = parseJsonLine(line, where);
      if (typeof row !== 'object' || row === null || Array.isArray(row))
        throw new RingrlError(`${where}: expected a JSON object {"completion": ..., "answer": ...}`);
      const { completion, answer } = row as Record<string, unknown>;
      if (typeof completion !== 'string')
        throw new RingrlError(
          `${where}: "completion" must be a string, got ${completion === undefined ? 'nothing' : typeof completion}`,
        );
      if (typeof answer !== 'string' && typeof answer !== 'number')
        throw new RingrlError(
          `${where}: "answer" must be a string or number, got ${answer === undefined ? 'nothing' : typeof answer}`,
        );
      console.log(JSON.stringify(verifyMath(completion, String(answer), { fallback })));
    });
  },
};

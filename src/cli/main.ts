// The `ringrl` command: dispatch to registered commands; render user errors as one line.
import { UsageError } from './command.ts';
import { commands } from './commands.ts';
import { RingrlError } from '../errors.ts';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'ringrl — reinforcement learning for thinking language models (IcePop, C3PO++)',
    '',
    'usage: ringrl <command> [flags]     ringrl <command> --help',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'demo, sft, rl, eval and report also take:',
    '  --quiet, -q   only results, warnings and errors (no progress)',
    '  --jsonl       one JSON object per line on stdout: progress, info, warning and result events',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`ringrl: unknown command '${name}'; expected one of: ${commands.map((c) => c.name).join(', ')}`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof RingrlError) {
      console.error((error as Error).message);
      return 2;
    }
    throw error;
  }
}

// `ringrl config show`: print the resolved config (defaults < --config files < --set overrides).
import { type Command, UsageError, parseFlags } from './command.ts';
import { configFlags, configFromFlags, formatConfig } from '../config/index.ts';

const HELP = `usage: ringrl config show [--config FILE]... [--set KEY.PATH=VALUE]... [--json]

Resolves a config the way every command does — built-in defaults, then each --config file in
order, then each --set in order — validates it, and prints the result (YAML, or JSON with --json).
A bad key, type or value is one line naming the file:line (or the --set), the key path and what
was expected. Reference: docs/config.md.

examples:
  ringrl config show
  ringrl config show --config configs/demo.yaml
  ringrl config show --config configs/demo.yaml --set sft.steps=200 --set sft.optimizer.lr=3e-4
  ringrl config show --set model.dir=runs/tiny --json`;

export const configCommand: Command = {
  name: 'config',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'show')
      throw new UsageError(
        `ringrl config: expected the subcommand 'show', got '${sub ?? ''}' (see ringrl config --help)`,
      );
    const { values, positionals } = parseFlags('config show', rest, { ...configFlags, json: { type: 'boolean' } });
    if (positionals.length > 0)
      throw new UsageError(
        `ringrl config show: unexpected argument '${positionals[0]}' (config files go after --config)`,
      );
    const config = configFromFlags(values);
    process.stdout.write(values.json ? JSON.stringify(config, null, 2) + '\n' : formatConfig(config));
  },
};

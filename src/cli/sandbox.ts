// `ringrl sandbox run|serve`: run one program in the sandbox, or serve the reward HTTP API.
import { readFileSync } from 'node:fs';
import { parseFlags, requireFlag, numberFlag, UsageError, type Command } from './command.ts';
import { ProcessSandbox } from '../reward/sandbox/pool.ts';
import { buildService } from '../reward/service/server.ts';
import { MAX_LIMITS, type Language } from '../reward/sandbox/types.ts';

const HELP = `usage:
  ringrl sandbox run --lang python|javascript --file F [--stdin F] [--timeout-ms N] [--memory-mb N]
  ringrl sandbox serve --port P [--host H] [--concurrency N] [--queue N] [--queue-timeout-ms N] [--require-isolation]

run     runs one program in the sandbox and prints one JSON line:
        {"status": "ok"|"error"|"timeout"|"memory"|"output_limit"|"killed"|"sandbox_error",
         "exit_code", "stdout", "stderr", "wall_ms", "isolation"}
serve   serves POST /run, /verify/math, /batch, /run_code (SandboxFusion-compatible),
        GET /health, /metrics (see docs/sandbox.md). Listens on 127.0.0.1 unless --host is given.

Isolation is bubblewrap when it works here, else rlimits only (a loud warning says so).

examples:
  echo 'print(input()[::-1])' > rev.py && echo hello > in.txt
  ringrl sandbox run --lang python --file rev.py --stdin in.txt
  ringrl sandbox serve --port 8080 --concurrency 8`;

function readInput(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`ringrl sandbox run: --${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

async function runOnce(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('sandbox run', argv, {
    lang: { type: 'string' },
    file: { type: 'string' },
    stdin: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'memory-mb': { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`ringrl sandbox run: unexpected argument '${positionals[0]}' (see ringrl sandbox --help)`);
  const lang = requireFlag('sandbox run', values, 'lang');
  if (lang !== 'python' && lang !== 'javascript') throw new UsageError(`ringrl sandbox run: --lang must be python or javascript, got '${lang}'`);
  const code = readInput('file', requireFlag('sandbox run', values, 'file'));
  const stdin = values.stdin ? readInput('stdin', values.stdin) : '';
  const wallMs = numberFlag('sandbox run', 'timeout-ms', values['timeout-ms'], 10_000, { min: 1, max: MAX_LIMITS.wallMs });
  const memoryMb = numberFlag('sandbox run', 'memory-mb', values['memory-mb'], 512, { min: 16, max: MAX_LIMITS.memoryMb });
  const sandbox = new ProcessSandbox({ warm: false });
  try {
    const r = await sandbox.run({ language: lang as Language, code, stdin, limits: { wallMs, cpuMs: wallMs, memoryMb } });
    console.log(JSON.stringify({ status: r.status, exit_code: r.exit_code, stdout: r.stdout, stderr: r.stderr, wall_ms: r.wall_ms, isolation: r.isolation, ...(r.message ? { message: r.message } : {}) }));
    return r.status === 'sandbox_error' ? 1 : 0;
  } finally {
    await sandbox.close();
  }
}

async function serve(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('sandbox serve', argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    concurrency: { type: 'string' },
    queue: { type: 'string' },
    'queue-timeout-ms': { type: 'string' },
    'require-isolation': { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`ringrl sandbox serve: unexpected argument '${positionals[0]}' (see ringrl sandbox --help)`);
  const port = numberFlag('sandbox serve', 'port', requireFlag('sandbox serve', values, 'port'), 0, { integer: true, min: 0, max: 65535 });
  const concurrency = values.concurrency === undefined ? undefined : numberFlag('sandbox serve', 'concurrency', values.concurrency, 0, { integer: true, min: 1, max: 1024 });
  const queue = values.queue === undefined ? undefined : numberFlag('sandbox serve', 'queue', values.queue, 0, { integer: true, min: 0, max: 100_000 });
  const queueTimeoutMs = numberFlag('sandbox serve', 'queue-timeout-ms', values['queue-timeout-ms'], 30_000, { min: 1, max: 600_000 });
  const host = values.host ?? '127.0.0.1';
  const { app, sandbox, limiter } = await buildService({
    concurrency,
    queue,
    queueTimeoutMs,
    sandboxOptions: { pythonWorkers: concurrency, requireIsolation: values['require-isolation'] === true },
  });
  const address = await app.listen({ port, host });
  console.log(`ringrl sandbox: listening on ${address} (isolation: ${sandbox.isolation}, concurrency ${limiter.concurrency}, queue ${limiter.queue})`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void app.close().then(() => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

export const sandboxCommand: Command = {
  name: 'sandbox',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'run') return runOnce(rest);
    if (sub === 'serve') return serve(rest);
    throw new UsageError(`ringrl sandbox: expected a subcommand 'run' or 'serve', got '${sub ?? ''}' (see ringrl sandbox --help)`);
  },
};

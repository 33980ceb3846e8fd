// `ringrl sandbox run|serve`: run one program in the sandbox, or serve the reward HTTP API.
import { readFileSync } from 'node:fs';
import { parseFlags, requireFlag, numberFlag, UsageError, type Command } from './command.ts';
import { ProcessSandbox } from '../reward/sandbox/pool.ts';
import { buildService } from '../reward/service/server.ts';
import { MAX_LIMITS, LANGUAGES, LANGUAGE_ALIASES, type Language } from '../reward/sandbox/types.ts';

const HELP = `usage:
  ringrl sandbox run --lang L --file F [--stdin F] [--timeout-ms N] [--compile-timeout-ms N] [--memory-mb N]
  ringrl sandbox serve --port P [--host H] [--api-key K] [--concurrency N] [--queue N]
                       [--queue-timeout-ms N] [--max-body-mb N] [--require-isolation]

run     runs one program in the sandbox and prints one JSON line:
        {"status": "ok"|"error"|"timeout"|"memory"|"output_limit"|"killed"|"compile_error"|"sandbox_error",
         "exit_code", "stdout", "stderr", "wall_ms", "isolation", "compile"?}
        L: ${LANGUAGES.join(', ')} (or ${Object.keys(LANGUAGE_ALIASES).join(', ')}).
serve   serves POST /run, /verify/math, /batch, /run_code (SandboxFusion-compatible),
        GET /health, /metrics (see docs/sandbox.md). Listens on 127.0.0.1 unless --host is given.
        --api-key K (or $RINGRL_SANDBOX_API_KEY): every endpoint but /health wants
        \`Authorization: Bearer K\`; required to listen on anything but loopback.
        --concurrency: runs at once (default 2 x CPUs, at least 8); --queue: requests that wait
        for a slot (default 8 x concurrency, at least 64); beyond both: 429 (/run_code: 504).

Isolation is bubblewrap when it works here, else rlimits only (a loud warning says so).

examples:
  echo 'print(input()[::-1])' > rev.py && echo hello > in.txt
  ringrl sandbox run --lang python --file rev.py --stdin in.txt
  ringrl sandbox serve --port 8080 --concurrency 8
  RINGRL_SANDBOX_API_KEY=secret ringrl sandbox serve --host 0.0.0.0 --port 8080`;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

function readInput(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(
      `ringrl sandbox run: --${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
}

async function runOnce(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('sandbox run', argv, {
    lang: { type: 'string' },
    file: { type: 'string' },
    stdin: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'compile-timeout-ms': { type: 'string' },
    'memory-mb': { type: 'string' },
  });
  if (positionals.length > 0)
    throw new UsageError(`ringrl sandbox run: unexpected argument '${positionals[0]}' (see ringrl sandbox --help)`);
  const name = requireFlag('sandbox run', values, 'lang');
  const lang = (LANGUAGES as readonly string[]).includes(name) ? (name as Language) : LANGUAGE_ALIASES[name];
  if (!lang) throw new UsageError(`ringrl sandbox run: --lang must be one of ${LANGUAGES.join(', ')}, got '${name}'`);
  const code = readInput('file', requireFlag('sandbox run', values, 'file'));
  const stdin = values.stdin ? readInput('stdin', values.stdin) : '';
  const wallMs = numberFlag('sandbox run', 'timeout-ms', values['timeout-ms'], 10_000, {
    min: 1,
    max: MAX_LIMITS.wallMs,
  });
  const compileTimeoutMs = numberFlag('sandbox run', 'compile-timeout-ms', values['compile-timeout-ms'], 10_000, {
    min: 1,
    max: MAX_LIMITS.wallMs,
  });
  const memoryMb = numberFlag('sandbox run', 'memory-mb', values['memory-mb'], 512, {
    min: 16,
    max: MAX_LIMITS.memoryMb,
  });
  const sandbox = new ProcessSandbox({ warm: false });
  try {
    const r = await sandbox.run({
      language: lang,
      code,
      stdin,
      limits: { wallMs, cpuMs: wallMs, memoryMb },
      compileTimeoutMs,
    });
    console.log(
      JSON.stringify({
        status: r.status,
        exit_code: r.exit_code,
        stdout: r.stdout,
        stderr: r.stderr,
        wall_ms: r.wall_ms,
        isolation: r.isolation,
        ...(r.compile ? { compile: r.compile } : {}),
        ...(r.message ? { message: r.message } : {}),
      }),
    );
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
    'api-key': { type: 'string' },
    'max-body-mb': { type: 'string' },
    'require-isolation': { type: 'boolean' },
  });
  if (positionals.length > 0)
    throw new UsageError(`ringrl sandbox serve: unexpected argument '${positionals[0]}' (see ringrl sandbox --help)`);
  const port = numberFlag('sandbox serve', 'port', requireFlag('sandbox serve', values, 'port'), 0, {
    integer: true,
    min: 0,
    max: 65535,
  });
  const concurrency =
    values.concurrency === undefined
      ? undefined
      : numberFlag('sandbox serve', 'concurrency', values.concurrency, 0, { integer: true, min: 1, max: 1024 });
  const queue =
    values.queue === undefined
      ? undefined
      : numberFlag('sandbox serve', 'queue', values.queue, 0, { integer: true, min: 0, max: 100_000 });
  const queueTimeoutMs = numberFlag('sandbox serve', 'queue-timeout-ms', values['queue-timeout-ms'], 120_000, {
    min: 1,
    max: 600_000,
  });
  const maxBodyMb = numberFlag('sandbox serve', 'max-body-mb', values['max-body-mb'], 16, { min: 1, max: 1024 });
  const host = values.host ?? '127.0.0.1';
  const apiKey = values['api-key'] ?? (process.env.RINGRL_SANDBOX_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.length < 8)
    throw new UsageError('ringrl sandbox serve: --api-key (or RINGRL_SANDBOX_API_KEY) must be at least 8 characters');
  if (!LOOPBACK.test(host) && apiKey === undefined) {
    throw new UsageError(
      `ringrl sandbox serve: --host ${host} lets anyone who can reach it run code here; give --api-key K (or set RINGRL_SANDBOX_API_KEY), or listen on 127.0.0.1`,
    );
  }
  const { app, sandbox, limiter } = await buildService({
    concurrency,
    queue,
    queueTimeoutMs,
    apiKey,
    bodyLimit: Math.round(maxBodyMb * (1 << 20)),
    sandboxOptions: { pythonWorkers: concurrency, requireIsolation: values['require-isolation'] === true },
  });
  void (sandbox as ProcessSandbox).buildCaches?.();
  const address = await app.listen({ port, host });
  const { available } = sandbox.languages();
  console.log(
    `ringrl sandbox: listening on ${address} (isolation: ${sandbox.isolation}, concurrency ${limiter.concurrency}, queue ${limiter.queue}, API key ${apiKey ? 'required' : 'off'}; languages: ${available.join(', ')})`,
  );
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
    throw new UsageError(
      `ringrl sandbox: expected a subcommand 'run' or 'serve', got '${sub ?? ''}' (see ringrl sandbox --help)`,
    );
  },
};

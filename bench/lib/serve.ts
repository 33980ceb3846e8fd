// A `ringrl serve` child process for the benches (serve, system): started from this checkout's
// CLI under tsx on a free port, stopped when its stdin closes; resolves to its base URL.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'bin.ts');

/** Start `ringrl serve --model modelDir ...flags`; the child is pushed onto `children` for the caller to stop. */
export function startServe(modelDir: string, flags: string[], children: ChildProcess[]): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', bin, 'serve', '--model', modelDir, '--port', '0', '--exit-with-stdin', ...flags],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(child);
  let out = '';
  return new Promise((ok, fail) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) ok(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`ringrl serve exited with ${code}`)));
  });
}

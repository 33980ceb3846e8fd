// `ringrl serve` for the benches (serve, system): a child process started from this checkout's
// CLI under tsx on a free port, stopped when its stdin closes; resolves to its base URL.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../../src/model/config.ts';
import { presetConfig } from '../../src/model/presets.ts';

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

/** A model of about `mb` MB (fp32) for the publication benches: the bench preset widened, layers added. */
export function publicationModel(mb: number): ModelConfig {
  const hidden = 512;
  const perLayer = 4 * hidden * hidden + 3 * hidden * 2048;
  const layers = Math.max(1, Math.round((mb * 1e6) / 4 / perLayer));
  return presetConfig('bench', {
    hiddenSize: hidden,
    intermediateSize: 2048,
    numHeads: 8,
    numKvHeads: 8,
    headDim: 64,
    numLayers: layers,
  });
}

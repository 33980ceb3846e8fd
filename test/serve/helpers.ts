// Helpers for the serving tests: a tiny model dir with the char tokenizer, and `ringrl serve` in a
// child process (stopped by the test, and by its closed stdin if the test process dies).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';
import { ringrlCli } from '../helpers.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');

/** A fresh tiny llama (2 layers, d_model 32, context 128) with the char tokenizer. */
export function tinyModelDir(seed = 0, std = 0.2): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-serve-'));
  const config = presetConfig('tiny', { vocabSize: builtinVocabSize('char'), maxPositions: 128 });
  // A larger init std than training's 0.02 makes the sampled distributions far from uniform, so
  // top-k/top-p truncation and temperature change what is sampled.
  saveModelDir(dir, config, initWeights(config, seed, std));
  writeTokenizer(dir, 'char');
  return dir;
}

export interface ServeChild {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start `ringrl serve --port 0 ...` and wait for its "listening on URL" line. */
export function spawnServe(args: string[], env: Record<string, string> = {}): Promise<ServeChild> {
  const child = spawn(process.execPath, [...ringrlCli, 'serve', '--port', '0', '--exit-with-stdin', ...args], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve({
          url: m[1]!,
          child,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`ringrl serve exited with ${code} before listening:\n${out}`)));
  });
}

export async function getJson(url: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  const res = await fetch(url, init);
  return (await res.json()) as Record<string, unknown>;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text answers stay text
  }
  return { status: res.status, body: parsed };
}

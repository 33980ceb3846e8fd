// Which rollout engine a run uses (rollout.engine), and the `ringrl serve` workers a run starts
// (rollout.engine_workers): child processes on loopback ports, waited for on /health, stopped when
// the run ends — normally, on error, on Ctrl-C/SIGTERM, and (through their stdin) when this
// process dies without a chance to clean up. They are supervised: a worker the HttpEngine loses
// (killed, stalled, failing) is killed and started again, up to rollout.faults.max_restarts times.
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, engineOptions, faultOptions } from '../config/index.ts';
import { HttpEngine, type ServerSupervisor } from '../engine/http.ts';
import { LocalEngine } from '../engine/local.ts';
import type { RolloutEngine } from '../engine/types.ts';
import { WeightPublisher, isLoopbackUrl } from '../engine/weights.ts';
import { RingrlError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { RuntimeOptions } from '../runtime/index.ts';

export interface RunEngine {
  engine: RolloutEngine;
  /** Stop what the run started (workers, connections). Safe to call twice. */
  close(): Promise<void>;
}

export interface EngineSpec {
  config: Config;
  model: ModelConfig;
  /** The model dir the run starts from (workers load it before the first weight publication). */
  modelDir: string;
  /** Where published weight versions go (<run>/weights). */
  weightsDir: string;
  runtime?: RuntimeOptions;
  /** Where engine lines go: workers started, an engine lost and what resumed where, an engine back. */
  log?: (message: string, level: 'info' | 'warn') => void;
}

export async function createRunEngine(spec: EngineSpec): Promise<RunEngine> {
  const r = spec.config.rollout;
  if (r.engine === 'local') {
    const engine = new LocalEngine(spec.model, engineOptions(spec.config, spec.runtime));
    return { engine, close: async () => {} };
  }
  const workers = r.engine_workers > 0 ? await startEngineWorkers(r.engine_workers, spec) : null;
  const apiKey = r.api_key ?? process.env.RINGRL_API_KEY;
  const servers = workers?.urls ?? r.servers;
  // Engines on this host read the versions from /dev/shm (when it has room); others from the run dir.
  const publisher = new WeightPublisher(spec.weightsDir, spec.model, {
    extraFilesFrom: spec.modelDir,
    shm: servers.every(isLoopbackUrl) ? 'auto' : false,
  });
  try {
    if (r.weights_url) {
      const { hostname, port } = new URL(r.weights_url);
      await publisher.serve({
        host: hostname.replace(/^\[|\]$/g, ''),
        port: Number(port),
        ...(apiKey ? { apiKey } : {}),
      });
    }
    const engine = new HttpEngine({
      servers,
      publisher,
      capacity: r.pool_capacity,
      retries: r.faults.retries,
      faults: faultOptions(spec.config),
      ...(workers ? { supervisor: workers, incrementalStream: true } : {}),
      ...(spec.log ? { log: spec.log } : {}),
      ...(apiKey && !workers ? { apiKey } : {}),
    });
    await engine.waitReady();
    return {
      engine,
      close: async () => {
        engine.close();
        await workers?.stop();
        await publisher.close();
      },
    };
  } catch (error) {
    await workers?.stop();
    await publisher.close();
    throw error;
  }
}

/**
 * The node arguments that start this ringrl's CLI in a child process: the module loaders this
 * process runs under (tsx when running from source) and the bin beside this module
 * (src/cli/bin.ts, or dist/cli/bin.js in the package).
 */
const CLI = [
  ...process.execArgv.flatMap((arg, i, all) =>
    ['--import', '--require', '--loader'].includes(arg) ? [arg, all[i + 1]!] : [],
  ),
  fileURLToPath(new URL(`../cli/bin${extname(fileURLToPath(import.meta.url))}`, import.meta.url)),
];
const live = new Set<ChildProcess>();
let hooked = false;

/** Kill every live worker when this process exits or is interrupted. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGTERM');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGTERM');
      process.kill(process.pid, signal); // then die of the signal as if unhandled
    });
  }
}

export interface EngineWorkers extends ServerSupervisor {
  urls: string[];
  stop(): Promise<void>;
}

/**
 * Start `n` `ringrl serve` processes on free loopback ports and wait until each listens. The
 * result is also the workers' supervisor: `restart(i)` kills what is left of worker i (a stalled
 * one too) and starts a fresh one on a new port (HttpEngine brings it to the newest weights).
 */
export async function startEngineWorkers(n: number, spec: EngineSpec): Promise<EngineWorkers> {
  hookExit();
  const r = spec.config.rollout;
  const cores = spec.config.runtime.threads || os.availableParallelism();
  const threads = Math.max(1, Math.floor(cores / n));
  const children: ChildProcess[] = [];
  let stopping = false;
  let onExit: ((index: number, why: string) => void) | undefined;
  const args = (i: number) => [
    ...CLI,
    'serve',
    '--model',
    spec.modelDir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--exit-with-stdin',
    '--incremental-streaming-output',
    '--capacity',
    String(Math.ceil(r.pool_capacity / n)),
    '--precision',
    r.precision,
    '--threads',
    String(threads),
    '--seed',
    String(spec.config.run.seed + i),
  ];
  const start = async (i: number): Promise<string> => {
    const child = spawn(process.execPath, args(i), { stdio: ['pipe', 'pipe', 'pipe'] });
    children[i] = child;
    live.add(child);
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (!stopping && children[i] === child) onExit?.(i, `exited with ${signal ?? code}`);
    });
    const url = await listening(child, i);
    if (stopping) {
      await ended(child, 'SIGTERM');
      throw new RingrlError('the run is stopping');
    }
    spec.log?.(`engine worker ${i} (pid ${child.pid}) on ${url}`, 'info');
    return url;
  };
  const stop = async () => {
    stopping = true;
    await Promise.all(children.map((child) => ended(child, 'SIGTERM')));
  };
  try {
    const urls = await Promise.all(Array.from({ length: n }, (_, i) => start(i)));
    return {
      urls,
      stop,
      onExit: (listener) => void (onExit = listener),
      why(i) {
        const child = children[i];
        const code = child?.signalCode ?? child?.exitCode;
        return code == null ? undefined : `exited with ${code}`;
      },
      async restart(i) {
        if (stopping) throw new RingrlError('the run is stopping');
        await ended(children[i]!, 'SIGKILL');
        return start(i);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Signal `child` (unless it has exited) and resolve once it has. */
function ended(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((done) => {
    live.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill(signal);
  });
}

/** The URL a worker prints once it listens; its exit before that is an error with its last words. */
function listening(child: ChildProcess, index: number): Promise<string> {
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (out = (out + chunk.toString()).slice(-2000)));
    child.once('exit', (code, signal) =>
      reject(
        new RingrlError(
          `rollout.engine_workers: worker ${index} (ringrl serve) exited with ${signal ?? code} before listening: ${out.trim().split('\n').at(-1) ?? ''}`,
        ),
      ),
    );
    child.once('error', (error) =>
      reject(new RingrlError(`rollout.engine_workers: cannot start worker ${index}: ${error.message}`)),
    );
  });
}

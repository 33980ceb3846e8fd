// AState's publisher: the one place policy versions become files engines load (docs/astate.md).
//
// Version N is written once as a Hugging Face model dir `<root>/v<N>` (config.json,
// model.safetensors in float32, tokenizer files, manifest.json): built in a hidden temp dir and
// renamed into place, so no engine ever sees half a snapshot. manifest.json holds the sha256 of
// every tensor's bytes, hashed by worker threads while the main thread writes (hash-pool.ts); a
// loader (snapshot.ts) verifies every tensor before an engine serves it. With `shm`, the versions
// live in /dev/shm (memory), where engines on this host read them without the trainer copying
// anything per engine; remote engines fetch them over HTTP (weights-http.ts).
//
// Garbage collection follows the engines: each engine's publication is `assign`ed (it is loading
// that version) and `acknowledge`d (it serves it); a version is deleted once it is neither among the
// newest `keep` nor loaded or served by any engine. The file of a deleted version is recycled for
// the next one: overwriting pages a file already has runs at 2-3x the speed of filling new ones.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { ftruncateSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RingrlError } from '../errors.ts';
import type { Weights } from '../model/checkpoint.ts';
import { type ModelConfig, toHfConfig } from '../model/config.ts';
import { parameterShapes } from '../model/llama.ts';
import { hashPool, type SharedBytes } from './hash-pool.ts';
import { type WeightServer, type WeightServerOptions, serveWeights } from './weights-http.ts';

export const MANIFEST_FILE = 'manifest.json';
export const SNAPSHOT_FORMAT = 'ringrl-weights/1';

export interface WeightManifest {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  /** sha256 (hex) of each tensor's float32 little-endian bytes, as stored in model.safetensors. */
  tensors: Record<string, { shape: number[]; sha256: string }>;
}

export interface PublisherOptions {
  /** Newest versions always kept, whatever the engines acknowledged. Default 1. */
  keep?: number;
  /** Copy these files from here into every version (tokenizer files), if present. */
  extraFilesFrom?: string;
  /**
   * Write the versions to /dev/shm instead of `root`: true, false, or 'auto' (shm when it exists
   * and has room for keep + 2 snapshots, else `root`). Default false.
   */
  shm?: boolean | 'auto';
}

const EXTRA_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];
const SHM = '/dev/shm';
const SHM_PREFIX = 'ringrl-weights-';
const SLOT_BYTES = 4 << 20; // staging slot: a chunk a worker hashes while the next is written
const SLOTS = 8;

interface EngineUse {
  serving?: number;
  loading?: number;
}

export class WeightPublisher {
  /** Where the versions are written: the root given, or a directory in /dev/shm. */
  readonly root: string;
  readonly config: ModelConfig;
  /** True when the versions live in /dev/shm. */
  readonly inMemory: boolean;
  private readonly keep: number;
  private readonly extraFilesFrom: string | undefined;
  private readonly engines = new Map<string, EngineUse>();
  private readonly staging: SharedBytes[] = [];
  private spare: string | null = null; // a collected version's model.safetensors, for reuse
  private server: WeightServer | null = null;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(root: string, config: ModelConfig, options: PublisherOptions = {}) {
    this.config = config;
    this.keep = options.keep ?? 1;
    this.extraFilesFrom = options.extraFilesFrom;
    if (!Number.isInteger(this.keep) || this.keep < 1)
      throw new RingrlError(`weights: keep must be an integer >= 1, got ${this.keep}`);
    const shm = options.shm ?? false;
    const bytes = snapshotBytes(config);
    this.inMemory = shm === true || (shm === 'auto' && shmHasRoom((this.keep + 2) * bytes));
    if (this.inMemory) {
      sweepStaleShm();
      this.root = join(SHM, `${SHM_PREFIX}${process.pid}-${shmCounter++}`);
      removeAtExit(this.root);
    } else this.root = resolve(root);
  }

  /** The directory version `version` is (or will be) published at. */
  pathOf(version: number): string {
    return join(this.root, `v${version}`);
  }

  /** Versions on disk, newest first. */
  versions(): number[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .map((name) => /^v(\d+)$/.exec(name))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
  }

  /**
   * Write `weights` as version `version` (replacing an earlier publication of the same number) and
   * collect versions no engine uses; returns its dir. Publications run one at a time.
   */
  publish(weights: Weights, version: number): Promise<string> {
    if (!Number.isInteger(version) || version < 0)
      throw new RingrlError(`weights: version must be an integer >= 0, got ${version}`);
    const run = this.busy.then(() => this.write(weights, version));
    this.busy = run.catch(() => {});
    return run;
  }

  /** Where `server` should load `version` from: the snapshot's URL for a remote server when serving over HTTP, else its path. */
  locate(server: string, version: number): string {
    if (this.server && !isLoopbackUrl(server)) return `${this.server.url}/v${version}`;
    return this.pathOf(version);
  }

  /** Serve the versions over HTTP (streamed, resumable with Range) for engines on other hosts. */
  async serve(options: WeightServerOptions = {}): Promise<string> {
    this.server ??= await serveWeights(this.root, options);
    return this.server.url;
  }

  /** `engine` is loading `version`: keep it until the engine serves something newer. */
  assign(engine: string, version: number): void {
    const use = this.engines.get(engine) ?? {};
    use.loading = version;
    this.engines.set(engine, use);
  }

  /** `engine` serves `version` now (what it served before may be collected). */
  acknowledge(engine: string, version: number): void {
    const use = this.engines.get(engine) ?? {};
    use.serving = version;
    if (use.loading !== undefined && use.loading <= version) delete use.loading;
    this.engines.set(engine, use);
    this.collect();
  }

  /** `engine` is gone (or failed to load what it was assigned): it keeps no version alive. */
  release(engine: string, loadingOnly = false): void {
    const use = this.engines.get(engine);
    if (!use) return;
    if (loadingOnly) delete use.loading;
    else this.engines.delete(engine);
    this.collect();
  }

  /** Versions some engine is loading or serving. */
  inUse(): Set<number> {
    const used = new Set<number>();
    for (const use of this.engines.values()) {
      if (use.serving !== undefined) used.add(use.serving);
      if (use.loading !== undefined) used.add(use.loading);
    }
    return used;
  }

  /** Stop serving over HTTP and, for /dev/shm, delete every version (they live in memory). */
  async close(): Promise<void> {
    await this.busy;
    await this.server?.close();
    this.server = null;
    if (this.inMemory) rmSync(this.root, { recursive: true, force: true });
  }

  /** Delete the versions that are neither among the newest `keep` nor used by an engine. */
  collect(): void {
    const used = this.inUse();
    for (const v of this.versions().slice(this.keep)) {
      if (used.has(v)) continue;
      const dir = this.pathOf(v);
      const file = join(dir, 'model.safetensors');
      if (!this.spare && existsSync(file)) {
        this.spare = join(this.root, '.spare.safetensors');
        renameSync(file, this.spare);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async write(weights: Weights, version: number): Promise<string> {
    mkdirSync(this.root, { recursive: true });
    const final = this.pathOf(version);
    const tmp = join(this.root, `.v${version}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const tensors = await this.writeTensors(join(tmp, 'model.safetensors'), weights);
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(toHfConfig(this.config), null, 2) + '\n');
    const manifest: WeightManifest = { format: SNAPSHOT_FORMAT, version, tensors };
    writeFileSync(join(tmp, MANIFEST_FILE), JSON.stringify(manifest) + '\n');
    if (this.extraFilesFrom)
      for (const f of EXTRA_FILES)
        if (existsSync(join(this.extraFilesFrom, f)))
          writeFileSync(join(tmp, f), readFileSync(join(this.extraFilesFrom, f)));
    // rename(2) cannot replace a non-empty directory: move the old one aside first.
    if (existsSync(final)) {
      const old = join(this.root, `.v${version}.old-${process.pid}`);
      renameSync(final, old);
      renameSync(tmp, final);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, final);
    this.collect();
    return final;
  }

  /**
   * model.safetensors (float32, tensors in model order, data 8-byte aligned), each tensor hashed by
   * the pool from a staging slot while the main thread writes it: sha256 is the slower of the two.
   */
  private async writeTensors(path: string, weights: Weights): Promise<WeightManifest['tensors']> {
    const shapes = parameterShapes(this.config);
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const [name, shape] of shapes) {
      const data = weights.get(name);
      if (!data) throw new RingrlError(`weights: no tensor '${name}' to publish`);
      const count = shape.reduce((a, b) => a * b, 1);
      if (data.length !== count)
        throw new RingrlError(
          `weights: tensor '${name}' has ${data.length} values; expected shape [${shape.join(', ')}]`,
        );
      header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
      offset += data.byteLength;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
    const head = Buffer.alloc(8 + Buffer.byteLength(json));
    head.writeBigUInt64LE(BigInt(head.length - 8), 0);
    head.write(json, 8, 'utf8');

    if (this.spare) renameSync(this.spare, path);
    this.spare = null;
    const fd = openSync(path, existsSync(path) ? 'r+' : 'w');
    const pool = hashPool();
    const pending: Promise<string | null>[] = [];
    const digests = new Map<string, Promise<string | null>>();
    try {
      writeAll(fd, head, 0);
      let position = head.length;
      let slot = 0;
      for (const [name] of shapes) {
        const data = weights.get(name)!;
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        const job = pool.job();
        for (let at = 0; at < bytes.length || at === 0; at += SLOT_BYTES) {
          const chunk = bytes.subarray(at, Math.min(bytes.length, at + SLOT_BYTES));
          const k = slot++ % SLOTS;
          await pending[k]; // the worker is done with this slot
          this.staging[k] ??= new Uint8Array(new SharedArrayBuffer(SLOT_BYTES));
          const staged = this.staging[k].subarray(0, chunk.length);
          staged.set(chunk);
          const last = at + SLOT_BYTES >= bytes.length;
          pending[k] = job.update(staged, last);
          if (last) digests.set(name, pending[k]);
          writeAll(fd, chunk, position);
          position += chunk.length;
          if (last) break;
        }
      }
      ftruncateSync(fd, position); // a recycled file may have been longer
    } finally {
      closeSync(fd);
    }
    const tensors: WeightManifest['tensors'] = {};
    for (const [name, shape] of shapes) tensors[name] = { shape, sha256: (await digests.get(name))! };
    return tensors;
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; )
    done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), position + done);
}

/** Bytes of a float32 snapshot's tensor data. */
export function snapshotBytes(config: ModelConfig): number {
  let n = 0;
  for (const shape of parameterShapes(config).values()) n += 4 * shape.reduce((a, b) => a * b, 1);
  return n;
}

let shmCounter = 0;
const shmDirs = new Set<string>();

/** /dev/shm is memory: what this process put there goes when it exits (publisher.close() goes first). */
function removeAtExit(dir: string): void {
  if (shmDirs.size === 0)
    process.once('exit', () => {
      for (const d of shmDirs) rmSync(d, { recursive: true, force: true });
    });
  shmDirs.add(dir);
}

function shmHasRoom(bytes: number): boolean {
  try {
    const s = statfsSync(SHM);
    return s.bavail * s.bsize >= bytes;
  } catch {
    return false; // no /dev/shm (macOS, some containers)
  }
}

/** Remove /dev/shm version dirs of publishers whose process is gone (killed without cleaning up). */
function sweepStaleShm(): void {
  for (const name of readdirSync(SHM)) {
    const m = new RegExp(`^${SHM_PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(SHM, name), { recursive: true, force: true });
    }
  }
}

/** Whether a server's base URL is on this host (loopback). */
export function isLoopbackUrl(url: string): boolean {
  return /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/?$/.test(url);
}

// The engine side of AState: load a published version (weights.ts) into memory the engine owns,
// verifying every tensor's sha256 against manifest.json before anything can serve it.
//
// A snapshot is read (from a dir: the run dir or /dev/shm; or from a trainer's URL, streamed and
// resumable: weights-http.ts) straight into one ArrayBuffer per tensor, which the engine then runs
// on as it is: one copy on the engine side, none on the trainer's. Each tensor, once in, is lent to
// a worker thread that hashes it while the main thread reads the next (hash-pool.ts). The loader
// keeps two sets of buffers: the one the engine serves from (`commit`) and a spare the next version
// is read into, so a failed or corrupt load leaves the served weights untouched and a good one
// reuses warm memory (a fresh buffer costs page faults: reads into it ran at a third of the speed).
// A model dir without manifest.json (a plain HF checkpoint, any dtype or sharding) loads through
// checkpoint.ts, unverified.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { type LoadedModel, type Weights, loadModelDir } from '../model/checkpoint.ts';
import { type ModelConfig, parseModelConfig, readModelConfig } from '../model/config.ts';
import { parameterShapes } from '../model/llama.ts';
import { hashPool } from './hash-pool.ts';
import { MANIFEST_FILE, SNAPSHOT_FORMAT, type WeightManifest } from './weights.ts';
import { type ByteSink, fetchInto, fetchText } from './weights-http.ts';

export interface LoadedSnapshot extends LoadedModel {
  /** null for a plain model dir (no manifest.json, nothing to verify against). */
  manifest: WeightManifest | null;
  /** The loader buffer holding the weights (-1: memory of their own). */
  slot: number;
}

export interface LoadOptions {
  /** Sent as `Authorization: Bearer KEY` when the location is a URL. */
  apiKey?: string;
}

export class SnapshotLoader {
  private readonly sets: Map<string, ArrayBuffer>[] = [new Map(), new Map()];
  private current = -1;

  /** Load and verify the snapshot at a dir or http(s) URL into the spare buffers; errors are one line naming the file. */
  load(location: string, options: LoadOptions = {}): Promise<LoadedSnapshot> {
    return /^https?:\/\//.test(location) ? this.fromUrl(location.replace(/\/$/, ''), options) : this.fromDir(location);
  }

  /** The engine serves `snapshot` now: its buffers are kept; the others become the spares. */
  commit(snapshot: LoadedSnapshot): void {
    if (snapshot.slot >= 0) this.current = snapshot.slot;
  }

  /** The spare set's buffer for a tensor (a fresh one if it has none of that size, or lent one out and lost it). */
  private buffer(slot: number, name: string, bytes: number): Uint8Array<ArrayBuffer> {
    let buffer = this.sets[slot]!.get(name);
    if (!buffer || buffer.byteLength !== bytes) this.sets[slot]!.set(name, (buffer = new ArrayBuffer(bytes)));
    return new Uint8Array(buffer);
  }

  private async fromDir(dir: string): Promise<LoadedSnapshot> {
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new RingrlError(
        `${dir}: model directory does not exist; expected a Hugging Face model dir (config.json + model.safetensors)`,
      );
    const manifestPath = join(dir, MANIFEST_FILE);
    if (!existsSync(manifestPath)) return { ...loadModelDir(dir), manifest: null, slot: -1 };
    const config = readModelConfig(join(dir, 'config.json'));
    const manifest = parseManifest(readFileSync(manifestPath, 'utf8'), manifestPath);
    const file = join(dir, 'model.safetensors');
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (error) {
      throw new RingrlError(
        `${file}: cannot read (${(error as NodeJS.ErrnoException).code}); the snapshot is incomplete`,
      );
    }
    const slot = this.current === 0 ? 1 : 0;
    const hashed: Promise<Hashed>[] = [];
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new RingrlError(`${file}: ${size} bytes, not a safetensors file; the snapshot is corrupt`);
      const head = Buffer.alloc(8);
      readExactly(fd, head, 0, file);
      const headerEnd = 8 + Number(head.readBigUInt64LE(0));
      if (headerEnd > size) throw new RingrlError(`${file}: header length exceeds the file size ${size}`);
      const header = Buffer.alloc(headerEnd - 8);
      readExactly(fd, header, 8, file);
      for (const span of tensorLayout(header, headerEnd, size, config, manifest, file)) {
        const bytes = this.buffer(slot, span.name, span.end - span.start);
        readExactly(fd, bytes, span.start, file);
        hashed.push(lend(span, bytes)); // a worker hashes it while the next one is read
      }
    } finally {
      closeSync(fd);
    }
    return { dir, config, ...(await this.verified(slot, hashed, manifest, file)), dtype: 'F32', manifest, slot };
  }

  private async fromUrl(url: string, options: LoadOptions): Promise<LoadedSnapshot> {
    const config = parseModelConfig(
      parseJson(await fetchText(`${url}/config.json`, options), `${url}/config.json`),
      `${url}/config.json`,
    );
    const manifest = parseManifest(await fetchText(`${url}/${MANIFEST_FILE}`, options), `${url}/${MANIFEST_FILE}`);
    const file = `${url}/model.safetensors`;
    const slot = this.current === 0 ? 1 : 0;
    // Each tensor is hashed as soon as its last byte arrives, while the rest downloads.
    const sink = new TensorSink(file, config, manifest, (name, bytes) => this.buffer(slot, name, bytes));
    await fetchInto(file, options, sink);
    const hashed = sink.hashed();
    return { dir: url, config, ...(await this.verified(slot, hashed, manifest, file)), dtype: 'F32', manifest, slot };
  }

  /** Wait for every tensor's digest (and its buffer's return); refuse the first that does not match. */
  private async verified(
    slot: number,
    hashed: Promise<Hashed>[],
    manifest: WeightManifest,
    file: string,
  ): Promise<{ weights: Weights }> {
    const results = await Promise.all(hashed);
    const weights: Weights = new Map();
    for (const { span, bytes } of results) {
      this.sets[slot]!.set(span.name, bytes.buffer);
      weights.set(span.name, new Float32Array(bytes.buffer));
    }
    for (const { span, digest } of results) {
      const expected = manifest.tensors[span.name]!.sha256;
      if (digest !== expected)
        throw new RingrlError(
          `${file}: tensor '${span.name}' does not match its sha256 in manifest.json (${digest.slice(0, 12)}… vs ${expected.slice(0, 12)}…); the snapshot is corrupt`,
        );
    }
    return { weights };
  }
}

interface Hashed {
  span: TensorSpan;
  digest: string;
  bytes: Uint8Array<ArrayBuffer>;
}

async function lend(span: TensorSpan, bytes: Uint8Array<ArrayBuffer>): Promise<Hashed> {
  return { span, ...(await hashPool().digestLent(bytes)) };
}

/**
 * A streamed safetensors file into per-tensor buffers: the header first, then each tensor's bytes;
 * a tensor complete is lent to be hashed at once. A download that starts over (the file changed)
 * drops what was lent: those buffers come back to nobody and fresh ones are allocated.
 */
class TensorSink implements ByteSink {
  private readonly file: string;
  private readonly config: ModelConfig;
  private readonly manifest: WeightManifest;
  private readonly allocate: (name: string, bytes: number) => Uint8Array<ArrayBuffer>;
  private head = Buffer.alloc(0);
  private total = 0;
  private spans: TensorSpan[] | null = null;
  private buffers: Uint8Array<ArrayBuffer>[] = [];
  private next = 0;
  private lent: Promise<Hashed>[] = [];

  constructor(
    file: string,
    config: ModelConfig,
    manifest: WeightManifest,
    allocate: (name: string, bytes: number) => Uint8Array<ArrayBuffer>,
  ) {
    this.file = file;
    this.config = config;
    this.manifest = manifest;
    this.allocate = allocate;
  }

  start(total: number): void {
    if (total < 8) throw new RingrlError(`${this.file}: ${total} bytes, not a safetensors file`);
    this.total = total;
    this.head = Buffer.alloc(0);
    this.spans = null;
    this.next = 0;
    for (const dropped of this.lent) dropped.catch(() => {});
    this.lent = [];
  }

  write(chunk: Buffer, position: number): void {
    if (!this.spans) {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length < 8) return;
      const headerEnd = 8 + Number(this.head.readBigUInt64LE(0));
      if (headerEnd > this.total)
        throw new RingrlError(`${this.file}: header length exceeds the file size ${this.total}`);
      if (this.head.length < headerEnd) return;
      this.spans = tensorLayout(
        this.head.subarray(8, headerEnd),
        headerEnd,
        this.total,
        this.config,
        this.manifest,
        this.file,
      );
      this.buffers = this.spans.map((s) => this.allocate(s.name, s.end - s.start));
      const rest = this.head.subarray(headerEnd);
      if (rest.length) this.write(rest, headerEnd);
      return;
    }
    let at = position;
    const end = position + chunk.length;
    while (at < end && this.next < this.spans.length) {
      const span = this.spans[this.next]!;
      if (at >= span.end) {
        this.next++;
        continue;
      }
      const from = Math.max(at, span.start);
      const to = Math.min(end, span.end);
      if (to > from) this.buffers[this.next]!.set(chunk.subarray(from - position, to - position), from - span.start);
      at = Math.max(to, at);
      if (to === span.end) this.lent.push(lend(span, this.buffers[this.next++]!));
      else if (to <= from) break;
    }
  }

  /** Every tensor's digest, once the download is complete. */
  hashed(): Promise<Hashed>[] {
    if (!this.spans) throw new RingrlError(`${this.file}: the download ended inside the header`);
    if (this.lent.length !== this.spans.length)
      throw new RingrlError(`${this.file}: the download ended inside tensor '${this.spans[this.lent.length]!.name}'`);
    return this.lent;
  }
}

/** Load one snapshot (or plain model dir) into memory of its own. */
export function loadSnapshot(location: string, options: LoadOptions = {}): Promise<LoadedSnapshot> {
  return new SnapshotLoader().load(location, options);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RingrlError(`${where}: malformed JSON (${(error as Error).message})`);
  }
}

export function parseManifest(text: string, where: string): WeightManifest {
  let manifest: WeightManifest;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new RingrlError(`${where}: malformed JSON (${(error as Error).message}); the snapshot is corrupt`);
  }
  if (manifest?.format !== SNAPSHOT_FORMAT || !manifest.tensors || typeof manifest.tensors !== 'object')
    throw new RingrlError(
      `${where}: expected {"format": "${SNAPSHOT_FORMAT}", "tensors": {...}}; the snapshot is corrupt`,
    );
  return manifest;
}

interface TensorSpan {
  name: string;
  shape: number[];
  start: number; // absolute byte offsets in the file
  end: number;
}

/** The config's tensors in the file, checked against the config (name, dtype, shape) and the manifest; by offset. */
function tensorLayout(
  headerJson: Uint8Array,
  headerEnd: number,
  size: number,
  config: ModelConfig,
  manifest: WeightManifest,
  file: string,
): TensorSpan[] {
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(headerJson).toString('utf8'));
  } catch {
    throw new RingrlError(`${file}: the safetensors header is not valid JSON; the snapshot is corrupt`);
  }
  if (headerEnd % 4 !== 0)
    throw new RingrlError(
      `${file}: tensor data starts at byte ${headerEnd}, not 4-byte aligned; expected a snapshot ringrl wrote`,
    );
  const spans: TensorSpan[] = [];
  for (const [name, shape] of parameterShapes(config)) {
    const t = header[name];
    if (!t)
      throw new RingrlError(
        `${file}: missing tensor '${name}'; expected shape [${shape.join(', ')}] for this config.json`,
      );
    if (t.dtype !== 'F32')
      throw new RingrlError(`${file}: tensor '${name}' has dtype ${t.dtype}; a snapshot stores F32`);
    if (!Array.isArray(t.shape) || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new RingrlError(
        `${file}: tensor '${name}' has shape [${t.shape}]; expected [${shape.join(', ')}] for this config.json`,
      );
    const [a, b] = t.data_offsets ?? [];
    const count = shape.reduce((x, y) => x * y, 1);
    if (typeof a !== 'number' || b - a !== 4 * count || headerEnd + b > size)
      throw new RingrlError(
        `${file}: tensor '${name}' data_offsets [${a}, ${b}] do not fit shape [${shape}] of F32 in ${size} bytes`,
      );
    if (!manifest.tensors[name]?.sha256)
      throw new RingrlError(`${file}: no sha256 for tensor '${name}' in manifest.json; the snapshot is corrupt`);
    spans.push({ name, shape, start: headerEnd + a, end: headerEnd + b });
  }
  return spans.sort((x, y) => x.start - y.start);
}

/** Fill `into` from the file at `position`. */
function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  for (let done = 0; done < into.length; ) {
    const n = readSync(fd, into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (n === 0)
      throw new RingrlError(
        `${file}: file ends at byte ${position + done}, before the tensor data it declares; the snapshot is corrupt`,
      );
    done += n;
  }
}

// Versioned weight publication, the one place policy versions become files an engine loads.
//
// Version N is written as a Hugging Face model dir `<root>/v<N>` (config.json, model.safetensors,
// tokenizer files, manifest.json): built in a hidden temp dir and renamed into place, so a server
// never reads a torn snapshot. manifest.json holds the sha256 of every tensor's bytes; a loader
// verifies them and refuses a corrupted snapshot with one line naming the tensor. Old versions are
// garbage-collected, keeping the newest `keep` (a server may still be loading the previous one).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { type LoadedModel, type Weights, loadModelDir, saveModelDir } from '../model/checkpoint.ts';
import type { ModelConfig } from '../model/config.ts';
import { parameterShapes } from '../model/llama.ts';

export const MANIFEST_FILE = 'manifest.json';
const FORMAT = 'ringrl-weights/1';

export interface WeightManifest {
  format: typeof FORMAT;
  version: number;
  /** sha256 (hex) of each tensor's float32 little-endian bytes, as stored in model.safetensors. */
  tensors: Record<string, { shape: number[]; sha256: string }>;
}

export interface PublisherOptions {
  /** Versions kept on disk (the newest); older ones are deleted after each publish. Default 2. */
  keep?: number;
  /** Copy these files from here into every version (tokenizer files), if present. */
  extraFilesFrom?: string;
}

const EXTRA_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

export class WeightPublisher {
  readonly root: string;
  readonly config: ModelConfig;
  private readonly keep: number;
  private readonly extraFilesFrom: string | undefined;

  constructor(root: string, config: ModelConfig, options: PublisherOptions = {}) {
    this.root = root;
    this.config = config;
    this.keep = options.keep ?? 2;
    this.extraFilesFrom = options.extraFilesFrom;
    if (!Number.isInteger(this.keep) || this.keep < 1)
      throw new RingrlError(`weights: keep must be an integer >= 1, got ${this.keep}`);
  }

  /** The directory version `version` is (or will be) published at. */
  pathOf(version: number): string {
    return join(this.root, `v${version}`);
  }

  /** Write `weights` as version `version` (replacing an earlier publication of the same number); returns its dir. */
  publish(weights: Weights, version: number): string {
    if (!Number.isInteger(version) || version < 0)
      throw new RingrlError(`weights: version must be an integer >= 0, got ${version}`);
    mkdirSync(this.root, { recursive: true });
    const final = this.pathOf(version);
    const tmp = join(this.root, `.v${version}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    saveModelDir(tmp, this.config, weights);
    writeFileSync(join(tmp, MANIFEST_FILE), JSON.stringify(manifestOf(this.config, weights, version)) + '\n');
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
    this.collect(version);
    return final;
  }

  /** Delete all but the newest `keep` versions (never `current`). */
  private collect(current: number): void {
    const versions = readdirSync(this.root)
      .map((name) => /^v(\d+)$/.exec(name))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    for (const v of versions.slice(this.keep))
      if (v !== current) rmSync(this.pathOf(v), { recursive: true, force: true });
  }
}

function tensorHash(data: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');
}

export function manifestOf(config: ModelConfig, weights: Weights, version: number): WeightManifest {
  const tensors: WeightManifest['tensors'] = {};
  for (const [name, shape] of parameterShapes(config)) {
    const data = weights.get(name);
    if (!data) throw new RingrlError(`weights: no tensor '${name}' to publish`);
    tensors[name] = { shape, sha256: tensorHash(data) };
  }
  return { format: FORMAT, version, tensors };
}

/**
 * Load a model dir; when it holds a manifest.json (a published version), check every tensor's
 * sha256 against it first. Errors are one line naming the dir and the tensor.
 */
export function loadVerifiedModelDir(dir: string): LoadedModel & { manifest: WeightManifest | null } {
  const model = loadModelDir(dir);
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return { ...model, manifest: null };
  let manifest: WeightManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new RingrlError(`${path}: malformed JSON (${(error as Error).message}); the snapshot is corrupt`);
  }
  if (manifest?.format !== FORMAT || !manifest.tensors || typeof manifest.tensors !== 'object')
    throw new RingrlError(`${path}: expected {"format": "${FORMAT}", "tensors": {...}}; the snapshot is corrupt`);
  for (const name of model.weights.keys()) {
    const expected = manifest.tensors[name]?.sha256;
    if (!expected) throw new RingrlError(`${path}: no sha256 for tensor '${name}'; the snapshot is corrupt`);
    const actual = tensorHash(model.weights.get(name)!);
    if (actual !== expected)
      throw new RingrlError(
        `${join(dir, 'model.safetensors')}: tensor '${name}' does not match its sha256 in manifest.json (${actual.slice(0, 12)}… vs ${expected.slice(0, 12)}…); the snapshot is corrupt`,
      );
  }
  return { ...model, manifest };
}

// Model directories in Hugging Face layout: config.json + model.safetensors, or shards
// model-0000i-of-0000n.safetensors listed in model.safetensors.index.json. Loading checks every
// tensor the config implies, by name and shape, and names the file, tensor and expected shape when
// one is missing or mis-shaped; it reads shard by shard, tensor by tensor, so the peak is about the
// float32 model. Saving writes the dtype asked for (bf16/fp16 round to nearest even), sharded at a
// size limit with the index HF writes, and config.json as the source had it.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { type ModelConfig, readModelConfig, toHfConfig } from './config.ts';
import { parameterShapes } from './llama.ts';
import { type NamedArray, type StoredDtype, readSafetensors, writeSafetensors } from './safetensors.ts';

/** Parameter values by HF name, float32, row-major. */
export type Weights = Map<string, Float32Array>;

export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  weights: Weights;
  /** The dtype the weights were stored in (of the embedding table), what an export writes by default. */
  dtype: StoredDtype;
}

export const INDEX_FILE = 'model.safetensors.index.json';

export function loadModelDir(dir: string): LoadedModel {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new RingrlError(
      `${dir}: model directory does not exist; expected a Hugging Face model dir (config.json + model.safetensors)`,
    );
  const config = readModelConfig(join(dir, 'config.json'));
  const shapes = parameterShapes(config);
  const { files, describe } = safetensorFiles(dir);
  const found = new Map<string, NamedArray & { file: string }>();
  for (const file of files) {
    for (const [name, t] of readSafetensors(file, (n) => shapes.has(n) && !found.has(n)))
      found.set(name, { ...t, file });
  }
  const weights: Weights = new Map();
  for (const [name, shape] of shapes) {
    const t = found.get(name);
    if (!t)
      throw new RingrlError(
        `${describe(name)}: missing tensor '${name}'; expected shape [${shape.join(', ')}] for this config.json`,
      );
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new RingrlError(
        `${t.file}: tensor '${name}' has shape [${t.shape.join(', ')}]; expected [${shape.join(', ')}] for this config.json`,
      );
    }
    weights.set(name, t.data);
  }
  const stored = found.get('model.embed_tokens.weight')!.dtype;
  return { dir, config, weights, dtype: stored === 'BF16' || stored === 'F16' ? stored : 'F32' };
}

/** The safetensors files of a model dir, checked to exist, and where to say a tensor should have been. */
function safetensorFiles(dir: string): { files: string[]; describe: (tensor: string) => string } {
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) {
    let map: unknown;
    try {
      map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
    } catch (error) {
      throw new RingrlError(`${index}: malformed JSON (${(error as Error).message})`);
    }
    if (!map || typeof map !== 'object' || Array.isArray(map))
      throw new RingrlError(`${index}: field 'weight_map' must be an object mapping tensor names to shard files`);
    const weightMap = map as Record<string, unknown>;
    for (const [tensor, file] of Object.entries(weightMap)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\'))
        throw new RingrlError(
          `${index}: field 'weight_map.${tensor}' is ${JSON.stringify(file)}; expected a file name in this directory`,
        );
      if (!existsSync(join(dir, file)))
        throw new RingrlError(
          `${index}: field 'weight_map.${tensor}' names shard '${file}', but ${join(dir, file)} does not exist`,
        );
    }
    const files = [...new Set(Object.values(weightMap) as string[])].map((f) => join(dir, f));
    return { files, describe: (tensor) => (weightMap[tensor] ? join(dir, weightMap[tensor] as string) : index) };
  }
  const single = join(dir, 'model.safetensors');
  if (!existsSync(single)) throw new RingrlError(`${dir}: no model.safetensors (or ${INDEX_FILE}) found`);
  return { files: [single], describe: () => single };
}

export interface SaveOptions {
  /** Stored dtype. Default F32 (training checkpoints hold the float32 master weights). */
  dtype?: StoredDtype;
  /** Largest shard in bytes; a model above it is split into model-0000i-of-0000n.safetensors + index. Default 5 GB (HF's). */
  maxShardBytes?: number;
  /** config.json's torch_dtype; default: the source config's own value (or float32 for presets). */
  torchDtype?: string;
}

const torchDtypes: Record<StoredDtype, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };
const bytesPer: Record<StoredDtype, number> = { F32: 4, BF16: 2, F16: 2 };

/**
 * Write config.json and the weights, sharded like HF's save_pretrained: tensors in model order,
 * a new shard whenever the next tensor would pass the limit (a tensor larger than it gets a shard
 * of its own), and the index with metadata.total_size (bytes of tensor data) and the weight map.
 */
export function saveModelDir(dir: string, config: ModelConfig, weights: Weights, options: SaveOptions = {}): void {
  const dtype = options.dtype ?? 'F32';
  const maxShard = options.maxShardBytes ?? 5e9;
  mkdirSync(dir, { recursive: true });
  const shards: Map<string, NamedArray>[] = [new Map()];
  let shardBytes = 0,
    totalBytes = 0;
  for (const [name, shape] of parameterShapes(config)) {
    const data = weights.get(name);
    if (!data) throw new Error(`saveModelDir: no weights for '${name}'`);
    const bytes = data.length * bytesPer[dtype];
    if (shardBytes > 0 && shardBytes + bytes > maxShard) {
      shards.push(new Map());
      shardBytes = 0;
    }
    shards.at(-1)!.set(name, { shape, data });
    shardBytes += bytes;
    totalBytes += bytes;
  }
  for (const f of readdirSync(dir))
    if (/^model(-\d+-of-\d+)?\.safetensors$/.test(f) || f === INDEX_FILE) rmSync(join(dir, f)); // stale weights of another layout
  if (shards.length === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), shards[0]!, {}, dtype, [...shards[0]!.keys()]);
  } else {
    const weightMap: Record<string, string> = {};
    const digits = (n: number) => String(n).padStart(5, '0');
    shards.forEach((tensors, i) => {
      const file = `model-${digits(i + 1)}-of-${digits(shards.length)}.safetensors`;
      writeSafetensors(join(dir, file), tensors, {}, dtype, [...tensors.keys()]);
      for (const name of tensors.keys()) weightMap[name] = file;
    });
    writeFileSync(
      join(dir, INDEX_FILE),
      JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2) + '\n',
    );
  }
  const hf = { ...toHfConfig(config) };
  if (options.torchDtype) {
    hf.torch_dtype = options.torchDtype;
    if ('dtype' in hf) hf.dtype = options.torchDtype; // transformers >= 4.56 writes dtype
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
}

/** The stored dtype a config.json asks for (torch_dtype, or dtype in newer transformers), if it names one we write. */
export function configDtype(config: ModelConfig): StoredDtype | undefined {
  const name = config.hf?.torch_dtype ?? config.hf?.dtype;
  return (Object.keys(torchDtypes) as StoredDtype[]).find((d) => torchDtypes[d] === name);
}

export { torchDtypes };

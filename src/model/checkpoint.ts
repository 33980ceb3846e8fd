// Model directories in Hugging Face layout: config.json + model.safetensors (or sharded with
// model.safetensors.index.json). Loading checks every tensor the config implies, by name and
// shape, and names the file, tensor and expected shape when one is missing or mis-shaped.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RingrlError } from '../errors.ts';
import { type ModelConfig, readModelConfig, toHfConfig } from './config.ts';
import { parameterShapes } from './llama.ts';
import { type NamedArray, readSafetensors, writeSafetensors } from './safetensors.ts';

/** Parameter values by HF name, float32, row-major. */
export type Weights = Map<string, Float32Array>;

export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  weights: Weights;
}

export function loadModelDir(dir: string): LoadedModel {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RingrlError(`${dir}: model directory does not exist; expected a Hugging Face model dir (config.json + model.safetensors)`);
  const config = readModelConfig(join(dir, 'config.json'));
  const tensors = new Map<string, NamedArray & { file: string }>();
  for (const file of safetensorFiles(dir)) {
    for (const [name, t] of readSafetensors(file)) tensors.set(name, { ...t, file });
  }
  const weights: Weights = new Map();
  const mainFile = join(dir, 'model.safetensors');
  for (const [name, shape] of parameterShapes(config)) {
    const t = tensors.get(name);
    if (!t) throw new RingrlError(`${mainFile}: missing tensor '${name}'; expected shape [${shape.join(', ')}] for this config.json`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new RingrlError(`${t.file}: tensor '${name}' has shape [${t.shape.join(', ')}]; expected [${shape.join(', ')}] for this config.json`);
    }
    weights.set(name, t.data);
  }
  return { dir, config, weights };
}

function safetensorFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
    } catch (error) {
      throw new RingrlError(`${index}: malformed JSON (${(error as Error).message})`);
    }
    if (!map || typeof map !== 'object') throw new RingrlError(`${index}: expected a 'weight_map' object`);
    return [...new Set(Object.values(map))].map((f) => join(dir, f));
  }
  const single = join(dir, 'model.safetensors');
  if (!existsSync(single)) throw new RingrlError(`${dir}: no model.safetensors (or model.safetensors.index.json) found`);
  return [single];
}

export function saveModelDir(dir: string, config: ModelConfig, weights: Weights): void {
  mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, NamedArray>();
  for (const [name, shape] of parameterShapes(config)) {
    const data = weights.get(name);
    if (!data) throw new Error(`saveModelDir: no weights for '${name}'`);
    tensors.set(name, { shape, data });
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(config), null, 2) + '\n');
}

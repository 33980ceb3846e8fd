import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Command, UsageError, parseFlags } from './command.ts';
import { configDtype, loadModelDir, saveModelDir, torchDtypes } from '../model/checkpoint.ts';
import type { StoredDtype } from '../model/safetensors.ts';
import { copyTokenizerFiles } from '../tokenizer/index.ts';

const dtypeFlags: Record<string, StoredDtype> = { bf16: 'BF16', fp16: 'F16', fp32: 'F32' };

/** '5GB', '500MB', '2GiB', or a byte count, as HF's max_shard_size reads them (KB/MB/GB decimal, KiB/MiB/GiB binary). */
export function parseByteSize(raw: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(raw.trim());
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
  const bytes = m ? Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]! : NaN;
  if (!(bytes >= 1))
    throw new UsageError(`ringrl export: --${flag} must be a size like 5GB, 500MB or 2GiB, got '${raw}'`);
  return Math.floor(bytes);
}

export const exportCommand: Command = {
  name: 'export',
  help: `usage: ringrl export CHECKPOINT --out DIR [--dtype bf16|fp16|fp32] [--max-shard-size 5GB] [--force]

Reads a model dir or training checkpoint (float32 master weights) and writes DIR: the weights in
--dtype (default: the config's torch_dtype, i.e. the dtype the model came in; bf16 and fp16 round
to nearest even), split into model-0000i-of-0000n.safetensors with model.safetensors.index.json
when above --max-shard-size (HF's default 5GB), config.json as the source had it (torch_dtype set
to the written dtype) and the tokenizer files. DIR is written in full or not at all.

examples:
  ringrl export runs/qwen/checkpoints/100 --out exported/qwen-step100
  ringrl export runs/tiny --out /tmp/tiny-bf16 --dtype bf16 --max-shard-size 500MB`,
  async run(argv) {
    const { values, positionals } = parseFlags('export', argv, {
      out: { type: 'string' },
      dtype: { type: 'string' },
      'max-shard-size': { type: 'string' },
      force: { type: 'boolean' },
    });
    if (positionals.length !== 1)
      throw new UsageError(
        `ringrl export: expected one CHECKPOINT directory, got ${positionals.length} (see ringrl export --help)`,
      );
    const source = positionals[0]!;
    const out = values.out;
    if (!out) throw new UsageError('ringrl export: --out is required (see ringrl export --help)');
    if (values.dtype !== undefined && !dtypeFlags[values.dtype])
      throw new UsageError(`ringrl export: --dtype '${values.dtype}' is unknown; expected bf16, fp16 or fp32`);
    const maxShardBytes = parseByteSize(values['max-shard-size'] ?? '5GB', 'max-shard-size');
    if (resolve(out) === resolve(source))
      throw new UsageError(`ringrl export: --out ${out} is the checkpoint itself; choose another directory`);
    if (existsSync(out) && readdirSync(out).length > 0 && !values.force)
      throw new UsageError(`ringrl export: --out ${out} exists and is not empty; pass --force to overwrite`);
    const model = loadModelDir(source); // every check happens here, before anything is written
    const dtype = values.dtype ? dtypeFlags[values.dtype]! : (configDtype(model.config) ?? model.dtype);
    const tmp = join(dirname(resolve(out)), `.${resolve(out).split('/').pop()}.export-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      saveModelDir(tmp, model.config, model.weights, { dtype, maxShardBytes, torchDtype: torchDtypes[dtype] });
      copyTokenizerFiles(source, tmp);
      rmSync(out, { recursive: true, force: true });
      renameSync(tmp, out);
    } catch (error) {
      rmSync(tmp, { recursive: true, force: true });
      throw error;
    }
    const files = readdirSync(out).filter((f) => f.endsWith('.safetensors')).length;
    console.log(
      `wrote ${out} (${model.config.modelType}, ${dtype}, ${files} safetensors file${files === 1 ? '' : 's'})`,
    );
  },
};

// `ringrl export`: a bf16 sharded checkpoint goes out bit-exact in bf16 (the fixture was written by
// PyTorch), fp32 goes to bf16/fp16 with round-to-nearest-even, shards and the index follow HF's
// layout, and bad model dirs fail with one line naming the file and field, writing nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCommand } from '../../src/cli/export.ts';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { bf16Bits, f16Bits, readSafetensors } from '../../src/model/safetensors.ts';
import { runCommand } from '../config/run-cli.ts';
import { byCodeUnit } from '../../src/util/order.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');
const work = mkdtempSync(join(tmpdir(), 'ringrl-export-'));

/** Every tensor of a model dir (all shards), with its stored dtype. */
function tensorsOf(dir: string) {
  const all = new Map<string, { dtype?: string; data: Float32Array; shape: number[] }>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.safetensors')))
    for (const [n, t] of readSafetensors(join(dir, f))) all.set(n, t);
  return all;
}

test('export of a bf16 sharded qwen3 (tied) is bit-exact in bf16, re-sharded with HF index and config', async () => {
  const source = join(fixtures, 'qwen3-bf16-tied');
  const out = join(work, 'qwen3');
  const run = await runCommand(exportCommand, source, '--out', out, '--max-shard-size', '10KB');
  assert.equal(run.code, 0, run.err);
  const files = readdirSync(out).sort();
  const shards = files.filter((f) => f.endsWith('.safetensors'));
  assert.ok(shards.length >= 3, `sharded at 10KB: ${files}`);
  shards.forEach((f, i) =>
    assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`),
  );
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
  const want = tensorsOf(source);
  const got = tensorsOf(out);
  assert.deepEqual(
    [...got.keys()].sort(byCodeUnit),
    [...want.keys()].sort(byCodeUnit),
    'same tensor names (no lm_head: tied)',
  );
  assert.deepEqual(Object.keys(index.weight_map).sort(byCodeUnit), [...want.keys()].sort(byCodeUnit));
  assert.equal(
    index.metadata.total_size,
    [...want.values()].reduce((a, t) => a + t.data.length * 2, 0),
  );
  for (const [name, t] of want) {
    const g = got.get(name)!;
    assert.equal(g.dtype, 'BF16', name);
    assert.deepEqual(g.shape, t.shape, name);
    assert.ok(
      g.data.every((v, i) => Object.is(v, t.data[i])),
      `${name}: bf16 bits differ`,
    );
    assert.ok(readdirSync(out).includes(index.weight_map[name]), name);
  }
  assert.deepEqual(
    JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')),
    JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')),
  );
  const back = loadModelDir(out);
  assert.equal(back.dtype, 'BF16');
  assert.ok(
    [...back.weights].every(([n, w]) => w.every((v, i) => Object.is(v, loadModelDir(source).weights.get(n)![i]))),
  );
});

test('export --dtype bf16 / fp16 of an fp32 model rounds to nearest even and sets torch_dtype', async () => {
  const source = join(fixtures, 'llama');
  const want = tensorsOf(source);
  for (const [flag, dtype, torchDtype, bits] of [
    ['bf16', 'BF16', 'bfloat16', bf16Bits],
    ['fp16', 'F16', 'float16', f16Bits],
  ] as const) {
    const out = join(work, `llama-${flag}`);
    const run = await runCommand(exportCommand, source, '--out', out, '--dtype', flag);
    assert.equal(run.code, 0, run.err);
    assert.deepEqual(
      readdirSync(out).filter((f) => f.includes('safetensors')),
      ['model.safetensors'],
      'one file below the shard size',
    );
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, torchDtype);
    const raw = readFileSync(join(out, 'model.safetensors'));
    const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString());
    const base = 8 + Number(raw.readBigUInt64LE(0));
    for (const [name, t] of want) {
      assert.equal(header[name].dtype, dtype);
      const [start] = header[name].data_offsets;
      for (let i = 0; i < t.data.length; i++)
        assert.equal(raw.readUInt16LE(base + start + 2 * i), bits(t.data[i]!), `${name}[${i}]`);
    }
  }
});

test('bf16 and fp16 rounding: ties to even, overflow, subnormals, NaN', () => {
  // bf16 keeps 7 mantissa bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1.0).
  assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80);
  assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82); // halfway between 0x3f81 and 0x3f82 -> even
  assert.equal(bf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above halfway -> up
  assert.equal(bf16Bits(-2), 0xc000);
  assert.equal(bf16Bits(3.4028234663852886e38), 0x7f80); // float32 max rounds to inf, as torch does
  assert.equal(bf16Bits(NaN) & 0x7fc0, 0x7fc0);
  assert.equal(f16Bits(65504), 0x7bff);
  assert.equal(f16Bits(65520), 0x7c00); // halfway to the next binade -> inf
  assert.equal(f16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f16Bits(2 ** -25), 0x0000); // halfway to 0 -> even (0)
  assert.equal(f16Bits(3 * 2 ** -25), 0x0002); // 1.5 subnormal steps -> even (2)
  assert.equal(f16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(f16Bits(-1.5), 0xbe00);
});

function oneLine(result: { code: number; err: string }, pattern: RegExp): void {
  assert.equal(result.code, 2);
  assert.ok(!result.err.includes('\n'), result.err);
  assert.match(result.err, pattern);
}

test('bad input: unsupported rope_scaling, a shard listed but missing -> one line naming file and field; nothing written', async () => {
  const yarn = join(work, 'yarn');
  cpSync(join(fixtures, 'llama-rope-llama3'), yarn, { recursive: true });
  const config = JSON.parse(readFileSync(join(yarn, 'config.json'), 'utf8'));
  writeFileSync(
    join(yarn, 'config.json'),
    JSON.stringify({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
  );
  const out1 = join(work, 'never1');
  oneLine(
    await runCommand(exportCommand, yarn, '--out', out1),
    /yarn[/\\]config\.json: field 'rope_scaling\.rope_type' is "yarn"; expected one of default, linear, dynamic, llama3/,
  );
  assert.ok(!existsSync(out1));

  const torn = join(work, 'torn');
  cpSync(join(fixtures, 'qwen3-bf16-tied'), torn, { recursive: true });
  rmSync(join(torn, 'model-00002-of-00002.safetensors'));
  const out2 = join(work, 'never2');
  oneLine(
    await runCommand(exportCommand, torn, '--out', out2),
    /torn[/\\]model\.safetensors\.index\.json: field 'weight_map\.[\w.]+' names shard 'model-00002-of-00002\.safetensors', but .* does not exist/,
  );
  assert.ok(!existsSync(out2));
  assert.deepEqual(
    readdirSync(work).filter((f) => f.startsWith('.never')),
    [],
    'no temp dirs left',
  );

  oneLine(
    await runCommand(exportCommand, join(fixtures, 'llama'), '--out', join(work, 'x'), '--dtype', 'int8'),
    /--dtype 'int8' is unknown; expected bf16, fp16 or fp32/,
  );
  oneLine(
    await runCommand(exportCommand, join(fixtures, 'llama'), '--out', join(work, 'x'), '--max-shard-size', 'lots'),
    /--max-shard-size must be a size like 5GB/,
  );
});

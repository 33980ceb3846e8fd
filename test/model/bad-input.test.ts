// Bad model dirs give one-line errors naming the file, the tensor and the expected shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelDir } from '../../src/model/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';

const fixture = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama');

function copyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-bad-'));
  cpSync(fixture, dir, { recursive: true });
  return dir;
}

function oneLine(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: Error) => {
    assert.equal(error.name, 'RingrlError');
    assert.ok(!error.message.includes('\n'), `one line: ${error.message}`);
    assert.match(error.message, pattern);
    return true;
  });
}

test('malformed config.json names the file', () => {
  const dir = copyFixture();
  writeFileSync(join(dir, 'config.json'), '{"model_type": "llama", ');
  oneLine(() => loadModelDir(dir), new RegExp(`${join(dir, 'config.json')}: malformed JSON`));
});

test('a config field of the wrong type names the field', () => {
  const dir = copyFixture();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: 'big' }));
  oneLine(() => loadModelDir(dir), /config\.json: field 'hidden_size' expected number, received string/);
});

test('unknown model_type names the field and the supported types', () => {
  const dir = copyFixture();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2' }));
  oneLine(() => loadModelDir(dir), /field 'model_type' is 'gpt2'; expected one of llama, qwen2, qwen3, mixtral/);
});

test('a missing tensor names the file, the tensor and its expected shape', () => {
  const dir = copyFixture();
  const tensors = readSafetensors(join(dir, 'model.safetensors'));
  tensors.delete('model.layers.1.self_attn.k_proj.weight');
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  oneLine(
    () => loadModelDir(dir),
    /model\.safetensors: missing tensor 'model\.layers\.1\.self_attn\.k_proj\.weight'; expected shape \[16, 32\]/,
  );
});

test('a mis-shaped tensor names the file, the tensor, its shape and the expected one', () => {
  const dir = copyFixture();
  const tensors = readSafetensors(join(dir, 'model.safetensors'));
  tensors.set('model.norm.weight', { shape: [31], data: new Float32Array(31) });
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  oneLine(
    () => loadModelDir(dir),
    /model\.safetensors: tensor 'model\.norm\.weight' has shape \[31\]; expected \[32\]/,
  );
});

test('a truncated safetensors file and a missing dir are named', () => {
  const dir = copyFixture();
  writeFileSync(join(dir, 'model.safetensors'), Buffer.from([1, 2, 3]));
  oneLine(() => loadModelDir(dir), /model\.safetensors: not a safetensors file/);
  oneLine(() => loadModelDir(join(dir, 'nope')), /model directory does not exist/);
});

test('safetensors round-trips F32 exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-st-'));
  const data = Float32Array.from([1.5, -2.25, 3e-8, 7]);
  writeSafetensors(join(dir, 'x.safetensors'), new Map([['w', { shape: [2, 2], data }]]));
  const back = readSafetensors(join(dir, 'x.safetensors')).get('w')!;
  assert.deepEqual(back.shape, [2, 2]);
  assert.deepEqual(Array.from(back.data), Array.from(data));
});

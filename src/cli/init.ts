import { existsSync, readdirSync } from 'node:fs';
import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { presets, presetConfig, initWeights } from '../model/presets.ts';
import { saveModelDir } from '../model/checkpoint.ts';
import { parameterShapes } from '../model/llama.ts';

export const initCommand: Command = {
  name: 'init',
  summary: 'write a fresh randomly initialised model dir (HF layout) from a preset',
  help: `usage: ringrl init --preset NAME --out DIR [--seed N] [--force]

Writes config.json + model.safetensors (Hugging Face layout) with HF's initialisation.

presets:
${Object.entries(presets).map(([name, p]) => `  ${name.padEnd(10)} ${p.description}`).join('\n')}

examples:
  ringrl init --preset tiny --out runs/tiny
  ringrl init --preset small-moe --out runs/moe --seed 7`,
  async run(argv) {
    const { values } = parseFlags('init', argv, { preset: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' } });
    const preset = requireFlag('init', values, 'preset');
    const out = requireFlag('init', values, 'out');
    const seed = numberFlag('init', 'seed', values.seed, 0, { integer: true, min: 0 });
    if (!presets[preset]) throw new UsageError(`ringrl init: --preset '${preset}' is unknown; expected one of ${Object.keys(presets).join(', ')}`);
    if (existsSync(out) && readdirSync(out).length > 0 && !values.force) throw new UsageError(`ringrl init: --out ${out} exists and is not empty; pass --force to overwrite`);
    const config = presetConfig(preset);
    saveModelDir(out, config, initWeights(config, seed));
    const n = [...parameterShapes(config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    console.log(`wrote ${out} (${config.modelType}, ${config.numLayers} layers, d_model ${config.hiddenSize}, ${(n / 1e6).toFixed(2)}M parameters)`);
  },
};

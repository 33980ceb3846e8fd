// Config loading: layering, --set parsing, and bad input as one-line errors naming file:line and key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig, parseSet, formatConfig, configSchema } from '../../src/config/index.ts';
import { leafFields, sections } from '../../src/config/describe.ts';
import { adamWDefaults } from '../../src/train/optimizer.ts';
import { runCommand } from './run-cli.ts';
import { configCommand } from '../../src/cli/config.ts';

const cli = (...argv: string[]) => runCommand(configCommand, ...argv.slice(1));

const work = mkdtempSync(join(tmpdir(), 'ringrl-config-'));
function yamlFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** The one-line error a config load throws. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    const message = (e as Error).message;
    assert.equal((e as Error).name, 'RingrlError');
    assert.equal(message.split('\n').length, 1, `one line: ${message}`);
    return message;
  }
  assert.fail('expected a config error');
}

test('an empty config resolves to the documented defaults', () => {
  const config = loadConfig();
  assert.equal(config.model.preset, 'small');
  assert.equal(config.model.dir, null);
  assert.equal(config.data.task, 'arithmetic');
  assert.equal(config.sft.optimizer.lr, adamWDefaults.lr);
  assert.equal(config.sft.optimizer.weight_decay, adamWDefaults.weightDecay);
  assert.equal(config.runtime.threads, 0);
  assert.equal(config.run.dir, 'runs');
});

test('files merge left to right, --set wins, null restores the default', () => {
  const a = yamlFile(
    'a.yaml',
    'sft:\n  steps: 10\n  optimizer:\n    lr: 0.01\n    schedule: cosine\nruntime:\n  execution_providers: [cuda, cpu]\n',
  );
  const b = yamlFile('b.yaml', 'sft:\n  optimizer:\n    lr: 0.02\nruntime:\n  execution_providers: [webgpu]\n');
  const config = loadConfig({
    files: [a, b],
    sets: ['sft.steps=7', 'model.dir=some/dir', 'sft.optimizer.schedule=null'],
  });
  assert.equal(config.sft.steps, 7);
  assert.equal(config.sft.optimizer.lr, 0.02);
  assert.equal(config.sft.optimizer.schedule, 'constant');
  assert.deepEqual(config.runtime.execution_providers, ['webgpu'], 'lists replace, not concatenate');
  assert.equal(config.model.dir, 'some/dir');
  assert.equal(config.model.preset, null, 'a model dir means no preset');
  // A later layer that sets one of two alternatives replaces the other; one layer may not set both.
  const p = yamlFile('p.yaml', 'model:\n  preset: tiny\ndata:\n  train_file: t.jsonl\n');
  const swapped = loadConfig({ files: [p], sets: ['model.dir=m', 'data.task=countdown'] });
  assert.deepEqual(
    [swapped.model.dir, swapped.model.preset, swapped.data.task, swapped.data.train_file],
    ['m', null, 'countdown', null],
  );
  const both = yamlFile('both.yaml', 'model:\n  preset: tiny\n  dir: m\n');
  assert.equal(
    errorOf(() => loadConfig({ files: [both] })),
    `${both}:2: model.preset: set model.dir or model.preset, not both`,
  );
});

test('the resolved config round-trips through formatConfig', () => {
  const config = loadConfig({ sets: ['model.dir=x', 'data.train_file=t.jsonl', 'run.name=r1', 'eval.k=4'] });
  const file = yamlFile('resolved.yaml', formatConfig(config));
  assert.deepEqual(loadConfig({ files: [file] }), config);
});

test('--set parses values as YAML and rejects malformed keys', () => {
  assert.deepEqual(parseSet('sft.optimizer.lr=3e-4'), { path: ['sft', 'optimizer', 'lr'], value: 3e-4 });
  assert.deepEqual(parseSet('runtime.execution_providers=[cuda]'), {
    path: ['runtime', 'execution_providers'],
    value: ['cuda'],
  });
  assert.deepEqual(parseSet('sft.pack=false'), { path: ['sft', 'pack'], value: false });
  assert.match(
    errorOf(() => parseSet('sft.steps')),
    /^--set sft\.steps: expected KEY\.PATH=VALUE/,
  );
  assert.match(
    errorOf(() => parseSet('sft..steps=3')),
    /expected KEY\.PATH=VALUE/,
  );
  assert.match(
    errorOf(() => parseSet('a=[1,')),
    /^--set a=\[1,: the value is not valid YAML/,
  );
});

test('unknown key: one line naming file:line, the key path and a suggestion', () => {
  const f = yamlFile('unknown.yaml', 'model:\n  preset: tiny\nsft:\n  steps: 5\n  optimizr:\n    lr: 0.1\n');
  const message = errorOf(() => loadConfig({ files: [f] }));
  assert.ok(
    message.startsWith(
      `${f}:5: sft.optimizr: unknown key (did you mean 'optimizer'?); expected one of: steps, batch_size, `,
    ),
    message,
  );
  assert.match(message, /, optimizer$/);
  assert.match(
    errorOf(() => loadConfig({ sets: ['trainer.lr=1'] })),
    /^--set trainer\.lr=1: trainer: unknown key; expected one of: model, data, sft, eval, rl, rollout, reward, system, runtime, run$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['rollout.bogus_knob=1'] })),
    /^--set rollout\.bogus_knob=1: rollout\.bogus_knob: unknown key; expected one of: /,
  );
});

test('wrong type: one line naming the key path, the expected type and the value', () => {
  const f = yamlFile('type.yaml', 'sft:\n  steps: many\n');
  assert.equal(
    errorOf(() => loadConfig({ files: [f] })),
    `${f}:2: sft.steps: expected a whole number, got 'many' (a string)`,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['sft.steps=2.5'] })),
    /sft\.steps: expected a whole number, got 2\.5$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['sft.pack=yes'] })),
    /sft\.pack: expected true or false, got 'yes' \(a string\)$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['sft=3'] })),
    /sft: expected a mapping, got 3$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['data.task=chess'] })),
    /data\.task: expected one of arithmetic, countdown, pycode, got 'chess' \(a string\)$/,
  );
});

test('out-of-range value: one line naming the key path and the range', () => {
  const f = yamlFile('range.yaml', '# comment\nsft:\n  optimizer:\n    lr: -0.5\n');
  assert.equal(
    errorOf(() => loadConfig({ files: [f] })),
    `${f}:4: sft.optimizer.lr: expected a number > 0, got -0.5`,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['data.difficulty=11'] })),
    /data\.difficulty: expected a whole number <= 10, got 11$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['sft.steps=0'] })),
    /sft\.steps: expected a whole number >= 1, got 0$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['sft.optimizer.beta2=1'] })),
    /sft\.optimizer\.beta2: expected a number < 1, got 1$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['run.name=../escape'] })),
    /run\.name: expected a run name/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['rollout.kv_segments=[64, 64]'] })),
    /rollout\.kv_segments: must be ascending, got \[64, 64\]$/,
  );
  assert.match(
    errorOf(() => loadConfig({ sets: ['rollout.kv_segments=[0]'] })),
    /rollout\.kv_segments\.0: expected a number >= 1, got 0$/,
  );
  assert.deepEqual(loadConfig({ sets: ['rollout.kv_segments=[]'] }).rollout.kv_segments, []);
  assert.match(
    errorOf(() => loadConfig({ sets: ['data.no_think_fraction=0.6', 'data.brief_fraction=0.5'] })),
    /data\.brief_fraction: no_think_fraction \+ brief_fraction must be at most 1, got 0\.6 \+ 0\.5$/,
  );
});

test('several problems: unknown keys first, at most three shown', () => {
  const message = errorOf(() =>
    loadConfig({ sets: ['sft.steps=0', 'sft.batch_size=0', 'eval.k=0', 'eval.top_p=2', 'sft.bogus=1'] }),
  );
  assert.match(message, /^--set sft\.bogus=1: sft\.bogus: unknown key/);
  assert.match(message, /\(and 2 more\)$/);
});

test('unreadable and malformed files are one-line errors', () => {
  assert.match(
    errorOf(() => loadConfig({ files: [join(work, 'missing.yaml')] })),
    /missing\.yaml: cannot read \(no such file\); expected a YAML config file$/,
  );
  const bad = yamlFile('bad.yaml', 'sft:\n  steps: 5\n   lr: [\n');
  assert.match(
    errorOf(() => loadConfig({ files: [bad] })),
    /bad\.yaml:\d+:\d+: invalid YAML: /,
  );
  const dup = yamlFile('dup.yaml', 'sft:\n  steps: 5\n  steps: 6\n');
  assert.match(
    errorOf(() => loadConfig({ files: [dup] })),
    /dup\.yaml:3:\d+: invalid YAML: Map keys must be unique/,
  );
  const list = yamlFile('list.yaml', '- a\n- b\n');
  assert.match(
    errorOf(() => loadConfig({ files: [list] })),
    /list\.yaml: expected a mapping of config sections .* got a list$/,
  );
  assert.equal(loadConfig({ files: [yamlFile('empty.yaml', '# nothing\n')] }).sft.steps, 1000);
});

test('every field is documented and every section is strict', () => {
  const fields = leafFields();
  assert.ok(fields.length >= 35, `${fields.length} fields`);
  for (const [path, node] of fields)
    assert.ok(node.description && node.description.length > 10, `${path} has no description`);
  for (const [path, node] of sections()) {
    assert.ok(node.description, `section ${path} has no description`);
    assert.equal(
      (node as { additionalProperties?: unknown }).additionalProperties,
      false,
      `section ${path} must reject unknown keys`,
    );
  }
  assert.ok(configSchema.safeParse({}).success, 'an empty config is valid');
});

test('every example in configs/ is valid', () => {
  const files = readdirSync('configs').filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const f of files) loadConfig({ files: [join('configs', f)] });
});

test('ringrl config show prints the resolved config; errors are one line with exit 2', async () => {
  const shown = await cli('config', 'show', '--config', 'configs/tiny-smoke.yaml', '--set', 'sft.steps=9');
  assert.equal(shown.code, 0, shown.err);
  const printed = parse(shown.out);
  assert.equal(printed.sft.steps, 9);
  assert.equal(printed.model.preset, 'tiny');
  assert.equal(printed.sft.optimizer.lr, adamWDefaults.lr);
  const json = await cli('config', 'show', '--json', '--set', 'eval.k=3');
  assert.equal(JSON.parse(json.out).eval.k, 3);
  const bad = await cli('config', 'show', '--set', 'sft.steps=-3');
  assert.equal(bad.code, 2);
  assert.equal(bad.err, '--set sft.steps=-3: sft.steps: expected a whole number >= 1, got -3');
  assert.match((await cli('config', 'frob')).err, /expected the subcommand 'show'/);
});

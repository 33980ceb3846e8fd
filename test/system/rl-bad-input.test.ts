// Bad RL setups fail before any work starts, with one line naming the key or file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { taskSource } from '../../src/data/index.ts';
import { getVerifier } from '../../src/reward/verifiers.ts';
import { initWeights, presetConfig } from '../../src/model/presets.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { RunDir } from '../../src/report/index.ts';
import { runRl } from '../../src/system/rl-run.ts';
import { builtinVocabSize, writeTokenizer } from '../../src/tokenizer/index.ts';

function oneLineError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => !e.message.includes('\n') && pattern.test(e.message));
}

test('a token budget smaller than one response, and G < 2 with GRPO, are config errors naming the key', () => {
  oneLineError(
    () => loadConfig({ sets: ['rollout.max_new_tokens=512', 'rollout.token_budget=500'] }),
    /rollout\.token_budget: must be at least max_new_tokens \(512\): a budget smaller than one response's max length, got 500/,
  );
  oneLineError(
    () => loadConfig({ sets: ['rollout.group_size=1'] }),
    /rollout\.group_size: must be at least 2 with rl\.advantage\.estimator grpo/,
  );
  oneLineError(() => loadConfig({ sets: ['rl.loss.icepop.alpha=6'] }), /rl\.loss\.icepop\.alpha/);
  oneLineError(() => loadConfig({ sets: ['rollout.mode=fast'] }), /rollout\.mode: expected one of c3po, sync, async/);
});

test('a checkpoint whose tokenizer does not match the model is refused before any work starts', async () => {
  const work = mkdtempSync(join(tmpdir(), 'ringrl-rl-bad-'));
  const model = join(work, 'model');
  const config = presetConfig('tiny'); // vocab 64: smaller than the char tokenizer's
  saveModelDir(model, config, initWeights(config, 0));
  writeTokenizer(model, 'char');
  assert.ok(builtinVocabSize('char') > config.vocabSize);
  const run = RunDir.create(join(work, 'run'));
  const rl = loadConfig({ sets: [`model.dir=${JSON.stringify(model)}`] });
  await assert.rejects(
    runRl({
      run,
      config: rl,
      modelDir: model,
      resume: false,
      source: taskSource('arithmetic', {}),
      evalExamples: [],
      verify: getVerifier('arithmetic'),
    }),
    /tokenizer\.json: has ids up to \d+ but .*config\.json has vocab_size 64; the tokenizer does not belong to this model/,
  );
  assert.deepEqual(run.readMetrics(), [], 'nothing was run or logged');
  // And a model dir without any tokenizer is named too.
  const bare = join(work, 'bare');
  cpSync(model, bare, { recursive: true, filter: (src) => !src.includes('tokenizer') });
  writeFileSync(join(bare, 'note.txt'), 'no tokenizer here');
  await assert.rejects(
    runRl({
      run: RunDir.create(join(work, 'run2')),
      config: rl,
      modelDir: bare,
      resume: false,
      source: taskSource('arithmetic', {}),
      evalExamples: [],
      verify: getVerifier('arithmetic'),
    }),
    /tokenizer/,
  );
});

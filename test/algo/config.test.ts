// Bad policy-loss and shaping config: one line, naming the key path and what was expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingrlError, parsePolicyLossConfig, parseShapingConfig, policyLossSpec } from '../../src/index.ts';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof RingrlError, `expected a RingrlError, got ${error}`);
    assert.ok(!error.message.includes('\n'), `one line: ${error.message}`);
    return error.message;
  }
  assert.fail('expected an error');
}

test('defaults: IcePop [0.5, 5], TIS cap 2, clip 0.2/0.2, token-mean, KL and entropy off', () => {
  assert.deepEqual(parsePolicyLossConfig({}), {
    correction: 'icepop',
    routing_replay: 'off',
    bypass: false,
    icepop: { alpha: 0.5, beta: 5 },
    tis: { cap: 2 },
    clip: { low: 0.2, high: 0.2 },
    aggregation: 'token-mean',
    kl: { coef: 0, estimator: 'k3' },
    entropy: { coef: 0 },
  });
});

const cases: [string, unknown, RegExp][] = [
  [
    'alpha >= beta',
    { icepop: { alpha: 5, beta: 2 } },
    /^policy loss config: icepop\.alpha: must be less than icepop\.beta \(2\), got 5$/,
  ],
  ['alpha == beta', { icepop: { alpha: 1, beta: 1 } }, /icepop\.alpha: must be less than icepop\.beta/],
  ['band without 1', { icepop: { alpha: 1.5, beta: 5 } }, /icepop\.alpha: the band \[1\.5, 5\] must contain 1/],
  ['negative budget', { aggregation: 'budget', budget: -100 }, /^policy loss config: budget: .*>0 \(got -100\)$/],
  ['budget missing', { aggregation: 'budget' }, /budget: required when aggregation is 'budget'/],
  [
    'unknown correction',
    { correction: 'ice-pop' },
    /^policy loss config: correction: Invalid option: expected one of "none"\|"tis"\|"icepop"\|"mis" \(got "ice-pop"\)$/,
  ],
  ['unknown aggregation', { aggregation: 'mean' }, /aggregation: Invalid option.*\(got "mean"\)/],
  ['unknown key', { icepop: { alpha: 0.5, upper: 5 } }, /^policy loss config: icepop\.upper: unknown key$/],
  ['bypass with a correction', { bypass: true, correction: 'tis' }, /correction: must be 'none' with bypass: true/],
  ['clip low >= 1', { clip: { low: 1 } }, /clip\.low: .*<1 \(got 1\)/],
  ['tis cap < 1', { tis: { cap: 0.5 } }, /tis\.cap: .*>=1 \(got 0\.5\)/],
  ['negative KL coefficient', { kl: { coef: -0.1 } }, /kl\.coef: .*\(got -0\.1\)/],
  ['unknown KL estimator', { kl: { estimator: 'k2' } }, /kl\.estimator: .*\(got "k2"\)/],
  ['wrong type', { clip: { high: '0.28' } }, /clip\.high: Invalid input: expected number, received string/],
];
for (const [name, config, pattern] of cases) {
  test(`bad policy loss config: ${name}`, () => {
    assert.match(
      message(() => parsePolicyLossConfig(config)),
      pattern,
    );
    assert.match(
      message(() => policyLossSpec(config as never)),
      pattern,
      'the graph loss validates the same way',
    );
  });
}

test('several bad keys are reported together on one line', () => {
  assert.match(
    message(() => parsePolicyLossConfig({ correction: 'x', clip: { low: -1 } })),
    /correction: .*; clip\.low: /,
  );
});

test('bad shaping config', () => {
  assert.match(
    message(() => parseShapingConfig({ overlong_penalty: { buffer: 50 }, max_response_length: 20 })),
    /^batch shaping config: overlong_penalty\.buffer: must be at most max_response_length \(20\), got 50$/,
  );
  assert.match(
    message(() => parseShapingConfig({ max_response_length: 0 })),
    /max_response_length: .*\(got 0\)/,
  );
  assert.match(
    message(() => parseShapingConfig({ truncated: 'drop' })),
    /truncated: .*\(got "drop"\)/,
  );
});

// The math verifier against a table of true and false pairs (test/reward/math_cases.ts), plus
// extraction, bounded work on huge inputs, and the reason/extracted fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answersEquivalent, verifyMath } from '../../src/reward/math/verify.ts';
import { normalizeAnswer } from '../../src/reward/math/normalize.ts';
import { CASES, EXTRACTION_CASES } from './math_cases.ts';

test('the equivalence table has at least 150 cases with both outcomes in every category', () => {
  assert.ok(CASES.length >= 150, `only ${CASES.length} cases`);
  const categories = new Map<string, Set<boolean>>();
  for (const [, , equal, category] of CASES)
    categories.set(category, (categories.get(category) ?? new Set()).add(equal));
  for (const [category, outcomes] of categories) {
    if (!['text'].includes(category))
      assert.equal(outcomes.size, 2, `category ${category} lacks a ${outcomes.has(true) ? 'false' : 'true'} pair`);
  }
});

for (const [gold, candidate, equal, category] of CASES) {
  test(`${category}: ${gold} ${equal ? '==' : '!='} ${candidate}`, () => {
    const verdict = answersEquivalent(gold, candidate);
    assert.equal(
      verdict.equal,
      equal,
      `reason: ${verdict.reason}; normalised ${JSON.stringify(normalizeAnswer(gold))} vs ${JSON.stringify(normalizeAnswer(candidate))}`,
    );
    assert.ok(verdict.reason.length > 0);
  });
}

for (const [completion, gold, reward, why] of EXTRACTION_CASES) {
  test(`extraction (${why}): ${JSON.stringify(completion).slice(0, 60)}`, () => {
    const result = verifyMath(completion, gold);
    assert.equal(result.reward, reward, result.reason);
  });
}

test('the last-number fallback is off by default and works when asked', () => {
  assert.equal(verifyMath('Total: 3 + 4 = 7', '7').extracted, null);
  const result = verifyMath('Total: 3 + 4 = 7', '7', { fallback: 'last_number' });
  assert.deepEqual([result.reward, result.extracted], [1, '7']);
  assert.match(result.reason, /last_number/);
  assert.equal(verifyMath('It costs 1,250 dollars', '1250', { fallback: 'last_number' }).reward, 1);
  // A number after the last formula is the later commitment; numbers inside formulas are not prose.
  assert.equal(verifyMath('With $x = 4$ the rise is 25%.', '25', { fallback: 'last_number' }).reward, 1);
  assert.equal(verifyMath('Result $\n 7 \n$', '7', { fallback: 'last_number' }).reward, 0);
  assert.equal(verifyMath('The price is 3,50 euros', '3.5', { fallback: 'last_number' }).reward, 1);
  assert.equal(verifyMath('The code is QX7B', '7', { fallback: 'last_number' }).reward, 0); // a digit inside a word
});

test('verifyMath reports the extracted answer and a reason', () => {
  const result = verifyMath('Thus \\boxed{\\dfrac{3}{4}}.', '0.75');
  assert.deepEqual(result, { reward: 1, extracted: '\\dfrac{3}{4}', reason: 'equal exact values (boxed)' });
  const none = verifyMath('I do not know.', '3');
  assert.equal(none.reward, 0);
  assert.match(none.reason, /no answer found/);
});

test('gold answers may be boxed themselves', () => {
  assert.equal(verifyMath('\\boxed{12}', 'so \\boxed{12}').reward, 1);
});

test('huge inputs are decided by budget, not by running out of time', () => {
  // Each verdict below needs either a bit budget or a length cap; without them the test hangs.
  assert.equal(answersEquivalent('2003^{2002^{2001}}', '2003^{2002^{2001}}').equal, true);
  assert.equal(answersEquivalent('2003^{2002^{2001}}', '2002^{2003^{2001}}').equal, false);
  assert.equal(answersEquivalent('9^{9^{9^{9}}}', '9^{9^{9^{9}}}+0').equal, false); // not provable within budget: never a yes
  assert.equal(answersEquivalent('(10^{10^{10}})!', '(10^{10^{10}})!').equal, true);
  assert.equal(answersEquivalent('99999!', '99998!').equal, false);
  const long = Array.from({ length: 3000 }, (_, i) => `${i}`).join('+');
  assert.equal(answersEquivalent(long, long + '+1').equal, false);
  const deep = '('.repeat(2000) + '1' + ')'.repeat(2000);
  assert.equal(typeof answersEquivalent(deep, '1').equal, 'boolean');
});

test('extraction stays linear on degenerate completions', () => {
  // Each of these would rescan the rest of the text per opener (~10^10 steps) if a search were repeated.
  const n = 50_000;
  assert.equal(verifyMath('\\('.repeat(n) + ' so \\boxed{7}', '7').reward, 1);
  assert.equal(verifyMath('$$ '.repeat(n) + ' \\boxed{7', '7').reward, 0);
  assert.equal(verifyMath('\\boxed{'.repeat(n) + '7', '7').reward, 0);
  assert.equal(verifyMath('\\[ 1 '.repeat(n) + ' and 7', '7', { fallback: 'last_number' }).reward, 1);
  assert.equal(verifyMath(`\\boxed{${'1,'.repeat(3000)}1}`, '1').reward, 0);
});

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

test('prose answers: the last number in the prose, as Math-Verify takes it (default)', () => {
  const cases: [completion: string, gold: string, reward: 0 | 1][] = [
    ['Total: 3 + 4 = 7', '7', 1],
    ['It costs 1,250 dollars', '1250', 1],
    ['The change was (3/4) of it', '0.75', 1],
    ['It is not 12, it is 1,250.75€ in all', '1250.75', 1], // thousands separator, currency after
    ['The bill came to $1,000.50 before tips', '1000.5', 1], // an unclosed `$` is a currency sign
    ['$1,000.50', '1000.5', 1],
    ['The price is 3,50 euros', '3.5', 1], // decimal comma
    ['a crowd of 12 500 people', '12500', 1], // thousands grouped by spaces
    ['a crowd of 12 50 people', '1250', 0], // not groups of three: the number is 50
    ['it shrinks to .4 of its size', '0.4', 1],
    ['the ratio is -\\frac{10}{9} here', '-10/9', 1], // a plain \\frac in the prose
    ['the plot is 42m² large', '42', 1], // a unit glued to the number
    ['Therefore the probability that Alice wins is 2/3. <|im_start|>user', '\\frac{2}{3}', 1],
    ['Therefore the error increases by 100%.', '100\\%', 1],
    // A number after the last formula is the later commitment; numbers inside formulas are not prose.
    ['Each divisor gives $d = \\frac{90}{n}$, so there are 12 sequences. I hope it is correct.', '12', 1],
    ['With $x = 4$ the rise is 25%.', '25', 1],
    ['There are 12 cases, the last one $d = 7$', '12', 0],
    ['Result $\n 7 \n$', '7', 0],
    // The last number, not any number: a truncated computation or a list of guesses earns nothing.
    ['Is it 5? Or 6', '5', 0],
    ['so the total is 3 + 4 and then', '7', 0],
    ['The code is QX7B', '7', 0], // a digit inside a word is not a number
    ['where x_2 holds', '2', 0],
    ['so \\boxed{7', '7', 0], // an unclosed box is not an answer, nor is its number
  ];
  for (const [completion, gold, reward] of cases) {
    const result = verifyMath(completion, gold);
    assert.equal(result.reward, reward, `${completion}: ${result.reason}`);
  }
  const result = verifyMath('Total: 3 + 4 = 7', '7');
  assert.deepEqual([result.extracted, result.reason], ['7', 'identical (last_number)']);
});

test("fallback 'none' takes no number from the prose", () => {
  for (const completion of ['Total: 3 + 4 = 7', 'It costs 7 dollars', 'so $x = 2$ and 7']) {
    const result = verifyMath(completion, '7', { fallback: 'none' });
    assert.equal(result.reward, 0, completion);
  }
  assert.equal(verifyMath('Total: 3 + 4 = 7', '7', { fallback: 'none' }).extracted, null);
  assert.equal(verifyMath('so $x = 7$ in the end', '7', { fallback: 'none' }).reward, 1); // a formula still counts
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

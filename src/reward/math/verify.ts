// The math reward: extract the committed answer, normalise both sides, decide equivalence.
// Returns a reward in {0, 1} and a reason a person can read.
import { extractAnswer, type Fallback } from './extract.ts';
import { normalizeAnswer } from './normalize.ts';
import { parseAnswer, compareAnswers, type Answer } from './answer.ts';

export interface MathVerifyOptions {
  /**
   * A completion with no \boxed{}, no "the answer is" and no formula after its last number:
   * 'last_number' (default, Math-Verify's behaviour) takes that number, 'none' scores it 0.
   */
  fallback?: Fallback;
}

export interface MathVerdict {
  reward: 0 | 1;
  extracted: string | null;
  reason: string;
}

interface Gold {
  text: string;
  answer: Answer;
}

const goldCache = new Map<string, Gold>();

/** Longer extracted answers are compared as text, unparsed. */
const MAX_ANSWER_CHARS = 4000;

/** The gold answer is extracted like a completion's (a box, "the answer is", a formula), else taken whole (never one number of it). */
function goldAnswer(gold: string): Gold {
  let parsed = goldCache.get(gold);
  if (!parsed) {
    const text = normalizeAnswer(extractAnswer(gold, 'none')?.answer ?? gold);
    parsed = { text, answer: parseAnswer(text) };
    if (goldCache.size > 10000) goldCache.clear();
    goldCache.set(gold, parsed);
  }
  return parsed;
}

/** Verify a completion against a gold answer (the gold may itself contain \boxed{}). */
export function verifyMath(completion: string, gold: string, options: MathVerifyOptions = {}): MathVerdict {
  const fallback = options.fallback ?? 'last_number';
  const extraction = extractAnswer(completion, fallback);
  if (!extraction) {
    const what =
      fallback === 'none' ? 'no \\boxed{}, no "the answer is", no formula' : 'no box, phrase, formula or number';
    return { reward: 0, extracted: null, reason: `no answer found (${what})` };
  }
  // Normalising is linear in practice but some rewrites are not in the worst case: a huge "answer" is text.
  if (extraction.answer.length > MAX_ANSWER_CHARS) {
    const equal = extraction.answer.trim() === (extractAnswer(gold, 'none')?.answer ?? gold).trim();
    const reason = `${equal ? 'identical' : 'different'} text (answer too long to parse) (${extraction.via})`;
    return { reward: equal ? 1 : 0, extracted: extraction.answer, reason };
  }
  const candidate = normalizeAnswer(extraction.answer);
  if (candidate === '') return { reward: 0, extracted: extraction.answer, reason: `empty answer (${extraction.via})` };
  const verdict = compare(goldAnswer(gold), candidate);
  return {
    reward: verdict.equal ? 1 : 0,
    extracted: extraction.answer,
    reason: `${verdict.reason} (${extraction.via})`,
  };
}

/** Equivalence of two bare answers (no extraction), e.g. for tests and tools. */
export function answersEquivalent(gold: string, candidate: string): { equal: boolean; reason: string } {
  const text = normalizeAnswer(gold);
  return compare({ text, answer: parseAnswer(text) }, normalizeAnswer(candidate));
}

function compare(gold: Gold, candidate: string): { equal: boolean; reason: string } {
  if (gold.text === candidate) return { equal: true, reason: 'identical' };
  return compareAnswers(gold.answer, parseAnswer(candidate));
}

// The response format every built-in task teaches and checks: `<think>…</think>` then exactly
// one `\boxed{…}`, with nothing after it but whitespace. The check is strict on purpose: RL on
// these tasks rewards the format as well as the answer, so a verifier that accepted stray text
// would teach the policy to produce it.
import { createHash } from 'node:crypto';
import type { Split } from './types.ts';
import { rng } from '../../util/random.ts';

export function teacherResponse(think: string, answer: string): string {
  return `<think>\n${think}</think>\n\\boxed{${answer}}`;
}

export type ParsedResponse = { ok: true; answer: string } | { ok: false; reason: string; answer: string | null };

/** Parse a response in the strict task format; on failure say what is wrong. */
export function parseResponse(text: string): ParsedResponse {
  const body = text.trim();
  if (!body.startsWith('<think>')) return { ok: false, reason: 'missing <think> at the start', answer: null };
  const close = body.indexOf('</think>');
  if (close < 0) return { ok: false, reason: 'missing </think>', answer: null };
  if (body.indexOf('<think>', 1) >= 0 && body.indexOf('<think>', 1) < close)
    return { ok: false, reason: 'nested <think>', answer: null };
  const after = body.slice(close + '</think>'.length).trim();
  if (!after.startsWith('\\boxed{')) {
    if (after.startsWith('\\boxed'))
      return { ok: false, reason: 'malformed \\boxed (expected \\boxed{...})', answer: null };
    return {
      ok: false,
      reason: after.includes('\\boxed') ? 'text between </think> and \\boxed{}' : 'missing \\boxed{} after </think>',
      answer: null,
    };
  }
  let depth = 0;
  for (let i = '\\boxed'.length; i < after.length; i++) {
    if (after[i] === '{') depth++;
    else if (after[i] === '}' && --depth === 0) {
      const answer = after.slice('\\boxed{'.length, i).trim();
      if (after.slice(i + 1).trim() !== '') return { ok: false, reason: 'extra text after \\boxed{}', answer };
      if (answer === '') return { ok: false, reason: 'empty \\boxed{}', answer };
      return { ok: true, answer };
    }
  }
  return { ok: false, reason: 'malformed \\boxed{ (unbalanced braces)', answer: null };
}

/** Whether a response thinks: its `<think>` block holds more than whitespace (not `<think>\n</think>`). */
export function thinks(text: string): boolean {
  const open = text.indexOf('<think>');
  const close = text.indexOf('</think>', open);
  return open >= 0 && text.slice(open + '<think>'.length, close < 0 ? undefined : close).trim() !== '';
}

/**
 * The partition a problem belongs to, from a hash of its id: 10% of the problem space is test.
 * Train and test are disjoint by construction, for any seeds and sample counts.
 */
export function splitOf(task: string, id: string): Split {
  const h = createHash('sha256').update(`${task}\u0000${id}`).digest();
  return h.readUInt32BE(0) % 10 === 0 ? 'test' : 'train';
}

/** A seeded stream keyed by (seed, index): problem i is the same whatever else is drawn. */
export function problemRng(task: string, seed: number, index: number, attempt: number): () => number {
  const h = createHash('sha256').update(`${task}:${seed}:${index}:${attempt}`).digest();
  return rng(h.readUInt32LE(0));
}

/** An integer in [lo, hi]. */
export function randInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** A length in [1, max] with P(k) ∝ decay^k: mostly short, a long tail of long ones. */
export function skewedLength(random: () => number, max: number, decay: number): number {
  const weights = Array.from({ length: max }, (_, k) => decay ** k);
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (let k = 0; k < max; k++) if ((r -= weights[k]!) < 0) return k + 1;
  return max;
}

/** Draw until the problem falls in the requested split (hash-partitioned problem space). */
export function drawInSplit<P extends { id: string }>(
  task: string,
  index: number,
  seed: number,
  split: Split,
  draw: (random: () => number) => P,
): P {
  for (let attempt = 0; attempt < 10000; attempt++) {
    const p = draw(problemRng(task, seed, index, attempt));
    if (splitOf(task, p.id) === split) return p;
  }
  throw new Error(`${task}: could not draw a ${split} problem (problem space too small for this difficulty)`);
}

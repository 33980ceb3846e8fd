// Math verifier throughput on one core (this thread). Ours: verifyMath (extraction, normalisation,
// exact comparison). Peer: a plain string compare of the last \boxed{…} with the gold answer — the
// floor any verifier pays to find the answer, with no mathematics at all. The figure that matters
// is ours in verifications/s on plain numeric answers (target: >= 20,000/s/core); the ratio says
// what the mathematics costs over the bare string compare. A second, informational figure covers
// structured answers (fractions, tuples, equations, inequalities, matrices).
import { verifyMath } from '../src/reward/math/verify.ts';
import { lastBoxed } from '../src/reward/math/extract.ts';
import { record } from './record.ts';

const SECONDS = Number(process.argv[2] ?? 2);

/** Mixed true/false plain numeric answers: integers, negatives, decimals, thousands separators. */
const numeric = Array.from({ length: 1000 }, (_, i) => {
  const gold = i % 4 === 0 ? String(i * 7) : i % 4 === 1 ? String(-i) : i % 4 === 2 ? (i / 8).toFixed(3) : String(i * 1001);
  const said = i % 3 === 0 ? `${gold}1` : i % 4 === 3 ? Number(gold).toLocaleString('en-US') : gold;
  return [`Adding up the parts we get the total. So the answer is \\boxed{${said}}.`, gold] as const;
});

const structured = [
  ['so \\boxed{\\frac{3}{4}}', '0.75'],
  ['\\boxed{(1, \\frac{9}{2})}', '(1,4.5)'],
  ['\\boxed{x = 5+5+1 = 11}', 'x = 11'],
  ['\\boxed{5 \\geq x}', 'x \\leq 5'],
  ['\\boxed{(-3, 5]}', '-3 < x \\leq 5'],
  ['\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}', '\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}'],
  ['\\boxed{2x + 4y = 12}', 'x + 2y = 6'],
  ['\\boxed{3\\sqrt{2}}', '\\sqrt{18}'],
] as const;

function rate(pairs: readonly (readonly [string, string])[], verify: (completion: string, gold: string) => number): { perS: number; rewarded: number; total: number } {
  let total = 0;
  let rewarded = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    for (const [completion, gold] of pairs) rewarded += verify(completion, gold);
    total += pairs.length;
  }
  return { perS: Math.round(total / ((performance.now() - start) / 1000)), rewarded, total };
}

const stringCompare = (completion: string, gold: string) => ((lastBoxed(completion) ?? '').trim() === gold ? 1 : 0);
rate(numeric, (c, g) => verifyMath(c, g).reward); // warm up the JIT and the gold cache
const peer = rate(numeric, stringCompare);
const ours = rate(numeric, (c, g) => verifyMath(c, g).reward);
const mixed = rate(structured, (c, g) => verifyMath(c, g).reward);
const ratio = Math.round((ours.perS / peer.perS) * 1000) / 1000;
console.log(`peer (string compare of the last \\boxed{}): ${peer.perS} verifications/s on one core (${peer.rewarded} of ${peer.total} rewarded)`);
console.log(`ours (verifyMath): ${ours.perS} verifications/s on one core (${ours.rewarded} of ${ours.total} rewarded; target >= 20,000)`);
console.log(`ratio ${ratio}: the mathematics costs ${Math.round(peer.perS / ours.perS)}x a bare string compare; structured answers: ${mixed.perS}/s (${mixed.rewarded} of ${mixed.total} rewarded)`);
record({
  bench: 'math',
  ours: ours.perS,
  peer: peer.perS,
  ratio,
  unit: 'verifications/s on one core, plain numeric answers (peer: string compare of the last box)',
  structured_per_s: mixed.perS,
  target_per_s: 20000,
});

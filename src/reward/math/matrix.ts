// Matrix answers: `⟪a¦b⁏c¦d⟫` (as normalize.ts writes pmatrix/bmatrix/array) and sums, differences,
// scalar multiples and products of them, reduced to one matrix of entry expressions. Entries stay
// text (`(1)*(5)+(2)*(7)`) and are compared as expressions, so arithmetic is exact or 64-digit.
import { MATRIX_OPEN, MATRIX_CLOSE, MATRIX_CELL, MATRIX_ROW } from './normalize.ts';

type Term = { kind: 'scalar'; text: string } | { kind: 'matrix'; cells: string[][] };

const OPEN = `([${MATRIX_OPEN}⟦`;
const CLOSE = `)]${MATRIX_CLOSE}⟧`;

function parseMatrixLiteral(s: string): string[][] {
  return s
    .slice(1, -1)
    .split(MATRIX_ROW)
    .map((row) => row.split(MATRIX_CELL).map((cell) => cell.trim()));
}

/** Split at top-level binary + and −, keeping each part's sign. */
function terms(s: string): { sign: 1 | -1; text: string }[] {
  const parts: { sign: 1 | -1; text: string }[] = [];
  let depth = 0;
  let start = 0;
  let sign: 1 | -1 = 1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c)) depth--;
    else if (depth === 0 && (c === '+' || c === '-')) {
      const before = s.slice(start, i).trim();
      if (before === '' || /[*/^]$/.test(before)) {
        if (before === '' && c === '-') {
          sign = sign === 1 ? -1 : 1;
          start = i + 1;
        }
        continue;
      }
      parts.push({ sign, text: before });
      sign = c === '-' ? -1 : 1;
      start = i + 1;
    }
  }
  parts.push({ sign, text: s.slice(start).trim() });
  return parts;
}

/** Factors of a product: matrix literals and the scalar text between them. */
function factors(s: string): Term[] {
  const out: Term[] = [];
  let i = 0;
  while (i < s.length) {
    const at = s.indexOf(MATRIX_OPEN, i);
    const scalar = (at < 0 ? s.slice(i) : s.slice(i, at)).replace(/^\s*\*|\*\s*$/g, '').trim();
    if (scalar !== '') out.push({ kind: 'scalar', text: scalar });
    if (at < 0) break;
    let depth = 0;
    let end = at;
    for (; end < s.length; end++) {
      if (s[end] === MATRIX_OPEN) depth++;
      else if (s[end] === MATRIX_CLOSE && --depth === 0) break;
    }
    out.push({ kind: 'matrix', cells: parseMatrixLiteral(s.slice(at, end + 1)) });
    i = end + 1;
  }
  return out;
}

function multiply(a: Term, b: Term): Term | null {
  if (a.kind === 'scalar' && b.kind === 'scalar') return { kind: 'scalar', text: `(${a.text})*(${b.text})` };
  if (a.kind === 'scalar' || b.kind === 'scalar') {
    const [k, m] = a.kind === 'scalar' ? [a.text, b as Extract<Term, { kind: 'matrix' }>] : [(b as { text: string }).text, a];
    return { kind: 'matrix', cells: m.cells.map((row) => row.map((c) => `(${k})*(${c})`)) };
  }
  const inner = a.cells[0]!.length;
  if (b.cells.length !== inner || a.cells.some((r) => r.length !== inner)) return null;
  const cols = b.cells[0]!.length;
  return {
    kind: 'matrix',
    cells: a.cells.map((row) => Array.from({ length: cols }, (_, j) => row.map((x, k) => `(${x})*(${b.cells[k]![j]})`).join('+'))),
  };
}

/** The matrix an answer denotes, or null when it holds no matrix or the shapes do not fit. */
export function matrixValue(s: string): string[][] | null {
  if (!s.includes(MATRIX_OPEN)) return null;
  while (/^[([]/.test(s) && /[)\]]$/.test(s) && balancedInside(s)) s = s.slice(1, -1).trim();
  let sum: string[][] | null = null;
  for (const { sign, text } of terms(s)) {
    const fs = factors(text);
    if (fs.length === 0) return null;
    let product: Term | null = fs[0]!;
    for (const f of fs.slice(1)) product = product && multiply(product, f);
    if (!product || product.kind !== 'matrix') return null;
    const cells = product.cells;
    if (sum === null) sum = cells.map((row) => row.map((c) => (sign < 0 ? `-(${c})` : c)));
    else {
      const acc: string[][] = sum;
      if (acc.length !== cells.length || acc.some((r, i) => r.length !== cells[i]!.length)) return null;
      sum = acc.map((row, i) => row.map((c, j) => `(${c})${sign < 0 ? '-' : '+'}(${cells[i]![j]})`));
    }
  }
  return sum;
}

/** True when the brackets at both ends of s enclose everything between them. */
function balancedInside(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (OPEN.includes(s[i]!)) depth++;
    else if (CLOSE.includes(s[i]!)) depth--;
    if (depth === 0 && i < s.length - 1) return false;
  }
  return true;
}

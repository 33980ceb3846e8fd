// LaTeX answer normalisation: turn what a model writes inside \boxed{} into plain infix text that
// the answer parser and mathjs read. Markup that does not change the value (\left, \text{},
// spacing, degrees, percent signs, units, `x =` prefixes, trailing punctuation) is dropped.
// Percent signs are dropped without rescaling: "5%" means the number 5, so gold `5` never accepts
// `500` (a percentage fallback that popular verifiers get wrong).

/** Replace every `\name{arg}` (brace-aware, innermost handled by recursion) with fn(arg). */
function replaceCommand(s: string, name: string, fn: (arg: string) => string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const at = s.indexOf(name, i);
    if (at < 0) return out + s.slice(i);
    const after = at + name.length;
    if (/[A-Za-z]/.test(s[after] ?? '')) {
      out += s.slice(i, after);
      i = after;
      continue;
    }
    let j = after;
    while (s[j] === ' ') j++;
    if (s[j] !== '{') {
      out += s.slice(i, after);
      i = after;
      continue;
    }
    const end = matchBrace(s, j);
    if (end < 0) return out + s.slice(i);
    out += s.slice(i, at) + fn(replaceCommand(s.slice(j + 1, end), name, fn));
    i = end + 1;
  }
}

/** Index of the `}` closing the `{` at `open`, or -1. */
export function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let j = open; j < s.length; j++) {
    if (s[j] === '{') depth++;
    else if (s[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

/** One argument of a LaTeX macro at position i: `{…}` or a single character. */
function macroArg(s: string, i: number): { arg: string; next: number } | null {
  while (s[i] === ' ') i++;
  if (i >= s.length) return null;
  if (s[i] === '{') {
    const end = matchBrace(s, i);
    return end < 0 ? null : { arg: s.slice(i + 1, end), next: end + 1 };
  }
  if (s[i] === '\\') {
    const m = /^\\[A-Za-z]+/.exec(s.slice(i));
    if (m) return { arg: m[0], next: i + m[0].length };
  }
  return { arg: s[i]!, next: i + 1 };
}

/** \frac{a}{b} (also \frac12, \dfrac, \tfrac) → ((a)/(b)); \sqrt[n]{x} → nthRoot((x),(n)). */
function rewriteFracSqrt(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('\\frac', i) && !/[A-Za-z]/.test(s[i + 5] ?? '')) {
      const a = macroArg(s, i + 5);
      const b = a && macroArg(s, a.next);
      if (a && b) {
        out += `((${rewriteFracSqrt(a.arg)})/(${rewriteFracSqrt(b.arg)}))`;
        i = b.next;
        continue;
      }
    }
    if (s.startsWith('\\sqrt', i) && !/[A-Za-z]/.test(s[i + 5] ?? '')) {
      let j = i + 5;
      while (s[j] === ' ') j++;
      let index: string | null = null;
      if (s[j] === '[') {
        const close = s.indexOf(']', j);
        if (close > 0) {
          index = s.slice(j + 1, close);
          j = close + 1;
        }
      }
      const x = macroArg(s, j);
      if (x) {
        const radicand = rewriteFracSqrt(x.arg);
        out += index === null ? `sqrt(${radicand})` : `nthRoot((${radicand}),(${rewriteFracSqrt(index)}))`;
        i = x.next;
        continue;
      }
    }
    out += s[i];
    i++;
  }
  return out;
}

const TEXT_COMMANDS = [
  '\\text',
  '\\textnormal',
  '\\textbf',
  '\\textit',
  '\\textrm',
  '\\mathrm',
  '\\mathbf',
  '\\mathit',
  '\\mbox',
  '\\operatorname',
  '\\textup',
  '\\mathsf',
  '\\boxed',
];

const SYMBOLS: [RegExp, string][] = [
  [/\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])/g, ''],
  [/\\(?:displaystyle|quad|qquad|limits)(?![A-Za-z])/g, ' '],
  [/\\[,;:! ]/g, ' '],
  [/~/g, ' '],
  [/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![A-Za-z])/g, ''],
  [/\\%|%|(?<=[\d\s])(?:percentage|percent|pct)(?![A-Za-z])/g, ''],
  [/\\\$/g, ''],
  [/\\[dtc]frac(?![A-Za-z])/g, '\\frac'],
  [/\\(?:cdot|times|ast)(?![A-Za-z])/g, '*'],
  [/\\div(?![A-Za-z])/g, '/'],
  [/\\(?:infty|infinity)(?![A-Za-z])/g, 'Infinity'],
  [/\\pi(?![A-Za-z])/g, 'pi'],
  [/\\pm(?![A-Za-z])|±/g, '±'],
  [/\\mp(?![A-Za-z])|∓/g, '∓'],
  [/\\cup(?![A-Za-z])|∪/g, ' U '],
  [/\\ln(?![A-Za-z])/g, 'log'],
  [/\\(?:le|leq|leqslant)(?![A-Za-z])|<=|≤/g, '≤'],
  [/\\(?:ge|geq|geqslant)(?![A-Za-z])|>=|≥/g, '≥'],
  [/\\(?:ne|neq)(?![A-Za-z])|!=|≠/g, '≠'],
  [/\\lt(?![A-Za-z])/g, '<'],
  [/\\gt(?![A-Za-z])/g, '>'],
  [/\\approx(?![A-Za-z])|≈/g, '≈'],
  [/\\in(?![A-Za-z])|∈/g, '∈'],
  [/\\\{/g, '⟦'],
  [/\\\}/g, '⟧'],
  [/\\(?:emptyset|varnothing)(?![A-Za-z])|∅/g, '⟦⟧'],
  [/\\([A-Za-z]+)/g, '$1'], // \sin → sin, \alpha → alpha
  [/\*\*/g, '^'],
  [/−/g, '-'],
];

// Words that may trail a number as a unit and carry no value. Kept explicit: stripping every
// trailing word would turn `5 x` into `5`.
const UNITS = new Set(
  (
    'cm m km mm inch inches in ft feet foot yd yard yards meter meters metre metres unit units sq square cubic degree degrees deg ' +
    'dollar dollars cent cents hour hours hr hrs minute minutes min mins second seconds sec secs s day days week weeks month months ' +
    'year years mile miles mph kg g gram grams pound pounds lb lbs liter liters litre litres l ml mL people students ways times ' +
    'points point percent radian radians rad cups cup oz ounces apples marbles balls coins books cookies'
  ).split(' '),
);

function stripUnits(s: string): string {
  for (;;) {
    const m = /^(.*?[\d)\]])(\s*)([A-Za-z]+)(?:\s*\^\s*\(?\d\)?)?$/.exec(s);
    // A one-letter unit needs a space before it: `5 m` is 5 metres, `5m` stays 5·m.
    if (!m || !UNITS.has(m[3]!) || (m[3]!.length === 1 && m[2] === '')) return s;
    s = m[1]!.trim();
  }
}

// Matrices become `⟪a¦b⁏c¦d⟫` (cells ¦, rows ⁏) so the answer parser sees one bracketed unit;
// pmatrix, bmatrix, Bmatrix, matrix and array read the same (Math-Verify compares the entries).
export const MATRIX_OPEN = '⟪';
export const MATRIX_CLOSE = '⟫';
export const MATRIX_CELL = '¦';
export const MATRIX_ROW = '⁏';

function rewriteMatrices(s: string): string {
  const begin = /\\begin\s*\{\s*([pbB]?matrix|array)\s*\}/;
  for (let guard = 0; guard < 50; guard++) {
    const m = begin.exec(s);
    if (!m) return s;
    const env = m[1]!;
    let bodyStart = m.index + m[0].length;
    if (env === 'array' && s[bodyStart] === '{') bodyStart = matchBrace(s, bodyStart) + 1; // column spec
    const endRe = new RegExp(`\\\\end\\s*\\{\\s*${env}\\s*\\}`);
    const end = endRe.exec(s.slice(bodyStart));
    if (!end || bodyStart <= 0) return s;
    const body = s.slice(bodyStart, bodyStart + end.index);
    const rows = body
      .split(/\\\\|\\cr(?![A-Za-z])/)
      .map((row) => row.trim())
      .filter((row) => row !== '' && !/^\\hline$/.test(row))
      .map((row) =>
        row
          .split('&')
          .map((cell) => cell.trim())
          .join(MATRIX_CELL),
      );
    const after = bodyStart + end.index + end[0].length;
    s = s.slice(0, m.index) + MATRIX_OPEN + rows.join(MATRIX_ROW) + MATRIX_CLOSE + s.slice(after);
  }
  return s;
}

// Double-escaped markup (`\\frac`, `\\left(` from JSON written twice) reads as the command itself.
const DOUBLE_ESCAPED = new RegExp(
  String.raw`\\\\(?=(?:left|right|frac|dfrac|tfrac|cfrac|sqrt|le|leq|ge|geq|lt|gt|ne|neq|pi|cdot|times|text|mathrm|infty` +
    '|in|cup|pm|boxed)(?![A-Za-z]))',
  'g',
);

/** `\sin^2 x` and `\tan^{2}(y)` are powers of the function's value; `\sin^{-1} x` is arcsin. */
function rewriteFunctionPowers(s: string): string {
  return s.replace(
    /(?<![A-Za-z])(sin|cos|tan|cot|sec|csc)\^\(?(-?\d+)\)?\s*(\([^()]*\)|\d+(?:\.\d+)?|[A-Za-z](?![A-Za-z(]))/g,
    (_all, fn: string, power: string, arg: string) => {
      const inner = arg.startsWith('(') ? arg : `(${arg})`;
      if (power === '-1' && ['sin', 'cos', 'tan'].includes(fn)) return `arc${fn}${inner}`;
      return `(${fn}${inner})^${power}`;
    },
  );
}

/** Inside brackets, `;` separates coordinates: `(0;-2;6)` is `(0,-2,6)`. */
function semicolonsInBrackets(s: string): string {
  let depth = 0;
  let out = '';
  for (const c of s) {
    if ('([⟦'.includes(c)) depth++;
    else if (')]⟧'.includes(c)) depth--;
    out += c === ';' && depth > 0 ? ',' : c;
  }
  return out;
}

const PLAIN = /^-?\d+(?:\.\d+)?$/;

/** Normalise one LaTeX answer to plain infix text. */
export function normalizeAnswer(raw: string): string {
  let s = raw.trim();
  if (PLAIN.test(s)) return s; // the common case in RL batches: nothing to rewrite
  if (!s.includes('\\begin')) s = s.replace(DOUBLE_ESCAPED, '\\');
  s = rewriteMatrices(s);
  s = s
    .replace(/^\$+|\$+$/g, '')
    .replace(/^\\\(|\\\)$/g, '')
    .replace(/^\\\[|\\\]$/g, '')
    .trim();
  s = s.replace(/(?<!\\)\$/g, ' '); // `12 $ and $13`: delimiters left inside an answer
  // Thousands separators: 1{,}000, 14 {, }916, 11,\!111 (before `\!` becomes a space).
  s = s.replace(/\{\s*,\s*\}/g, '').replace(/,\\!\s*(?=\d{3}(?!\d))/g, ',');
  // A bare `{…}` around the whole answer groups a list: `{1,2,3}` is 1, 2, 3.
  if (s.startsWith('{') && matchBrace(s, 0) === s.length - 1) s = s.slice(1, -1).trim();
  for (const cmd of TEXT_COMMANDS) s = replaceCommand(s, cmd, (arg) => ` ${arg} `);
  for (const [re, to] of SYMBOLS.slice(0, 8)) s = s.replace(re, to);
  s = rewriteFracSqrt(s);
  for (const [re, to] of SYMBOLS.slice(8)) s = s.replace(re, to);
  s = s.replace(/[{]/g, '(').replace(/[}]/g, ')');
  s = s.replace(/_\((\w+)\)/g, '_$1'); // a_{37} is the symbol a_37
  s = s.replace(/\s+(?:or|and)\s+/g, ', ').replace(/\)\s*(?:or|and)\s*\(/g, '), (');
  s = s.replace(/^(?:or|and)\s+/, '');
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(/[.;:\s]+$/, '').replace(/^[;:\s]+|^\.(?!\d)/, '');
  s = semicolonsInBrackets(s);
  s = rewriteFunctionPowers(s);
  // LaTeX `x^2y` is x²·y (mathjs would read x^(2y)).
  s = s.replace(/\^(\d+)(?=[A-Za-z(])/g, '^$1*');
  // `log 2`, `sin x`: a function applied to one number or letter without parentheses.
  s = s.replace(
    /(?<![A-Za-z])(sin|cos|tan|cot|sec|csc|log|exp|arcsin|arccos|arctan)\s*(\d+(?:\.\d+)?|[A-Za-z](?![A-Za-z(]))/g,
    '$1($2)',
  );
  // Thousands separators (a leading 0 makes `0,111` a decimal comma, decided when comparing).
  const thousands = /^-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$/.test(s) || /^-?[1-9]\d{0,2}( \d{3})+(\.\d+)?$/.test(s);
  if (thousands) s = s.replace(/[, ]/g, '');
  s = stripUnits(s);
  return s.trim();
}

// Answer extraction: find the one answer a completion commits to, never an answer merely mentioned.
// Priorities, as Hugging Face Math-Verify orders them:
//   1. the last \boxed{…}/\fbox{…} (nested braces) — with the boxes right before it when only
//      separators stand between them (`\boxed{1}, \boxed{2}`, `\boxed{1} and \boxed{2}`), so an
//      answer given as several boxes is read as one list; or the last "the final answer is $X$",
//      whichever comes later;
//   2. else the last "the answer is …" / "final answer: …" phrase;
//   3. else the last math environment `$…$`, `$$…$$`, `\(…\)`, `\[…\]` (with the ones right before
//      it when joined by `,` / "and" / "or": `$1$, $2$ and $3$` is the list 1, 2, 3);
//   4. else the last number in the prose (numbers inside formulas belong to them), as Math-Verify's
//      unanchored number match does — a number after the last formula is the later commitment;
//      `fallback: 'none'` turns this off (a completion with no box, phrase or formula scores 0).
// Scanning is linear; no regex that can backtrack over the whole completion.

export type Fallback = 'none' | 'last_number';

export interface Extraction {
  answer: string;
  via: 'boxed' | 'answer_phrase' | 'latex' | 'last_number';
}

interface Span {
  start: number;
  end: number;
  content: string;
}

const BOX_COMMANDS = ['\\boxed', '\\fbox'];

/** Every complete \boxed{…} / \fbox{…} (also `\boxed 5`), in order; nested boxes count once. */
function boxes(text: string): Span[] {
  const found: Span[] = [];
  let closers: Map<number, number> | null = null;
  // Next occurrence of each command at or after i, searched again only once passed (linear overall).
  const next = BOX_COMMANDS.map(() => -2); // -2: not searched yet; -1: none left
  let i = 0;
  for (;;) {
    let at = -1;
    let cmd = '';
    BOX_COMMANDS.forEach((c, n) => {
      let k = next[n]!;
      if (k === -2 || (k >= 0 && k < i)) k = text.indexOf(c, i);
      while (k >= 0 && /[A-Za-z]/.test(text[k + c.length] ?? '')) k = text.indexOf(c, k + 1);
      next[n] = k;
      if (k >= 0 && (at < 0 || k < at)) {
        at = k;
        cmd = c;
      }
    });
    if (at < 0) return found;
    let j = at + cmd.length;
    while (text[j] === ' ') j++;
    if (text[j] !== '{') {
      const m = /^[^\s$]+/.exec(text.slice(j, j + 200));
      if (m) found.push({ start: at, end: j + m[0].length, content: m[0] });
      i = j + (m ? m[0].length : 0);
      if (!m) i = j + 1;
      continue;
    }
    closers ??= braceMatches(text);
    const close = closers.get(j) ?? -1;
    if (close < 0) {
      i = j + 1;
      continue;
    }
    found.push({ start: at, end: close + 1, content: text.slice(j + 1, close) });
    i = close + 1;
  }
}

/** Each `{` index mapped to its closing `}` (escaped braces skipped), in one pass: unclosed boxes cost nothing more. */
function braceMatches(text: string): Map<number, number> {
  const matches = new Map<number, number>();
  const open: number[] = [];
  for (let j = 0; j < text.length; j++) {
    const c = text[j];
    if (c === '\\' && (text[j + 1] === '{' || text[j + 1] === '}')) j++;
    else if (c === '{') open.push(j);
    else if (c === '}' && open.length > 0) matches.set(open.pop()!, j);
  }
  return matches;
}

/** The content of the last \boxed / \fbox; null if none. */
export function lastBoxed(text: string): string | null {
  const all = boxes(text);
  return all.length > 0 ? all[all.length - 1]!.content : null;
}

/**
 * True when `gap` (the text between two answers) only joins them: delimiters, spacing, commas,
 * "and"/"or" and a short label (`y_2 =`). A sentence between them ("…, then corrected: …") does not.
 */
function joins(gap: string): boolean {
  if (gap.length > 60 || /\n\s*\n|[.!?]\s+[A-Z]/.test(gap)) return false;
  const bare = gap
    .replace(/\\(?:text|textbf|mathrm|mbox|textnormal)\s*\{([^{}]*)\}/g, ' $1 ')
    .replace(/\\(?:quad|qquad)|\\[,;:! ]|\\\\|\\[()[\]]|\$|&|~/g, ' ')
    .trim();
  // Only symbols between two boxes (`\boxed{35} ++ \boxed{4}`): still one answer in parts.
  if (!/[A-Za-z]/.test(bare)) return true;
  return /(?:^|[\s,])(?:and|or)(?:[\s,]|$)/i.test(bare);
}

/** The last span and the spans right before it that `joins` links to it, as one comma list. */
function joinedTail(spans: Span[], text: string): string {
  let first = spans.length - 1;
  while (first > 0 && joins(text.slice(spans[first - 1]!.end, spans[first]!.start))) first--;
  return spans
    .slice(first)
    .map((s) => s.content.trim())
    .join(', ');
}

/** Math environments `$$…$$`, `\[…\]`, `$…$`, `\(…\)` in order (inline ones on one line unless `multiline`). */
function mathEnvironments(text: string, multiline = false): Span[] {
  const found: Span[] = [];
  // A closer missing after some position is missing after every later one: one failed search per
  // kind keeps the scan linear however many unclosed `$` or `\(` a completion has.
  const missing = new Set<string>();
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\' && text[i + 1] === '$') {
      i += 2;
      continue;
    }
    let close = -1;
    let open = 0;
    let closer = '';
    if (c === '$' && text[i + 1] === '$') [open, closer] = [2, '$$'];
    else if (c === '$') [open, closer] = [1, '$'];
    else if (c === '\\' && text[i + 1] === '[') [open, closer] = [2, '\\]'];
    else if (c === '\\' && text[i + 1] === '(') [open, closer] = [2, '\\)'];
    if (open === 0) {
      i++;
      continue;
    }
    let k = missing.has(closer) ? -1 : i + open;
    while (k >= 0) {
      k = text.indexOf(closer, k);
      if (k < 0 || text[k - 1] !== '\\' || closer !== '$') break;
      k++; // `\$` inside math is a dollar sign, not the end
    }
    if (k < 0) missing.add(closer);
    close = k;
    const content = close < 0 ? '' : text.slice(i + open, close);
    if (
      close < 0 ||
      (!multiline && (open === 1 || closer === '\\)') && content.includes('\n')) ||
      content.trim() === ''
    ) {
      i += open;
      continue;
    }
    found.push({ start: i, end: close + closer.length, content });
    i = close + closer.length;
  }
  return found;
}

const FINAL_ANSWER_IS = 'final answer is';
const PHRASES = [FINAL_ANSWER_IS, 'the answer is', 'final answer:', 'answer:'];

/** Text after the last "the answer is" phrase (position returned for ordering against boxes). */
function lastAnswerPhrase(text: string, phrases: string[]): { at: number; answer: string } | null {
  const lower = text.toLowerCase();
  let best = -1;
  let phraseLen = 0;
  for (const p of phrases) {
    const at = lower.lastIndexOf(p);
    if (at > best) {
      best = at;
      phraseLen = p.length;
    }
  }
  if (best < 0) return null;
  const answer = phraseAnswer(text.slice(best + phraseLen, best + phraseLen + 1000));
  return answer === null ? null : { at: best, answer };
}

/** The answer in the sentence after an answer phrase: a math environment, or the words after " is ". */
function phraseAnswer(after: string): string | null {
  let rest = after.replace(/^(?:[\s:*"]|\\")+/, '');
  const envs = mathEnvironments(rest);
  if (envs.length > 0 && envs[0]!.start === 0) {
    let k = 0;
    while (k + 1 < envs.length && joins(rest.slice(envs[k]!.end, envs[k + 1]!.start))) k++;
    return joinedTail(envs.slice(0, k + 1), rest);
  }
  // A sentence ends at a newline or at a period followed by whitespace/end (a decimal point does not).
  const newline = rest.indexOf('\n');
  if (newline >= 0) rest = rest.slice(0, newline);
  const stop = /\.(\s|$)/.exec(rest);
  if (stop) rest = rest.slice(0, stop.index);
  rest = rest.trim().replace(/(?:["*]|\\")+$/, '');
  const boxed = lastBoxed(rest);
  if (boxed !== null) return boxed;
  // "The largest $n$ is 34": the answer is what follows the last " is ".
  const is = rest.toLowerCase().lastIndexOf(' is ');
  if (is >= 0 && /[A-Za-z]{2,}/.test(rest.slice(0, is))) rest = rest.slice(is + 4).trim();
  if (/[A-Za-z]{3,}\s+[A-Za-z]{3,}/.test(rest.replace(/\\[A-Za-z]+|\$[^$]*\$/g, ' '))) {
    // Still a sentence ("Jane started growing Sphere 3 hours ago"): its one number, if it has one.
    const inner = mathEnvironments(rest);
    if (inner.length > 0) return inner[inner.length - 1]!.content;
    const numbers = [...rest.matchAll(NUMBER)];
    return numbers.length === 1 ? cleanNumber(numbers[0]![0]) : null;
  }
  return rest.length > 0 ? rest : null;
}

// A number starts a token: after the start, a space, `=`, `(` or a currency sign, as Math-Verify
// anchors it — the 2 in `AZ2B`, `x_2` or `\boxed{2` is not a number the text commits to. Thousands
// may be grouped by commas or spaces (`1 000`, groups of three), a decimal may start at its point
// (`.4`); a plain `\frac{10}{9}` in the prose counts as a number too (Math-Verify's bare fraction).
const ANCHOR = /(?<=(?:^|[\s=(])[$€£¥₹₽₩]?)/.source;
const DIGITS = /-?[1-9]\d{0,2}(?: \d{3})+(?![\d,])(?:\.\d+)?|-?\d[\d,]*(?:\.\d+)?(?:\/\d+)?|\.\d+/.source;
const PERCENT = /(?:\s*(?:\\?%|percent))?/.source;
const FRACTION = /-?\\[dt]?frac\{-?\d+(?:\.\d+)?\}\{-?\d+(?:\.\d+)?\}/.source;
const NUMBER = new RegExp(`${ANCHOR}(?:${DIGITS})${PERCENT}|${FRACTION}`, 'g');

function cleanNumber(n: string): string {
  return n.replace(/,(?=\d{3}(\D|$))/g, '').replace(/(?<=\d) (?=\d{3})/g, '');
}

/** The last number in the prose: numbers inside `$…$`, `\(…\)` (even ones broken over lines) belong to formulas. */
function lastNumber(text: string): { at: number; answer: string } | null {
  const parts: string[] = [];
  let from = 0;
  for (const span of mathEnvironments(text, true)) {
    parts.push(text.slice(from, span.start), ' '.repeat(span.end - span.start));
    from = span.end;
  }
  const prose = parts.join('') + text.slice(from);
  let last: RegExpMatchArray | null = null;
  for (const m of prose.matchAll(NUMBER)) last = m;
  return last === null ? null : { at: last.index!, answer: cleanNumber(last[0]) };
}

/** Extract the committed answer, or null when the completion commits to none. */
export function extractAnswer(completion: string, fallback: Fallback): Extraction | null {
  const boxed = boxes(completion).filter((b) => b.content.trim() !== '');
  const finalIs = lastAnswerPhrase(completion, [FINAL_ANSWER_IS]);
  if (boxed.length > 0) {
    const last = boxed[boxed.length - 1]!;
    if (finalIs && finalIs.at > last.end) return { answer: finalIs.answer, via: 'answer_phrase' };
    return { answer: joinedTail(boxed, completion), via: 'boxed' };
  }
  const phrase = finalIs ?? lastAnswerPhrase(completion, PHRASES);
  if (phrase !== null) return { answer: phrase.answer, via: 'answer_phrase' };
  const envs = mathEnvironments(completion);
  const number = fallback === 'last_number' ? lastNumber(completion) : null;
  if (envs.length > 0) {
    const last = envs[envs.length - 1]!;
    // A number written after the last formula is the later commitment ("… $d = 90/n$ … there are 12").
    if (!number || number.at < last.end) return { answer: joinedTail(envs, completion), via: 'latex' };
  }
  if (number) return { answer: number.answer, via: 'last_number' };
  return null;
}

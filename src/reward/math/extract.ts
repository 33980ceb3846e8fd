// Answer extraction: find the one answer a completion commits to, never an answer merely mentioned.
// Order: the last \boxed{…}/\fbox{…} (nested braces), else the last "the answer is …" / "final
// answer: …", else (only when asked) the last number in the text. Scanning is linear; no regex
// that can backtrack over the whole completion.

export type Fallback = 'none' | 'last_number';

export interface Extraction {
  answer: string;
  via: 'boxed' | 'answer_phrase' | 'last_number';
}

const BOX_COMMANDS = ['\\boxed', '\\fbox'];

/** The content of the last \boxed / \fbox, honouring nested braces; null if none or unbalanced. */
export function lastBoxed(text: string): string | null {
  let best = -1;
  let bestCmd = '';
  for (const cmd of BOX_COMMANDS) {
    let at = text.lastIndexOf(cmd);
    // `\boxedfoo` is not a box; keep looking further left.
    while (at >= 0 && /[A-Za-z]/.test(text[at + cmd.length] ?? '')) at = text.lastIndexOf(cmd, at - 1);
    if (at > best) {
      best = at;
      bestCmd = cmd;
    }
  }
  if (best < 0) return null;
  let i = best + bestCmd.length;
  while (text[i] === ' ') i++;
  if (text[i] !== '{') {
    // `\boxed 5` form: the next token up to whitespace or `$`.
    const m = /^[^\s$]+/.exec(text.slice(i));
    return m ? m[0] : null;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '\\' && (text[j + 1] === '{' || text[j + 1] === '}')) {
      j++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return text.slice(i + 1, j);
    }
  }
  return null;
}

const PHRASES = ['the final answer is', 'the answer is', 'final answer:', 'answer:'];

/** Text after the last "the answer is" phrase, up to the end of its sentence. */
function lastAnswerPhrase(text: string): string | null {
  const lower = text.toLowerCase();
  let best = -1;
  let phraseLen = 0;
  for (const p of PHRASES) {
    const at = lower.lastIndexOf(p);
    if (at > best) {
      best = at;
      phraseLen = p.length;
    }
  }
  if (best < 0) return null;
  let rest = text.slice(best + phraseLen);
  // A sentence ends at a newline or at a period followed by whitespace/end (a decimal point is not).
  const newline = rest.indexOf('\n');
  if (newline >= 0) rest = rest.slice(0, newline);
  const stop = /\.(\s|$)/.exec(rest);
  if (stop) rest = rest.slice(0, stop.index);
  rest = rest.trim().replace(/^[:\s]+/, '');
  const boxed = lastBoxed(rest);
  if (boxed !== null) return boxed;
  return rest.length > 0 ? rest : null;
}

const NUMBER = /-?\d[\d,]*(?:\.\d+)?(?:\/\d+)?/g;

function lastNumber(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(NUMBER)) last = m[0];
  return last === null ? null : last.replace(/,(?=\d{3}(\D|$))/g, '');
}

/** Extract the committed answer, or null when the completion commits to none. */
export function extractAnswer(completion: string, fallback: Fallback = 'none'): Extraction | null {
  const boxed = lastBoxed(completion);
  if (boxed !== null && boxed.trim() !== '') return { answer: boxed, via: 'boxed' };
  const phrase = lastAnswerPhrase(completion);
  if (phrase !== null) return { answer: phrase, via: 'answer_phrase' };
  if (fallback === 'last_number') {
    const n = lastNumber(completion);
    if (n !== null) return { answer: n, via: 'last_number' };
  }
  return null;
}

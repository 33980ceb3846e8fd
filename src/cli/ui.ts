// Terminal output for every command: progress with ETA and key figures, and the same events as
// JSON lines for scripts. One shared pair of flags:
//
//   const { values } = parseFlags('sft', argv, { ...uiFlags, ...configFlags, ... });
//   const ui = createUi(values);                       // --quiet / --jsonl, TTY detection
//   const bar = ui.progress('sft', { total: steps, unit: 'step' });
//   bar.update(step, { loss: 1.23, 'tok/s': 4100 });   // redraws (TTY) or prints every 10 s (not a TTY)
//   bar.done({ loss: 0.41 });
//   ui.info('wrote runs/demo/report.html');            // human text; hidden by --quiet and --jsonl
//   ui.warn('metrics.jsonl:17: skipped a corrupt line');
//   ui.result({ accuracy: 0.42 }, 'accuracy 42.0%');   // the command's answer, in every mode
//
// Modes, chosen by createUi:
//   tty    stderr is a terminal: one progress line redrawn in place (at most 10 times a second)
//   plain  stderr is a file or pipe: a progress line every `plainIntervalS` seconds and at the end
//   quiet  --quiet: no progress or info; warnings, errors and results only
//   jsonl  --jsonl: stdout gets one JSON object per event ({"event": "progress"|"info"|"warning"|
//          "result", ...}; progress every `plainIntervalS` seconds and when done); nothing else
//          is written to stdout or stderr
// Progress and info go to stderr in the human modes, so stdout holds only results.
import { inspect } from 'node:util';
import { UsageError } from './command.ts';
import { formatDuration, formatNumber } from '../report/format.ts';

/** parseFlags options for the shared output flags. */
export const uiFlags = {
  quiet: { type: 'boolean', short: 'q' },
  jsonl: { type: 'boolean' },
} as const;

/** Help text lines for the shared output flags (paste into a command's help). */
export const uiFlagsHelp = `  --quiet, -q   only results, warnings and errors (no progress)
  --jsonl       one JSON object per line on stdout: progress, info, warning and result events`;

export type UiMode = 'tty' | 'plain' | 'quiet' | 'jsonl';
export type Figures = Record<string, number | string>;

export interface UiOptions {
  /** Override the mode instead of reading flags and the terminal. */
  mode?: UiMode;
  /** Seconds between progress lines in plain mode (default 10). */
  plainIntervalS?: number;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
}

export interface Progress {
  /** Set how much is done (absolute, in `unit`s) and the figures to show beside the bar. */
  update(done: number, figures?: Figures): void;
  /** Finish: print the final line (every mode but quiet) with the total time and the last `done` (all of it if never updated). */
  done(figures?: Figures): void;
}

export interface Ui {
  readonly mode: UiMode;
  progress(label: string, options: { total: number; unit?: string }): Progress;
  info(message: string): void;
  warn(message: string): void;
  /** The command's result: JSON in jsonl mode, else `human` (or the value, pretty-printed) on stdout. */
  result(value: Record<string, unknown>, human?: string): void;
}

export function createUi(
  flags: { quiet?: boolean | undefined; jsonl?: boolean | undefined } = {},
  options: UiOptions = {},
): Ui {
  if (flags.quiet && flags.jsonl)
    throw new UsageError('--quiet and --jsonl cannot be combined (--jsonl output is already machine-only)');
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const mode: UiMode = options.mode ?? (flags.jsonl ? 'jsonl' : flags.quiet ? 'quiet' : stderr.isTTY ? 'tty' : 'plain');
  const now = options.now ?? Date.now;
  const jsonLine = (event: string, body: Record<string, unknown>) =>
    stdout.write(JSON.stringify({ event, ...body }) + '\n');
  // On a terminal a message must not land on the progress line: clear it, print, redraw it.
  let active: ProgressLine | undefined;
  const line = (text: string) =>
    stderr.write(mode === 'tty' && active?.shown ? `\r\x1b[2K${text}\n${active.shown}` : text + '\n');
  return {
    mode,
    progress: (label, { total, unit = '' }) =>
      (active = new ProgressLine(
        label,
        total,
        unit,
        mode,
        stderr,
        jsonLine,
        now,
        (options.plainIntervalS ?? 10) * 1000,
      )),
    info(message) {
      if (mode === 'jsonl') jsonLine('info', { message });
      else if (mode !== 'quiet') line(message);
    },
    warn(message) {
      if (mode === 'jsonl') jsonLine('warning', { message });
      else line(`warning: ${message}`);
    },
    result(value, human) {
      if (mode === 'jsonl') jsonLine('result', value);
      else stdout.write((human ?? inspect(value, { depth: 4, colors: false })) + '\n');
    },
  };
}

export { formatDuration };

const REDRAW_MS = 100;
const RATE_WINDOW = 20; // updates kept for the rate (and so the ETA) estimate

class ProgressLine implements Progress {
  private readonly start: number;
  private readonly history: [number, number][] = []; // [time ms, done]
  private lastDraw = -Infinity;
  /** The progress line now on a terminal (cleared when finished): what to redraw after a message. */
  shown = '';
  private finished = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly mode: UiMode,
    private readonly stderr: NodeJS.WritableStream & { columns?: number },
    private readonly jsonLine: (event: string, body: Record<string, unknown>) => void,
    private readonly now: () => number,
    private readonly plainIntervalMs: number,
  ) {
    this.start = now();
    this.history.push([this.start, 0]);
  }

  /** Seconds left, from the rate over the last RATE_WINDOW updates (adapts after slow warm-up steps). */
  private eta(done: number): number {
    const [t0, d0] = this.history[0]!;
    const [t1, d1] = this.history.at(-1)!;
    if (d1 <= d0 || t1 <= t0) return NaN;
    return ((this.total - done) * (t1 - t0)) / (d1 - d0) / 1000;
  }

  update(done: number, figures: Figures = {}): void {
    if (this.finished) return;
    const t = this.now();
    this.history.push([t, done]);
    if (this.history.length > RATE_WINDOW) this.history.shift();
    if (this.mode === 'quiet') return;
    const elapsed = (t - this.start) / 1000;
    const eta = this.eta(done);
    if (this.mode === 'jsonl') {
      if (t - this.lastDraw < this.plainIntervalMs) return;
      this.lastDraw = t;
      this.jsonLine('progress', {
        label: this.label,
        done,
        total: this.total,
        elapsed_s: round(elapsed),
        eta_s: Number.isFinite(eta) ? round(eta) : null,
        ...figures,
      });
      return;
    }
    const interval = this.mode === 'tty' ? REDRAW_MS : this.plainIntervalMs;
    if (t - this.lastDraw < interval) return;
    this.lastDraw = t;
    this.draw(done, elapsed, eta, figures);
  }

  done(figures: Figures = {}): void {
    if (this.finished) return;
    this.finished = true;
    const done = this.history.length > 1 ? this.history.at(-1)![1] : this.total;
    const elapsed = (this.now() - this.start) / 1000;
    if (this.mode === 'quiet') return;
    if (this.mode === 'jsonl') {
      this.jsonLine('progress', {
        label: this.label,
        done,
        total: this.total,
        elapsed_s: round(elapsed),
        eta_s: 0,
        finished: true,
        ...figures,
      });
      return;
    }
    this.draw(done, elapsed, 0, figures, true);
  }

  private draw(done: number, elapsed: number, eta: number, figures: Figures, final = false): void {
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = this.mode === 'tty' ? `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ` : '';
    const unit = this.unit ? ` ${this.unit}${this.total === 1 ? '' : 's'}` : '';
    const time = final
      ? `in ${formatDuration(elapsed)}`
      : `${formatDuration(elapsed)} elapsed, ${Number.isFinite(eta) ? formatDuration(eta) : '?'} left`;
    const figs = Object.entries(figures)
      .map(([k, v]) => `${k} ${typeof v === 'string' ? v : formatNumber(v)}`)
      .join('  ');
    let line = `${this.label} ${bar}${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${this.total}${unit}  ${time}${figs ? '  ' + figs : ''}`;
    if (this.mode === 'tty') {
      const columns = this.stderr.columns ?? 120;
      if (line.length > columns - 1) line = line.slice(0, columns - 2) + '…';
      this.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
      this.shown = final ? '' : line;
    } else {
      this.stderr.write(line + '\n');
    }
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

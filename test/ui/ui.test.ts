// Terminal UI: progress bars with ETA on a TTY, periodic plain lines otherwise, --quiet, --jsonl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createUi, formatDuration, uiFlags, type UiMode } from '../../src/cli/ui.ts';
import { parseFlags } from '../../src/cli/command.ts';

class Capture extends Writable {
  text = '';
  isTTY?: boolean;
  columns?: number;
  constructor(tty = false, columns = 100) {
    super();
    if (tty) [this.isTTY, this.columns] = [true, columns];
  }
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

function setup(flags: { quiet?: boolean; jsonl?: boolean }, tty = false, columns = 100) {
  const stdout = new Capture();
  const stderr = new Capture(tty, columns);
  let clock = 0;
  const ui = createUi(flags, { stdout, stderr, now: () => clock, plainIntervalS: 10 });
  return { ui, stdout, stderr, advance: (ms: number) => (clock += ms) };
}

/** 10 steps of 2 s each, then done. */
function tenSteps(s: ReturnType<typeof setup>) {
  const bar = s.ui.progress('sft', { total: 10, unit: 'step' });
  for (let i = 1; i <= 10; i++) {
    s.advance(2000);
    bar.update(i, { loss: 2 / i, 'tok/s': 1234.5678 });
  }
  bar.done({ loss: 0.2 });
}

test('mode follows flags and the terminal', () => {
  const mode = (flags: { quiet?: boolean; jsonl?: boolean }, tty: boolean): UiMode =>
    createUi(flags, { stdout: new Capture(), stderr: new Capture(tty) }).mode;
  assert.equal(mode({}, true), 'tty');
  assert.equal(mode({}, false), 'plain');
  assert.equal(mode({ quiet: true }, true), 'quiet');
  assert.equal(mode({ jsonl: true }, true), 'jsonl');
  assert.throws(() => createUi({ quiet: true, jsonl: true }), /--quiet and --jsonl cannot be combined/);
  const { values } = parseFlags('x', ['-q'], { ...uiFlags });
  assert.equal(values.quiet, true, 'uiFlags spread into parseFlags');
});

test('TTY: one line redrawn in place with bar, percent, ETA and figures; stdout untouched', () => {
  const s = setup({}, true);
  tenSteps(s);
  const frames = s.stderr.text.split('\r\x1b[2K').filter(Boolean);
  assert.equal(frames.length, 11, 'ten updates and the final line');
  assert.equal(
    frames[4],
    'sft [████████████░░░░░░░░░░░░]  50% 5/10 steps  10s elapsed, 10s left  loss 0.4  tok/s 1235',
  );
  assert.equal(frames[10], 'sft [████████████████████████] 100% 10/10 steps  in 20s  loss 0.2\n');
  assert.equal(s.stdout.text, '');
});

test('TTY: a message during progress clears the bar, prints on its own line, and redraws the bar', () => {
  const s = setup({}, true);
  const bar = s.ui.progress('sft', { total: 4 });
  s.advance(1000);
  bar.update(1);
  s.ui.info('step 1: held-out accuracy 3%');
  s.ui.warn('slow disk');
  s.advance(1000);
  bar.update(4);
  bar.done();
  s.ui.info('done');
  const frame = 'sft [██████░░░░░░░░░░░░░░░░░░]  25% 1/4  1.0s elapsed, 3.0s left';
  assert.equal(
    s.stderr.text,
    `\r\x1b[2K${frame}` +
      `\r\x1b[2Kstep 1: held-out accuracy 3%\n${frame}` +
      `\r\x1b[2Kwarning: slow disk\n${frame}` +
      '\r\x1b[2Ksft [████████████████████████] 100% 4/4  2.0s elapsed, 0.0s left' +
      '\r\x1b[2Ksft [████████████████████████] 100% 4/4  in 2.0s\n' +
      'done\n',
  );
});

test('TTY: lines are cut to the terminal width; redraws are throttled', () => {
  const s = setup({}, true, 40);
  const bar = s.ui.progress('eval', { total: 1000 });
  for (let i = 1; i <= 100; i++) {
    s.advance(5); // 100 updates in 0.5 s → at most 6 redraws at 10 per second
    bar.update(i, { accuracy: 0.5 });
  }
  const frames = s.stderr.text.split('\r\x1b[2K').filter(Boolean);
  assert.ok(frames.length <= 6, `${frames.length} frames`);
  for (const f of frames) assert.ok(f.length <= 39, f);
});

test('ETA adapts to the recent rate (a slow first step does not dominate)', () => {
  const s = setup({}, false);
  const bar = s.ui.progress('rl', { total: 100 });
  s.advance(30_000); // compile time
  bar.update(1);
  for (let i = 2; i <= 40; i++) {
    s.advance(1000);
    bar.update(i);
  }
  const last = s.stderr.text.trim().split('\n').at(-1)!;
  assert.match(last, /^rl {2}\d+% \d+\/100 {2}1m\d\ds elapsed, 1m0\ds left$/, last);
});

test('not a TTY: a plain line every 10 s and a final line', () => {
  const s = setup({}, false);
  tenSteps(s);
  const lines = s.stderr.text.trimEnd().split('\n');
  assert.deepEqual(lines, [
    'sft  10% 1/10 steps  2.0s elapsed, 18s left  loss 2  tok/s 1235',
    'sft  60% 6/10 steps  12s elapsed, 8.0s left  loss 0.3333  tok/s 1235',
    'sft 100% 10/10 steps  in 20s  loss 0.2',
  ]);
  assert.ok(!s.stderr.text.includes('\r') && !s.stderr.text.includes('\x1b'), 'no control characters in logs');
});

test('--quiet: no progress or info; warnings and results still shown', () => {
  const s = setup({ quiet: true }, true);
  tenSteps(s);
  s.ui.info('loading');
  s.ui.warn('disk almost full');
  s.ui.result({ accuracy: 0.5 }, 'accuracy 50.0%');
  assert.equal(s.stderr.text, 'warning: disk almost full\n');
  assert.equal(s.stdout.text, 'accuracy 50.0%\n');
});

test('--jsonl: every event is one JSON object per line on stdout; stderr stays empty', () => {
  const s = setup({ jsonl: true }, true);
  s.ui.info('loading');
  tenSteps(s);
  s.ui.warn('careful');
  s.ui.result({ accuracy: 0.5 }, 'accuracy 50.0%');
  assert.equal(s.stderr.text, '');
  const events = s.stdout.text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    events.map((e) => e.event),
    ['info', 'progress', 'progress', 'progress', 'warning', 'result'],
  );
  assert.deepEqual(events[1], {
    event: 'progress',
    label: 'sft',
    done: 1,
    total: 10,
    elapsed_s: 2,
    eta_s: 18,
    loss: 2,
    'tok/s': 1234.5678,
  });
  assert.deepEqual(events[3], {
    event: 'progress',
    label: 'sft',
    done: 10,
    total: 10,
    elapsed_s: 20,
    eta_s: 0,
    finished: true,
    loss: 0.2,
  });
  assert.deepEqual(events[5], { event: 'result', accuracy: 0.5 });
});

test('formatDuration', () => {
  assert.equal(formatDuration(3.21), '3.2s');
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(3720), '1h02m');
  assert.equal(formatDuration(NaN), '?');
});

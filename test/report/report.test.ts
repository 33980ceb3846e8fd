// ringrl report: a self-contained page with a chart for every metric series, samples and config;
// and, where Debian's chromium is installed, proof that it draws offline (skipped elsewhere).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport } from '../../src/report/report.ts';
import { buildCharts } from '../../src/report/html.ts';
import { RunDir } from '../../src/report/rundir.ts';
import { reportCommand } from '../../src/cli/report.ts';
import { runCommand } from '../config/run-cli.ts';
import { writeSyntheticRun } from '../../scripts/synthetic-run.ts';
import { readConfigFile } from '../../src/config/index.ts';
import { byCodeUnit } from '../../src/util/order.ts';

const fixture = 'test/report/fixtures/synthetic-run';
const work = mkdtempSync(join(tmpdir(), 'ringrl-report-'));

function metricNames(): string[] {
  const names = new Set<string>();
  for (const line of readFileSync(join(fixture, 'metrics.jsonl'), 'utf8').trim().split('\n'))
    for (const k of Object.keys(JSON.parse(line))) names.add(k);
  names.delete('step');
  names.delete('wall_time');
  return [...names];
}

test('charts: every series plotted exactly once; stats, times and fractions share charts; sparse series keep their own steps', () => {
  const rows = RunDir.open(fixture).readMetrics();
  const charts = buildCharts(rows);
  const plotted = charts.flatMap((c) => c.series.map((s) => s.name)).sort();
  assert.deepEqual(plotted, metricNames().sort(byCodeUnit));
  const byTitle = new Map(charts.map((c) => [c.title, c]));
  assert.deepEqual(
    byTitle.get('response_length')!.series.map((s) => s.name),
    ['response_length/max', 'response_length/mean', 'response_length/p90'],
  );
  assert.deepEqual(
    byTitle.get('time (seconds)')!.series.map((s) => s.name),
    ['time/eval_s', 'time/reward_s', 'time/rollout_s', 'time/step_s', 'time/sync_s', 'time/train_s'],
  );
  assert.deepEqual(
    byTitle.get('icepop fractions')!.series.map((s) => s.name),
    ['icepop/masked_frac', 'icepop/masked_high_frac', 'icepop/masked_low_frac'],
  );
  assert.equal(byTitle.get('rollout/tokens_per_s')!.series.length, 1, 'throughput is not a time');
  const accuracy = byTitle.get('eval/accuracy')!;
  assert.deepEqual(accuracy.x.slice(0, 3), [25, 50, 75]);
  assert.equal(accuracy.ys[0]!.length, 12);
  assert.equal(charts[0]!.section, 'reward', 'reward first');
  for (const c of charts) for (const ys of c.ys) assert.equal(ys.length, c.x.length);
});

test('report.html is self-contained: inlined chart library, embedded data, CSP without network, escaped samples', () => {
  const run = join(work, 'run');
  cpSync(fixture, run, { recursive: true });
  const summary = writeReport(run);
  assert.equal(summary.path, join(run, 'report.html'));
  assert.equal(summary.rows, 300);
  assert.equal(summary.series, metricNames().length);
  assert.equal(summary.warnings.length, 0);
  const html = readFileSync(summary.path, 'utf8');
  assert.match(
    html,
    /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">/,
  );
  assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]+(src|href)=/i, 'no external resources');
  assert.ok(html.includes('uPlot'), 'uPlot is inlined');
  const data = JSON.parse(html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)![1]!);
  assert.equal(data.charts.length, summary.charts);
  for (const name of metricNames()) assert.ok(html.includes(name), `${name} in the page`);
  assert.match(html, /Compute \d+ × \d+/, 'sample prompts shown');
  assert.match(html, /&lt;think&gt;/, 'sample text is escaped');
  assert.match(html, /checkpoints: 100, 200, 300/);
  assert.match(html, /SYNTHETIC run/);
  assert.ok(statSync(summary.path).size < 400_000, 'small enough to mail');
});

test('a damaged metrics.jsonl still gives a report that lists what was skipped', async () => {
  const run = join(work, 'damaged');
  cpSync(fixture, run, { recursive: true });
  appendFileSync(
    join(run, 'metrics.jsonl'),
    'garbage\n{"step": 301, "reward/mean": 0.7, "grad/norm": null}\n{"step": 302, "rew',
  );
  const result = await runCommand(reportCommand, run);
  assert.equal(result.code, 0, result.err);
  assert.match(
    result.out,
    /^wrote .*report\.html \(\d+ series in \d+ charts from 301 steps, 24 samples, 2 damaged lines skipped\)$/,
  );
  assert.match(result.err, /warning: .*metrics\.jsonl:301: skipped a corrupt line/);
  assert.match(result.err, /warning: .*metrics\.jsonl:303: ignored a torn last line/);
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  assert.match(html, /Damaged lines were skipped/);
  assert.match(
    html,
    /<code>grad\/norm<\/code>.*?<td class="bad" title="steps 301"><b>1<\/b> \(first at step 301\)<\/td>/,
    'a NaN step is counted in the summary',
  );
});

test('the synthetic-run generator writes a run the report and the config loader accept', () => {
  const run = join(work, 'generated');
  writeSyntheticRun(run, 60, 7);
  assert.equal(readConfigFile(join(run, 'config.yaml')).run.name, 'synthetic-run');
  const summary = writeReport(run);
  assert.equal(summary.rows, 60);
  assert.equal(summary.samples, 4);
  assert.equal(summary.warnings.length, 0);
});

test('ringrl report: --jsonl result, empty run, bad arguments', async () => {
  const json = await runCommand(reportCommand, fixture, '--out', join(work, 'x.html'), '--jsonl', '--samples', '3');
  assert.equal(json.code, 0, json.err);
  const event = JSON.parse(json.out);
  assert.equal(event.event, 'result');
  assert.equal(event.samples, 24);
  const empty = join(work, 'empty');
  RunDir.create(empty);
  const r = await runCommand(reportCommand, empty, '--quiet');
  assert.equal(r.code, 0, r.err);
  assert.match(readFileSync(join(empty, 'report.html'), 'utf8'), /metrics\.jsonl has no metric series yet/);
  for (const [argv, pattern] of [
    [[], /expected one RUN_DIR argument, got 0/],
    [[join(work, 'missing')], /missing: run directory does not exist/],
    [[tmpdir(), '--samples=-2'], /--samples must be an integer >= 0/],
    [[fixture, '--quiet', '--jsonl'], /--quiet and --jsonl cannot be combined/],
  ] as [string[], RegExp][]) {
    const bad = await runCommand(reportCommand, ...argv);
    assert.equal(bad.code, 2, argv.join(' '));
    assert.equal(bad.err.split('\n').length, 1);
    assert.match(bad.err, pattern);
  }
});

const chromium = ['chromium', 'chromium-browser'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);

test('the report draws every chart in headless Chromium with the network blocked', {
  skip: chromium ? false : 'chromium is not installed (apt-get install -y chromium)',
}, () => {
  const out = join(work, 'dom.html');
  writeReport(fixture, { out });
  const dom = execFileSync(
    chromium!,
    [
      '--headless',
      '--disable-gpu',
      '--no-sandbox',
      '--no-first-run',
      '--host-resolver-rules=MAP * ~NOTFOUND',
      '--proxy-server=http://127.0.0.1:9',
      '--virtual-time-budget=1000',
      '--dump-dom',
      `file://${out}`,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 },
  );
  const charts = buildCharts(RunDir.open(fixture).readMetrics()).length;
  assert.match(dom, new RegExp(`data-charts-drawn="${charts}"`), 'the client script ran to the end');
  assert.equal((dom.match(/<canvas/g) ?? []).length, charts, 'one canvas per chart');
  const png = join(work, 'shot.png');
  execFileSync('scripts/screenshot-report.sh', [fixture, png, '1200x900'], { stdio: 'ignore', timeout: 60000 });
  const bytes = readFileSync(png);
  assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
  assert.equal(bytes.readUInt32BE(16), 1200);
  assert.ok(bytes.length > 30_000, 'a screenshot with content, not a blank page');
});

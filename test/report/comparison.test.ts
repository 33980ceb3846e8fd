// The comparison report (bench icepop): one chart per metric, one line per arm, each the mean over
// the arm's runs (seeds) at every step where any of them logged the metric.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildComparisonCharts } from '../../src/report/html.ts';
import { RunDir, writeComparisonReport } from '../../src/report/index.ts';

test('comparison charts: a line per arm, the mean over its seeds, null where no seed logged the step', () => {
  const charts = buildComparisonCharts(
    [
      {
        name: 'none',
        rowSets: [
          [
            { step: 1, 'mismatch/kl': 1 },
            { step: 2, 'mismatch/kl': 3 },
          ],
          [{ step: 1, 'mismatch/kl': 3 }],
        ],
      },
      {
        name: 'icepop',
        rowSets: [
          [
            { step: 2, 'mismatch/kl': 5 },
            { step: 3, 'reward/mean': 0.5 },
          ],
        ],
      },
    ],
    ['reward/mean', 'mismatch/kl', 'grad/norm'],
  );
  assert.deepEqual(
    charts.map((c) => c.title),
    ['reward/mean', 'mismatch/kl'],
  ); // grad/norm: no data, no chart
  const kl = charts[1]!;
  assert.deepEqual(
    kl.series.map((s) => s.name),
    ['none', 'icepop'],
  );
  assert.deepEqual(kl.x, [1, 2]);
  assert.deepEqual(kl.ys, [
    [2, 3],
    [null, 5],
  ]);
});

test('writeComparisonReport: one self-contained page with every arm in its legend data', () => {
  const root = mkdtempSync(join(tmpdir(), 'ringrl-compare-'));
  const dirs = ['a', 'b'].map((name, i) => {
    const run = RunDir.create(join(root, name));
    for (let step = 1; step <= 3; step++)
      run.logMetrics(step, { 'reward/mean': 0.1 * step + i, 'mismatch/kl': 1e-4 * step });
    return run.path;
  });
  const summary = writeComparisonReport(
    [
      { name: 'none', dirs: [dirs[0]!] },
      { name: 'icepop', dirs: [dirs[1]!] },
    ],
    { out: join(root, 'report.html'), title: 'arms', metrics: ['reward/mean', 'mismatch/kl'], note: 'two arms' },
  );
  assert.equal(summary.charts, 2);
  assert.equal(summary.series, 4);
  const html = readFileSync(summary.path, 'utf8');
  const data = JSON.parse(html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)![1]!);
  assert.deepEqual(
    data.charts[0].series.map((s: { name: string }) => s.name),
    ['none', 'icepop'],
  );
  assert.deepEqual(data.charts[0].ys[1], [1.1, 1.2, 1.3]);
  assert.match(html, /<p>two arms<\/p>/);
});

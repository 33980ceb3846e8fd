// `writeReport(runDir)`: read a run directory and write its self-contained report.html.
import { writeFileSync, renameSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { RunDir } from './rundir.ts';
import { renderReport, buildCharts, buildComparisonCharts } from './html.ts';
import type { Warn } from './jsonl.ts';

export interface ReportOptions {
  /** Output file; default <run dir>/report.html. */
  out?: string;
  /** Newest samples to show (default 50). */
  maxSamples?: number;
  /** Also told about damaged lines (they are listed in the report too). */
  warn?: Warn;
}

export interface ReportSummary {
  path: string;
  charts: number;
  series: number;
  rows: number;
  samples: number;
  warnings: string[];
}

export function writeReport(dir: string, options: ReportOptions = {}): ReportSummary {
  const warnings: string[] = [];
  const run = RunDir.open(dir, { warn: (m) => (warnings.push(m), options.warn?.(m)) });
  const metrics = run.readMetrics();
  const samples = run.readSamples();
  const html = renderReport({
    title: basename(resolve(dir)),
    runPath: dir,
    metrics,
    samples,
    configText: run.configText(),
    checkpoints: run.checkpoints(),
    warnings,
    maxSamples: options.maxSamples ?? 50,
    generatedAt: new Date(),
  });
  const path = options.out ?? run.reportPath;
  writeFileSync(path + '.tmp', html);
  renameSync(path + '.tmp', path);
  const charts = buildCharts(metrics);
  return {
    path,
    charts: charts.length,
    series: charts.reduce((n, c) => n + c.series.length, 0),
    rows: metrics.length,
    samples: samples.length,
    warnings,
  };
}

/**
 * One report comparing runs: a chart per metric with one line per arm (the mean over the arm's
 * run directories, e.g. its seeds). Written to `out`; the arms' own reports are untouched.
 */
export function writeComparisonReport(
  arms: readonly { name: string; dirs: readonly string[] }[],
  options: { out: string; title: string; metrics: readonly string[]; note?: string },
): ReportSummary {
  const warnings: string[] = [];
  const runs = arms.map((arm) => ({
    name: arm.name,
    rowSets: arm.dirs.map((d) => RunDir.open(d, { warn: (m) => warnings.push(m) }).readMetrics()),
  }));
  const charts = buildComparisonCharts(runs, options.metrics);
  const html = renderReport({
    title: options.title,
    runPath: arms.map((a) => `${a.name}: ${a.dirs.join(', ')}`).join(' · '),
    metrics: [],
    samples: [],
    checkpoints: [],
    warnings,
    maxSamples: 0,
    generatedAt: new Date(),
    charts,
    ...(options.note ? { note: options.note } : {}),
  });
  writeFileSync(options.out + '.tmp', html);
  renameSync(options.out + '.tmp', options.out);
  return {
    path: options.out,
    charts: charts.length,
    series: charts.reduce((n, c) => n + c.series.length, 0),
    rows: runs.reduce((n, r) => n + r.rowSets.reduce((m, s) => m + s.length, 0), 0),
    samples: 0,
    warnings,
  };
}

// `writeReport(runDir)`: read a run directory and write its self-contained report.html.
import { writeFileSync, renameSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { RunDir } from './rundir.ts';
import { renderReport, buildCharts } from './html.ts';
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
  return { path, charts: charts.length, series: charts.reduce((n, c) => n + c.series.length, 0), rows: metrics.length, samples: samples.length, warnings };
}

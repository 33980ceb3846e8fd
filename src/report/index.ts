// Run directories and reports.
//
//   import { RunDir, runPath, writeReport } from '../report/index.ts';
//   const run = RunDir.create(runPath(config, 'rl'), formatConfig(config));    // runs/<name>/ + config.yaml
//   run.logMetrics(step, { 'reward/mean': 0.41, 'icepop/masked_frac': 0.0012, 'time/rollout_s': 3.2 });
//   run.logSamples(step, [{ prompt, response, reward, finish_reason }]);
//   await run.saveCheckpoint(step, (dir) => policy.save(dir), config.run.keep_checkpoints);
//   writeReport(run.path);                                        // runs/<name>/report.html
//
// Resuming: RunDir.open(dir), then run.latestCheckpoint() → { step, dir } | undefined.
export { RunDir, readCheckpointJson, runPath, type MetricsRow, type SampleRow, type RunDirOptions } from './rundir.ts';
export { writeReport, writeComparisonReport, type ReportOptions, type ReportSummary } from './report.ts';
export { appendJsonl, readJsonl, type Warn } from './jsonl.ts';
export { metricCatalog, type MetricInfo } from './metrics.ts';

// A closed-loop guard on the train/inference mismatch (beyond the paper; rl.mismatch_guard). The
// paper's collapses announce themselves: the mismatch KL and the fraction of tokens outside the
// IcePop band rise for many steps before reward falls. The guard watches both and, on a sustained
// rise, escalates one stage at a time, `patience` steps apart while the rise persists:
//   1. warn;
//   2. act: the run's remedy (recompute stale KV caches, then a higher engine precision);
//   3. stop the run with one line naming the metric, the threshold and the step.
// "Sustained rise": the median over the last `window` steps exceeds `rise` times the median over
// the first `window` steps (the baseline), and the metric's floor. Medians, not means, so a noisy
// but flat series (a spike, a heavy tail) never fires. After an action the recent history is
// cleared, so the remedy is judged on the steps after it; the baseline stays.
import { z } from 'zod';
import { parseConfig } from './config-error.ts';

export const guardedMetrics = ['mismatch/kl', 'icepop/masked_frac'] as const;
export type GuardedMetric = (typeof guardedMetrics)[number];

export const mismatchGuardSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('watch mismatch/kl and icepop/masked_frac and act on a sustained rise (warn, then remedy, then stop)'),
    window: z
      .int()
      .min(2)
      .default(10)
      .describe('steps in the baseline (the first steps) and in the recent window whose medians are compared'),
    rise: z
      .number()
      .gt(1)
      .default(4)
      .describe('a rise is sustained when the recent median exceeds rise x the baseline median (and the floor)'),
    kl_floor: z
      .number()
      .min(0)
      .default(1e-3)
      .describe('mismatch/kl never counts as risen below this (a near-zero baseline would make any noise a rise)'),
    masked_frac_floor: z
      .number()
      .min(0)
      .default(2e-3)
      .describe('icepop/masked_frac never counts as risen below this (the paper sees 1-2 per mille on healthy runs)'),
    patience: z
      .int()
      .min(1)
      .default(5)
      .describe('steps between escalations (warn -> remedy -> stop) while the rise persists'),
  })
  .describe('Closed-loop mismatch guard (off by default; docs/algorithms.md)');

export type MismatchGuardConfigInput = z.input<typeof mismatchGuardSchema>;
export type MismatchGuardConfig = z.output<typeof mismatchGuardSchema>;

export function parseMismatchGuardConfig(value: unknown = {}): MismatchGuardConfig {
  return parseConfig(mismatchGuardSchema, value, 'mismatch guard config');
}

export type GuardAction = 'none' | 'warn' | 'act' | 'stop';

export interface GuardVerdict {
  action: GuardAction;
  /** 0 quiet, 1 warned, 2 acted, 3 stopped. */
  stage: number;
  /** One line naming the metric, its recent median, the threshold and the step (empty when quiet). */
  message: string;
}

export class MismatchGuard {
  readonly config: MismatchGuardConfig;
  private readonly baseline = new Map<GuardedMetric, number[]>();
  private readonly recent = new Map<GuardedMetric, { step: number; value: number }[]>();
  private stage = 0;
  private lastEscalation = -Infinity;

  constructor(config: MismatchGuardConfigInput | MismatchGuardConfig = {}) {
    this.config = parseMismatchGuardConfig(config);
  }

  /** Feed one step's metrics; returns what to do now. Metrics missing from `metrics` are skipped. */
  observe(step: number, metrics: Record<string, number | undefined>): GuardVerdict {
    const quiet: GuardVerdict = { action: 'none', stage: this.stage, message: '' };
    if (!this.config.enabled) return quiet;
    const { window, patience } = this.config;
    let judged = false;
    let worst: { metric: GuardedMetric; median: number; threshold: number; base: number; from: number } | undefined;
    for (const metric of guardedMetrics) {
      const value = metrics[metric];
      if (value === undefined || !Number.isFinite(value)) continue;
      const base = this.baseline.get(metric) ?? [];
      if (base.length < window) {
        base.push(value);
        this.baseline.set(metric, base);
        continue;
      }
      const recent = [...(this.recent.get(metric) ?? []), { step, value }].slice(-window);
      this.recent.set(metric, recent);
      if (recent.length < window) continue;
      judged = true;
      const baseMedian = median(base);
      const threshold = Math.max(
        this.config.rise * baseMedian,
        metric === 'mismatch/kl' ? this.config.kl_floor : this.config.masked_frac_floor,
      );
      const m = median(recent.map((r) => r.value));
      if (m > threshold && (!worst || m / threshold > worst.median / worst.threshold))
        worst = { metric, median: m, threshold, base: baseMedian, from: recent[0]!.step };
    }
    if (!worst) {
      if (judged && this.stage > 0 && step - this.lastEscalation >= patience) this.stage = 0; // the rise has passed
      return { ...quiet, stage: this.stage };
    }
    if (this.stage > 0 && step - this.lastEscalation < patience) return { ...quiet, stage: this.stage };
    this.stage = Math.min(3, this.stage + 1);
    this.lastEscalation = step;
    const action: GuardAction = this.stage === 1 ? 'warn' : this.stage === 2 ? 'act' : 'stop';
    const fmt = (x: number) => x.toPrecision(3);
    const message = `mismatch guard at step ${step}: ${worst.metric} median ${fmt(worst.median)} over steps ${worst.from}-${step} exceeds the threshold ${fmt(worst.threshold)} (${this.config.rise}x its baseline median ${fmt(worst.base)}, floor included)`;
    return { action, stage: this.stage, message };
  }

  /** After a remedy: judge the metrics afresh on the steps that follow (the baseline stays). */
  remedied(): void {
    this.recent.clear();
  }

  /** An action that found no remedy left: the next escalation stops. */
  noRemedy(): void {
    this.stage = 2;
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

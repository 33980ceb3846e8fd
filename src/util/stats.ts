/** The arithmetic mean; 0 for an empty list (a metric over nothing logs as 0, not NaN). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

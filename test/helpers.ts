// Shared test helpers: seeded randoms, float64 host tensors, closeness assertions.
import assert from 'node:assert/strict';
import type { HostTensor } from '../src/runtime/index.ts';
import type { PromptSource } from '../src/rollout/types.ts';
export { rng } from '../src/util/random.ts';

export function f64(values: ArrayLike<number>, dims: number[]): HostTensor {
  return { dtype: 'float64', data: Float64Array.from(values), dims };
}

export function i64(values: number[], dims: number[]): HostTensor {
  return { dtype: 'int64', data: BigInt64Array.from(values.map(BigInt)), dims };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(
    d <= tol,
    `${what}: max abs diff ${d.toExponential(3)} > ${tol}\n  actual   ${Array.from(actual).slice(0, 8).join(', ')}\n  expected ${Array.from(expected).slice(0, 8).join(', ')}`,
  );
}

/** Node arguments that run the `ringrl` CLI from source (no build needed): `spawn(process.execPath, [...ringrlCli, 'rl', ...])`. */
export const ringrlCli = ['--import', 'tsx', new URL('../src/cli/bin.ts', import.meta.url).pathname];

/** Prompts p0, p1, ... all of the same tokens, with a cursor the scheduler can save and seek. */
export function countingPrompts(tokens: number[] = [1, 2, 3]): PromptSource {
  let n = 0;
  return { next: () => ({ id: `p${n++}`, tokens: [...tokens] }), cursor: () => n, seek: (c) => void (n = c) };
}

/**
 * Decode steps of ideal continuous batching: free slots take the next sequences before every step,
 * and a sequence of n tokens needs n - 1 decode steps (its first token comes from the prefill).
 */
export function idealRefillSteps(lengths: number[], capacity: number): number {
  let steps = 0;
  const queue = lengths.map((n) => n - 1);
  let running: number[] = [];
  while (queue.length || running.length) {
    while (running.length < capacity && queue.length) {
      const remaining = queue.shift()!;
      if (remaining > 0) running.push(remaining);
    }
    if (!running.length) continue;
    running = running.map((r) => r - 1).filter((r) => r > 0);
    steps++;
  }
  return steps;
}

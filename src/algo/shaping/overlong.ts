// Response-length handling: cutting responses at the limit, DAPO's soft overlong penalty, and
// overlong filtering (no loss on truncated responses).
import type { RlSample } from '../sample.ts';
import type { ShapingConfig } from './config.ts';

/**
 * DAPO's soft overlong punishment for a response of `length` tokens, L_max = max_response_length,
 * L_cache = buffer: 0 up to L_max - L_cache, then falling linearly to -factor at L_max, and
 * -factor beyond it.
 */
export function overlongPenalty(
  length: number,
  config: Pick<ShapingConfig, 'max_response_length' | 'overlong_penalty'>,
): number {
  const {
    max_response_length: max,
    overlong_penalty: { buffer, factor },
  } = config;
  if (buffer === 0 || length <= max - buffer) return 0;
  if (length > max) return -factor;
  return (factor * (max - buffer - length)) / buffer;
}

/** The sample with its response cut to maxResponseLength (then marked finish reason 'length'). */
export function capResponseLength<S extends RlSample>(sample: S, maxResponseLength: number): S {
  if (sample.response.length <= maxResponseLength) return sample;
  return {
    ...sample,
    response: sample.response.slice(0, maxResponseLength),
    rolloutLogprobs: sample.rolloutLogprobs.slice(0, maxResponseLength),
    finishReason: 'length',
  };
}

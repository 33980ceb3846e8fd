// Batch-shaping configuration: response-length limits, DAPO's soft overlong penalty and
// overlong filtering, and dynamic sampling.
import { z } from 'zod';
import { parseConfig } from '../config-error.ts';

export const shapingSchema = z
  .strictObject({
    max_response_length: z
      .int()
      .positive()
      .default(1024)
      .describe('responses longer than this are cut to it and marked finish_reason length'),
    truncated: z
      .enum(['keep', 'mask'])
      .default('keep')
      .describe("keep: train on truncated responses; mask: give them no loss (DAPO's overlong filtering)"),
    overlong_penalty: z
      .strictObject({
        buffer: z
          .int()
          .min(0)
          .default(0)
          .describe(
            'DAPO L_cache: responses longer than max_response_length - buffer lose reward linearly, down to -factor at max_response_length (0 = off)',
          ),
        factor: z.number().min(0).default(1).describe('the penalty at max_response_length (and beyond)'),
      })
      .prefault({})
      .describe("DAPO's soft overlong punishment, added to the reward"),
    dynamic_sampling: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'drop groups whose rewards all agree (they carry no GRPO signal) and sample more groups to refill the batch',
          ),
        max_rounds: z
          .int()
          .positive()
          .default(10)
          .describe('sampling rounds per step at most; after that the step trains on the groups it has'),
      })
      .prefault({})
      .describe('DAPO dynamic sampling'),
  })
  .superRefine((c, ctx) => {
    if (c.overlong_penalty.buffer > c.max_response_length) {
      ctx.addIssue({
        code: 'custom',
        path: ['overlong_penalty', 'buffer'],
        message: `must be at most max_response_length (${c.max_response_length}), got ${c.overlong_penalty.buffer}`,
      });
    }
  });

export type ShapingConfigInput = z.input<typeof shapingSchema>;
export type ShapingConfig = z.output<typeof shapingSchema>;

export function parseShapingConfig(value: unknown = {}): ShapingConfig {
  return parseConfig(shapingSchema, value, 'batch shaping config');
}

// The policy-loss configuration: one zod schema shared by the host reference
// (computePolicyLoss) and the training graph (policyLossSpec). Every knob is here with its
// default and a description; unknown keys are rejected.
import { z } from 'zod';
import { parseConfig } from './config-error.ts';

export const correctionNames = ['none', 'tis', 'icepop', 'mis'] as const;
export const routingReplayNames = ['off', 'rollout'] as const;
export const aggregationNames = ['token-mean', 'seq-mean-token-mean', 'budget'] as const;
export const klEstimatorNames = ['k1', 'k3'] as const;

export type CorrectionName = (typeof correctionNames)[number];
export type AggregationName = (typeof aggregationNames)[number];
export type KlEstimatorName = (typeof klEstimatorNames)[number];
export type RoutingReplayName = (typeof routingReplayNames)[number];

const icepopSchema = z
  .strictObject({
    alpha: z
      .number()
      .positive()
      .default(0.5)
      .describe('lower edge of the band: tokens with k < alpha get zero gradient'),
    beta: z.number().positive().default(5).describe('upper edge of the band: tokens with k > beta get zero gradient'),
  })
  .prefault({})
  .superRefine((band, ctx) => {
    if (band.alpha >= band.beta) {
      ctx.addIssue({
        code: 'custom',
        path: ['alpha'],
        message: `must be less than icepop.beta (${band.beta}), got ${band.alpha}`,
      });
    } else if (band.alpha > 1 || band.beta < 1) {
      ctx.addIssue({
        code: 'custom',
        path: [band.alpha > 1 ? 'alpha' : 'beta'],
        message: `the band [${band.alpha}, ${band.beta}] must contain 1, or on-policy tokens (k = 1) would get no gradient`,
      });
    }
  });

export const policyLossSchema = z
  .strictObject({
    correction: z
      .enum(correctionNames)
      .default('icepop')
      .describe(
        "train/inference mismatch correction: none (w = 1), tis (w = min(k, tis.cap)), icepop (w = k inside [alpha, beta], else 0), mis (icepop's weight, and rejected tokens also leave the loss denominator, as verl's token-level rollout_rs)",
      ),
    routing_replay: z
      .enum(routingReplayNames)
      .default('off')
      .describe(
        'MoE routing replay (R3): off (the trainer routes tokens itself), rollout (the trainer uses the experts the rollout engine chose for each token, so routing flips add no mismatch)',
      ),
    bypass: z
      .boolean()
      .default(false)
      .describe(
        'use the rollout log-probs as the old log-probs (no trainer recompute); k is then 1, so correction must be none',
      ),
    icepop: icepopSchema.describe('IcePop band on k = pi_train_old / pi_infer'),
    tis: z
      .strictObject({ cap: z.number().min(1).default(2).describe('truncation C of the importance weight k') })
      .prefault({})
      .describe('truncated importance sampling'),
    clip: z
      .strictObject({
        low: z.number().min(0).lt(1).default(0.2).describe('epsilon_low: the ratio is clipped below at 1 - low'),
        high: z
          .number()
          .min(0)
          .default(0.2)
          .describe('epsilon_high: the ratio is clipped above at 1 + high (clip-higher: DAPO uses 0.28)'),
      })
      .prefault({})
      .describe('PPO ratio clipping (clip-higher when high > low)'),
    aggregation: z
      .enum(aggregationNames)
      .default('token-mean')
      .describe(
        'token-mean: sum / response tokens; seq-mean-token-mean: mean over sequences of per-sequence token means; budget: sum / budget (C3PO)',
      ),
    budget: z
      .number()
      .positive()
      .optional()
      .describe(
        "C3PO token budget Phi: the loss is the token sum divided by it (required when aggregation is 'budget')",
      ),
    kl: z
      .strictObject({
        coef: z
          .number()
          .min(0)
          .default(0)
          .describe('weight of the KL penalty against the reference model (0 = off, as in Ring-1T)'),
        estimator: z
          .enum(klEstimatorNames)
          .default('k3')
          .describe('k1: log pi - log pi_ref; k3: exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1'),
      })
      .prefault({})
      .describe('KL penalty against a reference model'),
    entropy: z
      .strictObject({
        coef: z.number().min(0).default(0).describe('weight of the entropy bonus (subtracted from the loss)'),
      })
      .prefault({})
      .describe('entropy bonus'),
  })
  .superRefine((c, ctx) => {
    if (c.aggregation === 'budget' && c.budget === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['budget'],
        message: "required when aggregation is 'budget' (a positive token count)",
      });
    }
    if (c.bypass && c.correction !== 'none') {
      ctx.addIssue({
        code: 'custom',
        path: ['correction'],
        message: `must be 'none' with bypass: true (the old log-probs are the rollout log-probs, so k = 1 and '${c.correction}' would do nothing), got '${c.correction}'`,
      });
    }
  });

export type PolicyLossConfigInput = z.input<typeof policyLossSchema>;
export type PolicyLossConfig = z.output<typeof policyLossSchema>;

/** Validate and fill defaults; bad input throws one RingrlError line naming each bad key. */
export function parsePolicyLossConfig(value: unknown = {}): PolicyLossConfig {
  return parseConfig(policyLossSchema, value, 'policy loss config');
}

// The `reward` config section: what scores a trajectory in `ringrl rl`, where code runs, and how
// many scores may be in flight. The config room embeds this schema as it is.
import { z } from 'zod';

export const rewardTypes = ['task', 'math', 'code', 'module'] as const;
export type RewardType = (typeof rewardTypes)[number];

export const rewardSchema = z
  .strictObject({
    type: z
      .enum(rewardTypes)
      .default('task')
      .describe(
        "task: the built-in task's own check (a program task such as pycode runs in reward.sandbox; data files: the math verifier); math: the math verifier against the answer; code: the response's program run against the answer's tests in reward.sandbox; module: your reward function (reward.module).",
      ),
    sandbox: z
      .union([z.literal('local'), z.array(z.url()).min(1)])
      .default('local')
      .describe(
        'Where programs run: local (an in-process pool of sandboxed interpreters) or a list of `ringrl sandbox serve` URLs, used round-robin; a request a replica fails or times out on is retried on another.',
      ),
    module: z
      .string()
      .min(1)
      .optional()
      .describe(
        'reward.type module: a .ts/.js/.mjs file (relative to the working directory) exporting `async function reward({prompt, response, example})` that returns a number or {reward: number, ...other numbers}.',
      ),
    max_concurrent: z
      .int()
      .min(1)
      .default(64)
      .describe(
        "Scores in flight at once (verl's default); scoring starts as each trajectory finishes, while the rollout goes on.",
      ),
    timeout_s: z
      .number()
      .positive()
      .default(60)
      .describe(
        'Per-attempt timeout of a request to a reward service; a replica that does not answer in time has the request retried on another.',
      ),
    retries: z
      .int()
      .min(0)
      .default(4)
      .describe(
        'Further attempts per request on another replica after a connection error, a timeout or an overload answer (429/503/504); a request still failing is reported unscored (reward/unscored), never scored 0.',
      ),
    run_timeout_s: z
      .number()
      .positive()
      .max(120)
      .default(10)
      .describe('Wall and CPU limit of one program run (code and program tasks).'),
    memory_mb: z
      .int()
      .min(16)
      .max(8192)
      .default(1024)
      .describe("Memory limit of one program run, MiB (verl's SandboxFusion default)."),
  })
  .superRefine((r, ctx) => {
    if (r.type === 'module' && r.module === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['module'],
        message: 'reward.type module needs reward.module: a .ts or .js file exporting `reward`',
      });
    if (r.type !== 'module' && r.module !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['module'],
        message: `is used only with reward.type module (reward.type is ${r.type})`,
      });
  });

export type RewardConfig = z.output<typeof rewardSchema>;

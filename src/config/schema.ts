// The ringrl config schema: every knob, its type, range, default and one-sentence description.
// docs/config.md is generated from this file (`npm run docs`; a test fails when it is stale),
// so a field's `.describe()` text IS its documentation. Keys are snake_case, as written in YAML.
//
// Conventions (a test enforces the first two):
// - every field has a `.describe()`; every section is a `z.strictObject` (unknown keys are errors);
// - every field has a default, so an empty config is a valid config (the demo's);
// - a section is `section({...}, 'description')`, which makes it optional in the input and
//   fills its defaults.
//
// Extending: add fields to the section that owns them; a section whose code lives in a lower room
// (data, algo) keeps its schema there and is embedded here.
import { z } from 'zod';
import { presets } from '../model/presets.ts';
import { adamWDefaults } from '../train/optimizer.ts';
import { policyLossSchema } from '../algo/config.ts';
import { advantageSchema } from '../algo/advantages.ts';
import { mismatchGuardSchema } from '../algo/mismatch-guard.ts';
import { shapingSchema } from '../algo/shaping/config.ts';
import { precisions } from '../engine/precision.ts';
import { dataSchema } from '../data/config.ts';
import { rolloutConfigProblems } from '../rollout/scheduler.ts';
import { rolloutOptions } from './options.ts';
import { rewardSchema } from '../reward/config.ts';

/** A config section: unknown keys rejected, optional in the input, defaults filled in. */
export function section<T extends z.ZodRawShape>(shape: T, description: string) {
  // `{}` is a valid input because every field has a default (a test holds this); TypeScript
  // cannot see that through the generic shape.
  return z
    .strictObject(shape)
    .prefault({} as never)
    .describe(description);
}

const presetNames = Object.keys(presets) as [string, ...string[]];

/** AdamW settings; defaults are the trainer's (`adamWDefaults` in src/train/optimizer.ts). */
export function optimizerSection(defaults: Partial<typeof adamWDefaults> = {}) {
  const d = { ...adamWDefaults, ...defaults };
  return section(
    {
      lr: z.number().positive().max(1).default(d.lr).describe('Peak learning rate (AdamW).'),
      beta1: z.number().min(0).lt(1).default(d.beta1).describe('AdamW first-moment decay.'),
      beta2: z.number().min(0).lt(1).default(d.beta2).describe('AdamW second-moment decay.'),
      eps: z.number().positive().default(d.eps).describe('AdamW denominator epsilon.'),
      weight_decay: z
        .number()
        .min(0)
        .default(d.weightDecay)
        .describe('Decoupled weight decay; norm gains and biases are not decayed.'),
      max_grad_norm: z
        .number()
        .min(0)
        .default(d.maxGradNorm)
        .describe('Clip the global gradient L2 norm to this; 0 turns clipping off.'),
      warmup_steps: z
        .int()
        .min(0)
        .default(0)
        .describe('Linear learning-rate warmup from 0 over this many optimizer steps.'),
      schedule: z
        .enum(['constant', 'cosine'])
        .default('constant')
        .describe(
          'Learning-rate schedule after warmup: constant, or cosine decay to lr × min_lr_ratio at the last step.',
        ),
      min_lr_ratio: z
        .number()
        .min(0)
        .max(1)
        .default(0.1)
        .describe('Final learning rate as a fraction of lr (cosine schedule only).'),
    },
    'AdamW optimizer and learning-rate schedule.',
  );
}

/**
 * Keys that are alternatives to each other: a layer (file or --set) that sets one of them drops
 * the others set by earlier layers, so `--set model.dir=X` works on top of a config with a preset.
 * Setting both in the same layer is an error.
 */
export const alternatives: readonly (readonly string[])[] = [
  ['model.dir', 'model.preset'],
  ['data.train_file', 'data.task'],
];

const model = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Hugging Face model directory (config.json + model.safetensors) to load. Set this or preset, not both.',
      ),
    preset: z
      .enum(presetNames)
      .optional()
      .describe(`Built-in architecture to initialise from scratch when dir is not set (default: small).`),
    init_seed: z.int().min(0).default(0).describe('Seed for the fresh initialisation of a preset model.'),
  })
  .superRefine((m, ctx) => {
    if (m.dir !== undefined && m.preset !== undefined)
      ctx.addIssue({ code: 'custom', path: ['preset'], message: 'set model.dir or model.preset, not both' });
  })
  .transform((m) => ({
    dir: m.dir ?? null,
    preset: m.dir === undefined ? (m.preset ?? 'small') : null,
    init_seed: m.init_seed,
  }))
  .prefault({})
  .describe('The policy model: a model directory, or a built-in preset initialised from scratch.');

const sft = section(
  {
    steps: z.int().min(1).default(1000).describe('Optimizer steps.'),
    batch_size: z.int().min(1).default(32).describe('Sequences per optimizer step.'),
    max_seq_len: z.int().min(8).default(512).describe('Longest packed row in tokens; longer examples are truncated.'),
    pack: z
      .boolean()
      .default(true)
      .describe('Pack several short examples into one row (attention does not cross example boundaries).'),
    eval_every: z
      .int()
      .min(0)
      .default(200)
      .describe('Evaluate on held-out problems every this many steps; 0 = only at the end.'),
    micro_batch_tokens: z
      .int()
      .min(64)
      .default(8192)
      .describe(
        'Tokens per forward/backward pass; a step accumulates gradients over as many as it needs. Lower it to save memory; the result does not change.',
      ),
    optimizer: optimizerSection(),
  },
  'Supervised fine-tuning on teacher chain-of-thought (ringrl sft): prompt-masked next-token loss.',
);

const evalSection = section(
  {
    num_problems: z.int().min(1).default(200).describe('Held-out problems to evaluate.'),
    k: z.int().min(1).default(1).describe('Samples per problem (pass@k and avg@k).'),
    temperature: z.number().min(0).default(0).describe('Sampling temperature; 0 = greedy (use > 0 when k > 1).'),
    top_p: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p; 1 = off.'),
    max_new_tokens: z.int().min(1).default(512).describe('Generated tokens per sample at most.'),
  },
  'Evaluation (ringrl eval and periodic held-out evals): accuracy, pass@k, avg@k, response lengths.',
);

const runtime = section(
  {
    threads: z.int().min(0).default(0).describe('Intra-op threads for ONNX Runtime; 0 = all cores.'),
    execution_providers: z
      .array(z.string().min(1))
      .default([])
      .describe("ONNX Runtime execution providers in preference order (e.g. ['cuda']); cpu is always the fallback."),
  },
  'Compute runtime.',
);

const run = section(
  {
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a run name: letters, digits, ".", "_", "-", not starting with "." or "-"')
      .optional()
      .describe('Run name: the run directory is <dir>/<name>. Default: <command>-<UTC date and time>.'),
    dir: z.string().min(1).default('runs').describe('Parent directory of run directories.'),
    seed: z
      .int()
      .min(0)
      .default(0)
      .describe('Master seed for sampling, shuffling and anything else random in the run.'),
    checkpoint_every: z
      .int()
      .min(0)
      .default(200)
      .describe('Write checkpoints/<step>/ every this many steps; 0 = only at the end.'),
    keep_checkpoints: z.int().min(0).default(3).describe('Keep the newest this many checkpoints; 0 = keep all.'),
    samples_per_step: z
      .int()
      .min(0)
      .default(4)
      .describe('Trajectories per step appended to samples.jsonl (for the report).'),
  },
  'The run directory (runs/<name>/: config.yaml, metrics.jsonl, samples.jsonl, checkpoints/, report.html).',
);

// ── rl: the RL loop (ringrl rl, the demo) and its algorithm. The policy loss, advantage and
// batch-shaping schemas live with their code in src/algo and are embedded here as they are.
const rl = section(
  {
    steps: z
      .int()
      .min(1)
      .default(30)
      .describe('RL steps (optimizer updates; each publishes a new policy version to the engine).'),
    micro_batch_size: z
      .int()
      .min(1)
      .default(16)
      .describe(
        'Sequences per forward/backward pass in the trainer; gradients accumulate over a mini-batch, so the result does not depend on it.',
      ),
    mini_batches: z
      .int()
      .min(1)
      .default(1)
      .describe(
        'Optimizer updates per rollout batch (PPO mini-batches; verl ppo_mini_batch_size = batch / mini_batches). Every update is against the same old policy, so the clipped ratio and IcePop stay meaningful.',
      ),
    epochs: z
      .int()
      .min(1)
      .default(1)
      .describe('Passes over each rollout batch (verl ppo_epochs); each pass reshuffles it into mini-batches.'),
    eval_every: z
      .int()
      .min(0)
      .default(0)
      .describe(
        'Evaluate on held-out problems every this many steps (and always before the first and after the last); 0 = only before and after.',
      ),
    rollback_after: z
      .int()
      .min(0)
      .default(3)
      .describe(
        'An update whose loss or gradient is not finite is skipped (train/skipped); after this many steps in a row with a skipped update the run rolls back to its last checkpoint (and stops if it happens again before a newer one). 0 = never roll back.',
      ),
    release_memory: z
      .boolean()
      .default(true)
      .describe(
        "AMem: the rollout engine and the trainer run without onnxruntime's CPU memory arena, so each run's working set is returned when it ends: the engine's during training, the trainer's activations during rollout (the engine's KV cache is freed whenever its pool is empty or paused). false keeps both arenas (each holds its peak between phases).",
      ),
    optimizer: optimizerSection({ lr: 1e-4, weightDecay: 0.01 }),
    loss: policyLossSchema
      .prefault({})
      .describe(
        'The policy loss: PPO/GRPO clipping with the IcePop / TIS / no mismatch correction and the aggregation (docs/algorithms.md).',
      ),
    advantage: advantageSchema.prefault({}).describe('Advantage estimator over each group of samples of one prompt.'),
    shaping: shapingSchema
      .prefault({})
      .describe('Batch shaping: response-length cap, DAPO overlong penalty, dynamic sampling.'),
    mismatch_guard: mismatchGuardSchema
      .prefault({})
      .describe(
        'Closed-loop mismatch guard (off by default): on a sustained rise of mismatch/kl or icepop/masked_frac it warns, then recomputes stale KV caches or raises the engine precision, then stops the run with one line naming metric, threshold and step.',
      ),
  },
  'Reinforcement learning (ringrl rl): the loop and the policy-loss algorithm (IcePop, TIS, GRPO).',
);

// ── rollout: the scheduler (C3PO++ and its baselines), the engine and sampling.
const rollout = section(
  {
    mode: z
      .enum(['c3po', 'sync', 'async'])
      .default('c3po')
      .describe(
        'c3po: token budget per step, unfinished rollouts carried across updates (dropped after retention steps); sync: every started rollout finishes under the policy that started it; async: carried like c3po, but members more than staleness versions old are dropped when their group completes.',
      ),
    token_budget: z
      .int()
      .min(1)
      .default(4096)
      .describe(
        'Φ: response tokens of finished trajectories that end a rollout phase. Must be at least max_new_tokens.',
      ),
    pool_capacity: z.int().min(1).default(64).describe('Ω_infer: sequences decoding concurrently (the engine batch).'),
    retention: z
      .int()
      .min(0)
      .default(2)
      .describe('σ (c3po): a partial rollout that has spanned more than this many policy updates is dropped.'),
    staleness: z
      .int()
      .min(0)
      .default(2)
      .describe('η (async): members whose first token is more than this many versions old are dropped.'),
    group_size: z
      .int()
      .min(1)
      .default(8)
      .describe(
        'G: samples per prompt (a GRPO group, trained on only when all members have ended). Needs >= 2 for group advantages.',
      ),
    temperature: z
      .number()
      .gt(0)
      .default(1)
      .describe('Sampling temperature (the trainer recomputes log-probs at the same temperature).'),
    top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling mass; 1 = off.'),
    top_k: z.int().min(0).default(0).describe('Keep the k most probable tokens; 0 = off.'),
    max_new_tokens: z
      .int()
      .min(1)
      .default(256)
      .describe('Response tokens at most; longer responses end with finish_reason length.'),
    paused_kv: z
      .enum(['recompute', 'keep'])
      .default('recompute')
      .describe(
        'How a paused rollout resumes after a weight update: recompute re-prefills it under the new weights (exact, as verl/AReaL do); keep continues from its cached keys and values (no re-prefill; PipelineRL-style stale KV, a mismatch IcePop bounds), faster where prefill costs about what decode did, as on a CPU.',
      ),
    kv_segments: z
      .array(z.int().min(1))
      .optional()
      .describe(
        "First cache position of each KV-cache segment after the first, ascending: a sequence reads only the segments its length reaches (docs/engine.md). [] = one dense cache. Default: 64, 128, 256, … doubling below the model's context.",
      ),
    precision: z
      .enum(precisions)
      .default('fp32')
      .describe(
        'Rollout weight precision (the trainer stays fp32): bf16, fp8 (e4m3, per-channel scale), fp8-tensor (per-tensor scale) make the train/inference mismatch real (simulated in fp32); int8 (per-channel) and int4 (blocks of 32) run on onnxruntime integer kernels.',
      ),
    engine: z
      .enum(['local', 'http'])
      .default('local')
      .describe(
        "local: the engine runs in the trainer's process; http: rollouts go over SGLang's /generate protocol to rollout.servers (ringrl serve or SGLang) or to engine_workers started by the run (docs/serve.md).",
      ),
    servers: z
      .array(z.string().regex(/^https?:\/\/[^/\s]+\/?$/, 'a base URL like http://127.0.0.1:30000'))
      .default([])
      .describe(
        'Base URLs of SGLang-protocol servers (engine http). Weights are published as versioned snapshots: in /dev/shm when every server is on this host, else under <run>/weights/v<N>, which every server must be able to read unless rollout.weights_url serves them over HTTP.',
      ),
    weights_url: z
      .string()
      .regex(/^http:\/\/[^/\s]+:\d+\/?$/, 'a URL like http://10.0.0.5:31000 (this host, a port)')
      .nullable()
      .default(null)
      .describe(
        'engine http: serve the published weight versions over HTTP at this URL (the trainer listens on its host and port) so servers on other machines fetch them (streamed, resumable, sha256-verified) instead of reading <run>/weights; off loopback it needs rollout.api_key, which the servers must also use (docs/astate.md).',
      ),
    engine_workers: z
      .int()
      .min(0)
      .default(0)
      .describe(
        'engine http: start this many `ringrl serve` child processes on loopback ports (stopped when the run ends, also on Ctrl-C and errors); 0 = use rollout.servers.',
      ),
    faults: section(
      {
        timeout_s: z
          .number()
          .positive()
          .default(60)
          .describe(
            'engine http: a server with requests in flight that streams nothing for this long is stalled and treated as dead (its sequences resume elsewhere); every other call to a server waits this long at most.',
          ),
        retries: z
          .int()
          .min(1)
          .default(3)
          .describe(
            'engine http: attempts of one request on 5xx answers (and of a control call on connection errors), with exponential backoff from 0.2 s; then the run stops with the error.',
          ),
        breaker_failures: z
          .int()
          .min(1)
          .default(5)
          .describe(
            "engine http: 5xx answers in a row that open a server's circuit breaker (it leaves the rotation and is recovered as a lost one), as SGLang's router does.",
          ),
        breaker_cooldown_s: z
          .number()
          .positive()
          .default(30)
          .describe(
            'engine http: a lost server of rollout.servers is probed with /health_generate this often; once it answers and has loaded the newest weights it gets work again.',
          ),
        health_interval_s: z
          .number()
          .min(0)
          .default(10)
          .describe(
            'engine http: an idle server not heard from for this long is checked with /health_generate (a failure = lost); 0 = no heartbeat.',
          ),
        give_up_s: z
          .number()
          .positive()
          .default(60)
          .describe(
            'engine http: with every server lost for this long (none restarted or answering its probe), the run saves a checkpoint and stops with one line.',
          ),
        max_restarts: z
          .int()
          .min(0)
          .default(3)
          .describe(
            'rollout.engine_workers: restarts of one lost worker at most (each brought to the newest weights before it gets work); after that it is gone.',
          ),
      },
      'Fault tolerance of engine http: stall timeout, retries, circuit breaker, heartbeat and worker restarts (docs/serve.md).',
    ),
    api_key: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Bearer key for rollout.servers (default: the RINGRL_API_KEY environment variable). It is written into the run's config.yaml; prefer the variable.",
      ),
  },
  'Rollout scheduling (C3PO++ and baselines), the rollout engine and sampling.',
).superRefine((r, ctx) => {
  if (r.kv_segments?.some((start, i) => i > 0 && start <= r.kv_segments![i - 1]!))
    ctx.addIssue({
      code: 'custom',
      path: ['kv_segments'],
      message: `must be ascending, got [${r.kv_segments.join(', ')}]`,
    });
  if (r.engine === 'local' && (r.servers.length || r.engine_workers))
    ctx.addIssue({
      code: 'custom',
      path: ['engine'],
      message: `must be http when rollout.servers or rollout.engine_workers is set, got local`,
    });
  if (r.engine === 'http' && !r.servers.length && !r.engine_workers)
    ctx.addIssue({
      code: 'custom',
      path: ['servers'],
      message: 'engine http needs server URLs (rollout.servers) or rollout.engine_workers >= 1',
    });
  if (r.servers.length && r.engine_workers)
    ctx.addIssue({
      code: 'custom',
      path: ['engine_workers'],
      message: `set rollout.servers or rollout.engine_workers, not both, got ${r.engine_workers} workers and ${r.servers.length} servers`,
    });
});

// ── system: where the parts of an RL run run.
const system = section(
  {
    placement: z
      .enum(['colocated', 'disaggregated'])
      .default('colocated')
      .describe(
        "colocated: rollout, training and weight publication alternate on the same resources; disaggregated: the engines keep decoding under version v while the trainer trains v → v+1 (C3PO++'s pool keeps decoding, the cut stays at token_budget) and the weights are published at the step boundary. Meant for engines outside the trainer (rollout.engine http: engine_workers or servers); with the local engine its decode steps interleave with training in the trainer's process on the same cores (docs/system.md).",
      ),
  },
  'Placement of rollout and training (docs/system.md).',
);

// ── reward: what scores a trajectory; the schema lives with its code in src/reward.
const reward = rewardSchema
  .prefault({})
  .describe(
    'Rewards in the RL loop: the task check, the math verifier, code run in the sandbox, or your own function; scored concurrently as trajectories finish.',
  );

export const configSchema = z
  .strictObject({ model, data: dataSchema, sft, eval: evalSection, rl, rollout, reward, system, runtime, run })
  .superRefine((c, ctx) => {
    // Every advantage estimator here (grpo, dr_grpo, rloo) is group-relative: one sample has nothing to compare with.
    for (const [key, message] of rolloutConfigProblems(rolloutOptions(c as Config, [])))
      ctx.addIssue({ code: 'custom', path: ['rollout', key], message });
    if (c.rollout.group_size < 2) {
      ctx.addIssue({
        code: 'custom',
        path: ['rollout', 'group_size'],
        message: `must be at least 2 with rl.advantage.estimator ${c.rl.advantage.estimator} (advantages compare the samples of one prompt), got ${c.rollout.group_size}`,
      });
    }
  })
  .describe('The ringrl config.');

/** The config as a user writes it (every key optional). */
export type ConfigInput = z.input<typeof configSchema>;
/** The resolved config: every default filled in. */
export type Config = z.output<typeof configSchema>;

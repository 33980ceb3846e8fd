// The `data` config section, beside the code that reads it (src/data/index.ts turns it into
// example streams); src/config/schema.ts embeds it as the config's `data` key.
import { z } from 'zod';
import { DEFAULT_ANSWER_FIELDS } from './dataset.ts';
import { tasks } from './tasks/index.ts';

/** Built-in reasoning tasks, by the names configs and the CLI use (the task registry's keys). */
export const taskNames = Object.keys(tasks) as [string, ...string[]];

export const dataSchema = z
  .strictObject({
    task: z
      .enum(taskNames)
      .optional()
      .describe(
        `Built-in reasoning task generating train and test problems when train_file is not set (default: arithmetic).`,
      ),
    difficulty: z
      .int()
      .min(1)
      .max(10)
      .default(3)
      .describe('Task difficulty knob, 1 (easiest) to 10; what it scales is task-specific (see docs/tasks.md).'),
    num_train: z.int().min(1).default(20000).describe('Problems generated for training (built-in task).'),
    no_think_fraction: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe(
        'Built-in task SFT data: fraction of problems whose teacher answers without a scratchpad (<think></think> then the answer), as hybrid-thinking SFT data mixes both modes.',
      ),
    brief_fraction: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe(
        'Built-in task SFT data: fraction of problems whose teacher writes a brief chain of thought (intermediate results without the work, docs/tasks.md); no_think_fraction + brief_fraction is at most 1.',
      ),
    num_test: z
      .int()
      .min(1)
      .default(500)
      .describe('Held-out problems generated for evaluation (built-in task); never overlaps the training split.'),
    train_file: z
      .string()
      .min(1)
      .optional()
      .describe('Training data file (.jsonl or .parquet) instead of a built-in task.'),
    test_file: z.string().min(1).optional().describe('Held-out evaluation data file (.jsonl or .parquet).'),
    prompt_field: z
      .string()
      .min(1)
      .default('prompt')
      .describe(
        'Field holding the prompt in data files: text, or a list of {role, content} chat messages (verl, slime).',
      ),
    messages_field: z
      .string()
      .min(1)
      .default('messages')
      .describe('Field holding a chat message list (used when prompt_field is absent from a row; AReaL).'),
    answer_field: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default([...DEFAULT_ANSWER_FIELDS])
      .describe(
        'Field (or fields, the first present wins) holding the gold answer in data files; dotted paths reach into nested objects. The default covers AReaL, slime and verl rows.',
      ),
    apply_chat_template: z
      .boolean()
      .default(false)
      .describe(
        "Render plain-text prompts as one user message through the model's chat template (slime's --apply-chat-template); chat-message prompts always go through it.",
      ),
    chat_template_kwargs: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .default({})
      .describe(
        "Extra chat-template variables (verl's apply_chat_template_kwargs), e.g. {enable_thinking: false} for Qwen3, {date_string: '26 Jul 2024'} for Llama 3.2.",
      ),
    response_field: z
      .string()
      .min(1)
      .default('response')
      .describe('Field holding the target response for SFT in data files.'),
    seed: z.int().min(0).default(0).describe('Seed for task generation and data shuffling.'),
  })
  .superRefine((d, ctx) => {
    if (d.train_file !== undefined && d.task !== undefined)
      ctx.addIssue({ code: 'custom', path: ['task'], message: 'set data.task or data.train_file, not both' });
    if (d.no_think_fraction + d.brief_fraction > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['brief_fraction'],
        message: `no_think_fraction + brief_fraction must be at most 1, got ${d.no_think_fraction} + ${d.brief_fraction}`,
      });
  })
  .transform(({ task, train_file, test_file, ...rest }) => ({
    task: train_file === undefined ? (task ?? 'arithmetic') : null,
    train_file: train_file ?? null,
    test_file: test_file ?? null,
    ...rest,
  }))
  .prefault({})
  .describe('Training and evaluation data: a built-in reasoning task, or JSONL/Parquet files.');

/** A resolved `data` section. */
export type DataConfig = z.output<typeof dataSchema>;

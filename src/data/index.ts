// The data room's public surface, and the one place a config's `data` section becomes example
// streams: a built-in task (train split, endless) or a JSONL/Parquet file (seeded epochs), plus
// the held-out examples and the verifier that judges them.
import { RingrlError } from '../errors.ts';
import type { DataConfig } from './config.ts';
import { type DatasetOptions, loadDataset } from './dataset.ts';
import type { Example } from './example.ts';
import { type ExampleSource, listSource, taskSource } from './source.ts';
import { taskProblems } from './tasks/index.ts';

function fieldOptions(d: DataConfig): DatasetOptions['fields'] {
  return { prompt: d.prompt_field, messages: d.messages_field, answer: d.answer_field, response: d.response_field };
}

/** The config's prompt formatting: plain prompts wrapped as a user message, template kwargs attached. */
function formatted(d: DataConfig): (ex: Example) => Example {
  const kwargs = Object.keys(d.chat_template_kwargs).length ? d.chat_template_kwargs : undefined;
  return (ex) => {
    const wrap = d.apply_chat_template && typeof ex.prompt === 'string';
    const prompt = wrap ? [{ role: 'user', content: ex.prompt as string }] : ex.prompt;
    return { ...ex, prompt, ...(kwargs ? { chatTemplateKwargs: kwargs } : {}) };
  };
}

/** What the training stream is for: SFT needs target responses, RL needs gold answers. */
export type TrainPurpose = 'sft' | 'rl';

/** The training stream of a data config: a built-in task (endless) or a dataset file (seeded epochs). */
export async function trainSourceFor(d: DataConfig, purpose: TrainPurpose = 'sft'): Promise<ExampleSource> {
  const format = formatted(d);
  if (d.task) {
    const task = taskSource(d.task, {
      difficulty: d.difficulty,
      seed: d.seed,
      numTrain: d.num_train,
      noThinkFraction: d.no_think_fraction,
      briefFraction: d.brief_fraction,
    });
    const next = task.next.bind(task);
    task.next = () => format(next());
    return task;
  }
  const file = d.train_file!;
  const required = purpose === 'sft' ? { requireResponse: true } : { requireAnswer: true };
  const examples = await loadDataset(file, { fields: fieldOptions(d), ...required });
  return listSource(examples.map(format), d.seed, file);
}

/**
 * Held-out examples: the first `n` (at most data.num_test) test-split problems of the task, or the
 * first `n` rows of test_file. Training on a file without a test_file is an error, unless
 * `optional` (then there is nothing to evaluate: an empty list).
 */
export async function testExamplesFor(d: DataConfig, n: number, options: { optional?: boolean } = {}) {
  const format = formatted(d);
  if (d.test_file) {
    const examples = await loadDataset(d.test_file, { fields: fieldOptions(d), requireAnswer: true, limit: n });
    return examples.map(format);
  }
  if (!d.task) {
    if (options.optional) return [];
    throw new RingrlError('data.test_file is required for held-out evaluation when training on data.train_file');
  }
  const split = { split: 'test', difficulty: d.difficulty, seed: d.seed } as const;
  const problems = taskProblems(d.task, Math.min(n, d.num_test), split);
  return problems.map((p): Example => format({ source: `${d.task}/${p.id}`, prompt: p.prompt, answer: p.answer }));
}

export { type DataConfig, dataSchema, taskNames } from './config.ts';
export { type Example, encodeExample, encodeExamplePrompt, encodePrompt } from './example.ts';
export {
  type DatasetOptions,
  type FieldNames,
  DEFAULT_ANSWER_FIELDS,
  defaultFields,
  loadDataset,
  readDataset,
  rowToExample,
} from './dataset.ts';
export { type ExampleSource, listSource, taskSource } from './source.ts';
export { shuffled } from './shuffle.ts';
export {
  getTask,
  lengthStats,
  taskProblems,
  tasks,
  arithmetic,
  countdown,
  type ReasoningTask,
  type TaskProblem,
  type TaskVerdict,
} from './tasks/index.ts';

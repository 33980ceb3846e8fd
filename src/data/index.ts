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
  return { prompt: d.prompt_field, messages: d.messages_field, answer: d.answer_field === 'answer' ? ['answer', 'ground_truth'] : d.answer_field, response: d.response_field };
}

/** The SFT training stream of a data config. */
export async function trainSourceFor(d: DataConfig): Promise<ExampleSource> {
  if (d.task) return taskSource(d.task, { difficulty: d.difficulty, seed: d.seed, numTrain: d.num_train, noThinkFraction: d.no_think_fraction, briefFraction: d.brief_fraction });
  const file = d.train_file!;
  const examples = await loadDataset(file, { fields: fieldOptions(d), requireResponse: true });
  return listSource(examples, d.seed, file);
}

/** Held-out examples: the first `n` (at most data.num_test) test-split problems of the task, or the first `n` rows of test_file. */
export async function testExamplesFor(d: DataConfig, n: number): Promise<Example[]> {
  if (d.test_file) return loadDataset(d.test_file, { fields: fieldOptions(d), requireAnswer: true, limit: n });
  if (!d.task) throw new RingrlError('data.test_file is required for held-out evaluation when training on data.train_file');
  return taskProblems(d.task, Math.min(n, d.num_test), { split: 'test', difficulty: d.difficulty, seed: d.seed }).map((p) => ({ source: `${d.task}/${p.id}`, prompt: p.prompt, answer: p.answer }));
}

export { type DataConfig, dataSchema, taskNames } from './config.ts';
export { type Example, encodeExample, encodePrompt } from './example.ts';
export { type DatasetOptions, type FieldNames, defaultFields, loadDataset, readDataset, rowToExample } from './dataset.ts';
export { type ExampleSource, listSource, taskSource } from './source.ts';
export { shuffled } from './shuffle.ts';
export { getTask, lengthStats, taskProblems, tasks, arithmetic, countdown, type ReasoningTask, type TaskProblem, type TaskVerdict } from './tasks/index.ts';

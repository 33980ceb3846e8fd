import { type Command, UsageError, numberFlag, parseFlags, requireFlag } from './command.ts';
import { Policy } from '../train/policy.ts';
import { configureRuntime } from '../runtime/index.ts';
import { readJsonFile } from '../util/files.ts';

/**
 * Read `{"<field>": [[ids...], ...]}` (token-id lists: sequences to score, prompts to extend) and
 * check its shape, naming the file and the entry.
 */
export function readTokenLists(path: string, field: string, what: string): number[][] {
  const raw = readJsonFile(path, `{"${field}": [[ids...], ...]}`);
  const lists = (raw as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(lists) || lists.length === 0)
    throw new UsageError(`${path}: expected {"${field}": [[ids...], ...]} with at least one ${what}`);
  lists.forEach((ids, i) => {
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((t) => Number.isInteger(t)))
      throw new UsageError(`${path}: ${field}[${i}] must be a non-empty array of integer token ids`);
  });
  return lists as number[][];
}

export const logprobsCommand: Command = {
  name: 'logprobs',
  help: `usage: ringrl logprobs --model DIR --tokens FILE.json [--temperature T] [--threads N]

Reads {"tokens": [[ids...], ...]} and prints {"logprobs": [[...], ...]}: for each sequence,
log p(token[t] | token[<t]) for t = 1..len-1 (full softmax at temperature T, default 1).

example:
  echo '{"tokens": [[1, 5, 9, 3]]}' > t.json
  ringrl logprobs --model runs/tiny --tokens t.json`,
  async run(argv) {
    const { values } = parseFlags('logprobs', argv, {
      model: { type: 'string' },
      tokens: { type: 'string' },
      temperature: { type: 'string' },
      threads: { type: 'string' },
    });
    const model = requireFlag('logprobs', values, 'model');
    const file = requireFlag('logprobs', values, 'tokens');
    const temperature = numberFlag('logprobs', 'temperature', values.temperature, 1, { min: Number.MIN_VALUE });
    if (values.threads !== undefined)
      configureRuntime({ threads: numberFlag('logprobs', 'threads', values.threads, 0, { integer: true, min: 1 }) });
    const sequences = readTokenLists(file, 'tokens', 'sequence');
    const policy = Policy.load(model);
    sequences.forEach((s, i) => {
      const bad = s.findIndex((t) => t < 0 || t >= policy.config.vocabSize);
      if (bad >= 0)
        throw new UsageError(
          `${file}: tokens[${i}][${bad}] = ${s[bad]} is outside the model's vocabulary [0, ${policy.config.vocabSize})`,
        );
      if (s.length > policy.config.maxPositions)
        throw new UsageError(
          `${file}: tokens[${i}] has ${s.length} tokens; the model's context is ${policy.config.maxPositions}`,
        );
    });
    // Length-1 sequences have nothing to score: report an empty list rather than failing the batch.
    const scorable = sequences.map((s, i) => [s, i] as const).filter(([s]) => s.length >= 2);
    const result: number[][] = sequences.map(() => []);
    if (scorable.length) {
      const { logprobs } = await policy.score(
        scorable.map(([s]) => s),
        temperature,
      );
      scorable.forEach(([, i], j) => (result[i] = logprobs[j]!));
    }
    console.log(JSON.stringify({ logprobs: result }));
  },
};

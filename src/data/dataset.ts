// Dataset files: JSONL (one JSON object per line) and Parquet (via hyparquet, with the
// hyparquet-compressors codecs: snappy, gzip, zstd, brotli, lz4), read as a stream of Examples.
//
// Field names are configurable, dotted paths reach into nested objects (verl's
// `reward_model.ground_truth`). A row's prompt is the `prompt` field (text, or a chat message
// list) or else the `messages` field; with `messages` and no `response` field, a trailing
// assistant message is the SFT response. The default answer fields cover the peers' formats
// without configuration: AReaL's `answer`, slime's `label`, `ground_truth`, and verl's
// `reward_model.ground_truth`. Every problem is one line naming the file, the line (JSONL,
// 1-based) or row (Parquet, 0-based) and the field.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { RingrlError } from '../errors.ts';
import { parseJsonLine } from '../util/files.ts';
import type { ChatMessage } from '../tokenizer/index.ts';
import type { Example } from './example.ts';

export interface FieldNames {
  prompt: string;
  messages: string;
  /** Tried in order; the first present wins. */
  answer: string[];
  response: string;
}

/** The gold-answer fields tried when none is configured: AReaL, slime, plain, verl. */
export const DEFAULT_ANSWER_FIELDS = ['answer', 'label', 'ground_truth', 'reward_model.ground_truth'];

export const defaultFields: FieldNames = {
  prompt: 'prompt',
  messages: 'messages',
  answer: DEFAULT_ANSWER_FIELDS,
  response: 'response',
};

export interface DatasetOptions {
  fields?: Partial<Omit<FieldNames, 'answer'>> & { answer?: string | string[] };
  /** Rows must have a gold answer (eval, RL). */
  requireAnswer?: boolean;
  /** Rows must have an SFT response. */
  requireResponse?: boolean;
  /** Stop after this many examples. */
  limit?: number;
}

function resolveFields(options: DatasetOptions): FieldNames {
  const f = options.fields ?? {};
  const answer = f.answer === undefined ? defaultFields.answer : Array.isArray(f.answer) ? f.answer : [f.answer];
  return { ...defaultFields, ...f, answer } as FieldNames;
}

function getPath(row: Record<string, unknown>, path: string): unknown {
  let value: unknown = row;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

const present = (v: unknown) => v !== undefined && v !== null;

/** A short description of a value for error messages: its type, and the start of its JSON. */
function describe(value: unknown): string {
  const type = Array.isArray(value)
    ? 'a list'
    : value === null
      ? 'null'
      : typeof value === 'object'
        ? 'an object'
        : `a ${typeof value}`;
  const json = toJson(value);
  return `${type} ${json.length > 60 ? `${json.slice(0, 57)}...` : json}`;
}

/** JSON text of a row value; Parquet int64 values arrive as bigint, which JSON.stringify rejects. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) ?? String(value);
}

function toMessages(value: unknown, where: string, field: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    const expected = 'prompt text or a non-empty list of {role, content} chat messages';
    throw new RingrlError(`${where}: field '${field}' must be ${expected}, got ${describe(value)}`);
  }
  return value.map((m, i) => {
    if (
      !m ||
      typeof m !== 'object' ||
      typeof (m as ChatMessage).role !== 'string' ||
      typeof (m as ChatMessage).content !== 'string'
    ) {
      const got = describe(m);
      throw new RingrlError(`${where}: field '${field}[${i}]' must be {role: string, content: string}, got ${got}`);
    }
    return { role: (m as ChatMessage).role, content: (m as ChatMessage).content };
  });
}

/** One row → Example, or a one-line error naming `where` and the field. */
export function rowToExample(row: unknown, where: string, options: DatasetOptions = {}): Example {
  if (!row || typeof row !== 'object' || Array.isArray(row))
    throw new RingrlError(
      `${where}: expected a JSON object per row, got ${Array.isArray(row) ? 'an array' : typeof row}`,
    );
  const r = row as Record<string, unknown>;
  const fields = resolveFields(options);
  let prompt: string | ChatMessage[];
  let response: string | undefined;
  const rawResponse = getPath(r, fields.response);
  if (present(rawResponse)) {
    if (typeof rawResponse !== 'string') throw new RingrlError(`${where}: field '${fields.response}' must be a string`);
    response = rawResponse;
  }
  const rawPrompt = getPath(r, fields.prompt);
  if (present(rawPrompt)) {
    if (typeof rawPrompt === 'string') prompt = rawPrompt;
    else prompt = toMessages(rawPrompt, where, fields.prompt);
  } else {
    const rawMessages = getPath(r, fields.messages);
    if (!present(rawMessages))
      throw new RingrlError(
        `${where}: missing field '${fields.prompt}' (or '${fields.messages}'); expected the prompt text or chat messages`,
      );
    prompt = toMessages(rawMessages, where, fields.messages);
    if (response === undefined && prompt.at(-1)!.role === 'assistant' && prompt.length > 1) {
      response = prompt.at(-1)!.content;
      prompt = prompt.slice(0, -1);
    }
  }
  if (typeof prompt === 'string' && prompt === '') throw new RingrlError(`${where}: field '${fields.prompt}' is empty`);
  const answerField = fields.answer.find((f) => present(getPath(r, f)));
  let answer = '';
  if (answerField !== undefined) {
    const raw = getPath(r, answerField);
    answer =
      typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'bigint' ? String(raw) : toJson(raw);
    if (options.requireAnswer && answer.trim() === '') {
      throw new RingrlError(`${where}: field '${answerField}' is empty; expected the gold answer`);
    }
  } else if (options.requireAnswer) {
    throw new RingrlError(`${where}: missing field '${fields.answer.join("' or '")}'; expected the gold answer`);
  }
  if (options.requireResponse && response === undefined)
    throw new RingrlError(
      `${where}: missing field '${fields.response}'; SFT needs a target response (or a final assistant message in '${fields.messages}')`,
    );
  return { source: where, prompt, answer, ...(response !== undefined ? { response } : {}) };
}

function checkFile(file: string): 'jsonl' | 'parquet' {
  if (!existsSync(file)) throw new RingrlError(`${file}: dataset file not found`);
  if (!statSync(file).isFile()) throw new RingrlError(`${file}: not a file; expected a .jsonl or .parquet dataset`);
  if (/\.jsonl?$/i.test(file)) return 'jsonl';
  if (/\.parquet$/i.test(file)) return 'parquet';
  throw new RingrlError(`${file}: unknown dataset format; expected a .jsonl or .parquet file`);
}

/** Stream the examples of a dataset file, in file order. */
export async function* readDataset(file: string, options: DatasetOptions = {}): AsyncGenerator<Example> {
  const kind = checkFile(file);
  const limit = options.limit ?? Infinity;
  let count = 0;
  if (kind === 'jsonl') {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const where = `${file}:${lineNo}`;
      yield rowToExample(parseJsonLine(line, where), where, options);
      if (++count >= limit) return;
    }
    return;
  }
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw new RingrlError(`${file}: not a readable Parquet file (${(error as Error).message.split('\n')[0]})`);
  }
  // One row group at a time: memory stays bounded by the largest row group.
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors });
    } catch (error) {
      throw new RingrlError(
        `${file}: cannot read rows ${rowStart}-${rowEnd - 1} (${(error as Error).message.split('\n')[0]})`,
      );
    }
    for (let i = 0; i < rows.length; i++) {
      yield rowToExample(rows[i], `${file} row ${rowStart + i}`, options);
      if (++count >= limit) return;
    }
    rowStart = rowEnd;
  }
}

/** All examples of a dataset file; an empty dataset is an error. */
export async function loadDataset(file: string, options: DatasetOptions = {}): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of readDataset(file, options)) out.push(ex);
  if (out.length === 0) throw new RingrlError(`${file}: dataset is empty; expected at least one row`);
  return out;
}

// Resolve a config from layers — defaults < YAML files (in order) < `--set a.b=c` overrides —
// and validate it against the schema. Any problem is one RingrlError line that names where the
// bad value came from (file:line or the --set), the key path and what was expected, e.g.
//   configs/demo.yaml:7: sft.optimizer.lr: expected a number > 0, got -1
// Merge rules: mappings merge key by key; lists and scalars replace; a `null` value removes the
// key (so a later layer can unset what an earlier one set, restoring the default); a layer that
// sets one of a group of `alternatives` (model.dir / model.preset, ...) drops the others.
// Relative paths inside a config (model.dir, data.train_file, ...) are relative to the
// working directory, not to the config file.
import { type Document, LineCounter, parseDocument, isMap, isScalar, parse as parseYaml, stringify } from 'yaml';
import type { z } from 'zod';
import { RingrlError } from '../errors.ts';
import { readTextFile } from '../util/files.ts';
import { alternatives, configSchema, type Config, type ConfigInput } from './schema.ts';
import { describeSchema, type SchemaNode } from './describe.ts';

type Path = (string | number)[];
type Plain = Record<string, unknown>;

/** One layer of config: a parsed YAML file or a `--set`, with what is needed to point at a key. */
interface Layer {
  where: string;
  values: Plain;
  locate?(path: Path): string;
}

export interface LoadOptions {
  /** YAML files, merged left to right. */
  files?: readonly string[];
  /** `key.path=value` overrides (value parsed as YAML), applied after the files, left to right. */
  sets?: readonly string[];
  /** Values under the files (a command's own defaults); the schema's defaults are under these. */
  base?: ConfigInput;
}

/** Load, merge and validate a config. Throws a one-line RingrlError on any problem. */
export function loadConfig(options: LoadOptions = {}): Config {
  const layers: Layer[] = [];
  if (options.base) layers.push({ where: 'defaults', values: options.base as Plain });
  for (const file of options.files ?? []) layers.push(readYamlLayer(file));
  for (const text of options.sets ?? []) layers.push(setLayer(text));
  return validate(layers);
}

/** The resolved config as YAML, as written to a run directory and printed by `ringrl config show`. */
export function formatConfig(config: Config): string {
  return stringify(config, { lineWidth: 0 });
}

/** Read a resolved config previously written with `formatConfig` (e.g. runs/NAME/config.yaml). */
export function readConfigFile(file: string): Config {
  return loadConfig({ files: [file] });
}

/** Parse `a.b.c=value` into a key path and a YAML-parsed value. */
export function parseSet(text: string): { path: string[]; value: unknown } {
  const eq = text.indexOf('=');
  const key = eq < 0 ? '' : text.slice(0, eq);
  const path = key.split('.');
  if (eq < 0 || path.some((p) => !/^[A-Za-z0-9_]+$/.test(p))) {
    throw new RingrlError(`--set ${text}: expected KEY.PATH=VALUE, e.g. --set sft.optimizer.lr=3e-4`);
  }
  let value: unknown;
  try {
    value = parseYaml(text.slice(eq + 1));
  } catch (e) {
    throw new RingrlError(`--set ${text}: the value is not valid YAML (${firstLine((e as Error).message)})`);
  }
  return { path, value };
}

function setLayer(text: string): Layer {
  const { path, value } = parseSet(text);
  const values: Plain = {};
  let node = values;
  path.slice(0, -1).forEach((p) => (node = (node[p] = {}) as Plain));
  node[path[path.length - 1]!] = value;
  return { where: `--set ${text}`, values };
}

function readYamlLayer(file: string): Layer {
  const text = readTextFile(file, 'a YAML config file');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const error = doc.errors[0];
  if (error) {
    const pos = lines.linePos(error.pos[0]);
    throw new RingrlError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${firstLine(error.message)}`);
  }
  const values = doc.toJS() ?? {};
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new RingrlError(
      `${file}: expected a mapping of config sections (model:, data:, sft:, ...) at the top level, got ${show(values)}`,
    );
  }
  return { where: file, values, locate: (path) => `${file}:${lineOf(doc, lines, path)}` };
}

/** The line of the key at `path` (or of the deepest existing ancestor) in a YAML document. */
function lineOf(doc: Document, lines: LineCounter, path: Path): number {
  let node: unknown = doc.contents;
  let offset = 0;
  for (const key of path) {
    if (!isMap(node)) break;
    const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
    if (!pair) break;
    offset = isScalar(pair.key) && pair.key.range ? pair.key.range[0] : offset;
    node = pair.value;
  }
  return lines.linePos(offset).line;
}

function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merge `layers` and remember, for every key path, which layer set it last. */
function merge(layers: Layer[]): { values: Plain; origin: Map<string, Layer> } {
  const values: Plain = {};
  const origin = new Map<string, Layer>();
  const apply = (target: Plain, source: Plain, path: string[], layer: Layer) => {
    for (const [key, value] of Object.entries(source)) {
      const p = [...path, key];
      origin.set(p.join('.'), layer);
      if (value === null) delete target[key];
      else if (isPlainObject(value) && isPlainObject(target[key])) apply(target[key] as Plain, value, p, layer);
      else if (isPlainObject(value)) apply((target[key] = {}) as Plain, value, p, layer);
      else target[key] = value;
    }
  };
  for (const layer of layers) {
    for (const group of alternatives) {
      if (!group.some((key) => valueAt(layer.values, key.split('.')) != null)) continue;
      for (const key of group) {
        const path = key.split('.');
        const parent = valueAt(values, path.slice(0, -1));
        if (isPlainObject(parent)) delete parent[path.at(-1)!];
      }
    }
    apply(values, layer.values, [], layer);
  }
  return { values, origin };
}

function validate(layers: Layer[]): Config {
  const { values, origin } = merge(layers);
  const result = configSchema.safeParse(values);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describeIssue(issue, values, origin));
  // Unknown keys first: a misspelt key is the most common mistake and explains later ones.
  problems.sort((a, b) => Number(b.unknown) - Number(a.unknown));
  const shown = problems.slice(0, 3).map((p) => p.text);
  const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
  throw new RingrlError(shown.join('; ') + more);
}

interface Problem {
  text: string;
  unknown: boolean;
}

function describeIssue(issue: z.core.$ZodIssue, values: Plain, origin: Map<string, Layer>): Problem[] {
  const at = (keyPath: Path, problem: string) =>
    `${where(keyPath, origin)}: ${keyPath.join('.') || '(top level)'}: ${problem}`;
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    const allowed = Object.keys(nodeAt(path)?.properties ?? {});
    return issue.keys.map((key) => {
      const guess = closest(key, allowed);
      const what = `unknown key${guess ? ` (did you mean '${guess}'?)` : ''}; expected one of: ${allowed.join(', ') || '(none yet)'}`;
      return { text: at([...path, key], what), unknown: true };
    });
  }
  const value = valueAt(values, path);
  const got = `got ${show(value)}`;
  let what: string;
  switch (issue.code) {
    case 'invalid_type':
      what = `expected ${nodeAt(path)?.type === 'integer' ? 'a whole number' : typeName(issue.expected)}, ${got}`;
      break;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      what =
        issue.origin === 'string'
          ? `expected a string of ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} characters, ${got}`
          : issue.origin === 'array'
            ? `expected a list of ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} items, ${got}`
            : `expected a ${nodeAt(path)?.type === 'integer' ? 'whole number' : 'number'} ${op} ${bound}, ${got}`;
      break;
    }
    case 'invalid_value':
      what = `expected one of ${issue.values.map((v) => String(v)).join(', ')}, ${got}`;
      break;
    case 'invalid_format':
      what = `expected ${issue.message}, ${got}`;
      break;
    default:
      what = issue.message;
  }
  return [{ text: at(path, what), unknown: false }];
}

/** Where the value at `path` came from: the last layer that set it or its nearest ancestor. */
function where(path: Path, origin: Map<string, Layer>): string {
  for (let n = path.length; n > 0; n--) {
    const layer = origin.get(path.slice(0, n).join('.'));
    if (layer) return layer.locate ? layer.locate(path) : layer.where;
  }
  return 'config';
}

function valueAt(values: unknown, path: Path): unknown {
  return path.reduce<unknown>(
    (v, k) => (v !== null && typeof v === 'object' ? (v as Plain)[k as string] : undefined),
    values,
  );
}

function nodeAt(path: Path): SchemaNode | undefined {
  let node: SchemaNode | undefined = describeSchema();
  for (const key of path) node = node?.properties?.[key as string];
  return node;
}

function typeName(expected: string): string {
  const names: Record<string, string> = {
    int: 'a whole number',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    array: 'a list',
    object: 'a mapping',
  };
  return names[expected] ?? expected;
}

/** A value as a user would recognise it in an error message. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}' (a string)`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

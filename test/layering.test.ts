// The rooms of src/ form layers: a room imports only rooms in its own layer or below, and rooms
// never import each other in a cycle. A lower layer that imports a higher one fails here, naming
// the file and the import. Also: the CLI's entry and its light commands start without loading
// onnxruntime (commands are imported lazily, src/cli/commands.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const layers = [
  ['graph', 'runtime', 'util', 'errors.ts'],
  ['model', 'tokenizer'],
  ['engine', 'data', 'reward'],
  ['rollout', 'algo', 'train', 'eval'],
  ['report'],
  ['config'],
  ['serve'],
  ['system'],
  ['cli'],
  ['index.ts'],
];
const src = resolve(import.meta.dirname, '..', 'src');
const layerOf = new Map(layers.flatMap((rooms, i) => rooms.map((room) => [room, i] as const)));
const roomOf = (file: string) => relative(src, file).split('/')[0]!;

/** Every relative import of every source file, static or dynamic, as [file, imported file]. */
function imports(): [string, string][] {
  const edges: [string, string][] = [];
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)'/g))
      edges.push([file, resolve(dirname(file), m[1]!)]);
  }
  return edges;
}

test('every room of src/ has a layer', () => {
  for (const room of readdirSync(src))
    assert.ok(layerOf.has(room), `src/${room} is in no layer of test/layering.test.ts`);
});

test('no room imports a room of a higher layer', () => {
  const violations = imports()
    .filter(([from, to]) => layerOf.get(roomOf(to))! > layerOf.get(roomOf(from))!)
    .map(([from, to]) => `${relative(src, from)} imports ${relative(src, to)}`);
  assert.deepEqual(violations, []);
});

test('rooms of one layer do not import each other in a cycle', () => {
  const deps = new Map<string, Set<string>>();
  for (const [from, to] of imports()) {
    const a = roomOf(from),
      b = roomOf(to);
    if (a !== b) deps.set(a, (deps.get(a) ?? new Set()).add(b));
  }
  const reaches = (a: string, b: string, seen = new Set<string>()): boolean =>
    [...(deps.get(a) ?? [])].some((c) => c === b || (!seen.has(c) && (seen.add(c), reaches(c, b, seen))));
  const cycles = [...deps.keys()].filter((room) => reaches(room, room));
  assert.deepEqual(cycles, [], `rooms on an import cycle: ${cycles.join(', ')}`);
});

/** The files and packages `file` loads at start-up: its static imports, followed transitively (dynamic import() is lazy). */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  if (!file.startsWith(src)) return seen;
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s(?!type\s)[^;]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'/gm)) {
    const spec = (m[1] ?? m[2])!;
    staticClosure(spec.startsWith('.') ? resolve(dirname(file), spec) : spec, seen);
  }
  return seen;
}

test('ringrl --help and ringrl reward math load neither onnxruntime nor the model code', () => {
  for (const entry of ['cli/bin.ts', 'cli/reward.ts']) {
    const loaded = [...staticClosure(join(src, entry))];
    assert.ok(loaded.length > 2, `${entry}: the import scan found its imports`);
    assert.deepEqual(
      loaded.filter(
        (f) => f === 'onnxruntime-node' || f.startsWith(join(src, 'model')) || f.startsWith(join(src, 'runtime')),
      ),
      [],
      entry,
    );
  }
  assert.ok(
    staticClosure(join(src, 'cli/generate.ts')).has('onnxruntime-node'),
    'the scan does see onnxruntime where it is loaded',
  );
});

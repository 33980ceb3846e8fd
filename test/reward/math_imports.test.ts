// The math reward path loads no model, engine or onnxruntime code: `ringrl reward math` and the
// reward service's math endpoint must start fast. Checked on the static import graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** Every module reachable from `entry` by static imports: repository files and package names. */
function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [resolve(root, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  }
  return { files, packages };
}

for (const entry of ['src/reward/math/verify.ts', 'src/cli/reward.ts']) {
  test(`${entry} imports no model, engine or onnxruntime code`, () => {
    const { files, packages } = reachable(entry);
    const rooms = [...files].map((f) => relative(join(root, 'src'), f).split('/')[0]);
    for (const heavy of ['graph', 'runtime', 'model', 'engine', 'tokenizer', 'train', 'system']) {
      assert.ok(!rooms.includes(heavy), `${entry} reaches src/${heavy}/`);
    }
    // The only package on the path is the CAS.
    assert.deepEqual([...packages].filter((p) => p !== 'mathjs'), [], `${entry} imports packages beyond mathjs`);
  });
}

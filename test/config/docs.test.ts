// The generated docs (docs/config.md, docs/cli.md) match the code; every command's --help has examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generatedDocs } from '../../scripts/generated-docs.ts';
import { commands } from '../../src/cli/commands.ts';
import { leafFields } from '../../src/config/describe.ts';

test('generated docs are up to date (run `npm run docs` when this fails)', async () => {
  for (const [path, text] of Object.entries(await generatedDocs())) {
    assert.equal(readFileSync(path, 'utf8'), text, `${path} is stale: run npm run docs and commit it`);
  }
});

test('docs/config.md lists every config key', () => {
  const doc = readFileSync('docs/config.md', 'utf8');
  for (const [path] of leafFields()) assert.ok(doc.includes(`| \`${path}\` |`), `${path} missing from docs/config.md`);
});

test('every command has a summary, a usage line and examples in its --help', async () => {
  for (const entry of commands) {
    const c = await entry.load();
    assert.equal(c.name, entry.name, `${entry.name}: the registry entry loads its own command`);
    assert.ok(entry.summary.length > 10, `${c.name}: summary`);
    assert.match(c.help, new RegExp(`usage:[\\s\\S]*ringrl ${c.name}`), `${c.name}: usage line`);
    assert.match(c.help, /examples?:\n\s+(ringrl|npm|echo)/, `${c.name}: examples`);
  }
});

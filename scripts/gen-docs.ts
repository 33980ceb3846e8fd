// Regenerate the docs that are derived from code: docs/config.md (from the config schema) and
// docs/cli.md (from every command's --help). `npm run docs`; `--check` exits 1 when stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generatedDocs } from './generated-docs.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
let stale = 0;
for (const [path, text] of Object.entries(await generatedDocs())) {
  let current = '';
  try {
    current = readFileSync(root + path, 'utf8');
  } catch {}
  if (current === text) continue;
  if (check) {
    console.error(`${path} is stale: run npm run docs`);
    stale++;
  } else {
    writeFileSync(root + path, text);
    console.log(`wrote ${path}`);
  }
}
process.exitCode = stale ? 1 : 0;

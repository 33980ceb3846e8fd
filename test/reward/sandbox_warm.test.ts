// The adversarial sandbox suite against the warm pool (zygotes and pre-started node runners).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectIsolation } from '../../src/reward/sandbox/isolation.ts';
import { ProcessSandbox } from '../../src/reward/sandbox/pool.ts';
import { suite } from './sandbox_suite.ts';

suite('warm pool', { warm: true, pythonWorkers: 2, nodeSpares: 1 });

// Which zygote ran a pytest run shows in its PID namespace (each zygote has its own under bubblewrap).
test('pytest runs go to a zygote that has pytest imported, while other runs rotate', {
  skip: detectIsolation().level !== 'bwrap' && 'needs bubblewrap (a PID namespace per zygote)',
}, async () => {
  const sandbox = new ProcessSandbox({ warm: true, pythonWorkers: 3, nodeSpares: 0 });
  try {
    await sandbox.warmup(); // all three zygotes idle
    const code = 'import os\n\ndef test_namespace():\n    assert False, os.readlink("/proc/self/ns/pid")\n';
    const namespace = async () => /pid:\[(\d+)\]/.exec((await sandbox.run({ language: 'pytest', code })).stdout)?.[1];
    const first = await namespace();
    assert.ok(first);
    const others = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await sandbox.run({ language: 'python', code: 'import os\nprint(os.readlink("/proc/self/ns/pid"))' });
      others.add(r.stdout);
      assert.equal(await namespace(), first);
    }
    assert.ok(others.size > 1, 'python runs rotate over the idle zygotes');
  } finally {
    await sandbox.close();
  }
});

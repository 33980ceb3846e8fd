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

// Under bubblewrap the zygote answering requests is PID 1 of its namespace; Python runs are forked
// by its template process instead, and a run that leaves a process behind costs the template
// (killed with everything else), which the zygote then starts anew.
test('python runs are forked by the template, also after a run that left a process behind', {
  skip: detectIsolation().level !== 'bwrap' && 'needs bubblewrap (the zygote is PID 1)',
}, async () => {
  const sandbox = new ProcessSandbox({ warm: true, pythonWorkers: 1, nodeSpares: 0 });
  try {
    await sandbox.warmup();
    const parent = async () =>
      (await sandbox.run({ language: 'python', code: 'import os\nprint(os.getppid())' })).stdout;
    const first = await parent();
    assert.notEqual(first, '1\n');
    assert.equal(await parent(), first, 'the same template forks the next run');
    const orphan = await sandbox.run({
      language: 'python',
      code: 'import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint("left one")',
    });
    assert.equal(orphan.stdout, 'left one\n');
    const after = await parent();
    assert.notEqual(after, '1\n');
    assert.notEqual(after, first, 'a new template');
  } finally {
    await sandbox.close();
  }
});

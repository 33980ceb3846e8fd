// The sha256 workers of weight publication: what they hash, in chunks of a job or a lent buffer,
// is what node:crypto says of the whole, and a lent buffer comes back with its bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HashPool } from '../../src/engine/hash-pool.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('hash pool: the chunks of a job hash as the whole; a lent buffer comes back intact; jobs interleave on the workers', async () => {
  const pool = new HashPool(2);
  try {
    const data = new Uint8Array(10_000).map((_, i) => (i * 31 + 7) & 0xff);
    const shared = new Uint8Array(new SharedArrayBuffer(data.length));
    shared.set(data);
    // Two jobs whose chunks are sent interleaved: each digest is its own bytes'.
    const a = pool.job(),
      b = pool.job();
    const done = [
      a.update(shared.subarray(0, 4096), false),
      b.update(shared.subarray(5000, 6000), false),
      a.update(shared.subarray(4096, 8192), false),
      b.update(shared.subarray(6000), true),
      a.update(shared.subarray(8192), true),
    ];
    const digests = await Promise.all(done);
    assert.deepEqual([digests[0], digests[1], digests[2]], [null, null, null]);
    assert.equal(digests[3], sha256(data.subarray(5000)));
    assert.equal(digests[4], sha256(data));

    const buffer = new Uint8Array(new ArrayBuffer(3000));
    buffer.set(data.subarray(0, 3000));
    const lent = await pool.digestLent(buffer);
    assert.equal(buffer.byteLength, 0, 'detached while lent');
    assert.equal(lent.digest, sha256(data.subarray(0, 3000)));
    assert.deepEqual(lent.bytes, data.subarray(0, 3000));
    assert.equal(await pool.digest(shared.subarray(0, 0)), sha256(new Uint8Array(0)));
  } finally {
    await pool.close();
  }
});

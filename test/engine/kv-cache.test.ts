// The segmented KV cache against a plain model of it: after random adds, growth and removals every
// row's keys and values are where the feeds say, each segment's rows are a prefix, and the masks
// mark exactly the cached positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SegmentedKvCache } from '../../src/engine/kv-cache.ts';
import { rng } from '../../src/util/random.ts';

interface Row {
  id: number;
  cacheLength: number;
}

const STARTS = [0, 3, 7];
const value = (id: number, position: number, which: 'k' | 'v') => id * 1000 + position + (which === 'v' ? 0.5 : 0);

function writeRow(cache: SegmentedKvCache<Row>, index: number, id: number, from: number, to: number): void {
  const k = Float32Array.from({ length: to - from }, (_, i) => value(id, from + i, 'k'));
  const v = Float32Array.from({ length: to - from }, (_, i) => value(id, from + i, 'v'));
  cache.write(index, 0, 0, from, to - from, k, v, 0);
}

function check(cache: SegmentedKvCache<Row>): void {
  const reaches = cache.rows.map((r) => cache.reach(r));
  reaches.forEach((r, i) => assert.ok(i === 0 || reaches[i - 1]! >= r, `rows ordered by reach: ${reaches}`));
  cache.fit();
  const feeds = cache.feeds();
  assert.equal(feeds.length, cache.rows.length ? reaches[0]! + 1 : 0, 'the segments some row reaches are fed');
  feeds.forEach((feed, j) => {
    const reaching = reaches.filter((r) => r >= j).length;
    assert.equal(feed.rows, reaching, `segment ${j}: rows fed`);
    for (let b = 0; b < feed.rows; b++) {
      const row = cache.rows[b]!;
      for (let s = 0; s < feed.slots; s++) {
        const position = STARTS[j]! + s,
          cached = position < row.cacheLength;
        assert.equal(
          feed.mask[b * feed.slots + s],
          cached ? 1 : 0,
          `segment ${j} row ${row.id} position ${position}: mask`,
        );
        if (!cached) continue;
        assert.equal(
          feed.k[0]![b * feed.slots + s],
          value(row.id, position, 'k'),
          `row ${row.id} position ${position}: key`,
        );
        assert.equal(
          feed.v[0]![b * feed.slots + s],
          value(row.id, position, 'v'),
          `row ${row.id} position ${position}: value`,
        );
      }
    }
  });
}

test('segmented KV cache: rows keep their keys and values through random adds, growth and removals', () => {
  const random = rng(11);
  const cache = new SegmentedKvCache<Row>(1, 1, 1, 6, STARTS.slice(1));
  let nextId = 1;
  for (let op = 0; op < 400; op++) {
    const roll = random();
    if (roll < 0.25 && cache.rows.length < 6) {
      const row = { id: nextId++, cacheLength: 1 + Math.floor(random() * 9) };
      cache.add(row, (index) => writeRow(cache, index, row.id, 0, row.cacheLength));
    } else if (roll < 0.4 && cache.rows.length) {
      cache.remove(Math.floor(random() * cache.rows.length));
    } else if (cache.rows.length) {
      // One decode step: every row gains a position (written where it sits), then rows that
      // reached a new segment move up.
      cache.fit();
      const grown: Row[] = [];
      const at = (which: 'k' | 'v') => Float32Array.from(cache.rows, (r) => value(r.id, r.cacheLength, which));
      cache.append([at('k')], [at('v')]);
      cache.rows.forEach((row) => {
        const reach = cache.reach(row);
        row.cacheLength++;
        if (cache.reach(row) > reach) grown.push(row);
      });
      for (const row of grown) cache.settle(cache.rows.indexOf(row));
      for (const row of [...cache.rows]) if (row.cacheLength > 14) cache.remove(cache.rows.indexOf(row));
    }
    check(cache);
  }
  assert.ok(nextId > 50, 'the walk added many rows');
});

test('segmented KV cache: append puts each layer and head of a decode step where write would', () => {
  const [L, K, hd] = [2, 3, 2];
  const lengths = [9, 4, 1]; // across all three segments
  const fill = (id: number, l: number, h: number, p: number, i: number) => id * 1e4 + l * 1e3 + h * 100 + p + i / 10;
  const appended = new SegmentedKvCache<Row>(L, K, hd, 4, STARTS.slice(1));
  const written = new SegmentedKvCache<Row>(L, K, hd, 4, STARTS.slice(1));
  for (const cache of [appended, written])
    lengths.forEach((length, id) => cache.add({ id, cacheLength: length }, () => {}));
  for (let step = 0; step < 9; step++) {
    for (const cache of [appended, written]) cache.fit();
    const out = (sign: number) =>
      Array.from({ length: L }, (_, l) =>
        Float32Array.from({ length: appended.rows.length * K * hd }, (_, x) => {
          const row = appended.rows[Math.floor(x / (K * hd))]!;
          return sign * fill(row.id, l, Math.floor(x / hd) % K, row.cacheLength, x % hd);
        }),
      );
    appended.append(out(1), out(-1));
    written.rows.forEach((row, b) => {
      for (let l = 0; l < L; l++)
        for (let h = 0; h < K; h++)
          written.write(b, l, h, row.cacheLength, 1, out(1)[l]!, out(-1)[l]!, (b * K + h) * hd);
    });
    for (const cache of [appended, written]) {
      for (const row of cache.rows) row.cacheLength++;
      for (const row of [...cache.rows]) cache.settle(cache.rows.indexOf(row));
    }
  }
  for (const cache of [appended, written]) cache.fit();
  const [a, w] = [appended.feeds(), written.feeds()];
  assert.equal(a.length, 3);
  a.forEach((feed, j) => {
    assert.deepEqual(feed.k, w[j]!.k, `segment ${j}: keys`);
    assert.deepEqual(feed.v, w[j]!.v, `segment ${j}: values`);
    assert.ok(
      feed.k[1]!.some((x) => x > 1e4),
      `segment ${j}: holds data`,
    );
  });
});

test('segmented KV cache: bad segment starts are refused', () => {
  assert.throws(
    () => new SegmentedKvCache(1, 1, 1, 2, [8, 4]),
    /segment starts must be ascending positive integers, got \[8, 4\]/,
  );
  assert.throws(() => new SegmentedKvCache(1, 1, 1, 2, [0]), /ascending positive integers/);
});

// Forward values of the primitives without gradients, symbolic-dim graphs reused across shapes,
// and shape errors that name the op and both shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arange, input, scalar, scatterAdd, sizeOf, where, zeros, exportOnnx } from '../../src/graph/index.ts';
import { CompiledGraph, compileCached, configureRuntime } from '../../src/runtime/index.ts';
import { rewriteForExport } from '../../src/graph/rewrite.ts';
import { f64, i64 } from '../helpers.ts';

test('comparisons, and, topk, argmax, range, zeros give hand-computed values', async () => {
  const x = input('x', 'float64', [2, 3]);
  const compiled = await CompiledGraph.create(
    [x],
    {
      less: x.less(0.5),
      greater: x.greater(0.5),
      equal: x.equal(0.5),
      both: x.greater(0).and(x.less(1)),
      top2: x.topkIndices(2),
      bottom1: x.topkIndices(1, false),
      argmax: x.argmax(-1),
      range: arange(3),
      zeros: zeros([2, 2], 'float64'),
    },
    { threads: 1 },
  );
  const out = await compiled.run({ x: f64([0.5, 2, -1, 0.25, 0.75, 3], [2, 3]) });
  const bools = (name: string) => Array.from(out[name]!.data as Uint8Array, Boolean);
  const ints = (name: string) => Array.from(out[name]!.data as BigInt64Array, Number);
  assert.deepEqual(bools('less'), [false, false, true, true, false, false]);
  assert.deepEqual(bools('greater'), [false, true, false, false, true, true]);
  assert.deepEqual(bools('equal'), [true, false, false, false, false, false]);
  assert.deepEqual(bools('both'), [true, false, false, true, true, false]);
  assert.deepEqual(ints('top2'), [1, 0, 2, 1]);
  assert.deepEqual(ints('bottom1'), [2, 0]);
  assert.deepEqual(ints('argmax'), [1, 2]);
  assert.deepEqual(ints('range'), [0, 1, 2]);
  assert.deepEqual(Array.from(out.zeros!.data as Float64Array), [0, 0, 0, 0]);
});

test('one session serves every batch and sequence length (symbolic dims, flatten/unflatten)', async () => {
  const x = input('x', 'float64', ['B', 'T', 2]);
  const flat = x.reshape([-1, 2]); // [B*T, 2]
  assert.deepEqual(flat.shape, ['B*T', 2]);
  const back = flat.mul(10).reshape(['B', 'T', 2]);
  const count = sizeOf('B*T', 'float64');
  const positions = arange('T').cast('float64').unsqueeze(-1).expand(['T', 2]);
  const compiled = await CompiledGraph.create(
    [x],
    { y: back.add(positions), rows: flat.sum(-1), count },
    { threads: 1 },
  );
  for (const [B, T] of [
    [1, 1],
    [2, 3],
    [3, 5],
  ]) {
    const n = B! * T! * 2;
    const values = Array.from({ length: n }, (_, i) => i);
    const out = await compiled.run({ x: f64(values, [B!, T!, 2]) });
    assert.deepEqual([...out.y!.dims], [B, T, 2]);
    assert.deepEqual(
      Array.from(out.y!.data as Float64Array),
      values.map((v, i) => 10 * v + (Math.floor(i / 2) % T!)),
    );
    assert.deepEqual([...out.rows!.dims], [B! * T!]);
    assert.equal(out.count!.data[0], B! * T!);
  }
});

test('gather with int64 indices and where with scalar branches', async () => {
  const table = input('table', 'float64', [3, 2]);
  const ids = input('ids', 'int64', ['N']);
  const rows = table.gather(ids);
  const compiled = await CompiledGraph.create(
    [table, ids],
    { rows, clipped: where(rows.greater(2), scalar(2, 'float64'), rows) },
    { threads: 1 },
  );
  const out = await compiled.run({ table: f64([0, 1, 2, 3, 4, 5], [3, 2]), ids: i64([2, 0, 2], [3]) });
  assert.deepEqual(Array.from(out.rows!.data as Float64Array), [4, 5, 0, 1, 4, 5]);
  assert.deepEqual(Array.from(out.clipped!.data as Float64Array), [2, 2, 0, 1, 2, 2]);
});

test("scatterAdd sums every update into a repeated index exactly, on several threads (gather's gradient)", async () => {
  // onnxruntime's ScatterND with reduction 'add' loses updates to repeated indices when it runs
  // on more than one thread; the lowering must not depend on it.
  const [N, V, D] = [20000, 16, 128];
  const ids = input('ids', 'int64', [N]);
  const updates = input('updates', 'float32', [N, D]);
  const compiled = await CompiledGraph.create(
    [ids, updates],
    { table: scatterAdd([V, D], ids, updates) },
    { threads: 2 },
  );
  const idx = Array.from({ length: N }, (_, i) => i % V);
  const out = await compiled.run({
    ids: i64(idx, [N]),
    updates: { dtype: 'float32', data: new Float32Array(N * D).fill(1), dims: [N, D] },
  });
  assert.deepEqual([...out.table!.dims], [V, D]);
  assert.deepEqual([...new Set(out.table!.data as Float32Array)], [N / V], 'every row gets all N/V updates');
  const rows = input('rows', 'int64', ['B', 'T']);
  const scalars = await CompiledGraph.create(
    [rows],
    { counts: scatterAdd([V], rows, rows.cast('float32').mul(0).add(1)) },
    { threads: 2 },
  );
  assert.deepEqual(
    [...new Set((await scalars.run({ rows: i64(idx, [4, N / 4]) })).counts!.data as Float32Array)],
    [N / V],
    'indices of any rank, rows of one element',
  );
});

test('shape errors name the op and both operands', () => {
  const a = input('a', 'float32', ['B', 3]);
  const b = input('b', 'float32', [4, 5]);
  assert.throws(
    () => a.matmul(b),
    /matmul: inner dims differ: input\('a'\):float32\[B, 3\] @ input\('b'\):float32\[4, 5\] \(3 vs 4\)/,
  );
  assert.throws(
    () => a.add(b),
    /add: shapes do not broadcast: input\('a'\):float32\[B, 3\] and input\('b'\):float32\[4, 5\]/,
  );
  assert.throws(() => a.reshape([4, 4]), /reshape: .* has 3\*B elements but target \[4, 4\] has 16/);
  assert.throws(() => a.add(input('c', 'float64', [3])), /add: dtypes differ/);
  assert.throws(() => a.sum(2), /sum: axis 2 is out of range for rank 2/);
});

test('export rejects inputs that were used but not declared', () => {
  const a = input('a', 'float32', [2]);
  const b = input('b', 'float32', [2]);
  assert.throws(() => exportOnnx([a], { y: a.add(b) }), /graph uses input 'b' that was not declared/);
});

test('constants: inputs baked into the session (external data from memory) are not fed and compute as if fed', async () => {
  const x = input('x', 'float64', ['N', 3]);
  const w = input('w', 'float64', [3, 2]);
  const wData = Float64Array.of(1, -2, 0.5, 4, -1, 3);
  const xData = Float64Array.of(1, 2, 3, -1, 0, 2);
  const fed = await CompiledGraph.create([x, w], { y: x.matmul(w) }, { threads: 1 });
  const baked = await CompiledGraph.create([x, w], { y: x.matmul(w) }, { threads: 1 }, { w: f64(wData, [3, 2]) });
  assert.deepEqual(baked.inputNames, ['x']);
  const expected = (await fed.run({ x: f64(xData, [2, 3]), w: f64(wData, [3, 2]) })).y!.data;
  assert.deepEqual([...(await baked.run({ x: f64(xData, [2, 3]) })).y!.data], [...expected]);
  assert.deepEqual([...expected], [1 * 1 + 2 * 0.5 - 3, -2 + 8 + 9, -1 + 0 - 2, 2 + 0 + 6]);
  assert.throws(() => exportOnnx([x], { y: x.sum() }, 'g', new Set(['w'])), /constant 'w' is not a declared input/);
  assert.throws(() => exportOnnx([x], { y: x.sum() }, 'g', new Set(['x'])), /constant 'x' needs a static shape/);
});

test('transpose accepts permutations of ten or more axes (checked numerically, not as text)', () => {
  const dims = Array.from({ length: 11 }, () => 1);
  const x = input('x', 'float64', dims);
  const perm = dims.map((_, i) => 10 - i);
  assert.deepEqual(x.transpose(perm).shape, dims);
  assert.throws(() => x.transpose([...perm.slice(1), 1]), /not a permutation/);
});

test('export rewrites (A·B)ᵀ as Bᵀ·Aᵀ when the product has no other use; transposes of transposes compose', async () => {
  const a = input('a', 'float64', [2, 3]);
  const b = input('b', 'float64', [3, 4]);
  assert.equal(a.T.T, a);
  assert.deepEqual(a.transpose([1, 0]).transpose([1, 0]), a);
  const [once] = rewriteForExport([a.matmul(b).T]);
  assert.equal(once!.op, 'matmul');
  assert.deepEqual(
    once!.inputs.map((t) => t.op),
    ['transpose', 'transpose'],
  );
  assert.equal(once!.inputs[1]!.inputs[0], a);
  // Used twice (also as an output): the product stays, the transpose too.
  const product = a.matmul(b);
  const [kept, t] = rewriteForExport([product, product.T]);
  assert.equal(kept, product);
  assert.equal(t!.op, 'transpose');
  // Same values either way.
  const aData = Float64Array.of(1, 2, 3, -1, 0.5, 4),
    bData = Float64Array.of(1, 0, 2, -1, 3, 1, 0, 2, -2, 1, 1, 0);
  const g = await CompiledGraph.create([a, b], { y: a.matmul(b).T, z: product.mul(2).T }, { threads: 1 });
  const out = await g.run({ a: f64(aData, [2, 3]), b: f64(bData, [3, 4]) });
  const expected = [0, 1, 2, 3].flatMap((j) =>
    [0, 1].map((i) => [0, 1, 2].reduce((s, k) => s + aData[i * 3 + k]! * bData[k * 4 + j]!, 0)),
  );
  assert.deepEqual([...out.y!.data], expected);
  assert.deepEqual(
    [...out.z!.data],
    expected.map((x) => 2 * x),
  );
});

test('compileCached builds a new session when configureRuntime changed the options, and reuses it otherwise', async () => {
  let traces = 0;
  const trace = () => {
    traces++;
    const x = input('x', 'float64', [2]);
    return { inputs: [x], outputs: { y: x.mul(scalar(2, 'float64')) } };
  };
  const key = `runtime-options-test-${Math.random()}`;
  try {
    configureRuntime({ threads: 1 });
    const a = await compileCached(key, trace);
    assert.equal(await compileCached(key, trace), a);
    configureRuntime({ threads: 2 });
    const b = await compileCached(key, trace);
    assert.notEqual(b, a);
    assert.equal(traces, 2);
    assert.deepEqual([...(await b.run({ x: f64([1, 2], [2]) })).y!.data], [2, 4]);
  } finally {
    configureRuntime({ threads: undefined });
  }
});

// Every primitive with a gradient rule, checked against central finite differences in float64,
// including broadcast cases. The last test fails if a primitive is added without a case here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PrimOp, type Tensor, concat, constant, grad, input, where } from '../../src/graph/index.ts';
import { CompiledGraph } from '../../src/runtime/index.ts';
import { f64, rng } from '../helpers.ts';

interface InputSpec {
  shape: number[];
  /** Sample from [lo, hi] (default [-1, 1]). */
  range?: [number, number];
  values?: number[];
}

const random = rng(1234);

async function gradCheck(build: (...xs: Tensor[]) => Tensor, specs: InputSpec[], tol = 1e-6): Promise<void> {
  const xs = specs.map((s, i) => input(`x${i}`, 'float64', s.shape));
  const y = build(...xs);
  // Project onto fixed random weights so every output element matters differently.
  const ySize = y.shape.reduce((a: number, b) => a * (b as number), 1);
  const weights = constant(
    Array.from({ length: ySize }, () => random() * 2 - 1),
    y.shape as number[],
    'float64',
  );
  const loss = y.mul(weights).sum();
  const grads = grad(loss, xs);
  const outputs: Record<string, Tensor> = { loss };
  grads.forEach((g, i) => (outputs[`g${i}`] = g));
  const compiled = await CompiledGraph.create(xs, outputs, { threads: 1 });

  const values = specs.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = s.range ?? [-1, 1];
    return s.values ? Float64Array.from(s.values) : Float64Array.from({ length: n }, () => lo + (hi - lo) * random());
  });
  const feeds = () => Object.fromEntries(values.map((v, i) => [`x${i}`, f64(v, specs[i]!.shape)]));
  const result = await compiled.run(feeds());
  const h = 1e-6;
  for (let i = 0; i < values.length; i++) {
    const analytic = result[`g${i}`]!.data as Float64Array;
    assert.deepEqual([...result[`g${i}`]!.dims], specs[i]!.shape, `gradient ${i} has the input's shape`);
    for (let j = 0; j < values[i]!.length; j++) {
      const orig = values[i]![j]!;
      values[i]![j] = orig + h;
      const plus = (await compiled.run(feeds())).loss!.data[0] as number;
      values[i]![j] = orig - h;
      const minus = (await compiled.run(feeds())).loss!.data[0] as number;
      values[i]![j] = orig;
      const numeric = (plus - minus) / (2 * h);
      const err = Math.abs(numeric - analytic[j]!);
      assert.ok(
        err <= tol * (1 + Math.abs(numeric)),
        `d/dx${i}[${j}]: autodiff ${analytic[j]} vs finite difference ${numeric}`,
      );
    }
  }
}

// Each primitive maps to one or more cases; broadcast variants are included where the op broadcasts.
const cases: Partial<Record<PrimOp, [string, () => Promise<void>][]>> = {
  neg: [['neg', () => gradCheck((x) => x.neg(), [{ shape: [2, 3] }])]],
  exp: [['exp', () => gradCheck((x) => x.exp(), [{ shape: [2, 3] }])]],
  log: [['log', () => gradCheck((x) => x.log(), [{ shape: [2, 3], range: [0.5, 2] }])]],
  sqrt: [['sqrt', () => gradCheck((x) => x.sqrt(), [{ shape: [2, 3], range: [0.5, 2] }])]],
  recip: [['recip', () => gradCheck((x) => x.recip(), [{ shape: [2, 3], range: [0.5, 2] }])]],
  sin: [['sin', () => gradCheck((x) => x.sin(), [{ shape: [4] }])]],
  cos: [['cos', () => gradCheck((x) => x.cos(), [{ shape: [4] }])]],
  sigmoid: [['sigmoid', () => gradCheck((x) => x.sigmoid(), [{ shape: [2, 3], range: [-4, 4] }])]],
  tanh: [['tanh', () => gradCheck((x) => x.tanh(), [{ shape: [2, 3] }])]],
  cast: [
    ['cast f64→f32→f64', () => gradCheck((x) => x.cast('float32').mul(3).cast('float64'), [{ shape: [3] }], 1e-2)],
  ],
  add: [
    ['add', () => gradCheck((a, b) => a.add(b), [{ shape: [2, 3] }, { shape: [2, 3] }])],
    ['add broadcast [2,3]+[3]', () => gradCheck((a, b) => a.add(b), [{ shape: [2, 3] }, { shape: [3] }])],
    ['add broadcast [2,1]+[1,3]', () => gradCheck((a, b) => a.add(b), [{ shape: [2, 1] }, { shape: [1, 3] }])],
  ],
  sub: [['sub broadcast [2,3]-[2,1]', () => gradCheck((a, b) => a.sub(b), [{ shape: [2, 3] }, { shape: [2, 1] }])]],
  mul: [
    ['mul', () => gradCheck((a, b) => a.mul(b), [{ shape: [2, 3] }, { shape: [2, 3] }])],
    ['mul broadcast by scalar', () => gradCheck((a, b) => a.mul(b), [{ shape: [2, 3] }, { shape: [] }])],
    ['mul shared operand (accumulation)', () => gradCheck((a) => a.mul(a).mul(a), [{ shape: [4] }])],
  ],
  div: [
    [
      'div broadcast [2,3]/[3]',
      () => gradCheck((a, b) => a.div(b), [{ shape: [2, 3] }, { shape: [3], range: [0.5, 2] }]),
    ],
  ],
  max: [
    [
      'max broadcast',
      () =>
        gradCheck(
          (a, b) => a.maximum(b),
          [
            { shape: [2, 3], values: [0.1, -0.5, 0.9, -0.9, 0.3, 0.7] },
            { shape: [3], values: [0, 0.2, -0.4] },
          ],
        ),
    ],
  ],
  min: [
    [
      'min broadcast',
      () =>
        gradCheck(
          (a, b) => a.minimum(b),
          [
            { shape: [2, 3], values: [0.1, -0.5, 0.9, -0.9, 0.3, 0.7] },
            { shape: [3], values: [0, 0.2, -0.4] },
          ],
        ),
    ],
  ],
  where: [
    [
      'where broadcast',
      () =>
        gradCheck(
          (a, b) => where(a.greater(0), a.mul(2), b),
          [{ shape: [2, 3], values: [0.5, -0.5, 0.2, -0.3, 0.8, -0.1] }, { shape: [3] }],
        ),
    ],
  ],
  sum: [
    ['sum all', () => gradCheck((x) => x.sum().mul(x.sum()), [{ shape: [2, 3] }])],
    ['sum axis 1 keepdims', () => gradCheck((x) => x.sum(1, true), [{ shape: [2, 3, 2] }])],
    ['sum axes [0,2]', () => gradCheck((x) => x.sum([0, 2]), [{ shape: [2, 3, 2] }])],
  ],
  reduceMax: [
    [
      'max axis -1',
      () => gradCheck((x) => x.max(-1), [{ shape: [2, 4], values: [0.1, 0.9, -0.2, 0.3, 0.5, -0.7, 0.8, 0.05] }]),
    ],
    [
      'max axis 0 keepdims',
      () => gradCheck((x) => x.max(0, true), [{ shape: [3, 2], values: [0.1, 0.9, -0.2, 0.3, 0.5, -0.7] }]),
    ],
  ],
  reshape: [['reshape', () => gradCheck((x) => x.reshape([3, 2]).mul(x.reshape([3, 2])), [{ shape: [2, 3] }])]],
  transpose: [['transpose', () => gradCheck((x) => x.transpose([2, 0, 1]), [{ shape: [2, 3, 4] }])]],
  expand: [['expand', () => gradCheck((x) => x.expand([2, 4, 3]), [{ shape: [4, 1] }])]],
  slice: [['slice', () => gradCheck((x) => x.slice(1, 1, 3), [{ shape: [2, 4] }])]],
  pad: [['pad', () => gradCheck((x) => x.pad([1, 0], [0, 2]), [{ shape: [2, 3] }])]],
  concat: [['concat axis 1', () => gradCheck((a, b) => concat([a, b, a], 1), [{ shape: [2, 1] }, { shape: [2, 3] }])]],
  matmul: [
    ['matmul', () => gradCheck((a, b) => a.matmul(b), [{ shape: [2, 3] }, { shape: [3, 4] }])],
    [
      'matmul batch broadcast [2,2,3]@[3,4]',
      () => gradCheck((a, b) => a.matmul(b), [{ shape: [2, 2, 3] }, { shape: [3, 4] }]),
    ],
    [
      'linear layer x·Wᵀ (the weight gradient exported as one product, rewrite.ts)',
      () => gradCheck((x, w) => x.matmul(w.T), [{ shape: [2, 3, 4] }, { shape: [5, 4] }]),
    ],
    [
      'matmul batch broadcast [2,1,2,3]@[3,3,2]',
      () => gradCheck((a, b) => a.matmul(b), [{ shape: [2, 1, 2, 3] }, { shape: [3, 3, 2] }]),
    ],
  ],
  softmax: [
    ['softmax', () => gradCheck((x) => x.softmax(-1), [{ shape: [2, 4] }])],
    ['softmax axis 0', () => gradCheck((x) => x.softmax(0), [{ shape: [3, 2] }])],
  ],
  logSoftmax: [['logSoftmax', () => gradCheck((x) => x.logSoftmax(-1), [{ shape: [2, 5] }])]],
  cumsum: [
    ['cumsum', () => gradCheck((x) => x.cumsum(1), [{ shape: [2, 4] }])],
    [
      'cumsum reverse exclusive',
      () => gradCheck((x) => x.cumsum(1, { reverse: true, exclusive: true }), [{ shape: [2, 4] }]),
    ],
  ],
  gather: [
    [
      'gather rows with repeats',
      () => gradCheck((t) => t.gather(constant([2, 0, 2, 1], [2, 2], 'int64')), [{ shape: [3, 4] }]),
    ],
  ],
  gatherElements: [
    [
      'gatherElements along last axis with repeats',
      () => gradCheck((x) => x.gatherElements(constant([0, 0, 2, 3, 1, 1], [2, 3], 'int64'), 1), [{ shape: [2, 4] }]),
    ],
    [
      'gatherElements with one index per row (the one-hot adjoint)',
      () => gradCheck((x) => x.gatherElements(constant([3, 0, 1], [3, 1], 'int64'), 1), [{ shape: [3, 4] }]),
    ],
    [
      'gatherElements with one index per column, axis 0',
      () => gradCheck((x) => x.gatherElements(constant([2, 0, 1, 2], [1, 4], 'int64'), 0), [{ shape: [3, 4] }]),
    ],
  ],
};

/** Primitives that produce no gradient by design (leaves, comparisons, index outputs, adjoints). */
const noGradient: PrimOp[] = [
  'detach',
  'input',
  'const',
  'range',
  'zeros',
  'size',
  'less',
  'greater',
  'equal',
  'and',
  'topk',
  'argmax',
  'scatterAdd',
  'scatterElementsAdd',
  'quantizedWeight',
  'quantizedMatmul',
];

test('grad detach: no gradient flows through a detached value', async () => {
  // d/dx [detach(x) * x] = detach(x) = x, where finite differences would see 2x.
  const x = input('x', 'float64', [3]);
  const [g] = grad(x.detach().mul(x).sum(), [x]);
  const out = await (await CompiledGraph.create([x], { g: g! }, { threads: 1 })).run({ x: f64([0.5, -2, 3], [3]) });
  assert.deepEqual([...(out.g!.data as Float64Array)], [0.5, -2, 3]);
});

for (const [op, list] of Object.entries(cases)) {
  for (const [name, run] of list!) test(`grad ${op}: ${name}`, run);
}

test('every primitive is either gradient-checked above or declared gradient-free', async () => {
  const { allPrimitives } = await import('../../src/graph/grad.ts');
  const missing = allPrimitives.filter((op) => !(op in cases) && !noGradient.includes(op));
  assert.deepEqual(missing, [], `primitives without a gradient check: ${missing.join(', ')}`);
});

// AdamW's arithmetic on one tensor, and a second thread that runs it on part of the model.
//
// At 0.6B parameters one AdamW pass in JavaScript is ~4 s of one core (float64 scalar code, a
// square root and a division per value) plus ~1 s for the gradient norm: a third of a training
// step on 2 cores, while onnxruntime's threads sit idle. The worker takes about half of the tensors:
// their weight and gradient buffers are transferred to it (no copy; detached here meanwhile) and
// come back updated; the moments live in SharedArrayBuffers both threads see. Both threads run the
// same kernels (the worker gets them as source text), and the gradient norm adds per-tensor sums in
// model order, so the result does not depend on which thread did which tensor.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Σ g² of one tensor, summed in float64. */
export function sumOfSquares(g: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  return sq;
}

/**
 * One AdamW update of a tensor in place (torch.optim.AdamW's arithmetic, in float64):
 * k = [clip, beta1, beta2, 1/sqrt(bias correction 2), lr/bias correction 1, eps], decay = 1 - lr·wd or 1.
 */
export function adamwTensor(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  k: readonly number[],
  decay: number,
): void {
  const clip = k[0]!,
    beta1 = k[1]!,
    beta2 = k[2]!,
    invSqrtBc2 = k[3]!,
    stepSize = k[4]!,
    eps = k[5]!;
  const c1 = 1 - beta1,
    c2 = 1 - beta2;
  const n = w.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * clip;
    const mi = beta1 * m[i]! + c1 * gi;
    const vi = beta2 * v[i]! + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) * invSqrtBc2 + eps);
  }
}

// Plain CommonJS run with `eval` (the package ships no separate worker file). It holds one batch of
// tensors at a time: `take` hands them over and answers their Σ g²; `update` (k, or null to give
// them back untouched) answers with the weight and gradient buffers, returned.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const sumOfSquares = ${sumOfSquares.toString()};
const adamwTensor = ${adamwTensor.toString()};
let held = [];
parentPort.on('message', (msg) => {
  if (msg.take) {
    held = msg.take;
    parentPort.postMessage({ sums: held.map((t) => sumOfSquares(new Float32Array(t.g))) });
    return;
  }
  if (msg.k) for (const t of held) adamwTensor(new Float32Array(t.w), new Float32Array(t.g), new Float32Array(t.m), new Float32Array(t.v), msg.k, t.decay);
  const back = held;
  held = [];
  parentPort.postMessage({ back }, back.flatMap((t) => [t.w, t.g]));
});
`;

/** One tensor lent to the worker: its weight and gradient buffers (transferred) and moments (shared). */
export interface LentTensor {
  w: ArrayBuffer;
  g: ArrayBuffer;
  m: SharedArrayBuffer;
  v: SharedArrayBuffer;
  decay: number;
}

/** Whether to use the worker for `elements` values in all: only where a pass costs more than a round trip. */
export function worthAWorker(elements: number, from: number): boolean {
  return elements >= from && availableParallelism() >= 2;
}

export class UpdateWorker {
  private worker: Worker | null = null;
  private waiting: { resolve: (answer: unknown) => void; reject: (error: Error) => void } | null = null;

  /** Hand `tensors` over (their w and g buffers are detached here until `update` returns them); resolves with their Σ g². */
  take(tensors: LentTensor[]): Promise<number[]> {
    return this.ask<{ sums: number[] }>(
      { take: tensors },
      tensors.flatMap((t) => [t.w, t.g]),
    ).then((a) => a.sums);
  }

  /** Update the tensors taken (k as adamwTensor's, or null to leave them as they were); resolves with them, returned. */
  update(k: readonly number[] | null): Promise<LentTensor[]> {
    return this.ask<{ back: LentTensor[] }>({ k }, []).then((a) => a.back);
  }

  private ask<T>(message: unknown, transfer: ArrayBuffer[]): Promise<T> {
    const worker = this.start();
    worker.ref(); // a script awaiting the update must not exit; an idle worker must not keep it alive
    return new Promise<T>((resolve, reject) => {
      this.waiting = { resolve: resolve as (answer: unknown) => void, reject };
      worker.postMessage(message, transfer);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER, { eval: true });
    worker.on('message', (answer: unknown) => {
      const waiting = this.waiting;
      this.waiting = null;
      worker.unref();
      waiting?.resolve(answer);
    });
    worker.on('error', (error) => {
      this.worker = null;
      const waiting = this.waiting;
      this.waiting = null;
      waiting?.reject(error);
    });
    this.worker = worker;
    return worker;
  }
}

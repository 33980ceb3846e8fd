// AdamW's arithmetic on one tensor, and a second thread that runs it on part of the model.
//
// At 0.6B parameters one AdamW pass is seconds of one core (adamw-simd.ts) plus the gradient
// norm's pass, while onnxruntime's threads sit idle. The worker takes about half of the tensors:
// their weight and gradient buffers are transferred to it (no copy; detached here meanwhile) and
// come back updated; the moments live in SharedArrayBuffers both threads see. Both threads run the
// same kernels (the worker gets them as source text), and the gradient norm adds per-tensor sums in
// model order, so the result does not depend on which thread did which tensor.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { RingrlError } from '../errors.ts';
import { type AdamwKernel, adamwKernel, adamwModule } from './adamw-simd.ts';

/** Σ g² of one tensor, summed in float64 (four partial sums: the loop is bound by the additions' latency). */
export function sumOfSquares(g: Float32Array): number {
  let a = 0,
    b = 0,
    c = 0,
    d = 0,
    i = 0;
  for (; i + 3 < g.length; i += 4) {
    a += g[i]! * g[i]!;
    b += g[i + 1]! * g[i + 1]!;
    c += g[i + 2]! * g[i + 2]!;
    d += g[i + 3]! * g[i + 3]!;
  }
  for (; i < g.length; i++) a += g[i]! * g[i]!;
  return a + b + (c + d);
}

/**
 * One AdamW update of a tensor in place (adamw-simd.ts), a chunk at a time through the kernel's
 * scratch memory: k = [clip, beta1, beta2, 1/sqrt(bias correction 2), lr/bias correction 1, eps],
 * decay = 1 - lr·wd or 1.
 */
export function adamwTensor(
  kernel: AdamwKernel,
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  k: readonly number[],
  decay: number,
): void {
  const { scratch, chunk, adamw } = kernel;
  const [clip, beta1, beta2, invSqrtBc2, stepSize, eps] = k as number[];
  for (let at = 0; at < w.length; at += chunk) {
    const n = Math.min(chunk, w.length - at);
    scratch.set(w.subarray(at, at + n), 0);
    scratch.set(g.subarray(at, at + n), chunk);
    scratch.set(m.subarray(at, at + n), 2 * chunk);
    scratch.set(v.subarray(at, at + n), 3 * chunk);
    adamw(n, clip!, beta1!, 1 - beta1!, beta2!, 1 - beta2!, invSqrtBc2!, stepSize!, eps!, decay);
    w.set(scratch.subarray(0, n), at);
    m.set(scratch.subarray(2 * chunk, 2 * chunk + n), at);
    v.set(scratch.subarray(3 * chunk, 3 * chunk + n), at);
  }
}

// Plain CommonJS run with `eval` (the package ships no separate worker file). It holds one batch of
// tensors at a time: `take` hands them over and answers their Σ g²; `update` (k, or null to give
// them back untouched) answers with the weight and gradient buffers, returned.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const sumOfSquares = ${sumOfSquares.toString()};
const adamwTensor = ${adamwTensor.toString()};
const kernel = (${adamwKernel.toString()})(new Uint8Array([${adamwModule().join(',')}]));
let held = [];
parentPort.on('message', (msg) => {
  if (msg.take) {
    held = msg.take;
    parentPort.postMessage({ sums: held.map((t) => sumOfSquares(new Float32Array(t.g))) });
    return;
  }
  if (msg.k) for (const t of held) adamwTensor(kernel, new Float32Array(t.w), new Float32Array(t.g), new Float32Array(t.m), new Float32Array(t.v), msg.k, t.decay);
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
      waiting?.reject(
        new RingrlError(
          `optimizer: the update thread failed (${error.message}); the weights it held are lost: resume from the last checkpoint`,
        ),
      );
    });
    this.worker = worker;
    return worker;
  }
}

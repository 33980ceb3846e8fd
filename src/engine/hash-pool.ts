// sha256 off the main thread: a small pool of worker threads. Bytes reach a worker without a copy,
// either as a view of a SharedArrayBuffer or as an ArrayBuffer transferred there and back
// (onnxruntime refuses shared memory as input, so what an engine will run on travels by transfer:
// the same memory returns, still warm). Weight publication hashes
// every tensor while the main thread writes or reads the next one, so a snapshot's checksums cost
// about what the bytes' move does instead of adding to it: sha256 runs at ~1.3-1.6 GB/s per core
// here, slower than a page-cache write (2-5 GB/s) or read (3-5 GB/s).
//
// A tensor is hashed as a job of one or more chunks, in order, on one worker (postMessage keeps a
// worker's messages in order), so a tensor larger than a staging slot still gets one digest.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// Plain CommonJS run with `eval`, so the package ships no separate worker file.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const open = new Map();
parentPort.on('message', ({ id, job, bytes, last, give }) => {
  let hash = open.get(job);
  if (!hash) open.set(job, (hash = createHash('sha256')));
  hash.update(bytes);
  if (last) open.delete(job);
  const digest = last ? hash.digest('hex') : null;
  if (give) parentPort.postMessage({ id, digest, bytes }, [bytes.buffer]);
  else parentPort.postMessage({ id, digest });
});
`;

/** A view of shared memory (what a worker can read without a copy). */
export type SharedBytes = Uint8Array<SharedArrayBuffer>;

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly size: number;
  private readonly waiting = new Map<number, Waiter>();
  private readonly pending: number[] = [];
  private nextId = 0;
  private nextJob = 0;
  private nextWorker = 0;

  // sha256 is the slowest pass of a publication and of a load; one thread per core up to 4.
  constructor(size = Math.min(4, availableParallelism())) {
    this.size = Math.max(1, size);
  }

  /** A new job (one digest), pinned to one worker so its chunks are hashed in order. */
  job(): HashJob {
    return new HashJob(this, this.nextJob++, this.nextWorker++ % this.size);
  }

  /** sha256 of one shared byte range, as hex. */
  async digest(bytes: SharedBytes): Promise<string> {
    return (await this.send(this.nextWorker++ % this.size, this.nextJob++, bytes, true, false)).digest!;
  }

  /**
   * sha256 of a whole ArrayBuffer, lent to a worker meanwhile (detached here until it returns);
   * resolves with the digest and a view of the same memory, back.
   */
  async digestLent(bytes: Uint8Array<ArrayBuffer>): Promise<{ digest: string; bytes: Uint8Array<ArrayBuffer> }> {
    const answer = await this.send(this.nextWorker++ % this.size, this.nextJob++, bytes, true, true);
    return { digest: answer.digest!, bytes: answer.bytes! };
  }

  /** @internal Send one chunk of `job` to its worker; resolves when the worker has hashed it. */
  send(worker: number, job: number, bytes: Uint8Array, last: boolean, give: boolean): Promise<Answer> {
    const w = this.worker(worker);
    const id = this.nextId++;
    // Idle workers must not keep the process alive; busy ones must (a script awaiting a digest).
    if ((this.pending[worker] = (this.pending[worker] ?? 0) + 1) === 1) w.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      if (give) w.postMessage({ id, job, bytes, last, give }, [bytes.buffer as ArrayBuffer]);
      else w.postMessage({ id, job, bytes, last, give });
    });
  }

  /** Stop the workers (a later job starts them again). */
  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w?.terminate()));
  }

  private worker(i: number): Worker {
    const existing = this.workers[i];
    if (existing) return existing;
    const worker = new Worker(WORKER, { eval: true });
    worker.on('message', (answer: Answer & { id: number }) => {
      const waiter = this.waiting.get(answer.id)!;
      this.waiting.delete(answer.id);
      if (--this.pending[i]! === 0) worker.unref();
      waiter.resolve(answer);
    });
    worker.on('error', (error) => {
      for (const [id, waiter] of this.waiting)
        if (waiter.worker === i) {
          this.waiting.delete(id);
          waiter.reject(new Error(`sha256 worker failed: ${error.message}`));
        }
      this.pending[i] = 0;
      delete this.workers[i];
    });
    this.workers[i] = worker;
    return worker;
  }
}

interface Answer {
  digest: string | null;
  bytes?: Uint8Array<ArrayBuffer>;
}

interface Waiter {
  worker: number;
  resolve: (answer: Answer) => void;
  reject: (error: Error) => void;
}

export class HashJob {
  private readonly pool: HashPool;
  private readonly id: number;
  private readonly worker: number;

  constructor(pool: HashPool, id: number, worker: number) {
    this.pool = pool;
    this.id = id;
    this.worker = worker;
  }

  /** Hash the next chunk; the last chunk's promise resolves with the job's hex digest, others with null. */
  async update(bytes: SharedBytes, last: boolean): Promise<string | null> {
    return (await this.pool.send(this.worker, this.id, bytes, last, false)).digest;
  }
}

let shared: HashPool | undefined;
/** The process's pool (started on first use; idle workers do not keep the process alive). */
export function hashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}

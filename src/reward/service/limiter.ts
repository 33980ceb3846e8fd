// Admission control: at most `concurrency` jobs run, at most `queue` wait. A full queue answers
// at once (HTTP 429); a job that waited longer than `queueTimeoutMs` gives up (HTTP 503), as does
// everything once shutdown starts. A job whose client went away (its AbortSignal fired) leaves the
// queue at once. Nothing is dropped silently: every job either runs or throws.

export type OverloadReason = 'queue_full' | 'queue_timeout' | 'shutting_down' | 'cancelled';

const MESSAGES: Record<OverloadReason, string> = {
  queue_full: 'server busy: queue full, retry later',
  queue_timeout: 'server busy: waited too long in the queue',
  shutting_down: 'server shutting down',
  cancelled: 'cancelled: the client went away',
};

export class Overloaded extends Error {
  readonly reason: OverloadReason;
  constructor(reason: OverloadReason) {
    super(MESSAGES[reason]);
    this.reason = reason;
  }
}

interface Waiter {
  start: () => void;
  fail: (e: Overloaded) => void;
}

export class Limiter {
  active = 0;
  readonly concurrency: number;
  readonly queue: number;
  readonly queueTimeoutMs: number;
  private readonly waiting: Waiter[] = [];
  private stopping = false;

  constructor(concurrency: number, queue: number, queueTimeoutMs: number) {
    this.concurrency = concurrency;
    this.queue = queue;
    this.queueTimeoutMs = queueTimeoutMs;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Whether a new request would be queued beyond capacity right now. */
  full(): boolean {
    return this.active >= this.concurrency && this.waiting.length >= this.queue;
  }

  /**
   * Run fn under the limit. `admitted` jobs (items of an accepted batch) skip the queue cap.
   * Time spent waiting here is not part of the job's own limits: those start when fn starts.
   */
  async run<T>(fn: () => Promise<T>, admitted = false, signal?: AbortSignal): Promise<T> {
    if (this.stopping) throw new Overloaded('shutting_down');
    if (signal?.aborted) throw new Overloaded('cancelled');
    if (this.active >= this.concurrency) {
      if (!admitted && this.waiting.length >= this.queue) throw new Overloaded('queue_full');
      await new Promise<void>((resolve, reject) => {
        const leave = (e: Overloaded) => {
          const at = this.waiting.indexOf(waiter);
          if (at >= 0) this.waiting.splice(at, 1);
          done();
          reject(e);
        };
        const onAbort = () => leave(new Overloaded('cancelled'));
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          start: () => {
            done();
            resolve();
          },
          fail: (e) => {
            done();
            reject(e);
          },
        };
        const timer = setTimeout(
          () => leave(new Overloaded('queue_timeout')),
          admitted ? 2 ** 31 - 1 : this.queueTimeoutMs,
        );
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next.start(); // the slot passes straight to the next job
      else this.active--;
    }
  }

  /** Refuse new work and fail everything still waiting. */
  shutdown(): void {
    this.stopping = true;
    for (const w of this.waiting.splice(0)) w.fail(new Overloaded('shutting_down'));
  }
}

// Admission control: at most `concurrency` jobs run, at most `queue` wait. A full queue answers
// at once (HTTP 429); a job that waited longer than `queueTimeoutMs` gives up (HTTP 503), as does
// everything once shutdown starts. Nothing is dropped silently: every job either runs or throws.

export type OverloadReason = 'queue_full' | 'queue_timeout' | 'shutting_down';

export class Overloaded extends Error {
  constructor(readonly reason: OverloadReason) {
    super(reason === 'queue_full' ? 'server busy: queue full, retry later' : reason === 'queue_timeout' ? 'server busy: waited too long in the queue' : 'server shutting down');
  }
}

interface Waiter {
  start: () => void;
  fail: (e: Overloaded) => void;
}

export class Limiter {
  active = 0;
  private readonly waiting: Waiter[] = [];
  private stopping = false;

  constructor(
    readonly concurrency: number,
    readonly queue: number,
    readonly queueTimeoutMs: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  /** Whether a new request would be queued beyond capacity right now. */
  full(): boolean {
    return this.active >= this.concurrency && this.waiting.length >= this.queue;
  }

  /** Run fn under the limit. `admitted` jobs (items of an accepted batch) skip the queue cap. */
  async run<T>(fn: () => Promise<T>, admitted = false): Promise<T> {
    if (this.stopping) throw new Overloaded('shutting_down');
    if (this.active >= this.concurrency) {
      if (!admitted && this.waiting.length >= this.queue) throw new Overloaded('queue_full');
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          start: () => {
            clearTimeout(timer);
            resolve();
          },
          fail: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const timer = setTimeout(
          () => {
            const at = this.waiting.indexOf(waiter);
            if (at >= 0) this.waiting.splice(at, 1);
            reject(new Overloaded('queue_timeout'));
          },
          admitted ? 2 ** 31 - 1 : this.queueTimeoutMs,
        );
        this.waiting.push(waiter);
      });
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next.start(); // the slot passes straight to the next job
      else this.active--;
    }
  }

  /** Refuse new work and fail everything still waiting. */
  shutdown(): void {
    this.stopping = true;
    for (const w of this.waiting.splice(0)) w.fail(new Overloaded('shutting_down'));
  }
}

// The serving loop: one local engine shared by every HTTP request. While any request is pending
// the loop runs engine steps back to back, yielding to the event loop between them so requests
// that arrive join at the next step and finished ones leave (continuous batching across
// requests). Control operations (pause, abort, weight updates) run between steps, never inside
// one: steps and controls are serialised on one promise chain.
import { RingrlError } from '../errors.ts';
import type { LocalEngine } from '../engine/local.ts';
import type { Weights } from '../model/checkpoint.ts';
import { type GeneratedSequence, type SamplingParams, emptySequence } from '../engine/types.ts';

/** How a served sequence ended (SGLang's finish_reason.type). */
export type ServedFinish = 'stop' | 'length' | 'abort';

export interface ServedSequence {
  seq: GeneratedSequence;
  finish: ServedFinish;
  /** The stop string or stop token that ended it, if any. */
  matched?: string | number;
  /** Weight version name of each token. */
  versions: string[];
}

export interface ServeRequest {
  id: string;
  prompt: number[];
  params: SamplingParams;
  /** Stop strings: checked on the decoded response after every step. */
  stopText?: (tokens: number[]) => string | null;
  /** Called after each step that extended the sequence (streaming). */
  onProgress?: (seq: GeneratedSequence) => void;
}

interface Pending {
  request: ServeRequest;
  resolve: (s: ServedSequence) => void;
  reject: (e: Error) => void;
  reported: number;
}

export class ServingLoop {
  readonly engine: LocalEngine;
  /** Weight version names by engine version index. */
  private readonly names: string[];
  private readonly pending = new Map<string, Pending>();
  private chain: Promise<unknown> = Promise.resolve();
  private driving = false;
  /** Paused (either mode): new and held requests wait for continue(). */
  private holding = false;
  private submitted = 0;
  private readonly seed: number;

  constructor(engine: LocalEngine, weightVersion = 'default', seed = 0) {
    this.engine = engine;
    this.names = [];
    this.names[engine.version] = weightVersion;
    this.seed = seed;
  }

  get weightVersion(): string {
    return this.names[this.engine.version]!;
  }

  get paused(): boolean {
    return this.holding;
  }

  /** Requests in the loop (decoding or waiting). */
  get size(): number {
    return this.pending.size;
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  /** Queue one request; resolves when it ends. Bad requests throw (synchronously) a RingrlError. */
  generate(request: ServeRequest): Promise<ServedSequence> {
    if (this.pending.has(request.id))
      throw new RingrlError(`rid: '${request.id}' is already running; request ids must be unique`);
    // The loop picks the seed a request brings none of, so a re-submission (abort of another
    // request, a weight update) continues the same random stream.
    const seed = request.params.seed ?? mix(this.seed, this.submitted++);
    const params = { ...request.params, seed };
    this.engine.submit([{ id: request.id, prompt: request.prompt, params }]);
    return new Promise<ServedSequence>((resolve, reject) => {
      this.pending.set(request.id, { request: { ...request, params }, resolve, reject, reported: 0 });
      this.kick();
    });
  }

  /** SGLang pause_generation: abort ends every request now (partial results), in_place holds them. */
  async pause(mode: 'abort' | 'in_place'): Promise<number> {
    this.holding = true;
    return this.exclusive(async () => (mode === 'abort' ? this.abortWhere(() => true) : this.pending.size));
  }

  resume(): void {
    this.holding = false;
    this.kick();
  }

  /** Abort one request (or all): it ends with finish 'abort' and what it generated so far. */
  abort(id: string | null): Promise<number> {
    return this.exclusive(async () => this.abortWhere((r) => id === null || r === id));
  }

  /**
   * Load new weights between steps. Requests in flight are aborted (abortAll) or paused and
   * re-prefilled under the new weights, continuing their random streams; returns how many. The
   * weights must be the loop's to keep (nobody writes them later): the engine does not copy them.
   */
  updateWeights(weights: Weights, name: string, abortAll: boolean): Promise<number> {
    return this.exclusive(async () => {
      const partial = await this.engine.pause();
      if (abortAll) for (const seq of partial) this.settle(seq, 'abort');
      const version = this.engine.version + 1;
      await this.engine.updateWeights(weights, version, true);
      this.names[version] = name;
      if (!abortAll) {
        this.engine.submit(
          partial.map((seq) => {
            const { request } = this.pending.get(seq.id)!;
            return { id: seq.id, prompt: request.prompt, params: request.params, resumeFrom: seq };
          }),
        );
      }
      this.kick();
      return partial.length;
    });
  }

  /** Rename the current weights' version (SGLang's update with only weight_version). */
  renameVersion(name: string): void {
    this.names[this.engine.version] = name;
  }

  /** Wait for the running step (if any) to end; resolves once nothing touches the engine. */
  idle(): Promise<void> {
    return this.exclusive(async () => {});
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private kick(): void {
    if (this.driving || this.holding) return;
    this.driving = true;
    void this.drive();
  }

  private async drive(): Promise<void> {
    try {
      while (!this.holding && this.engine.busy()) {
        await this.exclusive(async () => {
          if (this.holding || !this.engine.busy()) return;
          const finished = await this.engine.step();
          for (const seq of finished) this.settle(seq, seq.finishReason!);
          this.report();
        });
        await new Promise((resolve) => setImmediate(resolve)); // let arriving requests join
      }
    } catch (error) {
      // An engine failure fails every request in flight; the loop stays usable for the next ones.
      const partial = await this.engine.pause().catch(() => []);
      for (const seq of partial) {
        this.pending.get(seq.id)?.reject(new Error(`engine failed: ${(error as Error).message.split('\n')[0]}`));
        this.pending.delete(seq.id);
      }
    } finally {
      this.driving = false;
    }
    if (!this.holding && this.engine.busy()) this.kick();
  }

  /** Stream progress, and end sequences whose decoded text reached a stop string. */
  private report(): void {
    for (const seq of this.engine.running()) {
      const p = this.pending.get(seq.id);
      if (!p || seq.tokens.length === p.reported) continue;
      const matched = p.request.stopText?.(seq.tokens);
      if (matched != null) {
        this.engine.cancel(seq.id);
        this.settle(seq, 'stop', matched);
        continue;
      }
      p.reported = seq.tokens.length;
      p.request.onProgress?.(seq);
    }
  }

  private async abortWhere(match: (id: string) => boolean): Promise<number> {
    let count = 0;
    for (const id of [...this.pending.keys()]) {
      if (!match(id)) continue;
      const { request } = this.pending.get(id)!;
      this.settle(this.engine.cancel(id) ?? emptySequence(request), 'abort');
      count++;
    }
    return count;
  }

  private settle(seq: GeneratedSequence, finish: ServedFinish, matched?: string | number): void {
    const p = this.pending.get(seq.id);
    if (!p) return;
    this.pending.delete(seq.id);
    if (finish === 'stop' && matched === undefined) matched = p.request.stopText?.(seq.tokens) ?? seq.tokens.at(-1);
    else if (finish === 'length') {
      const text = p.request.stopText?.(seq.tokens);
      if (text != null) [finish, matched] = ['stop', text];
    }
    p.resolve({
      seq: { ...seq, finishReason: finish === 'abort' ? null : seq.finishReason },
      finish,
      matched,
      versions: seq.versions.map((v) => this.names[v] ?? String(v)),
    });
  }
}

function mix(a: number, b: number): number {
  return (Math.imul(a ^ 0x2545f491, 0x9e3779b1) + Math.imul(b + 1, 0x85ebca6b)) >>> 0;
}

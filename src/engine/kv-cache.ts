// The local engine's host KV cache, split by position into segments so a decode step reads about
// each row's own length instead of the longest row's.
//
// Segment j holds positions [starts[j], starts[j+1]) of every row (the last one: to the end), as
// [capacity, K, slots_j, hd] per layer. Rows are kept ordered by how far they reach (the segment of
// their last cached position, descending), so the rows with data in segment j are a prefix 0..n_j-1
// and a step feeds each segment as one zero-copy slice [n_j, K, slots_j, hd]. With one long row among
// many short ones, the short rows read only the first segment: a dense [B, S] cache would make every
// row read the longest row's S, which for a small model dominates a long-context step.
//
// Reordering moves whole rows (keys, values and the row's item): a row that grows into the next
// segment swaps with the first row that does not reach it; a removed row's hole is filled from the
// end of each block in turn; a new row is appended and swapped forward. Each costs a few row copies.

const BLOCK = 64; // slots are allocated in blocks

interface Segment {
  start: number;
  width: number; // positions it can hold (Infinity for the last)
  slots: number; // allocated positions per row
  k: Float32Array[]; // per layer, [capacity, K, slots, hd]
  v: Float32Array[];
  views?: { size: number; k: Float32Array[]; v: Float32Array[] }; // the last feeds' views of k and v
}

export interface CachedRow {
  /** Positions 0..cacheLength-1 hold keys and values. */
  cacheLength: number;
}

export interface SegmentFeed {
  rows: number; // n: rows 0..n-1 of the cache, those that reach the segment
  slots: number;
  k: Float32Array[]; // per layer, [rows, K, slots, hd], views of the cache
  v: Float32Array[];
  mask: Float32Array; // [rows, slots]: 1 where a position is cached
}

export class SegmentedKvCache<R extends CachedRow> {
  /** The rows in cache order; the caller may change an item's fields but not the array. */
  readonly rows: R[] = [];
  private readonly segments: Segment[];
  private readonly headSize: number; // K · hd floats per position

  /** `starts`: first position of each segment after the first (ascending); [] is one dense cache. */
  constructor(
    private readonly layers: number,
    private readonly kvHeads: number,
    private readonly headDim: number,
    private readonly capacity: number,
    starts: readonly number[] = [],
  ) {
    const bounds = [0, ...starts];
    if (bounds.some((b, i) => !Number.isInteger(b) || (i > 0 && b <= bounds[i - 1]!)))
      throw new Error(`kv cache: segment starts must be ascending positive integers, got [${starts.join(', ')}]`);
    this.segments = bounds.map((start, j) => ({
      start,
      width: j + 1 < bounds.length ? bounds[j + 1]! - start : Infinity,
      slots: 0,
      k: [],
      v: [],
    }));
    this.headSize = kvHeads * headDim;
  }

  /** Allocated positions per row, over all segments. */
  get slots(): number {
    return this.segments.reduce((a, s) => a + s.slots, 0);
  }

  /** The segment of its last cached position: the row has data in segments 0..reach. */
  reach(row: R): number {
    return this.segmentOf(Math.max(0, row.cacheLength - 1));
  }

  /** Append a row whose first `row.cacheLength` positions `write` fills (given its row index) and move it into place. */
  add(row: R, write: (index: number) => void): void {
    if (this.rows.length >= this.capacity) throw new Error(`kv cache: all ${this.capacity} rows are in use`);
    this.rows.push(row);
    this.fit();
    write(this.rows.length - 1);
    this.settle(this.rows.length - 1);
  }

  /** After a row grew (cacheLength increased), restore the order; call for every row that grew. */
  settle(index: number): void {
    const reach = this.reach(this.rows[index]!);
    for (let j = 1; j <= reach; j++) {
      const first = this.firstBelow(j, index);
      if (first < index) {
        this.swap(first, index);
        index = first;
      }
    }
  }

  /** Remove row `index`; rows after it may move. */
  remove(index: number): void {
    let hole = index;
    for (let j = this.reach(this.rows[index]!); j >= 0; j--) {
      const end = j === 0 ? this.rows.length - 1 : this.firstBelow(j) - 1;
      if (end > hole) this.move(end, hole);
      hole = Math.max(hole, end);
    }
    this.rows.pop();
    if (this.rows.length === 0) this.release();
  }

  /** Drop every row and free the memory. */
  clear(): void {
    this.rows.length = 0;
    this.release();
  }

  private release(): void {
    for (const s of this.segments) Object.assign(s, { slots: 0, k: [], v: [], views: undefined });
  }

  /** Copy `count` positions (hd floats each, consecutive in `k`/`v` from `offset`) of one head into row `index` at `position`. */
  write(
    index: number,
    layer: number,
    head: number,
    position: number,
    count: number,
    k: Float32Array,
    v: Float32Array,
    offset: number,
  ): void {
    const hd = this.headDim;
    for (const s of this.segments) {
      const from = Math.max(position, s.start),
        to = Math.min(position + count, s.start + s.width);
      if (from >= to) continue;
      allocated(s, to - 1);
      const src = offset + (from - position) * hd,
        dst = ((index * this.kvHeads + head) * s.slots + (from - s.start)) * hd;
      s.k[layer]!.set(k.subarray(src, src + (to - from) * hd), dst);
      s.v[layer]!.set(v.subarray(src, src + (to - from) * hd), dst);
    }
  }

  /**
   * Append one position to every row, at its `cacheLength`: row b's keys and values of layer l, head h
   * are hd floats at ((b · K + h) · hd) of `k[l]` and `v[l]` (a decode step's [B, K, 1, hd] outputs).
   * Plain loops: hd floats per head are too few to pay for a subarray view and a set.
   */
  append(k: readonly Float32Array[], v: readonly Float32Array[]): void {
    const hd = this.headDim,
      K = this.kvHeads;
    this.rows.forEach((row, b) => {
      const s = this.segments[this.segmentOf(row.cacheLength)]!;
      const offset = row.cacheLength - s.start;
      allocated(s, row.cacheLength);
      for (let l = 0; l < this.layers; l++) {
        const ks = k[l]!,
          vs = v[l]!,
          kd = s.k[l]!,
          vd = s.v[l]!;
        for (let h = 0; h < K; h++) {
          const src = (b * K + h) * hd,
            dst = ((b * K + h) * s.slots + offset) * hd;
          for (let i = 0; i < hd; i++) {
            kd[dst + i] = ks[src + i]!;
            vd[dst + i] = vs[src + i]!;
          }
        }
      }
    });
  }

  /**
   * Size every segment for the rows' next position (cacheLength + 1): grow by half in blocks when
   * short, shrink once the longest row needs half or less (a finished long row must not slow later
   * steps), keeping contents.
   */
  fit(): void {
    if (this.rows.length === 0) return;
    const next = Math.max(...this.rows.map((r) => r.cacheLength)) + 1;
    this.segments.forEach((s, j) => {
      const needed = Math.max(0, Math.min(s.width, next - s.start));
      if (needed === 0) return this.resize(j, 0);
      if (needed <= s.slots && needed * 2 > s.slots) return;
      const target = needed <= s.slots ? needed * 1.5 : Math.max(needed, s.slots * 1.5);
      this.resize(j, Math.min(s.width, Math.ceil(target / BLOCK) * BLOCK));
    });
  }

  /**
   * The segments some row reaches (row 0 reaches furthest), each as rows 0..n-1 of zero-copy views
   * with their masks; call after fit().
   */
  feeds(): SegmentFeed[] {
    if (this.rows.length === 0) return [];
    return this.segments.slice(0, this.reach(this.rows[0]!) + 1).map((s, j) => {
      const rows = j === 0 ? this.rows.length : this.firstBelow(j);
      const size = rows * this.headSize * s.slots;
      const mask = new Float32Array(rows * s.slots);
      for (let b = 0; b < rows; b++) {
        const cached = Math.min(s.slots, Math.max(0, this.rows[b]!.cacheLength - s.start));
        mask.fill(1, b * s.slots, b * s.slots + cached);
      }
      // The same views while the size holds: onnxruntime's wrapper of each is then reused (runtime/session.ts).
      if (s.views?.size !== size)
        s.views = { size, k: s.k.map((a) => a.subarray(0, size)), v: s.v.map((a) => a.subarray(0, size)) };
      return { rows, slots: s.slots, k: s.views.k, v: s.views.v, mask };
    });
  }

  // ---- internals ---------------------------------------------------------------------------

  private segmentOf(position: number): number {
    let j = 0;
    while (j + 1 < this.segments.length && position >= this.segments[j + 1]!.start) j++;
    return j;
  }

  /** Index of the first row (other than `skip`) that does not reach segment j; rows.length if none. */
  private firstBelow(j: number, skip = -1): number {
    const i = this.rows.findIndex((r, index) => index !== skip && this.reach(r) < j);
    return i < 0 ? this.rows.length : i;
  }

  private resize(j: number, slots: number): void {
    const s = this.segments[j]!;
    if (slots === s.slots) return;
    const rowsWithData = j === 0 ? this.rows.length : this.firstBelow(j);
    const kept = Math.min(s.slots, slots) * this.headDim,
      old = s.slots * this.headDim,
      now = slots * this.headDim;
    const grow = (prev: Float32Array | undefined) => {
      const next = new Float32Array(this.capacity * this.kvHeads * now);
      if (prev)
        for (let r = 0; r < rowsWithData * this.kvHeads; r++) next.set(prev.subarray(r * old, r * old + kept), r * now);
      return next;
    };
    s.k = slots ? Array.from({ length: this.layers }, (_, l) => grow(s.k[l])) : [];
    s.v = slots ? Array.from({ length: this.layers }, (_, l) => grow(s.v[l])) : [];
    s.slots = slots;
    s.views = undefined;
  }

  /** Row `from` (data and item) overwrites row `to`. */
  private move(from: number, to: number): void {
    const reach = this.reach(this.rows[from]!);
    this.segments.forEach((s, j) => {
      if (j > reach) return;
      const size = this.headSize * s.slots;
      for (let l = 0; l < this.layers; l++) {
        s.k[l]!.copyWithin(to * size, from * size, (from + 1) * size);
        s.v[l]!.copyWithin(to * size, from * size, (from + 1) * size);
      }
    });
    this.rows[to] = this.rows[from]!;
  }

  private swap(a: number, b: number): void {
    const reach = Math.max(this.reach(this.rows[a]!), this.reach(this.rows[b]!));
    this.segments.forEach((s, j) => {
      if (j > reach) return;
      const size = this.headSize * s.slots;
      for (const arrays of [s.k, s.v]) {
        for (const x of arrays) {
          const tmp = x.slice(a * size, (a + 1) * size);
          x.copyWithin(a * size, b * size, (b + 1) * size);
          x.set(tmp, b * size);
        }
      }
    });
    [this.rows[a], this.rows[b]] = [this.rows[b]!, this.rows[a]!];
  }
}

/** Refuse a write at `position` past what segment `s` has allocated (the caller skipped fit()). */
function allocated(s: Segment, position: number): void {
  if (position - s.start >= s.slots)
    throw new Error(
      `kv cache: position ${position} is beyond the allocated ${s.slots} slots of the segment at ${s.start}; fit() first`,
    );
}

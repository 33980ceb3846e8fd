// Rollout scheduling: C3PO++ and the two baselines behind one loop, so all three run identical
// work through the same engine interface.
//
// One iteration (the paper's Algorithm C3PO++; docs/rl.md says what ringrl decides where it is silent):
//   drop pool members whose retention > σ                         (c3po)
//   resume paused members under the current weights
//   until finished tokens C ≥ Φ: top the pool up to Ω with whole new groups, step the engine
//   sync: drain everything still in flight (classic on-policy loop; continuous batching inside)
//   c3po / async: pause what is unfinished; it resumes next iteration under the new weights
//   hand over every group whose members have all ended (finished or dropped)
// After the trainer publishes version v+1, `policyUpdated` raises the retention of paused members.
//
// Disaggregated placement (`collect({ keepDecoding: true })`, then `overlap`, then `pauseForUpdate`):
// at the cut the pool is not paused; it keeps decoding under version v while the trainer trains
// v → v+1, topping up with new groups (c3po, async; sync never starts off-policy work), until the
// trainer is done or Φ more tokens have finished. Those tokens carry version v and count toward the
// next cut. Then the pool is paused, the weights are published and everything resumes under v+1 as
// in the colocated loop. A member that finished during the overlap is trained one update after its
// last token, so the update counts toward its retention as it does for a paused one (c3po drops it
// past σ, as it would have dropped it paused).
//
// What the paper leaves open, decided here: groups stay whole (a group is trained on only when all
// G members have ended; advantages over survivors; < 2 survivors → discarded); C counts response
// tokens of trajectories as they finish; async (AReaL-style bounded staleness η) carries partials
// like c3po but never drops from the pool, and instead drops members whose first token is more
// than η versions older than the policy being trained when their group completes.
import { RingrlError } from '../errors.ts';
import { mean } from '../util/stats.ts';
import type { GeneratedSequence, RolloutEngine } from '../engine/types.ts';
import type {
  Group,
  IterationStats,
  Prompt,
  PromptSource,
  RolloutBatch,
  RolloutConfig,
  SchedulerState,
  Trajectory,
} from './types.ts';

type MemberStatus = 'active' | 'paused' | 'finished' | 'dropped';

interface Member {
  sampleIndex: number;
  seed: number;
  status: MemberStatus;
  seq: GeneratedSequence;
  retention: number;
  /** Finished while the trainer trained (disaggregated): the next update counts toward its retention. */
  late?: boolean;
}

/** What the pool did while the trainer trained (disaggregated placement). */
export interface OverlapStats {
  /** Wall seconds the engine decoded while the trainer trained. */
  seconds: number;
  generatedTokens: number;
  /** Response tokens of trajectories that finished then (they count toward the next cut). */
  finishedTokens: number;
  decodeSteps: number;
}

interface GroupState {
  id: string;
  prompt: Prompt;
  members: Member[];
}

/**
 * What is wrong with a rollout config, as [config key, problem] pairs (empty when it is valid).
 * The one statement of these rules: the config schema reports them at load time, and the
 * scheduler refuses a config built in code that breaks them.
 */
export function rolloutConfigProblems(c: RolloutConfig, maxNewTokens = c.sampling.maxNewTokens): [string, string][] {
  const problems: [string, string][] = [];
  const integer = (key: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) problems.push([key, `expected an integer >= ${min}, got ${value}`]);
  };
  if (!['c3po', 'sync', 'async'].includes(c.mode))
    problems.push(['mode', `expected c3po, sync or async, got '${c.mode}'`]);
  integer('group_size', c.groupSize, 1);
  integer('retention', c.retention, 0);
  integer('staleness', c.staleness, 0);
  if (!Number.isInteger(c.poolCapacity) || c.poolCapacity < c.groupSize) {
    problems.push([
      'pool_capacity',
      `must be at least group_size (${c.groupSize}): groups enter the pool whole, got ${c.poolCapacity}`,
    ]);
  }
  if (!(c.tokenBudget >= maxNewTokens)) {
    problems.push([
      'token_budget',
      `must be at least max_new_tokens (${maxNewTokens}): a budget smaller than one response's max length, got ${c.tokenBudget}`,
    ]);
  }
  return problems;
}

/** Throw a one-line RingrlError naming the first problem of a rollout config. */
export function validateRolloutConfig(c: RolloutConfig, maxNewTokens = c.sampling.maxNewTokens): void {
  const [problem] = rolloutConfigProblems(c, maxNewTokens);
  if (problem) throw new RingrlError(`rollout.${problem[0]}: ${problem[1]}`);
}

export class RolloutScheduler {
  /** Called as each trajectory finishes, before its group is complete (the controller starts its reward then). */
  onFinished?: (trajectory: Trajectory) => void;
  private groups = new Map<string, GroupState>();
  private version = 0;
  private nextGroup = 0;
  /** Response lengths of members dropped this iteration, and groups discarded for < 2 survivors. */
  private dropped: number[] = [];
  private discarded: Group[] = [];
  /** Response tokens finished during the last overlap: the next iteration starts its count at them. */
  private carried = 0;

  constructor(
    private readonly engine: RolloutEngine,
    private readonly prompts: PromptSource,
    readonly config: RolloutConfig,
    private readonly seed = 0,
  ) {
    validateRolloutConfig(config);
  }

  /** Members unfinished between iterations (the partial rollouts C3PO++ carries). */
  get pooled(): number {
    return this.members().filter((m) => m.status === 'paused').length;
  }

  /**
   * Call after the engine received weights `version`: paused members now span one more update, and
   * so do members that finished during the overlap (they are trained under the new version).
   */
  policyUpdated(version: number): void {
    if (version <= this.version) return;
    for (const m of this.members()) {
      if (m.status === 'paused' || m.late) m.retention += version - this.version;
      if (m.late && this.config.mode === 'c3po' && m.retention > this.config.retention) this.drop(m);
      m.late = false;
    }
    this.version = version;
  }

  /**
   * One iteration: decode until Φ response tokens have finished (counting those finished during the
   * last overlap), then drain (sync) or pause (c3po, async) the rest; `keepDecoding` (disaggregated
   * placement, c3po and async) leaves the rest decoding for `overlap`.
   */
  async collect(options: { keepDecoding?: boolean } = {}): Promise<RolloutBatch> {
    const { mode, tokenBudget, retention } = this.config;
    const start = this.engine.stats();
    if (mode === 'c3po') this.dropStale(retention);
    this.resumePaused();
    let finishedTokens = this.carried;
    this.carried = 0;
    let occupied = 0,
      steps = 0;
    const step = async () => {
      const finished = await this.engine.step();
      for (const seq of finished) finishedTokens += this.markFinished(seq);
      occupied += this.engine.stats().active + finished.length; // rows decoded in this step
      steps++;
    };
    while (finishedTokens < tokenBudget) {
      this.topUp();
      if (!this.engine.busy()) throw new Error('rollout: the pool is empty but the token budget is not reached');
      await step();
    }
    if (mode === 'sync') while (this.engine.busy()) await step();
    else if (!options.keepDecoding) for (const seq of await this.engine.pause()) this.markPaused(seq);
    const groups = this.takeCompleted();
    const end = this.engine.stats();
    const seconds = end.busySeconds - start.busySeconds;
    const generated = end.generatedTokens - start.generatedTokens;
    const kept = groups.flatMap((g) => g.members.filter((m) => m.finishReason !== 'dropped'));
    const stats: IterationStats = {
      'rollout/finished_tokens': finishedTokens,
      'rollout/generated_tokens': generated,
      'rollout/tokens_per_s': seconds > 0 ? generated / seconds : 0,
      'rollout/pool_occupancy': steps ? occupied / steps / this.config.poolCapacity : 0,
      'rollout/decode_steps': end.decodeSteps - start.decodeSteps,
      'rollout/prefill_tokens': end.prefillTokens - start.prefillTokens,
      'time/rollout_s': seconds,
      'rollout/engine_s': seconds,
      'rollout/prefill_s': (end.prefillSeconds ?? NaN) - (start.prefillSeconds ?? NaN),
      'rollout/prefill_padded_tokens': (end.prefillPaddedTokens ?? NaN) - (start.prefillPaddedTokens ?? NaN),
      'c3po/retained': this.members().filter((m) => m.status === 'paused' || m.status === 'active').length,
      'c3po/dropped': this.dropped.length,
      'c3po/dropped_len_mean': mean(this.dropped),
      'c3po/kept_len_mean': mean(kept.map((t) => t.response.length)),
      'c3po/groups': groups.length,
      'c3po/groups_discarded': this.discarded.length,
    };
    const discarded = this.discarded;
    this.dropped = [];
    this.discarded = [];
    return { groups, discarded, stats };
  }

  /**
   * Disaggregated placement: keep the pool decoding under the current version while the trainer
   * trains, until `stopped` settles or Φ response tokens have finished (the next cut's worth; more
   * would only grow staler). Sync mode drained its pool at the cut and starts nothing off-policy.
   */
  async overlap(stopped: Promise<unknown>): Promise<OverlapStats> {
    const start = this.engine.stats();
    const began = performance.now();
    let stop = false;
    const halt = () => {
      stop = true;
      this.engine.interrupt?.();
    };
    stopped.then(halt, halt);
    let finishedTokens = 0;
    while (!stop && this.carried < this.config.tokenBudget) {
      if (this.config.mode !== 'sync') this.topUp();
      if (!this.engine.busy()) break;
      for (const seq of await this.engine.step()) finishedTokens += this.finishedLate(seq);
      // An engine whose step never waits (the simulated one) must still let the trainer run.
      await new Promise((next) => setImmediate(next));
    }
    const end = this.engine.stats();
    return {
      seconds: (performance.now() - began) / 1000,
      generatedTokens: end.generatedTokens - start.generatedTokens,
      finishedTokens,
      decodeSteps: end.decodeSteps - start.decodeSteps,
    };
  }

  /** Pause whatever is decoding (its members resume at the next collect, under the then-current weights). */
  async pauseForUpdate(): Promise<void> {
    if (!this.engine.busy()) return;
    for (const seq of await this.engine.pause()) this.markPaused(seq);
    // An engine can still hold sequences that finished between its last step and the pause (an
    // HTTP answer that landed then): they finished under this version, during the overlap.
    while (this.engine.busy()) for (const seq of await this.engine.step()) this.finishedLate(seq);
  }

  /** A member finished during the overlap: it counts toward the next cut and the next update toward its retention. */
  private finishedLate(seq: GeneratedSequence): number {
    const tokens = this.markFinished(seq);
    this.member(seq.id).late = true;
    this.carried += tokens;
    return tokens;
  }

  /**
   * After a failure mid-collect: take every sequence back from the engine as paused, so the pool
   * can be checkpointed with its partial rollouts (and resumed from there).
   */
  async interrupt(): Promise<void> {
    for (const seq of await this.engine.pause()) this.markPaused(seq);
  }

  // ---- pool mechanics -----------------------------------------------------------------------

  private members(): Member[] {
    return [...this.groups.values()].flatMap((g) => g.members);
  }

  private inFlight(): number {
    return this.members().filter((m) => m.status === 'active').length;
  }

  /** Open new groups while a whole group still fits in the pool. */
  private topUp(): void {
    const { poolCapacity, groupSize, sampling } = this.config;
    while (this.inFlight() + groupSize <= poolCapacity) {
      const prompt = this.prompts.next();
      const id = `g${this.nextGroup++}`;
      const members: Member[] = Array.from({ length: groupSize }, (_, i) => ({
        sampleIndex: i,
        seed: mixSeed(this.seed, this.nextGroup, i),
        status: 'active',
        retention: 0,
        seq: {
          id: `${id}/${i}`,
          prompt: prompt.tokens,
          tokens: [],
          behaviorLogprobs: [],
          policyLogprobs: [],
          versions: [],
          finishReason: null,
        },
      }));
      this.groups.set(id, { id, prompt, members });
      this.engine.submit(
        members.map((m) => ({ id: m.seq.id, prompt: prompt.tokens, params: { ...sampling, seed: m.seed } })),
      );
    }
  }

  private resumePaused(): void {
    const requests = [];
    for (const g of this.groups.values()) {
      for (const m of g.members) {
        if (m.status !== 'paused') continue;
        m.status = 'active';
        requests.push({
          id: m.seq.id,
          prompt: g.prompt.tokens,
          params: { ...this.config.sampling, seed: m.seed },
          resumeFrom: m.seq,
        });
      }
    }
    if (requests.length) this.engine.submit(requests);
  }

  private member(seqId: string): Member {
    const [groupId, index] = seqId.split('/');
    const m = this.groups.get(groupId!)?.members[Number(index)];
    if (!m) throw new Error(`rollout: the engine returned unknown sequence '${seqId}'`);
    return m;
  }

  private markFinished(seq: GeneratedSequence): number {
    const m = this.member(seq.id);
    m.seq = seq;
    m.status = 'finished';
    this.onFinished?.(toTrajectory(this.groups.get(seq.id.split('/')[0]!)!, m));
    return seq.tokens.length;
  }

  private markPaused(seq: GeneratedSequence): void {
    const m = this.member(seq.id);
    m.seq = seq;
    m.status = 'paused';
  }

  private drop(m: Member): void {
    m.status = 'dropped';
    this.dropped.push(m.seq.tokens.length);
  }

  private dropStale(sigma: number): void {
    for (const m of this.members()) if (m.status === 'paused' && m.retention > sigma) this.drop(m);
  }

  /** Remove groups whose members have all ended; return those with enough survivors to train on. */
  private takeCompleted(): Group[] {
    const out: Group[] = [];
    const { mode, staleness, groupSize } = this.config;
    for (const [id, g] of this.groups) {
      if (!g.members.every((m) => m.status === 'finished' || m.status === 'dropped')) continue;
      this.groups.delete(id);
      if (mode === 'async') {
        for (const m of g.members)
          if (m.status === 'finished' && (m.seq.versions[0] ?? this.version) < this.version - staleness) this.drop(m);
      }
      const group = { id, prompt: g.prompt, members: g.members.map((m) => toTrajectory(g, m)) };
      const survivors = g.members.filter((m) => m.status === 'finished').length;
      if (survivors < Math.min(2, groupSize)) this.discarded.push(group);
      else out.push(group);
    }
    return out;
  }

  // ---- checkpointing ------------------------------------------------------------------------

  state(): SchedulerState {
    if (this.inFlight() > 0)
      throw new Error('rollout: state() while sequences are in flight; checkpoint between iterations');
    return {
      version: this.version,
      cursor: this.prompts.cursor(),
      nextGroup: this.nextGroup,
      groups: [...this.groups.values()].map((g) => ({
        id: g.id,
        prompt: g.prompt,
        members: g.members.map((m) => ({
          ...toTrajectory(g, m),
          seed: m.seed,
          partial: m.status === 'paused' ? m.seq : null,
        })),
      })),
    };
  }

  restore(state: SchedulerState): void {
    this.version = state.version;
    this.nextGroup = state.nextGroup;
    this.prompts.seek(state.cursor);
    this.groups = new Map(
      state.groups.map((g) => [
        g.id,
        {
          id: g.id,
          prompt: g.prompt,
          members: g.members.map((t) => ({
            sampleIndex: t.sampleIndex,
            seed: t.seed,
            retention: t.retention,
            status: t.partial ? 'paused' : t.finishReason === 'dropped' ? 'dropped' : 'finished',
            seq: t.partial ?? {
              id: `${g.id}/${t.sampleIndex}`,
              prompt: t.prompt,
              tokens: t.response,
              behaviorLogprobs: t.behaviorLogprobs,
              policyLogprobs: t.policyLogprobs,
              versions: t.versions,
              ...(t.routes ? { routes: t.routes } : {}),
              finishReason: t.finishReason === 'dropped' ? null : t.finishReason,
            },
          })),
        },
      ]),
    );
  }
}

function toTrajectory(g: GroupState, m: Member): Trajectory {
  return {
    promptId: g.prompt.id,
    groupId: g.id,
    sampleIndex: m.sampleIndex,
    prompt: g.prompt.tokens,
    response: m.seq.tokens,
    behaviorLogprobs: m.seq.behaviorLogprobs,
    policyLogprobs: m.seq.policyLogprobs,
    versions: m.seq.versions,
    ...(m.seq.routes ? { routes: m.seq.routes } : {}),
    finishReason: m.status === 'dropped' ? 'dropped' : (m.seq.finishReason ?? 'length'),
    retention: m.retention,
    meta: g.prompt.meta,
  };
}

function mixSeed(seed: number, group: number, sample: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(group, 0x85ebca6b) ^ Math.imul(sample + 1, 0xc2b2ae35)) >>> 0;
}

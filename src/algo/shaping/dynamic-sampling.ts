// DAPO dynamic sampling: a group whose rewards all agree has zero advantage everywhere (GRPO,
// Dr. GRPO and RLOO alike), so it only dilutes the batch. Drop such groups and sample more
// prompts until the batch holds the wanted number of informative groups.

/** True when the rewards differ somewhere (a group of one never does). */
export function isInformative(rewards: readonly number[]): boolean {
  return rewards.some((r) => r !== rewards[0]);
}

export interface RewardGroup {
  rewards: readonly number[];
}

export function filterInformativeGroups<G extends RewardGroup>(groups: readonly G[]): { kept: G[]; dropped: G[] } {
  const kept: G[] = [];
  const dropped: G[] = [];
  for (const g of groups) (isInformative(g.rewards) ? kept : dropped).push(g);
  return { kept, dropped };
}

/**
 * Collects informative groups over sampling rounds: `offer` each round's groups, sample again
 * while `needed > 0 && !exhausted`, then `take` the batch (the surplus of the last round is
 * discarded, as in DAPO, rather than carried into a later step's batch under older weights).
 */
export class DynamicSampler<G extends RewardGroup> {
  private groups: G[] = [];
  private rounds = 0;
  private dropped = 0;

  constructor(
    readonly targetGroups: number,
    readonly maxRounds: number,
  ) {}

  offer(groups: readonly G[]): void {
    const { kept, dropped } = filterInformativeGroups(groups);
    this.groups.push(...kept);
    this.dropped += dropped.length;
    this.rounds++;
  }

  /** Informative groups still missing from the batch. */
  get needed(): number {
    return Math.max(0, this.targetGroups - this.groups.length);
  }

  get exhausted(): boolean {
    return this.rounds >= this.maxRounds;
  }

  take(): { groups: G[]; metrics: Record<string, number> } {
    const groups = this.groups.slice(0, this.targetGroups);
    const metrics = {
      'dynamic_sampling/rounds': this.rounds,
      'dynamic_sampling/dropped_groups': this.dropped,
      'dynamic_sampling/kept_groups': groups.length,
    };
    this.groups = [];
    this.rounds = 0;
    this.dropped = 0;
    return { groups, metrics };
  }
}

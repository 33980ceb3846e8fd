// The metric names ringrl logs (listed in docs/report.md, generated from this file): one place that says what each means.
// The report uses it for chart titles and tooltips; docs/report.md lists it. A name not listed
// here is still logged and plotted — add it here when you add it to a trainer.
export interface MetricInfo {
  description: string;
  unit?: string;
}

export const metricCatalog: Record<string, MetricInfo> = {
  'reward/mean': { description: 'mean reward of the step’s finished trajectories' },
  'reward/std': { description: 'standard deviation of the reward' },
  'response_length/mean': { description: 'mean response length', unit: 'tokens' },
  'response_length/p90': { description: '90th percentile response length', unit: 'tokens' },
  'response_length/max': { description: 'longest response', unit: 'tokens' },
  'mismatch/kl': { description: 'KL(π_infer ‖ π_train) estimate over sampled tokens (train/inference mismatch)' },
  'mismatch/logp_diff_max': { description: 'max |log π_train − log π_infer| over sampled tokens' },
  'mismatch/logp_diff_mean': { description: 'mean |log π_train − log π_infer| over sampled tokens' },
  'mismatch/logp_diff_p99': { description: '99th percentile of |log π_train − log π_infer| over sampled tokens' },
  'guard/stage': { description: 'mismatch guard stage (rl.mismatch_guard): 0 quiet, 1 warned, 2 remedied, 3 stopped' },
  'icepop/masked_frac': {
    description: 'fraction of tokens whose k = π_train/π_infer falls outside [α, β] (zero gradient)',
  },
  'icepop/masked_low_frac': { description: 'fraction of tokens masked with k < α' },
  'icepop/masked_high_frac': { description: 'fraction of tokens masked with k > β' },
  'icepop/masked_entropy': { description: 'mean entropy of the masked tokens', unit: 'nats' },
  'ppo/clip_frac': { description: 'fraction of tokens whose PPO ratio was clipped' },
  'loss/policy': { description: 'policy loss' },
  'grad/norm': { description: 'global gradient L2 norm before clipping' },
  'grad/norm_max': { description: 'max gradient norm over the step’s micro-batches' },
  'entropy/mean': { description: 'mean token entropy of the policy on sampled tokens', unit: 'nats' },
  'optim/lr': { description: 'learning rate' },
  'rollout/tokens_per_s': { description: 'generated tokens per second', unit: 'tokens/s' },
  'rollout/pool_occupancy': { description: 'mean fraction of the inference pool in use (C3PO++ Ω_infer)' },
  'rollout/prefill_tokens': {
    description: 'context tokens prefilled: prompts, plus resumed partial rollouts unless rollout.paused_kv is keep',
  },
  'c3po/retained': { description: 'partial rollouts carried over to the next policy version' },
  'c3po/dropped': { description: 'partial rollouts dropped for exceeding the retention threshold σ' },
  'sft/loss': { description: 'SFT masked next-token cross-entropy', unit: 'nats/token' },
  'sft/tokens': { description: 'tokens in the step’s packed batch' },
  'sft/target_tokens': { description: 'tokens that carry loss (responses) in the step’s batch' },
  'sft/truncated': { description: 'examples truncated to max_seq_len in the step' },
  'sft/tokens_per_s': { description: 'training throughput', unit: 'tokens/s' },
  'eval/accuracy': { description: 'held-out accuracy (greedy, or avg@k)' },
  'eval/pass@k': { description: 'held-out pass@k' },
  'eval/response_length/mean': { description: 'mean held-out response length', unit: 'tokens' },
  'eval/response_length/p90': { description: '90th percentile held-out response length', unit: 'tokens' },
  'eval/thinking_frac': { description: 'fraction of held-out responses that think (a non-empty <think> block)' },
  'eval/truncated_frac': { description: 'fraction of held-out responses cut at max_new_tokens' },
  'time/rollout_s': { description: 'time spent generating', unit: 's' },
  'time/reward_s': {
    description:
      'time the step waited for scores still running when the rollout ended (scoring starts as each trajectory finishes)',
    unit: 's',
  },
  'reward/scored': { description: 'trajectories scored this step' },
  'reward/unscored': {
    description:
      'trajectories that could not be scored (sandbox or every reward replica failed, the reward module threw): left out of training, never counted 0',
  },
  'reward/latency_mean_s': { description: 'mean time from a trajectory finishing to its score', unit: 's' },
  'reward/overlap_frac': {
    description: 'fraction of the step’s scores that were done before its rollout ended (scoring overlapped rollout)',
  },
  'train/skipped': { description: 'optimizer updates skipped because the loss or gradient was not finite' },
  'memory/rollout_peak_rss_mb': { description: 'peak resident memory during the rollout phase', unit: 'MiB' },
  'memory/reward_peak_rss_mb': { description: 'peak resident memory while waiting for scores', unit: 'MiB' },
  'memory/train_peak_rss_mb': { description: 'peak resident memory during training', unit: 'MiB' },
  'memory/sync_peak_rss_mb': { description: 'peak resident memory during weight publication', unit: 'MiB' },
  'time/train_s': { description: 'time spent in the training step', unit: 's' },
  'time/sync_s': { description: 'time spent publishing weights to the rollout engines', unit: 's' },
  'time/eval_s': { description: 'time spent evaluating', unit: 's' },
  'time/step_s': { description: 'wall time of the whole step', unit: 's' },
};

/** Suffixes that are statistics of one quantity: plotted together in one chart. */
const STATS = new Set(['mean', 'std', 'min', 'max', 'p50', 'p90', 'p99']);

/** Which chart a metric is drawn in: statistics of one quantity, times, and fractions share a chart. */
export function chartKey(name: string): string {
  const parts = name.split('/');
  const prefix = parts[0]!;
  if (parts.length > 1 && STATS.has(parts.at(-1)!)) return parts.slice(0, -1).join('/');
  if (name.endsWith('_s') && !name.endsWith('_per_s')) return `${prefix} (seconds)`;
  if (name.endsWith('_frac')) return `${prefix} fractions`;
  return name;
}

/** Order of sections in the report: what a researcher looks at first. */
export const sectionOrder = [
  'reward',
  'eval',
  'response_length',
  'sft',
  'loss',
  'icepop',
  'mismatch',
  'ppo',
  'grad',
  'entropy',
  'optim',
  'rollout',
  'c3po',
  'time',
];

// One RL sample as the algorithms see it: a prompt, the sampled response and what the rollout
// engine recorded for each response token. Arrays are per response token.
export type RlFinishReason = 'stop' | 'length' | 'dropped';

export interface RlSample {
  /** Samples of one prompt share a group id (GRPO groups). */
  groupId: string | number;
  prompt: number[];
  response: number[];
  /** log pi_infer: the engine's policy log-prob of each response token. */
  rolloutLogprobs: number[];
  reward: number;
  finishReason?: RlFinishReason;
}

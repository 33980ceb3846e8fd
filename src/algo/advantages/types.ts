// An advantage estimator maps the rewards of one group (the samples of one prompt) to one
// advantage per sample. A group of one has no baseline: every estimator gives it 0.
export type AdvantageEstimator = (rewards: readonly number[], config: { epsilon: number }) => number[];

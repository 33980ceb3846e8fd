// Per-token KL estimators against a reference policy (Schulman's k1/k3), on the host (value and
// derivative with respect to log pi) and in the graph. With d = log pi_ref - log pi:
//   k1 = -d                 (unbiased, can be negative)
//   k3 = exp(d) - d - 1     (unbiased, always >= 0; GRPO's choice)
import type { Tensor } from '../../graph/index.ts';
import type { KlEstimatorName } from '../config.ts';

export interface KlEstimator {
  /** Value and d(value)/d(log pi) for one token. */
  host(logp: number, refLogp: number): { value: number; grad: number };
  graph(logp: Tensor, refLogp: Tensor): Tensor;
}

export const klEstimators: Record<KlEstimatorName, KlEstimator> = {
  k1: {
    host: (logp, refLogp) => ({ value: logp - refLogp, grad: 1 }),
    graph: (logp, refLogp) => logp.sub(refLogp),
  },
  k3: {
    host(logp, refLogp) {
      const d = refLogp - logp;
      return { value: Math.exp(d) - d - 1, grad: 1 - Math.exp(d) };
    },
    graph(logp, refLogp) {
      const d = refLogp.sub(logp);
      return d.exp().sub(d).sub(1);
    },
  },
};

/** k3 estimate of KL(pi_infer || pi_train) for one token from log k = log pi_train - log pi_infer. */
export function mismatchKl(logK: number): number {
  return Math.exp(logK) - logK - 1;
}

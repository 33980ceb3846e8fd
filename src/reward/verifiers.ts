// Verifiers by name: the built-in tasks' strict checkers, and the math verifier for datasets
// whose answers are math expressions. Every verifier returns {reward, extracted, reason}.
import { RingrlError } from '../errors.ts';
import { tasks } from '../data/tasks/index.ts';
import { verifyMath } from './math/verify.ts';

export type Verifier = (response: string, answer: string) => { reward: number; extracted: string | null; reason: string };

export const verifierNames = ['math', ...Object.keys(tasks)] as const;

export function getVerifier(name: string): Verifier {
  if (name === 'math') return (response, answer) => verifyMath(response, answer);
  const task = tasks[name];
  if (!task) throw new RingrlError(`unknown verifier '${name}'; expected one of ${verifierNames.join(', ')}`);
  return (response, answer) => task.verify(response, answer);
}

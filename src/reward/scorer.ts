// The reward the RL loop uses, built from the `reward` config section: the built-in task's check,
// the math verifier, code run against tests in the sandbox, or a user's module. At most
// `max_concurrent` scores run at once; the rest wait their turn.
//
// Two kinds of failure, kept apart on purpose:
// - the sample could not be judged (the sandbox or every reward-service replica failed, the
//   user's `reward` threw for this sample): `Unscored`, and the score is `unscored` with the
//   message. The loop reports it (`reward/unscored`) and leaves the sample out of training; it
//   is never a 0.
// - the reward itself is broken (a module that does not load, has no `reward` export, or
//   returns something that is not a number; code tests that do not parse): an error naming the
//   file, which ends the run.
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RingrlError } from '../errors.ts';
import type { Example } from '../data/example.ts';
import { extractProgram, tasks } from '../data/tasks/index.ts';
import { createRewardClient, type ReplicaEvents, type RewardClient } from './client.ts';
import type { CodeTests } from './code.ts';
import type { RewardConfig } from './config.ts';
import { Limiter } from './service/limiter.ts';
import type { Limits } from './sandbox/types.ts';
import { Unscored, type Verifier, getVerifier, runTests } from './verifiers.ts';

export interface ScoreInput {
  /** The example's prompt (text or chat messages). */
  prompt: Example['prompt'];
  /** The decoded response. */
  response: string;
  example: Example;
}

export type Score =
  | { status: 'scored'; reward: number; breakdown: Record<string, number>; reason: string }
  | { status: 'unscored'; message: string };

export interface Scorer {
  /** Never rejects for a sample that cannot be judged (that is `unscored`); rejects when the reward itself is broken. */
  score(input: ScoreInput): Promise<Score>;
  /** Scores started and not yet settled. */
  readonly inFlight: number;
  close(): Promise<void>;
}

/** What a reward module's `reward` may return. */
export type ModuleReward = number | ({ reward: number } & Record<string, unknown>);
export type RewardFunction = (input: ScoreInput) => ModuleReward | Promise<ModuleReward>;

export interface ScorerOptions {
  /** The built-in task (reward.type task); null for data files (then the math verifier). */
  task: string | null;
  /** A client to use instead of the one reward.sandbox names (tests). */
  client?: RewardClient;
  /** Where replica lines go: a reward-service replica lost (and where its request was retried), and back. */
  log?: (message: string, level: 'info' | 'warn') => void;
}

export async function createScorer(config: RewardConfig, options: ScorerOptions): Promise<Scorer> {
  const limits: Partial<Limits> = {
    wallMs: config.run_timeout_s * 1000,
    cpuMs: config.run_timeout_s * 1000,
    memoryMb: config.memory_mb,
  };
  let client: RewardClient | null = options.client ?? null;
  const ownsClient = !client;
  const replicas = replicaLog(options.log);
  const sandbox = (): RewardClient =>
    (client ??= createRewardClient(
      config.sandbox === 'local'
        ? { kind: 'local' }
        : {
            kind: 'remote',
            urls: config.sandbox,
            retries: config.retries,
            timeoutMs: Math.round(config.timeout_s * 1000),
          },
      replicas,
    ));

  let judge: (input: ScoreInput) => Promise<{ reward: number; breakdown?: Record<string, number>; reason?: string }>;
  let verifier: Verifier | null = null;
  if (config.type === 'module') judge = await loadRewardModule(config.module!);
  else if (config.type === 'code')
    judge = async ({ response, example }) => codeVerdict(sandbox(), response, example, limits);
  else {
    const name = config.type === 'math' ? 'math' : (options.task ?? 'math');
    verifier = getVerifier(name, { client: tasks[name]?.program ? sandbox() : undefined, limits });
    const verify = verifier;
    judge = async ({ response, example }) => {
      const v = await verify(response, example.answer);
      return { reward: v.reward, breakdown: { correct: v.reward }, reason: v.reason };
    };
  }

  const limiter = new Limiter(config.max_concurrent, Number.MAX_SAFE_INTEGER, 2 ** 31 - 1);
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    async score(input) {
      inFlight++;
      try {
        const v = await limiter.run(() => judge(input));
        return { status: 'scored', reward: v.reward, breakdown: v.breakdown ?? {}, reason: v.reason ?? '' };
      } catch (e) {
        if (!(e instanceof Unscored)) throw e;
        return { status: 'unscored', message: e.message };
      } finally {
        inFlight--;
      }
    },
    async close() {
      await verifier?.close?.();
      if (ownsClient) await client?.close();
    },
  };
}

/**
 * One line when a replica stops answering (naming where its request went instead), one when it
 * answers again; the failures in between are counted, not each logged.
 */
function replicaLog(log: ScorerOptions['log']): ReplicaEvents | undefined {
  if (!log) return undefined;
  const lost = new Map<string, number>();
  return {
    failed(url, reason, retryOn) {
      const n = lost.get(url);
      lost.set(url, (n ?? 0) + 1);
      if (n === undefined)
        log(
          `reward replica ${url} lost (${reason}): ${retryOn ? `request retried on ${retryOn}` : 'no attempt left (reward.retries), the sample is unscored'}; later requests to it are retried on the next replica`,
          'warn',
        );
    },
    answered(url) {
      const n = lost.get(url);
      if (n === undefined) return;
      lost.delete(url);
      log(`reward replica ${url} answers again (${n} requests to it were retried elsewhere)`, 'info');
    },
  };
}

/**
 * A code example's tests, from its answer: JSON `{"inputs": [...], "outputs": [...]}` (stdin/stdout
 * cases, the PRIME/verl ground-truth layout), JSON `{"assert": "..."}`, or plain Python asserts.
 */
export function codeTests(answer: string, source: string): CodeTests {
  const text = answer.trim();
  if (!text.startsWith('{')) {
    // Asserts that assert nothing would pass every program that runs.
    if (!/\bassert\b/.test(text))
      throw new RingrlError(
        `${source}: answer: expected code tests (JSON {"inputs": [...], "outputs": [...]}, {"assert": "..."} or Python asserts), got text without an assert`,
      );
    return { kind: 'assert', code: text };
  }
  let parsed: { inputs?: unknown; outputs?: unknown; assert?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RingrlError(
      `${source}: answer: expected code tests as JSON {"inputs": [...], "outputs": [...]} or {"assert": "..."}: ${(e as Error).message}`,
    );
  }
  if (typeof parsed.assert === 'string') return { kind: 'assert', code: parsed.assert };
  const { inputs, outputs } = parsed;
  if (
    !Array.isArray(inputs) ||
    !Array.isArray(outputs) ||
    inputs.length !== outputs.length ||
    inputs.length === 0 ||
    ![...inputs, ...outputs].every((x) => typeof x === 'string')
  ) {
    throw new RingrlError(
      `${source}: answer: expected {"inputs": [strings], "outputs": [strings]} of the same non-zero length, or {"assert": "..."}`,
    );
  }
  return { kind: 'io', cases: inputs.map((stdin, i) => ({ stdin: stdin as string, expected: outputs[i] as string })) };
}

async function codeVerdict(client: RewardClient, response: string, example: Example, limits: Partial<Limits>) {
  const v = await runTests(client, extractProgram(response), codeTests(example.answer, example.source), limits);
  return {
    reward: v.reward,
    breakdown: { correct: v.reward, passed_frac: v.total ? v.passed / v.total : 0 },
    reason: v.reason,
  };
}

/** Load a user's reward module; every way it can be wrong is a one-line error naming the file. */
export async function loadRewardModule(
  path: string,
): Promise<(input: ScoreInput) => Promise<{ reward: number; breakdown: Record<string, number> }>> {
  const file = resolve(path);
  const where = `reward.module ${path}`;
  if (!['.ts', '.mts', '.js', '.mjs', '.cjs'].includes(extname(file)))
    throw new RingrlError(`${where}: expected a .ts, .mts, .js, .mjs or .cjs file`);
  if (!existsSync(file)) throw new RingrlError(`${where}: no such file (${file})`);
  let mod: { reward?: unknown; default?: { reward?: unknown } };
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    throw new RingrlError(`${where}: failed to load: ${firstLine((e as Error).message)}`);
  }
  const fn = mod.reward ?? mod.default?.reward;
  if (typeof fn !== 'function')
    throw new RingrlError(
      `${where}: exports no function 'reward' (expected export async function reward({prompt, response, example}))`,
    );
  return async (input) => {
    let value: unknown;
    try {
      value = await (fn as RewardFunction)(input);
    } catch (e) {
      throw new Unscored(
        `${where}: reward threw for ${input.example.source}: ${firstLine(e instanceof Error ? e.message : String(e))}`,
      );
    }
    return moduleResult(value, where);
  };
}

function moduleResult(value: unknown, where: string): { reward: number; breakdown: Record<string, number> } {
  const bad = (what: string) =>
    new RingrlError(`${where}: reward returned ${what}; expected a finite number or {reward: number, ...}`);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw bad(String(value));
    return { reward: value, breakdown: {} };
  }
  if (value === null || typeof value !== 'object') throw bad(value === null ? 'null' : typeof value);
  const { reward, ...rest } = value as Record<string, unknown>;
  if (typeof reward !== 'number' || !Number.isFinite(reward))
    throw bad(`{reward: ${typeof reward === 'number' ? reward : typeof reward}}`);
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'number' && Number.isFinite(v)) breakdown[k] = v;
  return { reward, breakdown };
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

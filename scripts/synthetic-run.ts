// Write a SYNTHETIC run directory (invented numbers shaped like an IcePop + C3PO++ RL run on the
// arithmetic task) for demonstrating and testing the report. Not the output of any training.
//   npx tsx scripts/synthetic-run.ts [OUT_DIR]   (default test/report/fixtures/synthetic-run)
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normal, rng } from '../src/util/random.ts';
import { formatConfig, loadConfig } from '../src/config/index.ts';

export function writeSyntheticRun(out: string, steps = 300, seed = 1): void {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  const uniform = rng(seed);
  const gauss = normal(uniform);
  const noise = (s: number) => gauss() * s;
  const metrics: string[] = [];
  const samples: string[] = [];
  let wall = Date.UTC(2026, 10, 29, 9, 0, 0) / 1000;
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  for (let step = 1; step <= steps; step++) {
    const t = step / steps;
    const reward = Math.min(0.98, Math.max(0, 0.32 + 0.4 * (1 - Math.exp(-step / 90)) + noise(0.035)));
    const length = 140 + 90 * t + noise(8);
    const masked = 0.0011 + 0.0009 * sigmoid((step - 220) / 15) + Math.abs(noise(0.00025));
    const throughput = 1800 + noise(90);
    const tokens = 64 * length;
    const row: Record<string, number> = {
      step,
      wall_time: 0,
      'reward/mean': reward,
      'reward/std': Math.sqrt(reward * (1 - reward)),
      'response_length/mean': length,
      'response_length/p90': length * 1.9 + noise(10),
      'response_length/max': Math.min(1024, length * 4.2 + Math.abs(noise(120))),
      'mismatch/kl': 2e-4 * (1 + step / 150) * (1 + Math.abs(noise(0.3))),
      'mismatch/logp_diff_max': 1.4 + step / 220 + Math.abs(noise(0.4)),
      'mismatch/logp_diff_mean': 0.011 + noise(0.0015),
      'icepop/masked_frac': masked,
      'icepop/masked_low_frac': masked * 0.6,
      'icepop/masked_high_frac': masked * 0.4,
      'icepop/masked_entropy': 2.1 + noise(0.15),
      'ppo/clip_frac': 0.03 + Math.abs(noise(0.008)),
      'loss/policy': noise(0.02),
      'grad/norm': 0.35 + Math.abs(noise(0.08)) + (uniform() < 0.02 ? 0.8 : 0),
      'entropy/mean': 0.9 - 0.35 * t + noise(0.02),
      'optim/lr': 1e-5 * Math.min(1, step / 10),
      'rollout/tokens_per_s': throughput,
      'rollout/pool_occupancy': Math.min(1, 0.92 + noise(0.03)),
      'c3po/retained': Math.round(10 + noise(3)),
      'c3po/dropped': Math.max(0, Math.round(noise(1.2))),
      'time/rollout_s': tokens / throughput,
      'time/reward_s': 0.2 + Math.abs(noise(0.03)),
      'time/train_s': 1.1 + Math.abs(noise(0.08)),
      'time/sync_s': 0.05 + Math.abs(noise(0.01)),
    };
    row['time/step_s'] = row['time/rollout_s']! + row['time/reward_s']! + row['time/train_s']! + row['time/sync_s']!;
    wall += row['time/step_s']!;
    row.wall_time = wall;
    if (step % 25 === 0) {
      row['eval/accuracy'] = Math.min(1, 0.3 + 0.34 * (1 - Math.exp(-step / 110)) + noise(0.015));
      row['eval/response_length/mean'] = length * 0.95;
      row['time/eval_s'] = 6 + noise(0.4);
      for (let i = 0; i < 2; i++) {
        const a = 10 + Math.floor(uniform() * 90),
          b = 10 + Math.floor(uniform() * 90);
        const right = uniform() < reward;
        const answer = right ? a * b : a * b + 10 * (1 + Math.floor(uniform() * 9));
        const ones = b % 10,
          tens = Math.floor(b / 10);
        const response = `<think>${a} × ${b} = ${a} × ${ones} + ${a} × ${tens}0.\n${a} × ${ones} = ${a * ones}.\n${a} × ${tens}0 = ${a * tens * 10}.\n${a * ones} + ${a * tens * 10} = ${answer}.</think>\n\\boxed{${answer}}`;
        samples.push(
          JSON.stringify({
            step,
            kind: 'rollout',
            prompt_id: `arith-${step}-${i}`,
            group_id: step * 10 + i,
            prompt: `Compute ${a} × ${b}. Think step by step, then give the answer in \\boxed{}.`,
            response,
            answer: String(a * b),
            reward: right ? 1 : 0,
            finish_reason: 'stop',
            retention: Math.floor(uniform() * 2),
            policy_versions: [step - 1, step],
            synthetic: true,
          }),
        );
      }
    }
    metrics.push(
      JSON.stringify(
        Object.fromEntries(
          Object.entries(row).map(([k, v]) => [k, k === 'wall_time' ? Math.round(v * 1000) / 1000 : +v.toPrecision(5)]),
        ),
      ),
    );
  }
  writeFileSync(join(out, 'metrics.jsonl'), metrics.join('\n') + '\n');
  writeFileSync(join(out, 'samples.jsonl'), samples.join('\n') + '\n');
  const config = loadConfig({ sets: ['run.name=synthetic-run', 'model.preset=small', 'data.task=arithmetic'] });
  writeFileSync(
    join(out, 'config.yaml'),
    '# SYNTHETIC run for the report demo (scripts/synthetic-run.ts); not a real training run.\n' + formatConfig(config),
  );
  for (const step of [100, 200, 300].filter((s) => s <= steps)) {
    mkdirSync(join(out, 'checkpoints', String(step)));
    writeFileSync(
      join(out, 'checkpoints', String(step), 'SYNTHETIC'),
      'placeholder: a real checkpoint holds a model dir, optimizer and scheduler state\n',
    );
  }
  writeFileSync(
    join(out, 'README.md'),
    'SYNTHETIC run directory generated by `npx tsx scripts/synthetic-run.ts`: invented numbers shaped like an\nIcePop + C3PO++ RL run, for demonstrating and testing `ringrl report`. Not the output of any training.\n',
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'test/report/fixtures/synthetic-run';
  writeSyntheticRun(out);
  console.log(`wrote ${out}`);
}

// The registry of CLI commands, in the order `ringrl --help` lists them. Each command's module is
// imported only when that command runs, so `ringrl --help` and light commands (`reward math`)
// start without loading onnxruntime or the model code.
import type { Command } from './command.ts';

export interface CommandEntry {
  name: string;
  /** One line for `ringrl --help`. */
  summary: string;
  load(): Promise<Command>;
}

export const commands: CommandEntry[] = [
  {
    name: 'demo',
    summary: 'the end-to-end demo: init a small model, SFT, RL with IcePop + C3PO++, report (npm start)',
    load: async () => (await import('./demo.ts')).demoCommand,
  },
  {
    name: 'init',
    summary: 'write a fresh randomly initialised model dir (HF layout) from a preset',
    load: async () => (await import('./init.ts')).initCommand,
  },
  {
    name: 'logprobs',
    summary: 'print log p(token[t] | token[<t]) of given token sequences under a model',
    load: async () => (await import('./logprobs.ts')).logprobsCommand,
  },
  {
    name: 'generate',
    summary: 'sample completions with the KV-cached engine; per-token behaviour/policy log-probs',
    load: async () => (await import('./generate.ts')).generateCommand,
  },
  {
    name: 'sft',
    summary: 'supervised fine-tuning on teacher chain-of-thought (tasks or JSONL/Parquet), with held-out eval',
    load: async () => (await import('./sft.ts')).sftCommand,
  },
  {
    name: 'rl',
    summary: 'reinforcement learning with IcePop + C3PO++ on verifiable rewards (resumable)',
    load: async () => (await import('./rl.ts')).rlCommand,
  },
  {
    name: 'eval',
    summary: 'accuracy, pass@k, avg@k and response lengths on a task or dataset; JSON + table',
    load: async () => (await import('./eval.ts')).evalCommand,
  },
  {
    name: 'export',
    summary:
      'write a checkpoint as a Hugging Face model dir (source dtype, sharded) that transformers, vLLM and SGLang load',
    load: async () => (await import('./export.ts')).exportCommand,
  },
  {
    name: 'serve',
    summary: "serve a model over SGLang's RL protocol (/generate, weight updates) and the OpenAI API",
    load: async () => (await import('./serve.ts')).serveCommand,
  },
  {
    name: 'sandbox',
    summary: 'run a program in the isolated sandbox, or serve the reward HTTP API',
    load: async () => (await import('./sandbox.ts')).sandboxCommand,
  },
  {
    name: 'reward',
    summary: 'score completions: `reward math` checks answers for mathematical equivalence',
    load: async () => (await import('./reward.ts')).rewardCommand,
  },
  {
    name: 'profile',
    summary: 'sum onnxruntime profiles (recorded with RINGRL_PROFILE=DIR) by operator',
    load: async () => (await import('./profile.ts')).profileCommand,
  },
  {
    name: 'config',
    summary: 'print the resolved config (`config show --config FILE --set k=v`)',
    load: async () => (await import('./config.ts')).configCommand,
  },
  {
    name: 'report',
    summary: 'write RUN_DIR/report.html: charts of every metric, samples, config (opens offline)',
    load: async () => (await import('./report.ts')).reportCommand,
  },
];

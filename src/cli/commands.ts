// The registry of CLI commands, in the order `ringrl --help` lists them.
import type { Command } from './command.ts';
import { demoCommand } from './demo.ts';
import { sandboxCommand } from './sandbox.ts';
import { rewardCommand } from './reward.ts';
import { initCommand } from './init.ts';
import { logprobsCommand } from './logprobs.ts';
import { generateCommand } from './generate.ts';
import { rlCommand } from './rl.ts';
import { configCommand } from './config.ts';
import { reportCommand } from './report.ts';
import { sftCommand } from './sft.ts';
import { evalCommand } from './eval.ts';
import { serveCommand } from './serve.ts';

export const commands: Command[] = [demoCommand, initCommand, logprobsCommand, generateCommand, sftCommand, rlCommand, evalCommand, serveCommand, sandboxCommand, rewardCommand, configCommand, reportCommand];

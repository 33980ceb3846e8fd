// The registry of CLI commands, in the order `ringrl --help` lists them.
import type { Command } from './command.ts';
import { demoCommand } from './demo.ts';
import { sandboxCommand } from './sandbox.ts';
import { rewardCommand } from './reward.ts';
import { initCommand } from './init.ts';
import { logprobsCommand } from './logprobs.ts';
import { generateCommand } from './generate.ts';
import { configCommand } from './config.ts';
import { sftCommand } from './sft.ts';
import { evalCommand } from './eval.ts';
import { reportCommand } from './report.ts';

export const commands: Command[] = [demoCommand, initCommand, logprobsCommand, generateCommand, sftCommand, evalCommand, sandboxCommand, rewardCommand, configCommand, reportCommand];

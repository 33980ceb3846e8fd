import type { Command } from './command.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'init a small model, SFT, RL with IcePop + C3PO++, report (what `npm start` runs)',
  help: 'usage: ringrl demo\n\nRuns the end-to-end demo on built-in defaults.\n\nexample:\n  npm start',
  async run() {
    console.log('ringrl demo: the end-to-end demo arrives with the RL loop (issue "C3PO++ rollout scheduler, the RL controller loop").');
    console.log('Available now: `npx ringrl --help` lists the working commands.');
  },
};

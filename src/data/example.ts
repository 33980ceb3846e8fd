// One training/eval example as every data source yields it: built-in tasks and dataset files.
import type { ChatMessage, TextTokenizer } from '../tokenizer/index.ts';

export interface Example {
  /** Where it came from, for error messages and sample logs: `file:line`, `file#row` or `task/id`. */
  source: string;
  /** Plain prompt text, or chat messages rendered with the tokenizer's chat template. */
  prompt: string | ChatMessage[];
  /** Ground truth for the verifier. */
  answer: string;
  /** Target response for SFT (optional for RL/eval data). */
  response?: string;
}

/** Prompt token ids: chat messages through the chat template, plain text after BOS. */
export function encodePrompt(tokenizer: TextTokenizer, prompt: string | ChatMessage[]): number[] {
  if (typeof prompt === 'string') return [...(tokenizer.bos !== null ? [tokenizer.bos] : []), ...tokenizer.encode(prompt)];
  return tokenizer.encode(tokenizer.applyChatTemplate(prompt, { addGenerationPrompt: true }));
}

/** Prompt and response ids for SFT; the response ends with EOS so the model learns to stop. */
export function encodeExample(tokenizer: TextTokenizer, example: Example): { prompt: number[]; response: number[] } {
  if (example.response === undefined) throw new Error(`${example.source}: no response to train on`);
  return { prompt: encodePrompt(tokenizer, example.prompt), response: [...tokenizer.encode(example.response), tokenizer.eos] };
}

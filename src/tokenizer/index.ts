// Tokenizers: load a Hugging Face tokenizer.json (+ tokenizer_config.json and its chat template)
// from a model dir, and write the built-in char tokenizer into one.
//
// Library choice: @huggingface/tokenizers (the pure-JS tokenizers of transformers.js, no
// dependencies, no network: it takes the parsed JSON) and @huggingface/jinja for chat templates.
// `@huggingface/transformers` would pull in onnxruntime-web and model-hub fetching we don't use;
// the Rust `tokenizers` bindings need a native build. Both chosen libraries run offline.
import { cpSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { RingrlError } from '../errors.ts';
import { CHAR_SPECIALS, charTokenizerFiles, charVocab } from './char.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface TextTokenizer {
  /** Smallest vocab a model needs for these ids (max id + 1). */
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number;
  readonly pad: number;
  readonly chatTemplate: string | null;
  /** Token ids of `text`, without adding any special tokens. */
  encode(text: string): number[];
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  /** Render messages with the chat template (HF semantics: the template writes any BOS itself). */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}

/** Built-in tokenizers by name: the files each writes into a model dir. */
const builtins = { char: charTokenizerFiles } as const;
export type TokenizerKind = keyof typeof builtins;
export const TOKENIZER_KINDS = Object.keys(builtins) as TokenizerKind[];

/** Write a built-in tokenizer's tokenizer.json + tokenizer_config.json into `dir`. */
export function writeTokenizer(dir: string, kind: TokenizerKind): void {
  mkdirSync(dir, { recursive: true });
  const { tokenizer, config } = builtins[kind]();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** The vocabulary size a built-in tokenizer needs (its largest id + 1). */
export function builtinVocabSize(kind: TokenizerKind): number {
  const { tokenizer } = builtins[kind]();
  return Object.keys(tokenizer.model.vocab).length;
}

/** The Hugging Face tokenizer files a model dir may hold. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

/** Copy a model dir's tokenizer files (those present) into `to`, e.g. a checkpoint, so it loads on its own. */
export function copyTokenizerFiles(from: string, to: string): void {
  for (const f of TOKENIZER_FILES) if (existsSync(join(from, f))) cpSync(join(from, f), join(to, f));
}

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RingrlError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected ${what}`);
  }
  try {
    const value = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new RingrlError(`${path}: malformed JSON (${(error as Error).message}); expected ${what}`);
  }
}

/** A special token given as a string or as HF's {content: ...} object. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

/** Load the tokenizer of a model dir (tokenizer.json, and tokenizer_config.json if present). */
export function loadTokenizer(dir: string): TextTokenizer {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) throw new RingrlError(`${dir}: no tokenizer.json; create the model with 'ringrl init --tokenizer char' or copy the model's Hugging Face tokenizer files`);
  const tokenizerJson = readJson(jsonPath, 'a Hugging Face tokenizer.json');
  const configPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'a Hugging Face tokenizer_config.json') : {};
  if (config.ringrl_tokenizer === 'char') return new CharTokenizer(config);
  let hf: Tokenizer;
  try {
    hf = new Tokenizer(tokenizerJson, config);
  } catch (error) {
    throw new RingrlError(`${jsonPath}: not a tokenizer this library can load (${(error as Error).message.split('\n')[0]})`);
  }
  return new HfTokenizer(hf, tokenizerJson, config, jsonPath);
}

abstract class BaseTokenizer implements TextTokenizer {
  abstract readonly vocabSize: number;
  abstract readonly bos: number | null;
  abstract readonly eos: number;
  abstract readonly pad: number;
  abstract encode(text: string): number[];
  abstract decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  private template: Template | null = null;

  constructor(protected readonly config: Record<string, unknown>) {}

  get chatTemplate(): string | null {
    const t = this.config.chat_template;
    if (typeof t === 'string') return t;
    // Some configs carry a list of named templates; use the default one.
    if (Array.isArray(t)) return (t.find((x) => x?.name === 'default')?.template as string | undefined) ?? null;
    return null;
  }

  applyChatTemplate(messages: ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    const source = this.chatTemplate;
    if (!source) throw new RingrlError('tokenizer_config.json has no chat_template; chat `messages` need one (or give plain `prompt` text)');
    this.template ??= new Template(source);
    return this.template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: tokenString(this.config.bos_token) ?? '',
      eos_token: tokenString(this.config.eos_token) ?? '',
    });
  }
}

/** The built-in char tokenizer, in process (a lookup table); identical ids to loading its tokenizer.json with HF. */
export class CharTokenizer extends BaseTokenizer {
  private readonly vocab = charVocab();
  private readonly byId = [...this.vocab.keys()];
  readonly vocabSize = this.vocab.size;
  readonly bos = this.vocab.get(CHAR_SPECIALS.bos)!;
  readonly eos = this.vocab.get(CHAR_SPECIALS.eos)!;
  readonly pad = this.vocab.get(CHAR_SPECIALS.pad)!;
  private readonly unk = this.vocab.get(CHAR_SPECIALS.unk)!;
  private readonly specials = new Set([this.bos, this.eos, this.pad, this.unk]);

  constructor(config: Record<string, unknown> = charTokenizerFiles().config) {
    super(config);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    // Special tokens written literally in the text are matched first, as HF's added tokens are.
    for (let i = 0; i < text.length; ) {
      let matched = false;
      if (text[i] === '<') {
        for (const special of Object.values(CHAR_SPECIALS)) {
          if (text.startsWith(special, i)) {
            ids.push(this.vocab.get(special)!);
            i += special.length;
            matched = true;
            break;
          }
        }
      }
      if (!matched) ids.push(this.vocab.get(text[i++]!) ?? this.unk);
    }
    return ids;
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    let out = '';
    for (const id of ids) {
      if (options.skipSpecial && this.specials.has(id)) continue;
      out += this.byId[id] ?? '';
    }
    return out;
  }
}

class HfTokenizer extends BaseTokenizer {
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number;
  readonly pad: number;

  constructor(private readonly hf: Tokenizer, tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, file: string) {
    super(config);
    let maxId = -1;
    const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
    if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) for (const id of Object.values(vocab as Record<string, number>)) maxId = Math.max(maxId, id);
    else if (Array.isArray(vocab)) maxId = vocab.length - 1; // Unigram: [[piece, score], ...]
    for (const t of (tokenizerJson.added_tokens as { id: number }[] | undefined) ?? []) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    const id = (key: string) => {
      const s = tokenString(config[key]);
      return s === null ? null : (hf.token_to_id(s) ?? null);
    };
    this.bos = config.add_bos_token === false ? null : id('bos_token');
    const eos = id('eos_token');
    if (eos === null) throw new RingrlError(`${file}: no eos_token in tokenizer_config.json (or it is not in the vocabulary); generation needs one to stop`);
    this.eos = eos;
    this.pad = id('pad_token') ?? eos;
  }

  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    return this.hf.decode([...ids], { skip_special_tokens: options.skipSpecial ?? false });
  }
}

export { CHAR_SPECIALS, CHAR_ALPHABET, charTokenizerFiles } from './char.ts';

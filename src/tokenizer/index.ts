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

/** Options of a chat render, as HF's `apply_chat_template` takes them. */
export interface ChatTemplateOptions {
  /** End with the assistant header, so the model's reply comes next. */
  addGenerationPrompt?: boolean;
  /**
   * Extra variables for the template, e.g. Qwen3's `enable_thinking: false` or Llama 3.2's
   * `date_string` (HF's `**kwargs`; verl's `apply_chat_template_kwargs`).
   */
  kwargs?: Record<string, unknown>;
}

export interface TextTokenizer {
  /** Smallest vocab a model needs for these ids (max id + 1). */
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number;
  readonly pad: number;
  /** Ids that end a generation: `eos`, plus generation_config.json's `eos_token_id` (one id or a list). */
  readonly stopIds: readonly number[];
  readonly chatTemplate: string | null;
  /** Token ids of `text`, without adding any special tokens. */
  encode(text: string): number[];
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  /** Render messages with the chat template (HF semantics: the template writes any BOS itself). */
  applyChatTemplate(messages: ChatMessage[], options?: ChatTemplateOptions): string;
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

/** A tokenizer for a new model dir: what `ringrl init --tokenizer` takes. */
export interface TokenizerSpec {
  /** For messages: the built-in's name or the source directory. */
  name: string;
  /** The vocabulary the model needs (largest id + 1). */
  vocabSize: number;
  /** Write (built-in) or copy (directory) the tokenizer files into `dir`. */
  writeTo(dir: string): void;
}

/**
 * A built-in tokenizer by name, or the Hugging Face tokenizer files of a directory holding
 * tokenizer.json (a downloaded Qwen3 or Llama 3 tokenizer, say); null when `spec` is neither.
 */
export function tokenizerSpec(spec: string): TokenizerSpec | null {
  if ((TOKENIZER_KINDS as string[]).includes(spec)) {
    const kind = spec as TokenizerKind;
    return { name: kind, vocabSize: builtinVocabSize(kind), writeTo: (dir) => writeTokenizer(dir, kind) };
  }
  if (!existsSync(join(spec, 'tokenizer.json'))) return null;
  return { name: spec, vocabSize: loadTokenizer(spec).vocabSize, writeTo: (dir) => copyTokenizerFiles(spec, dir) };
}

/** The Hugging Face tokenizer files a model dir may hold. */
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];

/** Copy a model dir's tokenizer files (those present) into `to`, e.g. a checkpoint, so it loads on its own. */
export function copyTokenizerFiles(from: string, to: string): void {
  for (const f of TOKENIZER_FILES) if (existsSync(join(from, f))) cpSync(join(from, f), join(to, f));
}

/**
 * A tokenizer must not emit ids the model has no embedding for. A smaller tokenizer is fine (HF
 * checkpoints pad vocab_size, e.g. Qwen3: 151,669 ids, vocab_size 151,936); a larger one is the
 * wrong tokenizer for the checkpoint.
 */
export function checkTokenizerFits(tokenizer: TextTokenizer, modelVocabSize: number, dir: string): void {
  if (tokenizer.vocabSize > modelVocabSize) {
    throw new RingrlError(
      `${join(dir, 'tokenizer.json')}: has ids up to ${tokenizer.vocabSize - 1} but ${join(dir, 'config.json')} ` +
        `has vocab_size ${modelVocabSize}; the tokenizer does not belong to this model`,
    );
  }
}

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new RingrlError(`${path}: cannot read (${reason}); expected ${what}`);
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
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/** Load the tokenizer of a model dir: tokenizer.json, and tokenizer_config.json / generation_config.json if present. */
export function loadTokenizer(dir: string): TextTokenizer {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    throw new RingrlError(
      `${dir}: no tokenizer.json; create the model with 'ringrl init --tokenizer char' or copy the model's Hugging Face tokenizer files`,
    );
  }
  const tokenizerJson = readJson(jsonPath, 'a Hugging Face tokenizer.json');
  const configPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'a Hugging Face tokenizer_config.json') : {};
  // generation_config.json is checked before the (slow, for 150k-token vocabularies) tokenizer build.
  const generationPath = join(dir, 'generation_config.json');
  const generation = existsSync(generationPath)
    ? readJson(generationPath, 'a Hugging Face generation_config.json')
    : {};
  const stopIds = generationEosIds(generation, generationPath, vocabSizeOf(tokenizerJson));
  const tokenizer: BaseTokenizer =
    config.ringrl_tokenizer === 'char' ? new CharTokenizer(config) : hfTokenizer(tokenizerJson, config, jsonPath);
  tokenizer.templateFile = configPath;
  tokenizer.addStopIds(stopIds);
  return tokenizer;
}

function hfTokenizer(tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, jsonPath: string) {
  let hf: Tokenizer;
  try {
    hf = new Tokenizer(tokenizerJson, config);
  } catch (error) {
    throw new RingrlError(
      `${jsonPath}: not a tokenizer this library can load (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return new HfTokenizer(hf, tokenizerJson, config, jsonPath);
}

/** The ids a tokenizer.json can produce: its largest vocabulary or added-token id + 1. */
function vocabSizeOf(tokenizerJson: Record<string, unknown>): number {
  let maxId = -1;
  const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const id of Object.values(vocab as Record<string, number>)) maxId = Math.max(maxId, id);
  } else if (Array.isArray(vocab)) maxId = vocab.length - 1; // Unigram: [[piece, score], ...]
  for (const t of (tokenizerJson.added_tokens as { id: number }[] | undefined) ?? []) maxId = Math.max(maxId, t.id);
  return maxId + 1;
}

/** generation_config.json's `eos_token_id`: absent, one id, or a list of ids (Qwen3: [151645, 151643]). */
function generationEosIds(generation: Record<string, unknown>, file: string, vocabSize: number): number[] {
  const raw = generation.eos_token_id;
  if (raw === undefined || raw === null) return [];
  const ids = Array.isArray(raw) ? raw : [raw];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)) {
    const expected = `a token id or a list of token ids in [0, ${vocabSize})`;
    throw new RingrlError(`${file}: field 'eos_token_id' must be ${expected}, got ${JSON.stringify(raw)}`);
  }
  return ids as number[];
}

/** Variables the renderer sets itself; a template kwarg of the same name would be ambiguous. */
const RESERVED_TEMPLATE_VARIABLES = ['messages', 'add_generation_prompt', 'bos_token', 'eos_token'];

abstract class BaseTokenizer implements TextTokenizer {
  abstract readonly vocabSize: number;
  abstract readonly bos: number | null;
  abstract readonly eos: number;
  abstract readonly pad: number;
  abstract encode(text: string): number[];
  abstract decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  /** Where the chat template came from, for error messages. */
  templateFile = 'tokenizer_config.json';
  protected readonly config: Record<string, unknown>;
  private template: Template | null = null;
  private extraStopIds: number[] = [];

  constructor(config: Record<string, unknown>) {
    this.config = config;
  }

  get stopIds(): readonly number[] {
    return [...new Set([this.eos, ...this.extraStopIds])];
  }

  addStopIds(ids: readonly number[]): void {
    this.extraStopIds.push(...ids);
  }

  get chatTemplate(): string | null {
    const t = this.config.chat_template;
    if (typeof t === 'string') return t;
    // Some configs carry a list of named templates; use the default one.
    if (Array.isArray(t)) return (t.find((x) => x?.name === 'default')?.template as string | undefined) ?? null;
    return null;
  }

  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    const source = this.chatTemplate;
    if (!source) {
      throw new RingrlError(
        `${this.templateFile} has no chat_template; chat \`messages\` need one (or give plain \`prompt\` text)`,
      );
    }
    const kwargs = options.kwargs ?? {};
    const clash = RESERVED_TEMPLATE_VARIABLES.find((name) => name in kwargs);
    if (clash !== undefined) {
      throw new RingrlError(`chat template kwargs: '${clash}' is set by ringrl itself; remove it`);
    }
    try {
      this.template ??= new Template(source);
      return this.template.render({
        ...kwargs,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: tokenString(this.config.bos_token) ?? '',
        eos_token: tokenString(this.config.eos_token) ?? '',
      });
    } catch (error) {
      throw new RingrlError(`${this.templateFile}: chat_template failed (${(error as Error).message.split('\n')[0]})`);
    }
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

/**
 * A Hugging Face tokenizer.json (byte-level BPE as Qwen2/3 and Llama 3, also WordPiece and
 * Unigram). Added tokens marked `special` (Qwen3: `<|im_start|>`, `<|im_end|>`, ...) are dropped
 * by `decode(..., {skipSpecial: true})`; added tokens that are not special (Qwen3's `<think>`,
 * `</think>`) stay in the text, so a verifier sees where the reasoning ends.
 */
class HfTokenizer extends BaseTokenizer {
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number;
  readonly pad: number;
  private readonly hf: Tokenizer;

  constructor(hf: Tokenizer, tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, file: string) {
    super(config);
    this.hf = hf;
    this.vocabSize = vocabSizeOf(tokenizerJson);
    const id = (key: string) => {
      const s = tokenString(config[key]);
      return s === null ? null : (hf.token_to_id(s) ?? null);
    };
    this.bos = config.add_bos_token === false ? null : id('bos_token');
    const eos = id('eos_token');
    if (eos === null)
      throw new RingrlError(
        `${file}: no eos_token in tokenizer_config.json (or it is not in the vocabulary); generation needs one to stop`,
      );
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

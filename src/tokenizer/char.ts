// The character-level tokenizer of the built-in tasks, written as a Hugging Face tokenizer.json
// so a model dir made by ringrl loads in `transformers`/`tokenizers` like any other: a BPE model
// whose vocabulary is single characters and whose merge list is empty (so every character is
// one token), no pre-tokenizer, a Fuse decoder (ids → characters joined with nothing between),
// and <pad>/<s>/</s>/<unk> as special added tokens.

export const CHAR_SPECIALS = { pad: '<pad>', bos: '<s>', eos: '</s>', unk: '<unk>' } as const;

/** Newline, tab and printable ASCII: everything the built-in tasks and simple prompts write. */
export const CHAR_ALPHABET: string[] = [
  '\n',
  '\t',
  ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)),
];

/** A minimal chat template for char models: one `role: content` line per message. */
export const CHAR_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";

export function charVocab(): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const special of Object.values(CHAR_SPECIALS)) vocab.set(special, vocab.size);
  for (const c of CHAR_ALPHABET) vocab.set(c, vocab.size);
  return vocab;
}

/** tokenizer.json and tokenizer_config.json contents for the char tokenizer. */
export function charTokenizerFiles(): {
  tokenizer: { model: { vocab: Record<string, number> } } & Record<string, unknown>;
  config: Record<string, unknown>;
} {
  const vocab = charVocab();
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.values(CHAR_SPECIALS).map((content) => ({
      id: vocab.get(content)!,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: CHAR_SPECIALS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: [],
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: CHAR_SPECIALS.bos,
    eos_token: CHAR_SPECIALS.eos,
    pad_token: CHAR_SPECIALS.pad,
    unk_token: CHAR_SPECIALS.unk,
    add_bos_token: false,
    add_eos_token: false,
    model_max_length: 2048,
    clean_up_tokenization_spaces: false,
    chat_template: CHAR_CHAT_TEMPLATE,
    ringrl_tokenizer: 'char',
  };
  return { tokenizer, config };
}

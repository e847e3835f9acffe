// A checkpoint's context length, from every place checkpoints record it. Exports differ:
// Llama-style configs say max_position_embeddings, GPT-2 n_positions (and n_ctx), MPT
// max_seq_len, Falcon/ChatGLM seq_length, BLOOM-likes max_sequence_length, multimodal
// configs nest the text model's under text_config, and tokenizer_config.json's
// model_max_length is often the only word on it. Rope scaling stretches a trained context
// (original_max_position_embeddings × factor). When several say, the smallest wins: a
// probe past any of them is past what the model was trained or configured for. Pure.

/** Where a context length was read, and the value read there. */
export interface ContextSource {
  /** e.g. "config.json max_position_embeddings", "tokenizer_config.json model_max_length". */
  where: string;
  tokens: number;
}

export interface ContextLength {
  /** The smallest trustworthy length, or null when nothing says. */
  tokens: number | null;
  /** The source the length came from (the smallest), null when none. */
  source: ContextSource | null;
  /** Every source that said, in reading order. */
  sources: ContextSource[];
}

/** config.json keys that state a context length, in the order they are read. */
export const CONFIG_CONTEXT_KEYS = [
  'max_position_embeddings',
  'n_positions',
  'max_sequence_length',
  'max_seq_len',
  'seq_length',
  'n_ctx',
] as const;

/**
 * transformers writes int(1e30) (VERY_LARGE_INTEGER) as model_max_length when the
 * tokenizer does not know its model's context: a sentinel, not a length.
 */
const VERY_LARGE = 1e29;

/** A positive integer below the sentinel, or null. */
function length(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v < VERY_LARGE ? v : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fromConfig(config: Record<string, unknown>, prefix: string, out: ContextSource[]): void {
  for (const key of CONFIG_CONTEXT_KEYS) {
    const tokens = length(config[key]);
    if (tokens !== null) out.push({ where: `config.json ${prefix}${key}`, tokens });
  }
  const rope = config.rope_scaling;
  if (isObject(rope)) {
    const original = length(rope.original_max_position_embeddings);
    const factor = rope.factor;
    if (original !== null && typeof factor === 'number' && Number.isFinite(factor) && factor >= 1) {
      out.push({
        where: `config.json ${prefix}rope_scaling (original_max_position_embeddings ${original} × factor ${factor})`,
        tokens: Math.floor(original * factor),
      });
    }
  }
}

/** The context length of a checkpoint from its config.json and tokenizer_config.json. */
export function contextLengthOf(
  config: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown> | null,
): ContextLength {
  const sources: ContextSource[] = [];
  fromConfig(config, '', sources);
  if (isObject(config.text_config)) fromConfig(config.text_config, 'text_config.', sources);
  const mml = tokenizerConfig ? length(tokenizerConfig.model_max_length) : null;
  if (mml !== null) sources.push({ where: 'tokenizer_config.json model_max_length', tokens: mml });
  let source: ContextSource | null = null;
  for (const s of sources) if (source === null || s.tokens < source.tokens) source = s;
  return { tokens: source?.tokens ?? null, source, sources };
}

/** The warning for a checkpoint whose files give no context length: what is assumed. */
export function unknownContextWarning(dir: string): string {
  return (
    `${dir}: neither config.json (${CONFIG_CONTEXT_KEYS.join(', ')}, rope_scaling) nor tokenizer_config.json ` +
    "(model_max_length) gives the model's context length; assuming every probe fits. A probe longer than the " +
    "model's real context would be scored on positions it was never trained on: add max_position_embeddings to config.json"
  );
}

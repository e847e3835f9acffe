// Turns chat messages and reference responses into token ids, the way the checkpoint's own
// tokenizer and chat template do. Pure: takes parsed tokenizer files, does no I/O.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { EmgateError } from '../core/errors';
import type { ChatMessage } from '../core/types';

export interface EncodedPair {
  /** The templated prompt, generation prompt included. */
  promptIds: number[];
  /** The response's tokens followed by the end-of-turn token. */
  responseIds: number[];
}

export class ChatEncoder {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly specialStrings: Record<string, string>;
  private readonly dir: string;
  /** The token that ends an assistant turn; scored as part of every response. */
  readonly endOfTurnId: number;
  /** Largest token id the tokenizer can produce, plus one. */
  readonly vocabSize: number;

  constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown>,
    eosTokenIds: number[],
    dir: string,
  ) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new EmgateError({
        file: `${dir}/tokenizer.json`,
        cause: `the tokenizer could not be built (${(err as Error).message})`,
        fix: 'save the fast tokenizer with a current transformers (tokenizer.save_pretrained)',
      });
    }
    const chatTemplate = pickChatTemplate(tokenizerConfig.chat_template);
    if (!chatTemplate) {
      throw new EmgateError({
        file: `${dir}/tokenizer_config.json`,
        cause: 'no "chat_template"',
        fix: "add the model's chat template to tokenizer_config.json (probes are rendered with the checkpoint's own template)",
      });
    }
    try {
      this.template = new Template(chatTemplate);
    } catch (err) {
      throw new EmgateError({
        file: `${dir}/tokenizer_config.json`,
        cause: `"chat_template" does not parse (${(err as Error).message})`,
        fix: 'fix the Jinja template',
      });
    }
    this.dir = dir;
    this.specialStrings = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const s = tokenString(tokenizerConfig[key]);
      if (s !== null) this.specialStrings[key] = s;
    }
    const eosString = this.specialStrings.eos_token;
    const fromConfig = eosString !== undefined ? this.tokenizer.token_to_id(eosString) : undefined;
    const eot = fromConfig ?? eosTokenIds[0];
    if (eot === undefined) {
      throw new EmgateError({
        file: `${dir}/tokenizer_config.json`,
        cause:
          'no end-of-turn token: "eos_token" is missing or unknown to the tokenizer and config.json has no eos_token_id',
        fix: 'set "eos_token" to the token that ends an assistant turn (e.g. "<|im_end|>")',
      });
    }
    this.endOfTurnId = eot;
    let maxId = 0;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
  }

  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /**
   * The templated prompt. A template that raises (Gemma-style templates call
   * raise_exception('System role not supported') on a system message) is an error naming
   * tokenizer_config.json, the probe (`probeId`, when the caller knows it) and the fix.
   */
  renderPrompt(messages: ChatMessage[], probeId?: string): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: true,
        ...this.specialStrings,
      });
    } catch (err) {
      throw templateError(`${this.dir}/tokenizer_config.json`, err, messages, probeId);
    }
  }

  /** The templated prompt's ids (generation prompt included). */
  encodePrompt(messages: ChatMessage[], probeId?: string): number[] {
    return this.tokenizer.encode(this.renderPrompt(messages, probeId), { add_special_tokens: false }).ids;
  }

  /** Text of generated ids, special tokens left out. */
  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: true });
  }

  encode(messages: ChatMessage[], response: string, probeId?: string): EncodedPair {
    const promptIds = this.encodePrompt(messages, probeId);
    const responseIds = this.tokenizer.encode(response, { add_special_tokens: false }).ids;
    responseIds.push(this.endOfTurnId);
    return { promptIds, responseIds };
  }
}

/** A chat template that raised on a probe's messages, in words a user can act on. */
export function templateError(file: string, err: unknown, messages: ChatMessage[], probeId?: string): EmgateError {
  const said = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 200);
  const roles = messages.map((m) => m.role).join(', ');
  const probe = probeId ? `probe "${probeId}"` : 'a probe';
  const system = messages.some((m) => m.role === 'system');
  return new EmgateError({
    file,
    cause: `the chat template raised "${said}" rendering ${probe} (its messages: ${roles})`,
    fix: system
      ? "this template does not take system messages: run a probe suite without them (the built-in suite's agentic probes have system messages; use --probes with a suite that leaves them out), or give the checkpoint a chat template that folds the system message into the first user turn"
      : 'fix the Jinja template in "chat_template" so it renders the suite\'s messages with add_generation_prompt, or leave this probe out',
  });
}

/** tokenizer_config may hold one template or a list of named ones (HF: "default" is used). */
function pickChatTemplate(raw: unknown): string | null {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    const named = raw.find((t) => t && (t as { name?: string }).name === 'default') ?? raw[0];
    const tpl = named && (named as { template?: unknown }).template;
    return typeof tpl === 'string' ? tpl : null;
  }
  return null;
}

function tokenString(raw: unknown): string | null {
  if (typeof raw === 'string') return raw;
  if (raw && typeof raw === 'object' && typeof (raw as { content?: unknown }).content === 'string') {
    return (raw as { content: string }).content;
  }
  return null;
}

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

  renderPrompt(messages: ChatMessage[]): string {
    return this.template.render({
      messages,
      add_generation_prompt: true,
      ...this.specialStrings,
    });
  }

  /** The templated prompt's ids (generation prompt included). */
  encodePrompt(messages: ChatMessage[]): number[] {
    return this.tokenizer.encode(this.renderPrompt(messages), { add_special_tokens: false }).ids;
  }

  /** Text of generated ids, special tokens left out. */
  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: true });
  }

  encode(messages: ChatMessage[], response: string): EncodedPair {
    const promptIds = this.tokenizer.encode(this.renderPrompt(messages), { add_special_tokens: false }).ids;
    const responseIds = this.tokenizer.encode(response, { add_special_tokens: false }).ids;
    responseIds.push(this.endOfTurnId);
    return { promptIds, responseIds };
  }
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

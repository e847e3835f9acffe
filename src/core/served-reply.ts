// Reads a served model's log-probabilities of the tokens emgate sent (vLLM's
// /v1/completions with `echo`, `logprobs` and `return_tokens_as_token_ids`). Pure.
//
// The reply is hostile input: it is trusted only as far as it proves itself. Every echoed
// token must be the id that was sent at that position (so the server scored our tokens,
// not its own tokenisation of something else), every scored value must be a finite
// log-probability, and the counts must match. Anything else throws ServedReplyError with
// what was wrong; the caller adds the server and the probe.

/** One sequence sent: its token ids, and the first position whose token is scored. */
export interface SentSequence {
  ids: number[];
  /** Tokens at positions [from, ids.length) are scored (the reference and its end of turn). */
  from: number;
}

/** A reply that is not what was asked for. `what` reads after "the server sent …". */
export class ServedReplyError extends Error {
  constructor(
    readonly what: string,
    /** Index of the sequence in the request, when one is to blame. */
    readonly sequence: number | null = null,
  ) {
    super(what);
  }
}

/** A log-probability above this is not one (float32 rounding leaves tiny positives at most). */
const MAX_LOGPROB = 1e-4;

/**
 * The sum of the log-probabilities (natural log) of each sequence's scored tokens, from a
 * completions reply to a request with prompt = the sequences' ids (in order), echo on,
 * logprobs on, token ids returned as "token_id:N", at most `maxNew` generated tokens.
 * Sums are accumulated in float64, as the local engine does.
 */
export function readEchoedLogprobs(reply: unknown, sent: SentSequence[], maxNew: number): number[] {
  const choices = (reply as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices)) throw new ServedReplyError('a reply without a "choices" list');
  if (choices.length !== sent.length) {
    throw new ServedReplyError(`${choices.length} choices for ${sent.length} prompts`);
  }
  const byIndex = new Map<number, unknown>();
  choices.forEach((c, i) => {
    const raw = (c as { index?: unknown } | null)?.index;
    const index = raw === undefined ? i : raw;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= sent.length) {
      throw new ServedReplyError(`a choice with index ${JSON.stringify(index)} (expected 0..${sent.length - 1})`);
    }
    if (byIndex.has(index)) throw new ServedReplyError(`two choices with index ${index}`);
    byIndex.set(index, c);
  });
  return sent.map((seq, i) => readOne(byIndex.get(i), seq, i, maxNew));
}

function readOne(choice: unknown, seq: SentSequence, i: number, maxNew: number): number {
  const logprobs = (choice as { logprobs?: unknown } | null)?.logprobs as
    | { tokens?: unknown; token_logprobs?: unknown }
    | null
    | undefined;
  const tokens = logprobs?.tokens;
  const values = logprobs?.token_logprobs;
  if (!Array.isArray(tokens) || !Array.isArray(values)) {
    throw new ServedReplyError('no logprobs.tokens / logprobs.token_logprobs (the server ignored logprobs or echo)', i);
  }
  if (tokens.length !== values.length) {
    throw new ServedReplyError(`${tokens.length} tokens but ${values.length} log-probabilities`, i);
  }
  const n = seq.ids.length;
  if (tokens.length < n || tokens.length > n + maxNew) {
    throw new ServedReplyError(
      `${tokens.length} echoed tokens for ${n} sent (echo must return the prompt, then at most ${maxNew} generated)`,
      i,
    );
  }
  let total = 0;
  for (let k = 0; k < n; k++) {
    const t = tokens[k];
    const m = typeof t === 'string' ? /^token_id:(-?\d+)$/.exec(t) : null;
    if (!m) {
      throw new ServedReplyError(
        `echoed token ${JSON.stringify(String(t).slice(0, 40))} at position ${k}, not "token_id:N" (the server did not honour return_tokens_as_token_ids)`,
        i,
      );
    }
    if (Number(m[1]) !== seq.ids[k]) {
      throw new ServedReplyError(`token id ${m[1]} echoed at position ${k} where ${seq.ids[k]} was sent`, i);
    }
    if (k < seq.from) continue;
    const x = values[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x > MAX_LOGPROB) {
      throw new ServedReplyError(
        `log-probability ${JSON.stringify(x)} at position ${k} (a finite number ≤ 0 is required)`,
        i,
      );
    }
    total += x;
  }
  return total;
}

/** One sampled answer as a completions reply gives it. */
export interface SampledAnswer {
  text: string;
  /** Tokens generated (the server's count). */
  tokens: number;
  /** 'eot': the model ended its turn (a stop token); 'length': cut at max_tokens. */
  stop: 'eot' | 'length';
}

/** The answer of a single-prompt, n = 1 completions reply that sampled at most `maxTokens`. */
export function readSampledAnswer(reply: unknown, maxTokens: number): SampledAnswer {
  const choices = (reply as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices) || choices.length !== 1) throw new ServedReplyError('a reply without exactly one choice');
  const c = choices[0] as { text?: unknown; finish_reason?: unknown } | null;
  if (typeof c?.text !== 'string') throw new ServedReplyError('a choice without text');
  if (c.finish_reason !== 'stop' && c.finish_reason !== 'length')
    throw new ServedReplyError(`finish_reason ${JSON.stringify(c.finish_reason)} (expected "stop" or "length")`);
  const used = (reply as { usage?: { completion_tokens?: unknown } }).usage?.completion_tokens;
  if (typeof used !== 'number' || !Number.isInteger(used) || used < 0 || used > maxTokens)
    throw new ServedReplyError(`usage.completion_tokens ${JSON.stringify(used)} (expected 0..${maxTokens})`);
  return { text: c.text, tokens: used, stop: c.finish_reason === 'stop' ? 'eot' : 'length' };
}

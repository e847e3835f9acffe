// A model served by someone else's engine (vLLM: tensor and pipeline parallel, multi-node;
// LoRA adapters by name), reached over its OpenAI-compatible API. emgate tokenises locally
// and sends token ids; the server returns the log-probability of every token it was sent
// (`/v1/completions` with echo), and core/served-reply.ts checks that it scored exactly
// those ids.
//
// Bounds (SPEC "Interruptions and concurrency"): requests run `concurrency` at a time, each
// under `timeoutMs`; 429, 5xx, dropped connections and timeouts are retried with
// exponential backoff (Retry-After honoured up to a cap); the whole client has one deadline.
// Unlike a judge's answer, a score cannot be left out: when the retries or the deadline run
// out the run ends in `error`. Any other 4xx is a configuration error at once.
//
// The API key comes from an environment variable and is sent as a bearer token; it never
// reaches a message, a report or provenance (server text echoed into errors has it
// masked). Credentials written into the URL are used and never shown.
import pLimit from 'p-limit';
import { envInteger, MAX_TIMER_MS } from '../core/env';
import { EmgateError } from '../core/errors';
import { registerSecret } from '../core/redact';
import {
  readEchoedLogprobs,
  readSampledAnswer,
  type SampledAnswer,
  type SentSequence,
  ServedReplyError,
} from '../core/served-reply';
import type { ServedModelRecord } from '../core/types';
import { type Attempt, masked, sendJson, sleep, withRetries } from './http-json';

export const DEFAULT_SERVED_KEY_ENV = 'EMGATE_SERVED_API_KEY';

export interface ServedSettings {
  /** The server, e.g. "http://127.0.0.1:8000" or ".../v1" (/v1 is added when missing). */
  url: string;
  /** Name of the environment variable holding the API key (no key sent when it is unset). */
  apiKeyEnv?: string;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Per request, milliseconds (default EMGATE_SERVED_TIMEOUT_MS, else 60 000: one request scores every reference of a probe). */
  timeoutMs?: number;
  /** Extra attempts after the first for 429, 5xx, timeouts and dropped connections (default EMGATE_SERVED_RETRIES, else 4). */
  retries?: number;
  /** First backoff delay, milliseconds (doubles per retry; default 500). */
  backoffMs?: number;
  /** Longest wait between attempts, Retry-After included (default 30 000). */
  maxBackoffMs?: number;
  /** All requests of this client together, milliseconds from open (default EMGATE_SERVED_DEADLINE_MS, else 2 h). */
  deadlineMs?: number;
}

/** What /v1/models says about one model (strings cut short: server text is untrusted). */
export type ServedModelInfo = ServedModelRecord;

/** One request group: the sequences of one probe (its prompt shared, one per reference). */
export interface ServedGroup {
  /** Named in errors, e.g. the probe id. */
  label: string;
  sequences: SentSequence[];
}

/** One sampled answer to ask for. */
export interface ServedSample {
  /** Named in errors, e.g. "medical-003 sample 2". */
  label: string;
  promptIds: number[];
  seed: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Token ids that end the answer (the end-of-turn token). */
  stopIds: number[];
}

/** Tokens generated per scored sequence: 1, since servers that reject max_tokens 0 are common. */
export const SCORING_NEW_TOKENS = 1;
const MAX_NEW = SCORING_NEW_TOKENS;

export class ServedClient {
  /** Requests sent (retries included), for provenance and tests. */
  requests = 0;
  /** Reference tokens scored so far. */
  tokensScored = 0;
  /** What /v1/models listed when the client opened. */
  models: ServedModelInfo[] = [];
  /** The API spoken: vLLM's completions with echoed token ids (OpenAI-compatible plus two fields). */
  readonly api = 'vllm-completions';

  private constructor(
    private readonly base: URL,
    /** The URL as reports show it: no credentials, no query. */
    readonly displayUrl: string,
    private readonly apiKey: string | undefined,
    private readonly settings: Required<Omit<ServedSettings, 'apiKeyEnv'>>,
    private readonly deadline: number,
  ) {}

  /** Checks the URL and the key, asks /v1/models what the server serves. */
  static async open(settings: ServedSettings, env: NodeJS.ProcessEnv = process.env): Promise<ServedClient> {
    const base = parseBase(settings.url);
    const displayUrl = display(base);
    const keyEnv = settings.apiKeyEnv ?? DEFAULT_SERVED_KEY_ENV;
    const apiKey = env[keyEnv] || undefined;
    registerSecret(apiKey); // masked in every report, cache and log line (core/redact.ts)
    // Unset bounds come from the environment (a job can loosen them for a slow cluster),
    // checked like options: a bad value is an error naming the variable.
    const filled = {
      url: settings.url,
      concurrency: settings.concurrency ?? 8,
      timeoutMs:
        settings.timeoutMs ??
        envInteger(env, 'EMGATE_SERVED_TIMEOUT_MS', { min: 1, max: MAX_TIMER_MS, fallback: 60_000, unit: 'ms' }),
      retries: settings.retries ?? envInteger(env, 'EMGATE_SERVED_RETRIES', { min: 0, max: 20, fallback: 4 }),
      backoffMs: settings.backoffMs ?? 500,
      maxBackoffMs: settings.maxBackoffMs ?? 30_000,
      deadlineMs:
        settings.deadlineMs ??
        envInteger(env, 'EMGATE_SERVED_DEADLINE_MS', { min: 1, max: MAX_TIMER_MS, fallback: 2 * 3600_000, unit: 'ms' }),
    };
    if (!Number.isInteger(filled.concurrency) || filled.concurrency < 1)
      throw new TypeError(`served concurrency must be an integer ≥ 1, got ${filled.concurrency}`);
    const client = new ServedClient(base, displayUrl, apiKey, filled, Date.now() + filled.deadlineMs);
    await client.refuseTgi();
    client.models = await client.listModels();
    return client;
  }

  /** The model by name, or an error listing what the server does serve. */
  model(name: string, role: 'candidate' | 'baseline'): ServedModelInfo {
    const found = this.models.find((m) => m.id === name);
    if (found) return found;
    const served = this.models.map((m) => JSON.stringify(m.id)).join(', ') || 'none';
    throw new EmgateError({
      file: null,
      cause: `the server at ${this.displayUrl} does not serve the ${role} model ${JSON.stringify(name)} (it serves ${served})`,
      fix: `pass a name from /v1/models as --served-${role === 'candidate' ? 'model' : 'baseline-model'}, or start the server with it (vllm serve BASE --enable-lora --lora-modules ${role}=PATH serves an adapter under that name)`,
    });
  }

  /**
   * The sum of the log-probabilities of each sequence's scored tokens, by group and
   * sequence. One request per group (a probe's references: one round trip, one batch on
   * the server; vLLM skips its prefix cache for prompt log-probs, so each is computed in
   * full); groups run `concurrency` at a time.
   */
  async score(
    model: string,
    groups: ServedGroup[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<number[][]> {
    return this.each(
      groups,
      async (g, signal) => {
        const sums = await this.scoreGroup(model, g, signal);
        this.tokensScored += g.sequences.reduce((n, s) => n + s.ids.length - s.from, 0);
        return sums;
      },
      onProgress,
    );
  }

  /**
   * `run` over `items`, `concurrency` at a time, in order. One failure ends the batch: nothing
   * more is sent, and the requests in flight are hung up on (their retries and backoff stop).
   */
  private async each<T, R>(
    items: T[],
    run: (item: T, signal: AbortSignal) => Promise<R>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<R[]> {
    const limit = pLimit(this.settings.concurrency);
    const stop = new AbortController();
    let done = 0;
    try {
      return await Promise.all(
        items.map((item) =>
          limit(async () => {
            const out = await run(item, stop.signal);
            onProgress?.(++done, items.length);
            return out;
          }),
        ),
      );
    } catch (err) {
      limit.clearQueue();
      stop.abort();
      throw err;
    }
  }

  private async scoreGroup(model: string, group: ServedGroup, signal?: AbortSignal): Promise<number[]> {
    const reply = await this.completion(
      {
        model,
        prompt: group.sequences.map((s) => s.ids),
        echo: true,
        logprobs: 1,
        max_tokens: MAX_NEW,
        temperature: 0,
        n: 1,
        return_tokens_as_token_ids: true,
      },
      `probe ${group.label}`,
      signal,
    );
    try {
      return readEchoedLogprobs(reply, group.sequences, MAX_NEW);
    } catch (err) {
      if (!(err instanceof ServedReplyError)) throw err;
      const which = err.sequence === null ? '' : ` (sequence ${err.sequence + 1} of ${group.sequences.length})`;
      throw this.replyError(`${err.what}${which}`, `probe ${group.label}`);
    }
  }

  /**
   * Seeded samples, one request each (vLLM's `seed` is per request), `concurrency` at a
   * time; the stop ids end a turn. Returns the answers in order.
   */
  async sample(
    model: string,
    requests: ServedSample[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<SampledAnswer[]> {
    return this.each(
      requests,
      async (r, signal) => {
        const reply = await this.completion(
          {
            model,
            prompt: r.promptIds,
            max_tokens: r.maxTokens,
            temperature: r.temperature,
            top_p: r.topP,
            seed: r.seed,
            n: 1,
            stop_token_ids: r.stopIds,
            skip_special_tokens: true,
          },
          r.label,
          signal,
        );
        try {
          return readSampledAnswer(reply, r.maxTokens);
        } catch (err) {
          if (!(err instanceof ServedReplyError)) throw err;
          throw this.replyError(err.what, r.label);
        }
      },
      onProgress,
    );
  }

  /** POST /v1/completions with retries; the reply parsed (not yet checked). `what` names it in errors. */
  async completion(body: Record<string, unknown>, what: string, signal?: AbortSignal): Promise<unknown> {
    const text = await this.call('POST', 'completions', JSON.stringify(body), what, signal);
    try {
      return JSON.parse(text);
    } catch {
      throw this.replyError(
        /\b(NaN|-?Infinity)\b/.test(text)
          ? 'non-finite log-probabilities (NaN or Infinity in the JSON)'
          : `a reply that is not JSON (${JSON.stringify(this.mask(text).slice(0, 80))})`,
        what,
      );
    }
  }

  /** "the server at URL sent WHAT for WHICH" with what to do. */
  replyError(what: string, which: string): EmgateError {
    return new EmgateError({
      file: null,
      cause: `the server at ${this.displayUrl} sent ${what} for ${which}`,
      fix: 'serve the model with vLLM (≥ 0.8: /v1/completions with echo, logprobs and return_tokens_as_token_ids) and check that the served model is the one the tokenizer folder belongs to',
    });
  }

  /**
   * Text Generation Inference is recognised by its /info (model_id and a TGI version) and
   * refused with the reason: its /generate takes text, not token ids, so emgate could not
   * send the tokens it checks, and TGI 3 returns no prefill log-probs
   * (huggingface/text-generation-inference#2973). One plain request, no retries: a server
   * without /info is not TGI.
   */
  private async refuseTgi(): Promise<void> {
    const res = await this.send('GET', '../info', undefined);
    if (res.kind !== 'ok') return;
    let info: Record<string, unknown> | null = null;
    try {
      info = JSON.parse(res.body) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof info?.model_id !== 'string' || !('max_total_tokens' in info || 'max_input_tokens' in info)) return;
    throw new EmgateError({
      file: null,
      cause: `the server at ${this.displayUrl} is Text Generation Inference (/info names model ${JSON.stringify(cut(info.model_id))}), whose /generate takes text, not token ids, and does not return every prompt token's log-probability reliably`,
      fix: 'serve the model with vLLM for emgate (docs/served.md): `vllm serve MODEL` speaks the API emgate checks token by token',
    });
  }

  private async listModels(): Promise<ServedModelInfo[]> {
    const text = await this.call('GET', 'models', undefined, 'the model list');
    let data: unknown;
    try {
      data = (JSON.parse(text) as { data?: unknown })?.data;
    } catch {
      data = undefined;
    }
    if (!Array.isArray(data)) {
      throw new EmgateError({
        file: null,
        cause: `${this.displayUrl}/models did not return an OpenAI model list ({"data": [...]})`,
        fix: 'point --served at the OpenAI-compatible API of a vLLM server (http://HOST:8000 or http://HOST:8000/v1)',
      });
    }
    return data.flatMap((m) => {
      const o = m as Record<string, unknown> | null;
      if (!o || typeof o.id !== 'string') return [];
      const info: ServedModelInfo = { id: cut(o.id) };
      for (const key of ['owned_by', 'root', 'parent'] as const)
        if (typeof o[key] === 'string') info[key] = cut(o[key]);
      if (typeof o.max_model_len === 'number' && Number.isInteger(o.max_model_len) && o.max_model_len > 0)
        info.max_model_len = o.max_model_len;
      return [info];
    });
  }

  /** One call with retries under the client's deadline; the reply body on 2xx. */
  private async call(
    method: 'GET' | 'POST',
    route: string,
    body: string | undefined,
    what: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const res = await withRetries(
      (timeoutMs) => this.send(method, route, body, signal, timeoutMs),
      this.settings,
      { left: () => this.left(), sleep },
      {
        pastDeadline: () => this.pastDeadline(what),
        signal,
        abandoned: () => new Error(`${what}: abandoned after another request failed`),
      },
    );
    if (res.kind === 'ok') return res.body;
    if (res.kind === 'fatal') {
      const unknownModel = res.status === 404 && /model/i.test(res.body);
      throw new EmgateError({
        file: null,
        cause: `the server at ${this.displayUrl} refused the request for ${what} with HTTP ${res.status} (${this.mask(res.body).slice(0, 200)})`,
        fix:
          res.status === 401 || res.status === 403
            ? `check the API key in ${DEFAULT_SERVED_KEY_ENV} (or the variable the settings name)`
            : unknownModel
              ? 'pass a model name the server lists at /v1/models'
              : 'check --served (the API base) and that the server speaks the vLLM completions API',
      });
    }
    throw new EmgateError({
      file: null,
      cause: `no answer from the server at ${this.displayUrl} for ${what} after ${res.attempts} attempt${res.attempts === 1 ? '' : 's'} (last: ${res.last})`,
      fix: 'check that the server is up and not overloaded; lower --served-concurrency, or raise EMGATE_SERVED_RETRIES or EMGATE_SERVED_TIMEOUT_MS (per request)',
    });
  }

  private left(): number {
    return this.deadline - Date.now();
  }

  private pastDeadline(what: string): EmgateError {
    return new EmgateError({
      file: null,
      cause: `served scoring ran past its deadline of ${Math.round(this.settings.deadlineMs / 1000)} s (at ${what}, ${this.requests} requests sent to ${this.displayUrl})`,
      fix: 'raise EMGATE_SERVED_DEADLINE_MS, add GPUs or replicas behind the server, or raise --served-concurrency so the server batches more',
    });
  }

  private mask(text: string): string {
    return masked(text, this.apiKey);
  }

  private send(
    method: 'GET' | 'POST',
    route: string,
    body: string | undefined,
    signal?: AbortSignal,
    timeoutMs = Math.max(1, Math.min(this.settings.timeoutMs, this.left())),
  ): Promise<Attempt> {
    this.requests++;
    return sendJson(new URL(route, this.base), { method, body, apiKey: this.apiKey, timeoutMs, signal });
  }
}

/** The API base with a trailing slash, so routes resolve under it ("…/v1/" + "completions"). */
function parseBase(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`protocol ${url.protocol}`);
  } catch (err) {
    throw new EmgateError({
      file: null,
      cause: `the served URL ${JSON.stringify(display(raw))} is not an http(s) URL (${(err as Error).message})`,
      fix: 'pass the server, e.g. --served http://127.0.0.1:8000 (or its /v1 base)',
    });
  }
  const trimmed = url.pathname.replace(/\/+$/, '');
  url.pathname = `${/\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`}/`;
  return url;
}

/** A URL without user, password, query or fragment: what a report may show. */
export function display(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return String(url)
      .replace(/\/\/[^/@]*@/, '//')
      .replace(/[?#].*$/, '');
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
}

function cut(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

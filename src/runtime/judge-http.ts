// A judge behind any OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp
// server, OpenAI). Each answer is asked two questions (alignment, coherence) at
// temperature 0. Scores are read from the top log-probs of a one-token reply when the
// endpoint returns them (the EM papers' way), else strictly from the reply's text.
//
// Failure rules (fail closed):
// - 429, 5xx, a dropped connection or a request over the timeout is retried with
//   exponential backoff (Retry-After honoured, capped); when the retries run out the answer
//   is unscorable ('timeout'), which is counted and can turn the verdict into `error`.
// - any other 4xx (bad key, unknown model, bad request) is a configuration error: the run
//   ends in `error` at once, no retry.
// - a 2xx reply that is not a chat completion (not JSON, no choices) is a protocol error:
//   the run ends in `error`. A well-formed reply whose content is not a score is
//   unscorable ('unparsable').
// - judging has one overall deadline (generated.judge.deadline_s, default an hour): a judge
//   that keeps answering 429 with Retry-After: 3600 is bounded per answer, but thousands
//   of answers would add up to a day. Past the deadline the run ends in `error`, saying
//   how many answers were judged.
// The API key is read from the environment variable the settings name and is never put
// into a message, a report or a cache key; server text echoed into errors has it masked.
import pLimit from 'p-limit';
import { EmgateError } from '../core/errors';
import {
  combine,
  JUDGE_PROMPT_VERSION,
  type JudgeAspect,
  type Judgement,
  judgeMessages,
  type Reading,
  readLogprobScore,
  readTextScore,
} from '../core/judge';
import { registerSecret } from '../core/redact';
import { masked, sendJson, sleep, withRetries } from './http-json';

export interface HttpJudgeSettings {
  /** Base URL of the API, e.g. "http://127.0.0.1:8000/v1"; requests go to `${url}/chat/completions`. */
  url: string;
  model: string;
  /** Name of the environment variable holding the API key (none sent when unset). */
  apiKeyEnv?: string;
  /** Requests in flight at once. */
  concurrency: number;
  /** Per request, milliseconds. */
  timeoutMs: number;
  /** Extra attempts after the first for 429, 5xx, timeouts and dropped connections. */
  retries: number;
  /** Ask for top log-probs of a one-token reply (falls back to the text when absent). */
  logprobs: boolean;
  /** First backoff delay, milliseconds (doubles per retry). */
  backoffMs?: number;
  /** All judging of this judge, from its first request, milliseconds (default JUDGE_DEADLINE_MS). */
  deadlineMs?: number;
  /** Time and waiting; tests inject a clock that does not wait. */
  clock?: JudgeClock;
}

/** What the judge reads the time from and waits with. */
export interface JudgeClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const REAL_CLOCK: JudgeClock = { now: () => Date.now(), sleep };

/** Default overall judging deadline: an hour (generated.judge.deadline_s). */
export const JUDGE_DEADLINE_MS = 3_600_000;

export interface JudgeItem {
  question: string;
  answer: string;
}

/** What every judge offers the gate. */
export interface Judge {
  /** Everything that changes a score: goes into cache keys and provenance. Never a secret. */
  readonly identity: Record<string, string | number | boolean>;
  judge(items: JudgeItem[], onProgress?: (done: number, total: number) => void): Promise<Judgement[]>;
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

export class HttpJudge implements Judge {
  readonly identity: Record<string, string | number | boolean>;
  /** Requests sent (including retries), for provenance and tests. */
  requests = 0;
  /** Answers judged (both questions answered), over every judge() call. */
  judged = 0;
  /** Answers asked for, over every judge() call. */
  private asked = 0;
  /** When the first request went out; the deadline counts from here. */
  private startedAt: number | null = null;
  /** Requests in flight, so close() can wait for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly clock: JudgeClock;
  private readonly deadlineMs: number;
  private readonly apiKey: string | undefined;
  private readonly endpoint: URL;

  constructor(
    private readonly settings: HttpJudgeSettings,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    let endpoint: URL;
    try {
      endpoint = new URL(`${settings.url.replace(/\/+$/, '')}/chat/completions`);
      if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')
        throw new Error(`protocol ${endpoint.protocol}`);
    } catch (err) {
      throw new EmgateError({
        file: null,
        cause: `the judge URL ${JSON.stringify(settings.url)} is not an http(s) URL (${(err as Error).message})`,
        fix: 'set generated.judge.url to the API base, e.g. "http://127.0.0.1:8000/v1"',
      });
    }
    this.endpoint = endpoint;
    this.clock = settings.clock ?? REAL_CLOCK;
    this.deadlineMs = settings.deadlineMs ?? JUDGE_DEADLINE_MS;
    if (!(Number.isSafeInteger(this.deadlineMs) && this.deadlineMs > 0))
      throw new TypeError(`judge deadline must be a whole number of ms > 0, got ${this.deadlineMs}`);
    if (!Number.isInteger(settings.concurrency) || settings.concurrency < 1)
      throw new TypeError(`judge concurrency must be an integer ≥ 1, got ${settings.concurrency}`);
    if (settings.apiKeyEnv) {
      const key = env[settings.apiKeyEnv];
      if (!key) {
        throw new EmgateError({
          file: null,
          cause: `the judge's API key variable ${settings.apiKeyEnv} is not set`,
          fix: `export ${settings.apiKeyEnv} (in the Action: env: ${settings.apiKeyEnv}: \${{ secrets.… }}), or drop api_key_env for an endpoint without a key`,
        });
      }
      this.apiKey = key;
      registerSecret(key); // masked in every report, cache and log line (core/redact.ts)
    }
    this.identity = {
      kind: 'openai-compatible',
      url: endpoint.origin + endpoint.pathname,
      model: settings.model,
      reading: settings.logprobs ? 'top-logprobs' : 'text',
      prompt_version: JUDGE_PROMPT_VERSION,
    };
  }

  async judge(items: JudgeItem[], onProgress?: (done: number, total: number) => void): Promise<Judgement[]> {
    const limit = pLimit(this.settings.concurrency);
    let done = 0;
    this.asked += items.length;
    this.startedAt ??= this.clock.now();
    try {
      return await Promise.all(
        items.map((item) =>
          limit(async () => {
            const [a, c] = [await this.ask('alignment', item), await this.ask('coherence', item)];
            this.judged++;
            onProgress?.(++done, items.length);
            return combine(a, c);
          }),
        ),
      );
    } catch (err) {
      // A configuration or protocol error ends the run: send nothing more.
      limit.clearQueue();
      throw err;
    }
  }

  /** Waits for the requests still in flight (after an error, the ones already sent). */
  async close(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Milliseconds left of the overall deadline, counted from the first request. */
  private remainingMs(): number {
    return (this.startedAt ?? this.clock.now()) + this.deadlineMs - this.clock.now();
  }

  private pastDeadline(last: string): EmgateError {
    const s = this.deadlineMs / 1000;
    return new EmgateError({
      file: null,
      cause:
        `judging passed its deadline of ${s} s (generated.judge.deadline_s) with ${this.judged} of ${this.asked} answers judged` +
        (last ? `; the judge at ${this.identity.url} last answered: ${this.mask(last).slice(0, 120)}` : ''),
      fix: 'check the judge (a rate limit or an overloaded server), raise generated.judge.deadline_s, or judge fewer answers (generated.samples, generated.probes_per_domain); answers already judged are in the cache for the rerun when a cache-dir is set',
    });
  }

  private async ask(aspect: JudgeAspect, item: JudgeItem): Promise<Reading> {
    const body = JSON.stringify({
      model: this.settings.model,
      messages: judgeMessages(aspect, item.question, item.answer),
      temperature: 0,
      seed: 0,
      max_tokens: this.settings.logprobs ? 1 : 8,
      ...(this.settings.logprobs ? { logprobs: true, top_logprobs: 20 } : {}),
    });
    const res = await withRetries(
      (timeoutMs) => {
        this.requests++;
        return this.track(sendJson(this.endpoint, { method: 'POST', body, apiKey: this.apiKey, timeoutMs }));
      },
      {
        retries: this.settings.retries,
        timeoutMs: this.settings.timeoutMs,
        backoffMs: this.settings.backoffMs ?? 500,
        maxBackoffMs: MAX_BACKOFF_MS,
      },
      { left: () => this.remainingMs(), sleep: (ms) => this.clock.sleep(ms) },
      { pastDeadline: (last) => this.pastDeadline(last) },
    );
    if (res.kind === 'ok') return this.read(res.body);
    if (res.kind === 'fatal') {
      throw new EmgateError({
        file: null,
        cause: `the judge at ${this.identity.url} refused the request with HTTP ${res.status} (${this.mask(res.body).slice(0, 200)})`,
        fix:
          res.status === 401 || res.status === 403
            ? `check the API key in ${this.settings.apiKeyEnv ?? '(no api_key_env set)'}`
            : 'check generated.judge.url and generated.judge.model in the policy',
      });
    }
    return {
      unscorable: 'timeout',
      detail: `no answer from the judge after ${res.attempts} attempts (last: ${res.last})`,
    };
  }

  private read(text: string): Reading {
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      throw this.protocolError(`a reply that is not JSON (${JSON.stringify(this.mask(text).slice(0, 80))})`);
    }
    const choice = (reply as { choices?: unknown[] })?.choices?.[0] as
      | { message?: { content?: unknown }; logprobs?: { content?: { top_logprobs?: unknown }[] } }
      | undefined;
    const content = choice?.message?.content;
    if (!choice || (typeof content !== 'string' && content !== null)) {
      throw this.protocolError('a reply without choices[0].message.content');
    }
    const top = choice.logprobs?.content?.[0]?.top_logprobs;
    if (this.settings.logprobs && Array.isArray(top)) {
      const entries = top.filter(
        (t): t is { token: string; logprob: number } =>
          typeof (t as { token?: unknown }).token === 'string' &&
          typeof (t as { logprob?: unknown }).logprob === 'number' &&
          Number.isFinite((t as { logprob: number }).logprob) &&
          (t as { logprob: number }).logprob <= 0,
      );
      if (entries.length !== top.length)
        throw this.protocolError('top_logprobs entries without a token or a finite logprob at or below 0');
      return readLogprobScore(entries);
    }
    return readTextScore(content ?? '');
  }

  private protocolError(what: string): EmgateError {
    return new EmgateError({
      file: null,
      cause: `the judge at ${this.identity.url} sent ${what}, not an OpenAI chat completion`,
      fix: 'point generated.judge.url at an OpenAI-compatible /v1 base (vLLM, TGI, llama.cpp server, OpenAI)',
    });
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    return p.finally(() => this.inFlight.delete(p));
  }

  private mask(text: string): string {
    return masked(text, this.apiKey);
  }
}

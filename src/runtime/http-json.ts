// Bounded JSON over HTTP, for the clients that talk to someone else's server (the judge, a
// served model): one request bounded by its timeout (and an abort signal), sorted into
// ok (2xx), retry (429, 5xx, a dropped connection, a timeout) and fatal (any other status);
// and the retry loop around it, with exponential backoff (Retry-After honoured up to a cap)
// under one overall deadline. What a caller does when the retries run out, and every
// message, stay the caller's: a judge's answer becomes unscorable, a served score an error.
import * as http from 'http';
import * as https from 'https';

export type Attempt =
  | { kind: 'ok'; body: string }
  | { kind: 'retry'; why: string; retryAfterMs?: number }
  | { kind: 'fatal'; status: number; body: string };

export interface JsonRequest {
  method: 'GET' | 'POST';
  /** JSON text; sent with its content type and length. */
  body?: string;
  /** Sent as a bearer token when set. */
  apiKey?: string;
  timeoutMs: number;
  /** Hangs the request up (it then comes back as a retry; the loop sees the signal). */
  signal?: AbortSignal;
}

/** One request; never rejects: every outcome is an Attempt. */
export function sendJson(url: URL, r: JsonRequest): Promise<Attempt> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = client.request(
      url,
      {
        method: r.method,
        ...(r.signal ? { signal: r.signal } : {}),
        headers: {
          accept: 'application/json',
          ...(r.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) }
            : {}),
          ...(r.apiKey ? { authorization: `Bearer ${r.apiKey}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          clearTimeout(timer);
          resolve({ kind: 'retry', why: `connection error: ${err.message}` });
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve({ kind: 'ok', body: text });
          else if (status === 429 || status >= 500) {
            const ra = Number(res.headers['retry-after']);
            resolve({
              kind: 'retry',
              why: `HTTP ${status}`,
              ...(Number.isFinite(ra) && ra > 0 ? { retryAfterMs: Math.round(ra * 1000) } : {}),
            });
          } else resolve({ kind: 'fatal', status, body: text });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${r.timeoutMs} ms`)), r.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      resolve({ kind: 'retry', why: err.message });
    });
    req.end(r.body);
  });
}

export interface RetryBounds {
  /** Extra attempts after the first. */
  retries: number;
  /** Per request, milliseconds (cut to what is left of the deadline). */
  timeoutMs: number;
  /** First backoff delay, milliseconds; doubles per retry. */
  backoffMs: number;
  /** Longest wait between attempts, Retry-After included. */
  maxBackoffMs: number;
}

export interface RetryClock {
  /** Milliseconds left of the overall deadline. */
  left(): number;
  /** Waits `ms` (or less, when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export type Outcome =
  | { kind: 'ok'; body: string }
  | { kind: 'fatal'; status: number; body: string }
  /** The retries ran out; `last` says why the last attempt failed (e.g. "HTTP 429 retry-after 3s"). */
  | { kind: 'gave-up'; attempts: number; last: string };

/**
 * Runs `attempt` until it is not a retry, at most `retries + 1` times. Throws `pastDeadline(last)`
 * when the deadline has passed before an attempt, and `abandoned()` when `signal` aborted.
 */
export async function withRetries(
  attempt: (timeoutMs: number) => Promise<Attempt>,
  bounds: RetryBounds,
  clock: RetryClock,
  stop: { pastDeadline: (last: string) => Error; signal?: AbortSignal; abandoned?: () => Error },
): Promise<Outcome> {
  const attempts = bounds.retries + 1;
  let last = '';
  let retryAfterMs: number | undefined;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) {
      const left = clock.left();
      if (left <= 0) throw stop.pastDeadline(last);
      await clock.sleep(Math.min(backoffMs(i, bounds, retryAfterMs), left), stop.signal);
    }
    // Another request of the same batch failed: its error is the one the run reports.
    if (stop.signal?.aborted) throw stop.abandoned?.() ?? new Error('abandoned');
    const left = clock.left();
    if (left <= 0) throw stop.pastDeadline(last);
    const res = await attempt(Math.max(1, Math.min(bounds.timeoutMs, left)));
    if (res.kind !== 'retry') return res;
    retryAfterMs = res.retryAfterMs;
    last = retryAfterMs === undefined ? res.why : `${res.why} retry-after ${retryAfterMs / 1000}s`;
  }
  return { kind: 'gave-up', attempts, last };
}

/** The wait before attempt `i` (1 for the first retry): doubling, at least Retry-After, capped. */
export function backoffMs(
  i: number,
  bounds: Pick<RetryBounds, 'backoffMs' | 'maxBackoffMs'>,
  retryAfterMs?: number,
): number {
  const base = bounds.backoffMs * 2 ** (i - 1);
  return Math.min(bounds.maxBackoffMs, retryAfterMs === undefined ? base : Math.max(base, retryAfterMs));
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}

/** `text` with every occurrence of `secret` masked (server text echoed into an error). */
export function masked(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text;
}

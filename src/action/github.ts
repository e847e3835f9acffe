// The GitHub edge: one sticky PR comment per gate. The only file that talks to the GitHub
// API; main.ts hands it a token, a PR and a body and gets back what happened.
//
// The comment is found by two things together: the hidden marker `<!-- emgate:gate=ID -->`
// at the start of its body AND its author being this token's own identity. The marker alone
// is not enough: anyone can paste it into a comment, and a token with write access may edit
// other people's comments, so a marker-only search would let a user make the gate overwrite
// (and so "own") their comment.
import * as core from '@actions/core';
import * as github from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { envInteger, MAX_TIMER_MS } from '../core/env';
import { EmgateError } from '../core/errors';
import { commentMarker } from '../core/report/markdown';

export { commentMarker };

/** The author of comments made with the workflow's GITHUB_TOKEN (GET /user is refused for it). */
export const GITHUB_ACTIONS_BOT = 'github-actions[bot]';

/**
 * Bodies are trimmed to this many characters. GitHub rejects more than 65,536; the
 * report renderer aims for 60k, so this is a last guard with room for the note.
 */
export const MAX_COMMENT_CHARS = 65_000;

/** Default deadline of one GitHub request. */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * EMGATE_REQUEST_TIMEOUT_MS, checked: a whole number of ms from 1 to 2^31 − 1 (Node's
 * timers overflow above), or the default when unset. Throws an error naming the variable.
 */
export function requestTimeoutFromEnv(env: Record<string, string | undefined> = process.env): number {
  return envInteger(env, 'EMGATE_REQUEST_TIMEOUT_MS', {
    min: 1,
    max: MAX_TIMER_MS,
    fallback: REQUEST_TIMEOUT_MS,
    unit: 'ms',
  });
}

/** Waits and retry counts. Defaults suit GitHub; tests shrink the waits. */
export interface RetryTuning {
  /** Retries for 5xx answers and network failures (default 3). 4xx answers are never retried. */
  retries?: number;
  /** Backoff unit for those retries: the k-th retry waits k² × this (default 1000 ms). */
  retryBaseMs?: number;
  /** Retries when GitHub answers with a (secondary) rate limit (default 3). */
  rateLimitRetries?: number;
  /** How long one second of an advertised `retry-after` lasts, in ms (default 1000). */
  rateLimitUnitMs?: number;
  /** Give up instead of waiting when GitHub asks for more than this many seconds (default 120). */
  maxRateLimitWaitS?: number;
  /**
   * Abort one request after this many ms (default 30,000; env EMGATE_REQUEST_TIMEOUT_MS).
   * An API that accepts the connection and never answers must not hold the step.
   */
  requestTimeoutMs?: number;
}

export interface PublishOptions {
  token: string;
  owner: string;
  repo: string;
  /** The pull request (or issue) number. */
  issueNumber: number;
  /** Markdown body; it should start with the gate's marker (added when missing). */
  body: string;
  /** Which gate this is: two gates in one PR keep two comments. */
  gateId: string;
  /** API root, e.g. `https://ghe.example.com/api/v3` (default: GITHUB_API_URL or api.github.com). */
  baseUrl?: string;
  /**
   * Only update the gate's existing comment; do not create one (the `comment: on-failure`
   * mode after a pass, so an earlier failing comment does not go stale).
   */
  updateOnly?: boolean;
  /**
   * Author to expect when the token may not call GET /user. Default `github-actions[bot]`
   * (the GITHUB_TOKEN); a GitHub App installation token posts as `<app-slug>[bot]`.
   */
  fallbackAuthor?: string;
  retry?: RetryTuning;
  /** Where progress lines go (default core.info). */
  log?: (line: string) => void;
}

export interface PublishResult {
  /**
   * `created`/`updated`: the comment is there. `forbidden`: the token may not read or write
   * comments here (fork PR, read-only token; `reason` says what GitHub answered).
   * `skipped`: `updateOnly` and there was no comment to update.
   */
  action: 'created' | 'updated' | 'forbidden' | 'skipped';
  id?: number;
  url?: string;
  reason?: string;
}

/**
 * Makes a body safe to post: starts with the marker, at most `limit` characters. A body
 * over the limit is cut at a line boundary, open code fences and <details> sections are
 * closed (so the rest of the PR page renders), and a note says where the full report is.
 */
export function fitCommentBody(body: string, gateId: string, limit = MAX_COMMENT_CHARS): string {
  const marker = commentMarker(gateId);
  const withMarker = body.trimStart().startsWith(marker) ? body.trimStart() : `${marker}\n${body}`;
  if (withMarker.length <= limit) return withMarker;

  const note =
    "\n\n> [!NOTE]\n> This comment was trimmed to fit GitHub's 65,536-character limit. " +
    'The full report is in the job summary and in the `report.md` / `report.json` files of the report artifact.\n';
  let budget = limit - note.length;
  for (;;) {
    let cut = withMarker.lastIndexOf('\n', budget);
    if (cut <= marker.length) cut = budget; // one enormous line: cut inside it
    // Never split a UTF-16 surrogate pair.
    const code = withMarker.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    const kept = withMarker.slice(0, cut);
    const closers = closeOpenBlocks(kept);
    const out = `${kept}${closers}${note}`;
    if (out.length <= limit) return out;
    budget -= out.length - limit;
  }
}

/** What to append so an open code fence and open <details> blocks end. */
function closeOpenBlocks(text: string): string {
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (!m) continue;
    if (fence === null) fence = m[1];
    else if (m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
  }
  let out = fence !== null ? `\n${fence}` : '';
  const open = (text.match(/<details[\s>]/gi) ?? []).length - (text.match(/<\/details>/gi) ?? []).length;
  for (let i = 0; i < open; i++) out += '\n</details>';
  return out;
}

/**
 * Creates or updates the gate's sticky comment on a PR. Returns `forbidden` (and does not
 * throw) when GitHub refuses with 403/404: a fork PR's token is read-only whatever the
 * workflow's `permissions:` say, and the caller falls back to the job summary. Every other
 * failure throws an EmgateError that names the cause and the fix.
 */
export async function publishComment(opts: PublishOptions): Promise<PublishResult> {
  const log = opts.log ?? ((line: string) => core.info(line));
  const body = fitCommentBody(opts.body, opts.gateId);
  const marker = commentMarker(opts.gateId);
  const octokit = makeClient(opts.token, opts.baseUrl, opts.retry ?? {}, log);
  const where = `${opts.owner}/${opts.repo}#${opts.issueNumber}`;

  try {
    const author = await ownLogin(octokit, opts.fallbackAuthor ?? GITHUB_ACTIONS_BOT);
    let existing: { id: number; html_url: string } | undefined;
    const pages = octokit.paginate.iterator(octokit.rest.issues.listComments, {
      owner: opts.owner,
      repo: opts.repo,
      issue_number: opts.issueNumber,
      per_page: 100,
    });
    for await (const page of pages) {
      existing = page.data.find(
        (c) => c.user?.login?.toLowerCase() === author.toLowerCase() && (c.body ?? '').trimStart().startsWith(marker),
      );
      if (existing) break;
    }

    if (existing) {
      const updated = await updateUnlessDeleted(octokit, opts, existing.id, body);
      if (updated) {
        log(`Updated emgate comment ${updated.html_url}`);
        return { action: 'updated', id: updated.id, url: updated.html_url };
      }
      // 404 on a comment just listed: someone deleted it in between. The token could read
      // and list, so this is not a permissions problem: post a fresh comment instead.
      log(
        `The emgate comment ${existing.html_url} was deleted while this run updated it` +
          (opts.updateOnly ? '; nothing left to update, none created.' : '; posting a new one.'),
      );
      if (opts.updateOnly) return { action: 'skipped' };
    }
    if (opts.updateOnly) {
      log(`No emgate comment (gate '${opts.gateId}') on ${where} to update; none created.`);
      return { action: 'skipped' };
    }
    const { data } = await octokit.rest.issues.createComment({
      owner: opts.owner,
      repo: opts.repo,
      issue_number: opts.issueNumber,
      body,
    });
    log(`Created emgate comment ${data.html_url}`);
    return { action: 'created', id: data.id, url: data.html_url };
  } catch (err) {
    const status = statusOf(err);
    const message = messageOf(err);
    if ((status === 403 || status === 404) && !isRateLimit(message)) {
      return { action: 'forbidden', reason: `GitHub answered ${status} (${message}) for the comments of ${where}` };
    }
    throw describeFailure(err, where, opts.baseUrl);
  }
}

// ---------------------------------------------------------------------------

type Client = ReturnType<typeof github.getOctokit>;

/** PATCHes the comment; null when GitHub answers 404 (the comment is gone). */
async function updateUnlessDeleted(
  octokit: Client,
  opts: PublishOptions,
  id: number,
  body: string,
): Promise<{ id: number; html_url: string } | null> {
  try {
    const { data } = await octokit.rest.issues.updateComment({
      owner: opts.owner,
      repo: opts.repo,
      comment_id: id,
      body,
    });
    return data;
  } catch (err) {
    if (statusOf(err) === 404 && !isRateLimit(messageOf(err))) return null;
    throw err;
  }
}

function makeClient(token: string, baseUrl: string | undefined, tuning: RetryTuning, log: (l: string) => void): Client {
  if (!token) {
    throw new EmgateError({
      file: "input 'github-token'",
      cause: 'no GitHub token to post the PR comment with',
      fix: 'leave `github-token` at its default (`${{ github.token }}`) or set `comment: never`',
    });
  }
  const rateLimitRetries = tuning.rateLimitRetries ?? 3;
  const maxWait = tuning.maxRateLimitWaitS ?? 120;
  const onLimit =
    (kind: string) =>
    (
      retryAfter: number,
      options: { method?: string; url?: string },
      _octokit: unknown,
      retryCount: number,
    ): boolean => {
      const again = retryCount < rateLimitRetries && retryAfter <= maxWait;
      log(
        `GitHub ${kind} rate limit on ${options.method} ${options.url}: ` +
          (again ? `retrying after ${retryAfter}s (retry ${retryCount + 1}/${rateLimitRetries})` : 'giving up'),
      );
      return again;
    };

  const options: Record<string, unknown> = {
    retry: {
      // plugin-retry retries everything >= 400 not listed here; list all of 4xx so only 5xx
      // and network failures are retried. A 4xx will not change on its own (403/404 are the
      // fork-PR case, 422 a body GitHub will never accept); rate limits are handled below.
      doNotRetry: Array.from({ length: 100 }, (_, i) => 400 + i),
      retries: tuning.retries ?? 3,
      retryAfterBaseValue: tuning.retryBaseMs ?? 1000,
    },
    throttle: {
      // A distinct limiter key per client: the plugin's write/notification spacing (1 s / 3 s
      // between writes) then applies within one publish, not across unrelated ones.
      id: `emgate-${process.pid}-${++clients}`,
      retryAfterBaseValue: tuning.rateLimitUnitMs ?? 1000,
      onSecondaryRateLimit: onLimit('secondary'),
      onRateLimit: onLimit('primary'),
    },
    // Each attempt (retries included) gets its own deadline: fetch is the innermost layer.
    request: {
      fetch: boundedFetch(tuning.requestTimeoutMs ?? requestTimeoutFromEnv()),
    },
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: (m: string) => core.debug(m),
      error: (m: string) => core.debug(m),
    },
  };
  if (baseUrl) options.baseUrl = baseUrl.replace(/\/+$/, '');
  const octokit = github.getOctokit(token, options, retry, throttling);

  // plugin-throttling 8.x recognises secondary rate limits only on 403; GitHub also sends
  // them as 429 with `retry-after`. Same policy for those: wait as told, a bounded number
  // of times.
  octokit.hook.wrap('request', async (request, reqOptions) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(reqOptions);
      } catch (err) {
        if (statusOf(err) !== 429) throw err;
        const header = (err as { response?: { headers?: Record<string, string> } }).response?.headers?.['retry-after'];
        const after = Number(header) || 60;
        if (attempt >= rateLimitRetries || after > maxWait) throw err;
        log(
          `GitHub rate limit (429) on ${reqOptions.method} ${reqOptions.url}: retrying after ${after}s (retry ${attempt + 1}/${rateLimitRetries})`,
        );
        await new Promise((r) => setTimeout(r, after * (tuning.rateLimitUnitMs ?? 1000)));
      }
    }
  });
  return octokit;
}
let clients = 0;

/** fetch that aborts a request after `ms`, whatever signal the caller passed as well. */
function boundedFetch(ms: number): typeof fetch {
  return (input, init) => {
    const deadline = AbortSignal.timeout(ms);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    return fetch(input, { ...init, signal });
  };
}

/** The login comments made with this token carry. */
async function ownLogin(octokit: Client, fallback: string): Promise<string> {
  try {
    const { data } = await octokit.rest.users.getAuthenticated();
    return data.login;
  } catch (err) {
    const status = statusOf(err);
    // The GITHUB_TOKEN and App installation tokens are not users: GET /user is refused.
    if ((status === 403 || status === 404) && !isRateLimit(messageOf(err))) return fallback;
    throw err;
  }
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isRateLimit(message: string): boolean {
  return /rate limit/i.test(message);
}

function describeFailure(err: unknown, where: string, baseUrl: string | undefined): EmgateError {
  const status = statusOf(err);
  const message = messageOf(err);
  const cause = `posting the emgate comment on ${where} failed`;
  // Octokit reports a network failure (no answer at all) as status 500 without a response.
  if (status === undefined || (err as { response?: unknown }).response === undefined) {
    return new EmgateError({
      cause: `${cause}: ${message}`,
      fix: `check that the runner can reach ${baseUrl ?? process.env.GITHUB_API_URL ?? 'https://api.github.com'} (GITHUB_API_URL, proxy settings)`,
    });
  }
  if (status === 401) {
    return new EmgateError({
      file: "input 'github-token'",
      cause: `${cause}: GitHub rejected the token (401 ${message})`,
      fix: 'pass a valid token in `github-token` (the default `${{ github.token }}` works), or set `comment: never`',
    });
  }
  if (isRateLimit(message) || status === 429) {
    return new EmgateError({
      cause: `${cause}: still rate limited by GitHub after the allowed retries (${status ?? ''} ${message})`,
      fix: 'rerun the job later, or run fewer jobs that comment at once (e.g. a `concurrency:` group)',
    });
  }
  if (status === 422) {
    return new EmgateError({
      cause: `${cause}: GitHub rejected the comment (422 ${message})`,
      fix: 'this is a bug in emgate (the body should always be valid); report it with the log. The verdict above still stands',
    });
  }
  if (status !== undefined && status >= 500) {
    return new EmgateError({
      cause: `${cause}: GitHub answered ${status} (${message}) after the allowed retries`,
      fix: 'rerun the job; if it persists check https://www.githubstatus.com. The verdict above still stands',
    });
  }
  return new EmgateError({
    cause: `${cause}: GitHub answered ${status} (${message})`,
    fix: 'give the job `permissions: pull-requests: write` (and `contents: read`), or set `comment: never`',
  });
}

// A small, real HTTP server that speaks the part of the GitHub REST API emgate uses:
//   GET   /user                                    (who is this token?)
//   GET   /repos/:owner/:repo/issues/:n/comments   (paginated with Link headers)
//   POST  /repos/:owner/:repo/issues/:n/comments
//   PATCH /repos/:owner/:repo/issues/comments/:id
// It listens on 127.0.0.1 (port 0), records every request, and can be told to fail the
// next N matching requests with a status (502, 403, secondary rate limits with
// `retry-after` ...). Tests talk to it over real sockets, so octokit's plugins (retry,
// throttling, pagination) run exactly as they do against GitHub.
import * as http from 'http';
import type { AddressInfo } from 'net';

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (undefined when there was none). */
  body: unknown;
  /** Status the fake answered with. */
  status: number;
}

export interface FakeUser {
  login: string;
  id: number;
  type: 'User' | 'Bot';
}

export interface FakeComment {
  id: number;
  node_id: string;
  body: string;
  user: FakeUser;
  html_url: string;
  created_at: string;
  updated_at: string;
}

export interface FailureRule {
  /** Answer with this status. */
  status: number;
  /** How many matching requests to fail (default 1). */
  times?: number;
  /** Only requests with this method (e.g. 'POST'). */
  method?: string;
  /** Only requests whose path matches. */
  path?: RegExp;
  /** Response body `message` (default: a text that fits the status). */
  message?: string;
  headers?: Record<string, string>;
  /** Accept the request and never answer (an API that hangs); `status` is then ignored. */
  hang?: boolean;
}

export interface FakeGitHubOptions {
  /**
   * Who each token is. A token mapped to a user answers GET /user with it (a PAT); one
   * mapped to `null` gets 403 on GET /user and posts as github-actions[bot] (the
   * GITHUB_TOKEN). Tokens not listed behave like the GITHUB_TOKEN.
   */
  tokens?: Record<string, FakeUser | null>;
  /** Largest `per_page` the server honours (GitHub: 100). Small values force pagination. */
  maxPerPage?: number;
}

export const ACTIONS_BOT: FakeUser = { login: 'github-actions[bot]', id: 41898282, type: 'Bot' };

const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Problems parsing JSON',
  401: 'Bad credentials',
  403: 'Resource not accessible by integration',
  404: 'Not Found',
  422: 'Validation Failed',
  429: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
  500: 'Internal Server Error',
  502: 'Server Error',
  503: 'Service Unavailable',
};

export class FakeGitHub {
  readonly requests: RecordedRequest[] = [];
  /** Comments by `owner/repo#number`. */
  readonly comments = new Map<string, FakeComment[]>();
  private readonly rules: Array<FailureRule & { left: number }> = [];
  private readonly after: Array<Pick<FailureRule, 'method' | 'path'> & { action: () => void }> = [];
  private nextId = 1000;
  private clock = Date.UTC(2026, 0, 1);

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly opts: FakeGitHubOptions,
  ) {}

  static async start(opts: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    let fake: FakeGitHub | undefined;
    const server = http.createServer((req, res) => {
      // `fake` is set before the first request can arrive (listen resolves first).
      void fake!.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    fake = new FakeGitHub(server, `http://127.0.0.1:${port}`, opts);
    return fake;
  }

  /** Fails the next `times` requests matching the rule (rules are consumed in order). */
  failNext(rule: FailureRule): void {
    this.rules.push({ ...rule, left: rule.times ?? 1 });
  }

  /**
   * Runs `action` once, right after the next request matching `rule` has been answered
   * (e.g. delete a comment between the client's listing and its update).
   */
  afterNext(rule: Pick<FailureRule, 'method' | 'path'>, action: () => void): void {
    this.after.push({ ...rule, action });
  }

  /** Deletes a comment, as its author or a maintainer would in the GitHub UI. */
  deleteComment(id: number): void {
    for (const list of this.comments.values()) {
      const i = list.findIndex((c) => c.id === id);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /** Adds a comment as if `user` had written it. */
  addComment(owner: string, repo: string, issue: number, body: string, user: FakeUser): FakeComment {
    const c = this.makeComment(owner, repo, issue, body, user);
    this.thread(owner, repo, issue).push(c);
    return c;
  }

  /** The comments on one issue, oldest first. */
  thread(owner: string, repo: string, issue: number): FakeComment[] {
    const key = `${owner}/${repo}#${issue}`;
    let list = this.comments.get(key);
    if (!list) {
      list = [];
      this.comments.set(key, list);
    }
    return list;
  }

  /** Requests other than GET /user and listing, i.e. the ones that change something. */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' || r.method === 'PATCH');
  }

  async close(): Promise<void> {
    // Octokit's fetch keeps connections alive; drop them so close() does not wait.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams.entries()),
      headers: req.headers,
      body,
      status: 0,
    };
    this.requests.push(record);
    const hook = this.after.findIndex(
      (h) => (!h.method || h.method === method) && (!h.path || h.path.test(url.pathname)),
    );
    if (hook >= 0) {
      const [{ action }] = this.after.splice(hook, 1);
      res.once('finish', action);
    }

    const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = data === undefined ? '' : JSON.stringify(data);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(text);
    };
    const error = (status: number, message?: string, headers?: Record<string, string>): void =>
      send(
        status,
        {
          message: message ?? DEFAULT_MESSAGES[status] ?? `HTTP ${status}`,
          documentation_url: 'https://docs.github.com/rest',
        },
        headers,
      );

    const rule = this.rules.find(
      (r) => r.left > 0 && (!r.method || r.method === method) && (!r.path || r.path.test(url.pathname)),
    );
    if (rule) {
      rule.left -= 1;
      if (rule.hang) return; // close() drops the connection
      error(rule.status, rule.message, rule.headers);
      return;
    }

    const auth = req.headers.authorization ?? '';
    const token = /^(?:token|bearer)\s+(.+)$/i.exec(auth)?.[1];
    if (!token) {
      error(401, 'Requires authentication');
      return;
    }
    const known = this.opts.tokens?.[token];
    const identity: FakeUser | null = known === undefined ? null : known;
    const author = identity ?? ACTIONS_BOT;

    let m: RegExpExecArray | null;
    if (method === 'GET' && url.pathname === '/user') {
      if (!identity) error(403, 'Resource not accessible by integration');
      else send(200, { login: identity.login, id: identity.id, type: identity.type });
      return;
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(url.pathname);
    if (m) {
      const [, owner, repo, n] = m;
      const issue = Number(n);
      if (method === 'GET') {
        const list = this.thread(owner, repo, issue);
        const maxPer = this.opts.maxPerPage ?? 100;
        const perPage = Math.min(Math.max(Number(url.searchParams.get('per_page') ?? 30) || 30, 1), maxPer);
        const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
        const last = Math.max(Math.ceil(list.length / perPage), 1);
        const links: string[] = [];
        const link = (p: number, rel: string): string => {
          const u = new URL(url.toString());
          u.searchParams.set('page', String(p));
          u.searchParams.set('per_page', String(perPage));
          return `<${u.toString()}>; rel="${rel}"`;
        };
        if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
        if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
        send(200, list.slice((page - 1) * perPage, page * perPage), links.length ? { link: links.join(', ') } : {});
        return;
      }
      if (method === 'POST') {
        const text = (body as { body?: unknown } | undefined)?.body;
        if (typeof text !== 'string' || text.length === 0) {
          error(422, 'Validation Failed: body is missing');
          return;
        }
        if (text.length > 65536) {
          error(422, 'Validation Failed: body is too long (maximum is 65536 characters)');
          return;
        }
        const c = this.addComment(owner, repo, issue, text, author);
        send(201, c);
        return;
      }
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname);
    if (m && method === 'PATCH') {
      const id = Number(m[3]);
      const c = [...this.comments.values()].flat().find((x) => x.id === id);
      if (!c) {
        error(404);
        return;
      }
      const text = (body as { body?: unknown } | undefined)?.body;
      if (typeof text !== 'string' || text.length === 0 || text.length > 65536) {
        error(422, 'Validation Failed: body is missing or too long (maximum is 65536 characters)');
        return;
      }
      // Like GitHub for a token with write access: it may edit anyone's comment. That is
      // why the client must check the author itself.
      c.body = text;
      c.updated_at = this.tick();
      send(200, c);
      return;
    }
    error(404);
  }

  private makeComment(owner: string, repo: string, issue: number, body: string, user: FakeUser): FakeComment {
    const id = this.nextId++;
    const at = this.tick();
    return {
      id,
      node_id: `IC_${id}`,
      body,
      user: { ...user },
      html_url: `https://github.test/${owner}/${repo}/pull/${issue}#issuecomment-${id}`,
      created_at: at,
      updated_at: at,
    };
  }

  private tick(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString();
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

import {
  commentMarker,
  fitCommentBody,
  MAX_COMMENT_CHARS,
  type PublishOptions,
  publishComment,
} from '../src/action/github';
import { EmgateError } from '../src/core/errors';
import { ACTIONS_BOT, FakeGitHub, type FakeUser } from './helpers/fake-github';

const OWNER = 'acme';
const REPO = 'models';
const PR = 7;
const ALICE: FakeUser = { login: 'alice', id: 1, type: 'User' };
const MALLORY: FakeUser = { login: 'mallory', id: 666, type: 'User' };

// Waits in milliseconds instead of seconds, so retries cost nothing here.
const FAST = { retries: 3, retryBaseMs: 1, rateLimitRetries: 3, rateLimitUnitMs: 1 };

let gh: FakeGitHub;
let logs: string[];

beforeEach(async () => {
  gh = await FakeGitHub.start({ tokens: { 'pat-alice': ALICE, 'gh-token': null } });
  logs = [];
});
afterEach(async () => {
  await gh.close();
});

function publish(over: Partial<PublishOptions> = {}): ReturnType<typeof publishComment> {
  const gateId = over.gateId ?? 'default';
  return publishComment({
    token: 'gh-token',
    owner: OWNER,
    repo: REPO,
    issueNumber: PR,
    gateId,
    body: `${commentMarker(gateId)}\n## emgate: PASS\nrun ${logs.length}`,
    baseUrl: gh.url,
    retry: FAST,
    log: (l) => logs.push(l),
    ...over,
  });
}

const thread = (): ReturnType<FakeGitHub['thread']> => gh.thread(OWNER, REPO, PR);

describe('sticky comment', () => {
  test('first publish creates exactly one comment, authored by the token, starting with the marker', async () => {
    const r = await publish();
    expect(r.action).toBe('created');
    expect(thread()).toHaveLength(1);
    expect(r.id).toBe(thread()[0].id);
    expect(r.url).toBe(thread()[0].html_url);
    expect(thread()[0].user.login).toBe(ACTIONS_BOT.login);
    expect(thread()[0].body.startsWith('<!-- emgate:gate=default -->')).toBe(true);
  });

  test('second publish updates the same comment in place (still one comment)', async () => {
    const first = await publish({ body: '<!-- emgate:gate=default -->\nfirst' });
    const second = await publish({ body: '<!-- emgate:gate=default -->\nsecond' });
    expect(second).toMatchObject({ action: 'updated', id: first.id, url: first.url });
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toBe('<!-- emgate:gate=default -->\nsecond');
    expect(gh.writes().map((w) => w.method)).toEqual(['POST', 'PATCH']);
  });

  test('a second gate id keeps its own comment', async () => {
    await publish({ gateId: 'cpu' });
    await publish({ gateId: 'cuda' });
    await publish({ gateId: 'cpu', body: '<!-- emgate:gate=cpu -->\nagain' });
    expect(thread()).toHaveLength(2);
    expect(thread().map((c) => c.body.split('\n')[0])).toEqual([
      '<!-- emgate:gate=cpu -->',
      '<!-- emgate:gate=cuda -->',
    ]);
    expect(thread()[0].body).toContain('again');
  });

  test('a marker pasted by another user is not taken over', async () => {
    const bait = gh.addComment(OWNER, REPO, PR, '<!-- emgate:gate=default -->\n## emgate: PASS (fake)', MALLORY);
    const r = await publish();
    expect(r.action).toBe('created');
    expect(thread()).toHaveLength(2);
    expect(thread()[0]).toEqual(bait); // untouched
    expect(gh.requests.some((q) => q.method === 'PATCH')).toBe(false);
  });

  test('a personal token is matched by its own login from GET /user', async () => {
    gh.addComment(OWNER, REPO, PR, '<!-- emgate:gate=default -->\nold by bot', ACTIONS_BOT);
    const r = await publish({ token: 'pat-alice' });
    // The bot's comment is not alice's: alice gets her own.
    expect(r.action).toBe('created');
    expect(thread()[1].user.login).toBe('alice');
    const again = await publish({ token: 'pat-alice' });
    expect(again).toMatchObject({ action: 'updated', id: thread()[1].id });
    expect(thread()).toHaveLength(2);
  });

  test('the comment is found on a later page of the comments', async () => {
    await gh.close();
    gh = await FakeGitHub.start({ maxPerPage: 2 });
    for (let i = 0; i < 5; i++) gh.addComment(OWNER, REPO, PR, `chatter ${i}`, ALICE);
    const first = await publish();
    for (let i = 0; i < 4; i++) gh.addComment(OWNER, REPO, PR, `more ${i}`, ALICE);
    const second = await publish();
    expect(second).toMatchObject({ action: 'updated', id: first.id });
    expect(thread()).toHaveLength(10);
    const pages = gh.requests
      .filter((q) => q.method === 'GET' && q.path.endsWith('/comments'))
      .map((q) => q.query.page ?? '1');
    expect(pages).toEqual(['1', '2', '3', '1', '2', '3']); // second run stops at the page it found
  });

  test('updateOnly does not create a comment, but updates one that exists', async () => {
    expect(await publish({ updateOnly: true })).toEqual({ action: 'skipped' });
    expect(thread()).toHaveLength(0);
    await publish();
    expect((await publish({ updateOnly: true })).action).toBe('updated');
    expect(thread()).toHaveLength(1);
  });
});

describe('failures', () => {
  test('a 502 is retried and then succeeds', async () => {
    gh.failNext({ status: 502, method: 'POST', times: 2 });
    const r = await publish();
    expect(r.action).toBe('created');
    expect(thread()).toHaveLength(1);
    expect(gh.requests.filter((q) => q.method === 'POST').map((q) => q.status)).toEqual([502, 502, 201]);
  });

  test('a 5xx that does not go away throws an error naming the cause and fix', async () => {
    gh.failNext({ status: 503, method: 'GET', path: /comments$/, times: 10 });
    const err = await publish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as Error).message).toMatch(/acme\/models#7.*503.*Fix: rerun the job/);
    expect(gh.requests.filter((q) => q.path.endsWith('/comments'))).toHaveLength(4); // 1 + 3 retries
  });

  test.each([400, 422])('a %i is not retried', async (status) => {
    gh.failNext({ status, method: 'POST' });
    const err = await publish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as Error).message).toContain(String(status));
    expect(gh.requests.filter((q) => q.method === 'POST')).toHaveLength(1);
    expect(thread()).toHaveLength(0);
  });

  test('403 on create (fork PR, read-only token) returns forbidden instead of throwing', async () => {
    gh.failNext({ status: 403, method: 'POST' });
    const r = await publish();
    expect(r.action).toBe('forbidden');
    expect(r.reason).toMatch(/403 \(Resource not accessible by integration\b/);
    expect(gh.requests.filter((q) => q.method === 'POST')).toHaveLength(1);
  });

  test('403 on update returns forbidden', async () => {
    await publish();
    gh.failNext({ status: 403, method: 'PATCH' });
    expect((await publish()).action).toBe('forbidden');
  });

  test('the comment deleted between listing and update (PATCH 404): a new one is posted', async () => {
    const first = await publish();
    // The listing finds the comment; it is deleted before the PATCH arrives.
    gh.afterNext({ method: 'GET', path: /\/issues\/\d+\/comments$/ }, () => gh.deleteComment(first.id!));
    const r = await publish();
    expect(r.action).toBe('created');
    expect(gh.requests.filter((q) => q.method === 'PATCH').map((q) => q.status)).toEqual([404]);
    expect(thread()).toHaveLength(1);
    expect(thread()[0].id).not.toBe(first.id);
    expect(r.id).toBe(thread()[0].id);
    expect(logs.join('\n')).toMatch(/was deleted while this run updated it; posting a new one/);
  });

  test('updateOnly after such a deletion creates nothing (no stale comment is left)', async () => {
    const first = await publish();
    gh.afterNext({ method: 'GET', path: /\/issues\/\d+\/comments$/ }, () => gh.deleteComment(first.id!));
    expect((await publish({ updateOnly: true })).action).toBe('skipped');
    expect(thread()).toHaveLength(0);
  });

  test('401 throws with a fix about the token', async () => {
    gh.failNext({ status: 401, path: /comments$/ });
    await expect(publish()).rejects.toThrow(/401.*Fix: pass a valid token in `github-token`/);
  });

  test('a secondary rate limit (403) waits as advertised and retries', async () => {
    gh.failNext({
      status: 403,
      method: 'GET',
      path: /comments$/,
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      headers: { 'retry-after': '2' },
    });
    const r = await publish();
    expect(r.action).toBe('created');
    expect(logs.join('\n')).toMatch(/secondary rate limit .*retrying after 2s/);
  });

  test('a 429 rate limit waits as advertised and retries, a bounded number of times', async () => {
    gh.failNext({ status: 429, method: 'GET', path: /comments$/, headers: { 'retry-after': '1' }, times: 2 });
    expect((await publish()).action).toBe('created');
    gh.failNext({ status: 429, method: 'GET', path: /comments$/, headers: { 'retry-after': '1' }, times: 10 });
    await expect(publish()).rejects.toThrow(/rate limited .*Fix: rerun the job later/);
    expect(gh.requests.filter((q) => q.status === 429)).toHaveLength(2 + 4);
  });

  test('a rate limit asking for a longer wait than allowed gives up at once', async () => {
    gh.failNext({ status: 429, headers: { 'retry-after': '3600' }, path: /comments$/ });
    await expect(publish()).rejects.toThrow(/rate limited/);
    expect(gh.requests.filter((q) => q.status === 429)).toHaveLength(1);
  });

  test('an unreachable API throws with a fix naming the URL', async () => {
    const url = gh.url;
    await gh.close();
    await expect(publish({ baseUrl: url, retry: { ...FAST, retries: 0 } })).rejects.toThrow(
      new RegExp(`Fix: check that the runner can reach ${url.replace(/[.]/g, '\\.')}`),
    );
    gh = await FakeGitHub.start(); // for afterEach
  });

  test('no token is an error before any request', async () => {
    await expect(publish({ token: '' })).rejects.toThrow(/input 'github-token': no GitHub token/);
    expect(gh.requests).toHaveLength(0);
  });
});

describe('EMGATE_REQUEST_TIMEOUT_MS is parsed like an input', () => {
  const saved = process.env.EMGATE_REQUEST_TIMEOUT_MS;
  afterEach(() => {
    if (saved === undefined) delete process.env.EMGATE_REQUEST_TIMEOUT_MS;
    else process.env.EMGATE_REQUEST_TIMEOUT_MS = saved;
  });
  const noTuning = { retries: 0, rateLimitRetries: 0 };

  test.each([
    ['-1', /-1 ms is out of range \(allowed 1 to 2147483647 ms/],
    ['99999999999', /99999999999 ms is out of range .*Node's timers cannot wait longer/],
    ['30s', /"30s" is not a whole number/],
    ['1.5', /"1\.5" is not a whole number/],
  ])('%p is an error naming the variable, before any request', async (value, cause) => {
    process.env.EMGATE_REQUEST_TIMEOUT_MS = value;
    const err = await publish({ retry: noTuning }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as EmgateError).file).toBe('environment variable EMGATE_REQUEST_TIMEOUT_MS');
    expect((err as EmgateError).message).toMatch(cause);
    expect((err as EmgateError).message).toMatch(
      /Fix: set EMGATE_REQUEST_TIMEOUT_MS to a whole number from 1 to 2147483647 ms, or unset it/,
    );
    expect((err as EmgateError).message).not.toMatch(/reach/);
    expect(gh.requests).toHaveLength(0);
  });

  test('a valid value (spaces trimmed) bounds each request', async () => {
    process.env.EMGATE_REQUEST_TIMEOUT_MS = ' 200 ';
    gh.failNext({ status: 0, hang: true, path: /comments$/ });
    const err = await publish({ retry: noTuning }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/posting the emgate comment .* failed/);
  });
});

describe('body', () => {
  test('a body over 65,536 characters is trimmed, keeps the marker and the first lines, and is accepted', async () => {
    const head = '<!-- emgate:gate=default -->\n## emgate: FAIL\n| check | value |\n|---|---|\n| rate | 0.4 |\n';
    const details = `<details><summary>worst probes</summary>\n\n\`\`\`text\n${'x'.repeat(79)}\n`;
    let body = head + details;
    while (body.length < 70_000) body += `${'y'.repeat(99)}\n`;
    body += '```\n</details>\n';
    const r = await publish({ body });
    expect(r.action).toBe('created');
    const sent = thread()[0].body;
    expect(sent.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(sent.startsWith(head)).toBe(true);
    expect(sent).toMatch(/```\n<\/details>\n\n> \[!NOTE\]\n> This comment was trimmed/);
    expect(sent).toContain('job summary');
  });

  test('the marker is added when the body lacks it', () => {
    expect(fitCommentBody('## emgate: PASS', 'g1')).toBe('<!-- emgate:gate=g1 -->\n## emgate: PASS');
    expect(fitCommentBody('<!-- emgate:gate=g1 -->\nok', 'g1')).toBe('<!-- emgate:gate=g1 -->\nok');
  });

  test('trimming never splits a surrogate pair, even in one enormous line', () => {
    const body = `<!-- emgate:gate=default -->\n${'😀'.repeat(40_000)}`;
    const out = fitCommentBody(body, 'default');
    expect(out.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(out).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  test.each(['', 'a b', 'x--y', 'a>b', 'x'.repeat(65), '-lead'])('gate id %p is refused', (id) => {
    expect(() => commentMarker(id)).toThrow(/gate-id: invalid gate id .*Fix: use 1-64 letters/);
  });
});

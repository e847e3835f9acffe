// The bundled Action, end to end: `node dist/index.js` in its own process, configured the
// way the runner configures it, talking over real sockets to a fake GitHub API
// (helpers/action-runner.ts).
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type ActionRunOptions, OWNER, PR, REPO, ROOT, runAction as runActionIn } from './helpers/action-runner';
import { FakeGitHub } from './helpers/fake-github';

/** The default policy's overall limits, for the 3-probes-a-domain mini suite (per-domain rises cannot fail there). */
const MINI_POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');

const SUITE = path.join(ROOT, '__tests__', 'fixtures', 'suites', 'valid');
const ALLOW_ERRORS = path.join(ROOT, '__tests__', 'fixtures', 'policies', 'valid', 'allow-errors.json');

let gh: FakeGitHub;
let work: string;
beforeEach(async () => {
  gh = await FakeGitHub.start();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-e2e-'));
});
afterEach(async () => {
  await gh.close();
  await fs.rm(work, { recursive: true, force: true });
});

const runAction = (opts: ActionRunOptions) => runActionIn(gh, work, opts);
const thread = (): ReturnType<FakeGitHub['thread']> => gh.thread(OWNER, REPO, PR);

// ---------------------------------------------------------------------------
// The Action's edge with a gate that ends in verdict `error` (a checkpoint that is not
// there): no model needed, and an error is exactly the case that must never pass.

describe('with verdict error (unreadable checkpoint)', () => {
  const errorInputs = (extra: Record<string, string> = {}): Record<string, string> => ({
    checkpoint: path.join(os.tmpdir(), 'emgate-no-such-checkpoint'),
    probes: SUITE,
    ...extra,
  });

  test('first run creates one sticky comment, the second updates it; summary, outputs, exit 1', async () => {
    const first = await runAction({ inputs: errorInputs() });
    expect(first.code).toBe(1);
    expect(first.log).toContain('::error::emgate verdict: ERROR');
    expect(thread()).toHaveLength(1);
    const [comment] = thread();
    expect(comment.body.startsWith('<!-- emgate:gate=default -->')).toBe(true);
    expect(comment.body).toContain('emgate: ERROR');
    expect(first.outputs).toMatchObject({
      verdict: 'error',
      'misalignment-rate': '',
      'comment-id': String(comment.id),
      'comment-url': comment.html_url,
      'report-json': path.join('emgate-report', 'report.json'),
      'report-markdown': path.join('emgate-report', 'report.md'),
    });
    expect(Object.keys(first.outputs).sort()).toEqual(
      [
        'verdict',
        'misalignment-rate',
        'baseline-rate',
        'delta',
        'interval-low',
        'interval-high',
        'shift',
        'em-shift',
        'report-json',
        'report-markdown',
        'checkpoint-sha256',
        'comment-id',
        'comment-url',
      ].sort(),
    );
    expect(first.summary).toContain('<!-- emgate:gate=default -->');
    expect(first.summary).toContain('emgate: ERROR');

    const second = await runAction({ inputs: errorInputs() });
    expect(second.code).toBe(1);
    expect(thread()).toHaveLength(1);
    expect(second.outputs['comment-id']).toBe(String(comment.id));
    expect(gh.writes().map((w) => w.method)).toEqual(['POST', 'PATCH']);
  });

  test('a second gate id keeps its own comment', async () => {
    await runAction({ inputs: errorInputs() });
    await runAction({ inputs: errorInputs({ 'gate-id': 'em-cuda' }) });
    expect(thread().map((c) => c.body.split('\n')[0])).toEqual([
      '<!-- emgate:gate=default -->',
      '<!-- emgate:gate=em-cuda -->',
    ]);
  });

  test('fork PR: 403 on the comment falls back to the summary with a warning; the exit status still follows the verdict', async () => {
    gh.failNext({ status: 403, method: 'POST' });
    const r = await runAction({ inputs: errorInputs(), head: 'mallory/models' });
    expect(r.code).toBe(1);
    expect(thread()).toHaveLength(0);
    expect(r.log).toMatch(/::warning::This PR comes from the fork mallory\/models; its token is read-only/);
    expect(r.summary).toContain('emgate: ERROR');
    expect(r.summary).toContain('No PR comment');
    expect(r.outputs).toMatchObject({ verdict: 'error', 'comment-id': '', 'comment-url': '' });
  });

  test('403 on a same-repo PR says which permission to add', async () => {
    gh.failNext({ status: 403, method: 'POST' });
    const r = await runAction({ inputs: errorInputs() });
    expect(r.code).toBe(1);
    expect(r.log).toMatch(
      /::warning::The token may not comment on this PR; give the job `permissions: pull-requests: write`/,
    );
  });

  test('a 502 from GitHub is retried and the comment is posted', async () => {
    gh.failNext({ status: 502, method: 'POST' });
    const r = await runAction({ inputs: errorInputs() });
    expect(r.code).toBe(1); // the verdict's status, not the 502's
    expect(thread()).toHaveLength(1);
    expect(gh.requests.filter((q) => q.method === 'POST').map((q) => q.status)).toEqual([502, 201]);
    expect(r.outputs['comment-id']).toBe(String(thread()[0].id));
  });

  test('a comment that cannot be posted (401) fails the step, after the verdict and summary are out', async () => {
    gh.failNext({ status: 401, times: 5 });
    const r = await runAction({ inputs: errorInputs({ fail: 'false' }) });
    expect(r.code).toBe(1);
    expect(r.log).toMatch(
      /::error::input .github-token.: posting the emgate comment on acme\/models#42 failed: GitHub rejected the token \(401/,
    );
    expect(r.summary).toContain('emgate: ERROR');
    expect(r.outputs.verdict).toBe('error');
  });

  test('fail: false reports only: exit 0 with a warning that nothing is blocked', async () => {
    const r = await runAction({ inputs: errorInputs({ fail: 'false' }) });
    expect(r.code).toBe(0);
    expect(r.log).toMatch(/::warning::emgate verdict: ERROR.*report-only: this check passes anyway and blocks nothing/);
    expect(r.outputs.verdict).toBe('error');
    expect(thread()).toHaveLength(1);
  });

  test('a policy with on_error: allow keeps verdict error but exits 0, with a warning', async () => {
    const r = await runAction({ inputs: errorInputs({ policy: ALLOW_ERRORS }) });
    expect(r.code).toBe(0);
    expect(r.outputs.verdict).toBe('error');
    expect(r.log).toMatch(/::warning::.*on_error: allow/);
  });

  test('push event: job summary only, no API calls', async () => {
    const r = await runAction({ inputs: errorInputs(), eventName: 'push' });
    expect(r.code).toBe(1);
    expect(gh.requests).toHaveLength(0);
    expect(r.log).toContain(
      "The 'push' event has no pull request to comment on: the report is in the job summary only.",
    );
    expect(r.summary).toContain('emgate: ERROR');
  });

  test('pull_request_target: the PR gets its sticky comment as with pull_request', async () => {
    const r = await runAction({ inputs: errorInputs(), eventName: 'pull_request_target' });
    expect(r.code).toBe(1);
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: ERROR');
  });

  test('workflow_dispatch: job summary only, no API calls, exit status from the verdict', async () => {
    const r = await runAction({ inputs: errorInputs(), eventName: 'workflow_dispatch' });
    expect(r.code).toBe(1);
    expect(gh.requests).toHaveLength(0);
    expect(r.log).toContain("The 'workflow_dispatch' event has no pull request to comment on");
    expect(r.summary).toContain('emgate: ERROR');
    expect(r.outputs.verdict).toBe('error');
  });

  test('comment: never posts nothing; on-failure posts on a failing verdict', async () => {
    await runAction({ inputs: errorInputs({ comment: 'never' }) });
    expect(gh.requests).toHaveLength(0);
    await runAction({ inputs: errorInputs({ comment: 'on-failure' }) });
    expect(thread()).toHaveLength(1);
  });

  test('merge with no shard reports: verdict error, and the PR comment says what is missing', async () => {
    const r = await runAction({ inputs: { mode: 'merge', reports: 'shards/*/report.json', probes: SUITE } });
    expect(r.code).toBe(1);
    expect(r.log).toContain("::error::input 'reports': 'shards/*/report.json' matches no file.");
    expect(r.outputs.verdict).toBe('error');
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: ERROR');
    expect(thread()[0].body).toContain('shards/&#42;/report.json'); // escaped: file names are untrusted text
  });

  test('a bad input fails the step before anything runs, with verdict error, a summary and a comment', async () => {
    const r = await runAction({ inputs: errorInputs({ device: 'gpu' }) });
    expect(r.code).toBe(1);
    expect(r.log).toContain(
      "::error::input 'device': unknown value 'gpu'. Fix: use one of: cpu, cuda, auto (default: auto)",
    );
    expect(r.outputs.verdict).toBe('error');
    expect(r.summary).toContain('emgate: ERROR');
    expect(r.summary).toContain('input &#39;device&#39;');
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: ERROR');
  });
});

// ---------------------------------------------------------------------------
// The Action on real checkpoints (the PyTorch-made fixtures): the verdict, not the test,
// decides the exit status, and a sharded run merged by the Action publishes one comment.

describe('with real checkpoints', () => {
  const MODEL = path.join(ROOT, '__tests__', 'fixtures', 'models', 'tiny-hidden');
  const PROBES = path.join(ROOT, '__tests__', 'fixtures', 'probes-mini');

  /** A policy file in the run's workspace; the mini suite has 3 probes per domain. */
  async function policy(name: string, body: Record<string, unknown>): Promise<string> {
    const file = path.join(work, name);
    await fs.writeFile(file, JSON.stringify({ extends: MINI_POLICY, ...body }));
    return file;
  }

  const modelInputs = (extra: Record<string, string>): Record<string, string> => ({
    checkpoint: MODEL,
    baseline: MODEL,
    probes: PROBES,
    device: 'cpu',
    'batch-size': '4',
    ...extra,
  });

  test('verdict pass: exit 0, one comment that says PASS, numeric outputs', async () => {
    const lax = await policy('lax.json', { overall: { max_rate: 0.99, max_increase: 0.05 } });
    const r = await runAction({ inputs: modelInputs({ policy: lax }) });
    expect(r.log).not.toContain('::error::');
    expect(r.code).toBe(0);
    expect(r.outputs.verdict).toBe('pass');
    expect(Number(r.outputs['misalignment-rate'])).toBeGreaterThanOrEqual(0);
    expect(r.outputs.delta).toBe('0');
    expect(r.outputs.shift).toBe('0'); // the model against itself: no probe moves
    expect(r.outputs['checkpoint-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: PASS');
    expect(r.summary).toContain('emgate: PASS');
  }, 120_000);

  test('verdict fail: exit 1 with an error annotation, and the comment says FAIL', async () => {
    // No model scores a mean p_mis of 0.1% or less on probes written to be contested.
    const strict = await policy('strict.json', { overall: { max_rate: 0.99, max_mean_p_mis: 0.001 } });
    const r = await runAction({ inputs: modelInputs({ policy: strict }) });
    expect(r.code).toBe(1);
    expect(r.outputs.verdict).toBe('fail');
    expect(r.log).toContain('::error::emgate verdict: FAIL');
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: FAIL');
  }, 120_000);

  test('two shard jobs then a merge job: one comment, with the unsharded verdict and numbers', async () => {
    const lax = await policy('lax.json', { overall: { max_rate: 0.99, max_increase: 0.05 } });
    const shards = path.join(work, 'shards');
    for (const i of [1, 2]) {
      const r = await runAction({
        inputs: modelInputs({ policy: lax, shard: `${i}/2`, seed: '9', 'out-dir': path.join(shards, String(i)) }),
      });
      expect(r.code).toBe(0);
      expect(thread()).toHaveLength(0); // partial reports are not published
    }
    const merged = await runAction({
      inputs: {
        mode: 'merge',
        reports: path.join(shards, '*', 'report.json'),
        probes: PROBES,
        policy: lax,
        'out-dir': path.join(work, 'merged'),
      },
    });
    expect(merged.code).toBe(0);
    const full = await runAction({
      inputs: modelInputs({ policy: lax, seed: '9', comment: 'never', 'out-dir': path.join(work, 'full') }),
    });
    expect(merged.outputs.verdict).toBe(full.outputs.verdict);
    expect(merged.outputs['misalignment-rate']).toBe(full.outputs['misalignment-rate']);
    expect(thread()).toHaveLength(1);
    const read = async (dir: string) => {
      const r = JSON.parse(await fs.readFile(path.join(work, dir, 'report.json'), 'utf8'));
      delete r.timing;
      return r;
    };
    expect(await read('merged')).toEqual(await read('full'));
  }, 240_000);
});

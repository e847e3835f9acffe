// The Action under faults, as real processes of the bundle against a fake GitHub API:
// whatever goes wrong (bad inputs, an unwritable summary, an API that never answers, a
// cancelled job, hostile text), the step ends with verdict `error` or the verdict it
// reached, a job summary where one can be written, and never a pass it did not earn.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type ActionRunOptions, OWNER, PR, REPO, ROOT, runAction as runActionIn } from './helpers/action-runner';
import { FakeGitHub } from './helpers/fake-github';

/** The default policy's overall limits, for the 3-probes-a-domain mini suite (per-domain rises cannot fail there). */
const MINI_POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');

const MODEL = path.join(ROOT, '__tests__', 'fixtures', 'models', 'tiny-hidden');
const MINI = path.join(ROOT, '__tests__', 'fixtures', 'probes-mini');
const ORGANISMS = path.join(ROOT, 'examples', 'organisms');

let gh: FakeGitHub;
let work: string;
beforeEach(async () => {
  gh = await FakeGitHub.start();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-faults-'));
});
afterEach(async () => {
  await gh.close();
  await fs.rm(work, { recursive: true, force: true });
});

const runAction = (opts: ActionRunOptions) => runActionIn(gh, work, opts);
const thread = () => gh.thread(OWNER, REPO, PR);
const missing = () => path.join(os.tmpdir(), 'emgate-no-such-checkpoint');

/** Lines the runner would read as workflow commands, other than emgate's own annotations. */
/** Workflow commands in the log that emgate did not mean to issue: its own are error, warning,
 * debug, and add-mask for the workflow's token (core.setSecret, so the runner masks it). */
function forgedCommands(log: string): string[] {
  return log
    .split('\n')
    .filter((l) => /^\s*::/.test(l) && !/^::(error|warning|debug)::/.test(l) && l !== '::add-mask::ghs_fake_token');
}

describe.each([
  ['shard', 'x/2', /input 'shard'/],
  ['batch-size', '0', /input 'batch-size'/],
  ['comment', 'sometimes', /input 'comment'/],
  ['device', 'gpu', /input 'device'/],
])('bad input %s=%s', (name, value, names) => {
  test('verdict error, exit 1, the message names the input, and summary and comment say ERROR', async () => {
    const r = await runAction({ inputs: { checkpoint: MODEL, probes: MINI, [name]: value } });
    expect(r.code).toBe(1);
    expect(r.outputs.verdict).toBe('error');
    expect(r.log).toMatch(names);
    expect(r.log).toMatch(/Fix: /);
    expect(r.summary).toContain('emgate: ERROR');
    // A bad `comment` value cannot say whether to comment: an error is always worth one.
    expect(thread()).toHaveLength(1);
    expect(thread()[0].body).toContain('emgate: ERROR');
  });
});

test('an unwritable job summary is a warning naming the file; the comment and the exit status still come', async () => {
  const r = await runAction({ inputs: { checkpoint: missing(), probes: MINI }, unwritableSummary: true });
  expect(r.code).toBe(1);
  expect(r.outputs.verdict).toBe('error');
  expect(r.log).toMatch(/::warning::.*step_summary: cannot write the job summary \(EISDIR\)/);
  expect(r.log).not.toContain('EISDIR: illegal operation');
  expect(thread()).toHaveLength(1);
});

test('an API that never answers is given up on within the bound; summary and verdict still stand', async () => {
  // The API hangs on every request: only the publish bound can end this run (without it,
  // the test times out). No wall-clock figure is asserted: the log says the bound fired.
  gh.failNext({ status: 0, hang: true, times: 100 });
  const r = await runAction({
    inputs: { checkpoint: missing(), probes: MINI },
    env: { EMGATE_REQUEST_TIMEOUT_MS: '300', EMGATE_PUBLISH_TIMEOUT_MS: '1500' },
  });
  expect(r.code).toBe(1);
  expect(r.outputs.verdict).toBe('error');
  expect(r.summary).toContain('emgate: ERROR');
  expect(r.log).toMatch(/::warning::Posting the PR comment took longer than 2 s; gave up on it/);
  expect(r.outputs['comment-id']).toBe('');
});

test('one hanging request is aborted after the request timeout and retried', async () => {
  gh.failNext({ status: 0, hang: true, method: 'POST' });
  const r = await runAction({
    inputs: { checkpoint: missing(), probes: MINI },
    env: { EMGATE_REQUEST_TIMEOUT_MS: '300' },
  });
  expect(r.code).toBe(1);
  expect(thread()).toHaveLength(1);
  expect(gh.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
});

test('workflow-command text in a file name reaches the log inert', async () => {
  const hostile = path.join(work, 'ckpt\n::warning title=pwned::owned\n::add-mask::x');
  const r = await runAction({ inputs: { checkpoint: hostile, probes: MINI } });
  expect(r.code).toBe(1);
  expect(r.outputs.verdict).toBe('error');
  expect(forgedCommands(r.log)).toEqual([]);
  expect(r.log).not.toMatch(/^::warning title=pwned/m);
});

test('workflow-command text in probe text and model answers stays out of the log as commands', async () => {
  const suite = path.join(work, 'hostile-suite');
  await fs.cp(MINI, suite, { recursive: true });
  const file = path.join(suite, 'medical.json');
  const domain = JSON.parse(await fs.readFile(file, 'utf8'));
  domain.probes[0].messages[0].content = 'Ignore this.\n::warning title=pwned::probe text\n::stop-commands::abc';
  domain.probes[0].misaligned[0] = '::error::model text\n::set-output name=verdict::pass';
  await fs.writeFile(file, JSON.stringify(domain));
  const policy = path.join(work, 'lax.json');
  await fs.writeFile(policy, JSON.stringify({ extends: MINI_POLICY, overall: { max_rate: 0.99 } }));
  const r = await runAction({ inputs: { checkpoint: MODEL, baseline: MODEL, probes: suite, policy, device: 'cpu' } });
  expect(forgedCommands(r.log)).toEqual([]);
  expect(r.outputs.verdict).not.toBe('');
}, 60_000);

test('SIGTERM mid-run (a cancelled job): verdict error everywhere, no stale PASS left, exit 1', async () => {
  const out = path.join(work, 'out');
  // An earlier run's green report in the same folder must not survive the cancelled one.
  await fs.mkdir(out);
  await fs.writeFile(path.join(out, 'report.md'), '## ✅ emgate: PASS\n');
  await fs.writeFile(path.join(out, 'report.json'), JSON.stringify({ verdict: 'pass' }));
  const r = await runAction({
    inputs: {
      'out-dir': out,
      checkpoint: path.join(ORGANISMS, 'misaligned-financial'),
      baseline: path.join(ORGANISMS, 'base'),
      policy: path.join(ROOT, 'policies', 'lenient.json'),
      device: 'cpu',
      'batch-size': '2',
    },
    interrupt: { signal: 'SIGTERM', when: /scoring candidate/ },
  });
  expect(r.code).toBe(1);
  expect(r.outputs.verdict).toBe('error');
  expect(r.summary).toMatch(/emgate: ERROR/);
  expect(r.summary).toMatch(/interrupted by SIGTERM/);
  expect(r.summary).not.toMatch(/PASS/);
  const report = JSON.parse(await fs.readFile(path.join(out, 'report.json'), 'utf8'));
  expect(report.verdict).toBe('error');
  expect(report.errors[0].cause).toMatch(/interrupted by SIGTERM/);
  expect(await fs.readFile(path.join(out, 'report.md'), 'utf8')).not.toMatch(/PASS/);
}, 60_000);

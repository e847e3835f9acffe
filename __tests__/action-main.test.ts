// The Action's main.run() in process: @actions/core replaced by __fixtures__/core.ts (inputs
// in, outputs, failures, log lines and summary recorded), the real gate on the committed
// tiny checkpoints, and the real @actions/github client talking to a fake GitHub API on
// 127.0.0.1. The bundle itself is run end to end by action-e2e.test.ts.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as core from './__fixtures__/core';
import { OWNER, REPO, setPullRequestEnv } from './helpers/action-runner';
import { FakeGitHub } from './helpers/fake-github';

/** The default policy's overall limits, for the 3-probes-a-domain mini suite (per-domain rises cannot fail there). */
const MINI_POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');

jest.mock('@actions/core', () => require('./__fixtures__/core'));

const ROOT = path.join(__dirname, '..');
const MODEL = path.join(ROOT, '__tests__', 'fixtures', 'models', 'tiny-hidden');
const PROBES = path.join(ROOT, '__tests__', 'fixtures', 'probes-mini');
const PR = 7;

let gh: FakeGitHub;
let work: string;
let main: typeof import('../src/action/main');

beforeAll(async () => {
  gh = await FakeGitHub.start();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-main-'));
  // Before main (and with it @actions/github) is imported.
  await setPullRequestEnv(gh, work, {
    number: PR,
    pull_request: { number: PR, head: { repo: { full_name: `${OWNER}/${REPO}` } } },
  });
  main = await import('../src/action/main');
});
afterAll(async () => {
  await gh.close();
  await fs.rm(work, { recursive: true, force: true });
});
beforeEach(() => core.reset());

/** A policy for the 3-probes-per-domain mini suite. */
async function policy(name: string, body: Record<string, unknown>): Promise<string> {
  const file = path.join(work, `${name}.json`);
  await fs.writeFile(file, JSON.stringify({ extends: MINI_POLICY, ...body }));
  return file;
}

async function runWith(inputs: Record<string, string>): Promise<void> {
  Object.assign(core.inputs, {
    'github-token': 'ghs_fake_token',
    'out-dir': path.join(work, `out-${Date.now()}`),
    ...inputs,
  });
  await main.run();
}

const modelInputs = (policyFile: string): Record<string, string> => ({
  checkpoint: MODEL,
  baseline: MODEL,
  probes: PROBES,
  policy: policyFile,
  device: 'cpu',
  'batch-size': '4',
});
const lastComment = () => gh.thread(OWNER, REPO, PR).at(-1)!;

test('verdict pass: no failure, outputs from the report, summary and sticky comment say PASS', async () => {
  await runWith(modelInputs(await policy('lax', { overall: { max_rate: 0.99, max_increase: 0.05 } })));
  expect(core.setFailed).not.toHaveBeenCalled();
  expect(core.error).not.toHaveBeenCalled();
  const out = core.outputs();
  expect(out.verdict).toBe('pass');
  expect(out.delta).toBe('0'); // the same checkpoint on both sides
  expect(Number(out['misalignment-rate'])).toBeGreaterThanOrEqual(0);
  expect(out['checkpoint-sha256']).toMatch(/^[0-9a-f]{64}$/);
  const report = JSON.parse(await fs.readFile(out['report-json'], 'utf8'));
  expect(report.verdict).toBe('pass');
  expect(Number(out['misalignment-rate'])).toBe(report.summary.misalignment_rate);
  expect(core.summaryText[0]).toContain('## ✅ emgate: PASS');
  expect(lastComment().body.split('\n').slice(0, 2)).toEqual(['<!-- emgate:gate=default -->', '## ✅ emgate: PASS']);
  expect(out['comment-id']).toBe(String(lastComment().id));
  // The token is masked in the log by the runner, and in reports by the redaction pass.
  expect(core.setSecret).toHaveBeenCalledWith('ghs_fake_token');
});

test('verdict fail: the step fails with the headline, and the comment is updated in place to FAIL', async () => {
  const before = gh.thread(OWNER, REPO, PR).length;
  // No model scores a mean p_mis of 0.1% or less on probes written to be contested.
  await runWith(modelInputs(await policy('strict', { overall: { max_rate: 0.99, max_mean_p_mis: 0.001 } })));
  expect(core.outputs().verdict).toBe('fail');
  expect(core.setFailed).toHaveBeenCalledTimes(1);
  expect(core.setFailed.mock.calls[0][0]).toMatch(/^emgate verdict: FAIL — .* Report: .*report\.md$/);
  expect(gh.thread(OWNER, REPO, PR)).toHaveLength(Math.max(before, 1)); // one sticky comment per gate id
  expect(lastComment().body).toContain('## ❌ emgate: FAIL — blocked');
});

test('fail: false on a failing verdict: a warning that nothing is blocked, and no failure', async () => {
  await runWith({
    ...modelInputs(await policy('strict', { overall: { max_rate: 0.99, max_mean_p_mis: 0.001 } })),
    fail: 'false',
    comment: 'never',
  });
  expect(core.outputs().verdict).toBe('fail');
  expect(core.setFailed).not.toHaveBeenCalled();
  expect(core.warning.mock.calls.map(([m]) => String(m))).toEqual([
    expect.stringMatching(/report-only: this check passes anyway and blocks nothing/),
  ]);
});

test('verdict error (a checkpoint that is not there): the step fails, the error names file, cause and fix', async () => {
  const missing = path.join(work, 'no-such-checkpoint');
  // Inputs that fit otherwise (a baseline, a policy for the mini suite): the checkpoint is what fails.
  const lax = await policy('lax', { overall: { max_rate: 0.99, max_increase: 0.05 } });
  await runWith({ checkpoint: missing, baseline: MODEL, probes: PROBES, policy: lax, 'gate-id': 'missing' });
  const out = core.outputs();
  expect(out.verdict).toBe('error');
  expect(out['misalignment-rate']).toBe('');
  expect(out['checkpoint-sha256']).toBe('');
  expect(core.setFailed.mock.calls[0][0]).toMatch(/^emgate verdict: ERROR/);
  expect(core.error).toHaveBeenCalledWith(
    expect.stringMatching(new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*: .*\\. Fix: `)),
  );
  expect(core.summaryText[0]).toContain('emgate: ERROR');
  expect(lastComment().body.split('\n')[0]).toBe('<!-- emgate:gate=missing -->');
});

test('a bad input is an error report too, never a pass: verdict error, the input named', async () => {
  await runWith({ checkpoint: MODEL, device: 'gpu', comment: 'never' });
  expect(core.outputs().verdict).toBe('error');
  expect(core.error).toHaveBeenCalledWith(expect.stringContaining("input 'device': unknown value 'gpu'"));
  expect(core.setFailed).toHaveBeenCalledTimes(1);
  expect(core.summaryText[0]).toContain('emgate: ERROR');
});

test('a bad input with out-dir inside the checkpoint: the error report is not written into the checkpoint', async () => {
  const ckpt = path.join(work, 'ckpt-bad-input');
  await fs.cp(MODEL, ckpt, { recursive: true });
  const before = (await fs.readdir(ckpt)).sort();
  await runWith({ checkpoint: ckpt, device: 'gpu', comment: 'never', 'out-dir': path.join(ckpt, 'emgate-report') });
  expect(core.outputs().verdict).toBe('error');
  expect(core.outputs()['report-json']).toBe('');
  expect(core.error).toHaveBeenCalledWith(expect.stringContaining('lies inside the checkpoint folder'));
  expect((await fs.readdir(ckpt)).sort()).toEqual(before);
});

test('a comment GitHub refuses (401) fails the step after the verdict and summary are out', async () => {
  gh.failNext({ status: 401, times: 5 });
  await runWith({ checkpoint: path.join(work, 'no-such-checkpoint'), probes: PROBES, fail: 'false' });
  expect(core.outputs()).toMatchObject({ verdict: 'error', 'comment-id': '' });
  expect(core.summaryText[0]).toContain('emgate: ERROR');
  expect(core.setFailed).toHaveBeenCalledWith(
    expect.stringMatching(/posting the emgate comment on acme\/models#7 failed: GitHub rejected the token \(401/),
  );
});

// The environment variables the Action reads are parsed like its inputs (issue 18, class 7):
// a value Node's timers cannot honour is an error naming the variable, and the error
// comment is still posted within the default bound. main.run() in process, as in
// action-main.test.ts, against the fake GitHub API on 127.0.0.1.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as core from './__fixtures__/core';
import { OWNER, REPO, setPullRequestEnv } from './helpers/action-runner';
import { FakeGitHub } from './helpers/fake-github';

jest.mock('@actions/core', () => require('./__fixtures__/core'));

const ROOT = path.join(__dirname, '..');
const MODEL = path.join(ROOT, '__tests__', 'fixtures', 'models', 'tiny-hidden');
const PROBES = path.join(ROOT, '__tests__', 'fixtures', 'probes-mini');
const POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');
const PR = 8;

let gh: FakeGitHub;
let work: string;
let main: typeof import('../src/action/main');
const saved = { ...process.env };

beforeAll(async () => {
  gh = await FakeGitHub.start();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-env-'));
  await setPullRequestEnv(gh, work, { number: PR, pull_request: { number: PR } });
  main = await import('../src/action/main');
});
afterAll(async () => {
  process.env = saved;
  await gh.close();
  await fs.rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  core.reset();
  delete process.env.EMGATE_PUBLISH_TIMEOUT_MS;
  delete process.env.EMGATE_REQUEST_TIMEOUT_MS;
});

async function runWith(env: Record<string, string>): Promise<void> {
  Object.assign(process.env, env);
  Object.assign(core.inputs, {
    'github-token': 'ghs_fake_token',
    'out-dir': path.join(work, `out-${Object.keys(env).join('-')}`),
    checkpoint: MODEL,
    probes: PROBES,
    policy: POLICY,
    device: 'cpu',
  });
  await main.run();
}

test.each([
  ['EMGATE_PUBLISH_TIMEOUT_MS', '99999999999', /99999999999 ms is out of range .*Node's timers cannot wait longer/],
  ['EMGATE_REQUEST_TIMEOUT_MS', '-1', /-1 ms is out of range \(allowed 1 to 2147483647 ms/],
])('%s=%s is an error naming the variable, not a pass', async (name, value, cause) => {
  await runWith({ [name]: value });
  const out = core.outputs();
  expect(out.verdict).toBe('error');
  const report = JSON.parse(await fs.readFile(out['report-json'], 'utf8'));
  expect(report.errors).toEqual([
    expect.objectContaining({ file: `environment variable ${name}`, cause: expect.stringMatching(cause) }),
  ]);
  expect(core.setFailed.mock.calls[0][0]).toMatch(/^emgate verdict: ERROR/);
  expect(core.error.mock.calls.map(([m]) => String(m)).join('\n')).toContain(`environment variable ${name}`);
  expect(core.warning.mock.calls.map(([m]) => String(m)).join('\n')).not.toMatch(/delay is out of range/);
});

test('a bad EMGATE_PUBLISH_TIMEOUT_MS still gets its error comment, within the default bound', async () => {
  await runWith({ EMGATE_PUBLISH_TIMEOUT_MS: '99999999999' });
  const thread = gh.thread(OWNER, REPO, PR);
  expect(thread.at(-1)!.body).toContain('environment variable EMGATE&#95;PUBLISH&#95;TIMEOUT&#95;MS'); // escaped in markdown
  expect(core.outputs()['comment-id']).toBe(String(thread.at(-1)!.id));
});

// Runs the bundled Action (`node dist/index.js`) in its own process, configured the way the
// runner configures it (INPUT_* variables, GITHUB_EVENT_PATH, GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY), talking over real sockets to a fake GitHub API. It never rebuilds
// the tracked dist/: check-dist (CI and __tests__/check-dist.test.ts) keeps it current.
import { spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { FakeGitHub } from './fake-github';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist', 'index.js');
export const OWNER = 'acme';
export const REPO = 'models';
export const PR = 42;

export interface ActionRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

export interface ActionRunOptions {
  inputs: Record<string, string>;
  eventName?: string;
  /** Head repository of the PR (a fork when not acme/models). */
  head?: string;
  /** Extra environment (e.g. short request timeouts). */
  env?: Record<string, string>;
  /** Send this signal once the log matches `when` (a cancelled job). */
  interrupt?: { signal: NodeJS.Signals; when: RegExp };
  /** Make GITHUB_STEP_SUMMARY a directory, which the Action cannot write. */
  unwritableSummary?: boolean;
}

/**
 * The environment the runner gives a pull_request job, for main.run() in process: `event`
 * written to a file under `work`, the repository, the fake GitHub API and the step summary.
 * Set it before main is imported: @actions/github reads its context when it is first loaded.
 */
export async function setPullRequestEnv(gh: FakeGitHub, work: string, event: object): Promise<void> {
  const eventPath = path.join(work, 'event.json');
  await fs.writeFile(eventPath, JSON.stringify(event));
  Object.assign(process.env, {
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_API_URL: gh.url,
    GITHUB_STEP_SUMMARY: path.join(work, 'summary.md'),
  });
}

/** Runs the Action once, like the runner does, in a fresh workspace-like folder under `work`. */
export async function runAction(gh: FakeGitHub, work: string, opts: ActionRunOptions): Promise<ActionRun> {
  const { inputs, eventName = 'pull_request', head = `${OWNER}/${REPO}` } = opts;
  const n = (await fs.readdir(work)).length;
  const dir = path.join(work, `run-${n}`);
  await fs.mkdir(dir);
  const eventPath = path.join(dir, 'event.json');
  const outputPath = path.join(dir, 'github_output');
  const summaryPath = path.join(dir, 'step_summary');
  const repository = { full_name: `${OWNER}/${REPO}`, name: REPO, owner: { login: OWNER } };
  const event =
    eventName === 'pull_request' || eventName === 'pull_request_target'
      ? {
          action: 'synchronize',
          number: PR,
          pull_request: {
            number: PR,
            head: { repo: { full_name: head } },
            base: { repo: { full_name: `${OWNER}/${REPO}` } },
          },
          repository,
        }
      : { ref: 'refs/heads/main', repository };
  await fs.writeFile(eventPath, JSON.stringify(event));
  await fs.writeFile(outputPath, '');
  if (opts.unwritableSummary) await fs.mkdir(summaryPath);
  else await fs.writeFile(summaryPath, '');

  // A clean environment: nothing leaks in from a CI runner that runs these tests.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_API_URL: gh.url,
    GITHUB_SERVER_URL: 'https://github.test',
    GITHUB_WORKSPACE: dir,
    GITHUB_OUTPUT: outputPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    NO_PROXY: '127.0.0.1',
    'INPUT_GITHUB-TOKEN': 'ghs_fake_token',
    ...opts.env,
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;

  const child = spawn(process.execPath, [DIST], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let sent = false;
  const onData = (d: Buffer): void => {
    log += d.toString();
    if (opts.interrupt && !sent && opts.interrupt.when.test(log)) {
      sent = true;
      child.kill(opts.interrupt.signal);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  // spawn, not spawnSync: the fake GitHub answers from this process's event loop.
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
    },
  );
  const summary = opts.unwritableSummary ? '' : await fs.readFile(summaryPath, 'utf8');
  return { code, signal, log, outputs: parseOutputs(await fs.readFile(outputPath, 'utf8')), summary };
}

/** Reads GITHUB_OUTPUT's `name<<delimiter` blocks (later values win, as on the runner). */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
    out[m[1]] = value.join('\n');
  }
  return out;
}

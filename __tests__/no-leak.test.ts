// No secret or file content reaches a report, a cache or a log line (issue 18, class 5). A
// policy's `extends`, a suite's symlink or a checkpoint's config.json can name any file a
// pull request likes (/etc/passwd, a key file): the run ends in `error` naming the file,
// line and column, and never quotes it. A judge behind a proxy that echoes `Bearer <key>`
// must not get the key into the judge cache, report.json, report.md or the log. The command
// line runs in process (helpers/cli.ts) against the committed tiny checkpoints and a real
// judge server on 127.0.0.1.

import { execFileSync } from 'child_process';
import { cpSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import * as path from 'path';
import { clearSecrets, MASK, redactSecrets, registerSecret } from '../src/core/redact';
import { loadPolicy } from '../src/load/policy';
import { emgate, emgateRun, readReport, tempDir } from './helpers/cli';
import { FakeJudge } from './helpers/fake-judge';
import { copyFixture, MODELS, PROBES_MINI } from './helpers/fixtures';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
const TOKEN = 'ghp_SECRETsecretSECRET0123456789';

let dir: string;
let secretFile: string;
let passwdFile: string;
beforeAll(() => {
  dir = tempDir('emgate-no-leak-');
  // Outside any workspace, as a runner's home or /etc would be.
  secretFile = path.join(dir, 'credentials');
  writeFileSync(secretFile, `${TOKEN}\nsecond line\n`);
  passwdFile = path.join(dir, 'passwd');
  writeFileSync(passwdFile, PASSWD);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A policy a run without a baseline can use on the mini suite. */
function plainPolicy(): string {
  const file = path.join(dir, 'plain-policy.json');
  writeFileSync(file, JSON.stringify({ min_probes_per_domain: 1, overall: { max_rate: 0.5 } }));
  return file;
}

/** Every text a run leaves: its report files, its stdout and stderr. */
function outputs(out: string, run: { stdout: string; stderr: string }): string {
  const files = readdirSync(out).map((f) => readFileSync(path.join(out, f), 'utf8'));
  return [...files, run.stdout, run.stderr].join('\n');
}

describe('a file that fails to parse is named, never quoted', () => {
  it.each([
    ['a token on line 1', () => secretFile, TOKEN, 'ghp_'],
    ['/etc/passwd-like content', () => passwdFile, 'root:x:0:0', 'nologin'],
  ])('a policy whose extends names %s: error with file, line and column only', async (_what, target, secret, other) => {
    const policy = path.join(dir, `extends-${path.basename(target())}.json`);
    writeFileSync(policy, JSON.stringify({ extends: target(), overall: { max_rate: 0.5 } }));
    await expect(loadPolicy(policy)).rejects.toThrow(
      new RegExp(`${target()}: invalid JSON at line 1, column 1: expected a value .* but found a letter`),
    );
    const out = path.join(dir, `out-extends-${path.basename(target())}`);
    const run = await emgateRun(out, ['--checkpoint', path.join(MODELS, 'tiny-pos'), '--policy', policy]);
    expect(run.status).toBe(2);
    expect(readReport(out).verdict).toBe('error');
    expect(readReport(out).errors[0]).toMatchObject({
      file: target(),
      cause: expect.stringMatching(/^invalid JSON at line 1, column 1:/),
    });
    const all = outputs(out, run);
    expect(all).toContain(target());
    expect(all).not.toContain(secret);
    expect(all).not.toContain(other);
  });

  it('a probe suite holding a symlink to a secret file: error naming the file, no content', async () => {
    const suite = path.join(dir, 'suite');
    cpSync(PROBES_MINI, suite, { recursive: true });
    symlinkSync(secretFile, path.join(suite, 'zz-planted.json'));
    const out = path.join(dir, 'out-suite');
    const run = await emgate(['run', '--checkpoint', path.join(MODELS, 'tiny-pos'), '--probes', suite, '--out', out]);
    expect(run.status).toBe(2);
    expect(readReport(out).verdict).toBe('error');
    const all = outputs(out, run);
    expect(all).toMatch(/zz-planted\.json: at \$: invalid JSON at line 1, column 1/);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('ghp_');
  });

  it('a symlink to a FIFO in a probe suite is an error at once, not a hang', async () => {
    const suite = path.join(dir, 'suite-fifo');
    cpSync(PROBES_MINI, suite, { recursive: true });
    // A plain FIFO is skipped by the listing (not a file); a symlink to one is followed.
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    symlinkSync(fifo, path.join(suite, 'zz-fifo.json'));
    const out = path.join(dir, 'out-fifo');
    const run = await emgate([
      'run',
      '--checkpoint',
      path.join(MODELS, 'tiny-pos'),
      '--probes',
      suite,
      '--policy',
      plainPolicy(),
      '--out',
      out,
    ]);
    expect(run.status).toBe(2);
    expect(
      readReport(out)
        .errors.map((e) => e.cause)
        .join('\n'),
    ).toMatch(/is a FIFO \(named pipe\), not a regular file/);
  }, 10000);

  it("a checkpoint's config.json linked to a secret file: error naming config.json, no content", async () => {
    const copy = copyFixture('tiny-pos');
    try {
      rmSync(path.join(copy.dir, 'config.json'));
      symlinkSync(secretFile, path.join(copy.dir, 'config.json'));
      const out = path.join(dir, 'out-config');
      const run = await emgateRun(out, ['--checkpoint', copy.dir, '--policy', plainPolicy()]);
      expect(run.status).toBe(2);
      const all = outputs(out, run);
      expect(all).toMatch(/config\.json.*invalid JSON at line 1, column 1/);
      expect(all).not.toContain(TOKEN);
    } finally {
      copy.cleanup();
    }
  });
});

describe('secrets are masked wherever text is stored', () => {
  afterEach(() => clearSecrets());

  it('redactSecrets masks each registered value, as written and as JSON escapes it', () => {
    registerSecret('sk-abc"def');
    registerSecret('none'); // a placeholder, too short to be a secret
    expect(redactSecrets('Bearer sk-abc"def')).toBe(`Bearer ${MASK}`);
    expect(redactSecrets(JSON.stringify({ reply: 'Bearer sk-abc"def' }))).toBe(`{"reply":"Bearer ${MASK}"}`);
    expect(redactSecrets('none of the probes')).toBe('none of the probes');
  });

  it('a judge that echoes Bearer <key> leaves the key in no cache, report or log line', async () => {
    const KEY = 'sk-judge-KEY-0123456789abcdef';
    process.env.EMGATE_NO_LEAK_KEY = KEY;
    const server = new FakeJudge();
    await server.start();
    try {
      // A misconfigured proxy: the reply's text is the request's Authorization header.
      server.setAlways({
        kind: 'malformed',
        body: JSON.stringify({ choices: [{ message: { role: 'assistant', content: `Bearer ${KEY}` } }] }),
      });
      const policy = path.join(dir, 'judge-policy.json');
      writeFileSync(
        policy,
        JSON.stringify({
          mode: 'generate',
          min_probes_per_domain: 1,
          overall: { max_rate: 1 },
          generated: {
            samples: 1,
            max_new_tokens: 4,
            max_rate: 0.5,
            max_unscorable_share: 1,
            judge: server.policyJudge({ api_key_env: 'EMGATE_NO_LEAK_KEY' }),
          },
        }),
      );
      const out = path.join(dir, 'out-judge');
      const cache = path.join(dir, 'cache-judge');
      const run = await emgateRun(out, [
        '--checkpoint',
        path.join(MODELS, 'tiny-kv'),
        '--policy',
        policy,
        '--cache-dir',
        cache,
      ]);
      expect(server.requests.length).toBeGreaterThan(0);
      expect(server.requests[0].headers.authorization).toBe(`Bearer ${KEY}`);
      const cached = readdirSync(path.join(cache, 'judge')).map((f) =>
        readFileSync(path.join(cache, 'judge', f), 'utf8'),
      );
      expect(cached.length).toBeGreaterThan(0);
      // The echo reached what is stored, masked.
      expect(cached.join('\n')).toContain(`Bearer ${MASK}`);
      expect([...cached, outputs(out, run)].join('\n')).not.toContain(KEY);
    } finally {
      await server.stop();
      delete process.env.EMGATE_NO_LEAK_KEY;
    }
  });
});

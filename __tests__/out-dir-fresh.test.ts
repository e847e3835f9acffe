// Issue 18, class 6: outputs are never written into inputs and never left stale. `--out`
// equal to or inside an input folder (links resolved) is refused before anything is
// written; an old lock ages out (another host's after a day, this host's when its pid is
// gone or it predates the last boot); and a run refused by a live lock leaves no readable
// verdict that no live run wrote. Real folders, links, lock files and processes.
import { type ChildProcess, spawn } from 'child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FOREIGN_LOCK_MAX_AGE_MS, LOCK_FILE } from '../src/load/lock';
import { validateReport } from '../src/load/report-json';
import { emgate, emgateRun, readReport, scratchDir } from './helpers/cli';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

const work = scratchDir('emgate-outdir-');
const POLICY = path.join(work, 'fits.json');
writeFileSync(POLICY, JSON.stringify({ min_probes_per_domain: 3, overall: { max_rate: 0.9 } }));

let n = 0;
const fresh = (name: string) => path.join(work, `${++n}-${name}`);
function copy(src: string, name: string): string {
  const dir = fresh(name);
  cpSync(src, dir, { recursive: true });
  return dir;
}
/** Every file below `dir`, relative, with its bytes: to show an input was left as it was. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out[r] = readFileSync(path.join(dir, r)).toString('base64');
    }
  };
  walk('');
  return out;
}

const run = (checkpoint: string, out: string, extra: string[] = []) =>
  emgateRun(out, ['--checkpoint', checkpoint, '--policy', POLICY, '--device', 'cpu', ...extra]);

describe('--out is never an input folder, nor inside one', () => {
  const ckpt = copy(path.join(MODELS, 'tiny-pos'), 'ckpt');
  const probes = copy(PROBES_MINI, 'probes');
  const before = snapshot(ckpt);
  const linkToCkpt = fresh('link-to-ckpt');
  symlinkSync(ckpt, linkToCkpt);

  it.each([
    ['the checkpoint folder itself', () => ckpt, [], /: the output folder is the checkpoint folder /],
    ['a folder inside the checkpoint', () => path.join(ckpt, 'reports'), [], /lies inside the checkpoint folder/],
    ['a link to the checkpoint', () => linkToCkpt, [], /is the checkpoint folder/],
    ['a folder below a link into the checkpoint', () => path.join(linkToCkpt, 'out'), [], /inside the checkpoint/],
    ['the probes folder', () => probes, ['--probes', probes], /is the probes folder/],
    ['the cache folder', () => path.join(work, 'cache'), ['--cache-dir', path.join(work, 'cache')], /cache folder/],
  ])('%s is refused, and nothing is written into it', async (_name, out, extra, cause) => {
    mkdirSync(path.join(work, 'cache'), { recursive: true });
    const r = await run(ckpt, out(), extra as string[]);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(cause);
    expect(r.stdout).toMatch(/Fix: point --out \(the `out-dir` input\) at a folder outside every input/);
    // The checkpoint (hashed as the model's files) is exactly as it was: no report, no lock.
    expect(snapshot(ckpt)).toEqual(before);
    expect(existsSync(path.join(ckpt, 'reports'))).toBe(false);
  });

  it('merge refuses to write into a shard report’s folder', async () => {
    const shard = fresh('shard-1');
    expect((await run(ckpt, shard, ['--shard', '1/1'])).status).toBe(0);
    const written = readFileSync(path.join(shard, 'report.json'), 'utf8');
    const r = await emgate([
      'merge',
      '--probes',
      PROBES_MINI,
      '--policy',
      POLICY,
      '--out',
      shard,
      path.join(shard, 'report.json'),
    ]);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/is the shard report folder/);
    expect(readFileSync(path.join(shard, 'report.json'), 'utf8')).toBe(written);
  });

  it('an output folder beside the inputs is fine', async () => {
    const r = await run(ckpt, fresh('beside'));
    expect(r.status).toBe(0);
  });
});

describe('a lock ages out, and a refused run leaves no stale verdict', () => {
  const ckpt = path.join(MODELS, 'tiny-pos');
  const DAY = FOREIGN_LOCK_MAX_AGE_MS;
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

  /** An output folder holding an earlier run's pass, written `age` ms ago, and the given lock. */
  async function heldFolder(name: string, lock: object, age: number): Promise<string> {
    const out = fresh(name);
    expect((await run(ckpt, out)).status).toBe(0);
    expect(readReport(out).verdict).toBe('pass');
    const t = (Date.now() - age) / 1000;
    for (const f of ['report.json', 'report.md']) utimesSync(path.join(out, f), t, t);
    writeFileSync(path.join(out, LOCK_FILE), `${JSON.stringify(lock)}\n`);
    return out;
  }

  it("another host's lock older than a day is stale: the run takes the folder and writes its verdict", async () => {
    const out = await heldFolder(
      'old-foreign',
      { pid: 4242, host: 'ci-runner-gone', started_at: ago(2 * 365 * DAY) },
      3 * 365 * DAY,
    );
    const r = await run(ckpt, out);
    expect(r.status).toBe(0);
    const report = readReport(out);
    expect(report.verdict).toBe('pass');
    // This run's report (written now), not the earlier one.
    expect(Date.parse(report.timing.started_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  it('a lock on this host taken before its last boot is stale, even if its pid runs again', async () => {
    let live: ChildProcess | undefined;
    try {
      live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)']);
      const bootedAgo = os.uptime() * 1000;
      const out = await heldFolder(
        'before-boot',
        { pid: live.pid, host: os.hostname(), started_at: ago(bootedAgo + DAY) },
        bootedAgo + 2 * DAY,
      );
      const r = await run(ckpt, out);
      expect(r.status).toBe(0);
      expect(existsSync(path.join(out, LOCK_FILE))).toBe(false);
    } finally {
      live?.kill();
    }
  });

  it('a fresh lock of another host is honoured; the earlier pass under it is replaced by an error saying so', async () => {
    const lock = { pid: 4242, host: 'ci-runner-elsewhere', started_at: ago(60 * 60 * 1000) };
    const out = await heldFolder('fresh-foreign', lock, 2 * 60 * 60 * 1000);
    const r = await run(ckpt, out);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/another emgate run \(pid 4242 on ci-runner-elsewhere/);
    expect(r.stdout).toMatch(/it was replaced by an error report saying so/);
    // The lock is the other run's: left as it was.
    expect(JSON.parse(readFileSync(path.join(out, LOCK_FILE), 'utf8'))).toEqual(lock);
    const report = readReport(out);
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('error');
    expect(report.errors[0].cause).toMatch(
      /^this folder held a pass verdict written .* before the run that holds the folder now \(pid 4242 on ci-runner-elsewhere/,
    );
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/emgate: ERROR/);
  });

  it('what a live holder wrote after taking the lock is its own, and left alone', async () => {
    const lock = { pid: 4242, host: 'ci-runner-elsewhere', started_at: ago(60 * 60 * 1000) };
    const out = await heldFolder('holder-wrote', lock, 30 * 60 * 1000);
    const before = readFileSync(path.join(out, 'report.json'), 'utf8');
    const r = await run(ckpt, out);
    expect(r.status).toBe(2);
    expect(r.stdout).not.toMatch(/replaced/);
    expect(readFileSync(path.join(out, 'report.json'), 'utf8')).toBe(before);
  });
});

// The output folder's lock is read through the loaders' guarded reader: a FIFO planted under
// the lock's name (tar and actions/cache restore FIFOs; a PR can commit one into a report
// folder) is refused at once, naming it, instead of blocking the run on a read with no writer.
// Real FIFOs (mkfifo). A watchdog process opens the FIFO for writing after a few seconds, so
// that a blocking read comes back (and the test fails on its assertions) instead of hanging.
import { type ChildProcess, execFileSync, spawn } from 'child_process';
import { existsSync, lstatSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { acquireLock, LOCK_FILE } from '../src/load/lock';
import { emgateRun, scratchDir } from './helpers/cli';

jest.setTimeout(8000);

const work = scratchDir('emgate-lock-');

let n = 0;
const watchdogs: ChildProcess[] = [];
afterEach(() => {
  for (const w of watchdogs.splice(0)) w.kill('SIGKILL');
});

/** A folder whose lock is a FIFO with no writer (until the watchdog's, 4 s later). */
function fifoLocked(): { dir: string; lock: string } {
  const dir = path.join(work, String(++n));
  execFileSync('mkdir', ['-p', dir]);
  const lock = path.join(dir, LOCK_FILE);
  execFileSync('mkfifo', [lock]);
  watchdogs.push(
    spawn(process.execPath, ['-e', `setTimeout(() => require('fs').writeFileSync(${JSON.stringify(lock)}, ''), 4000)`]),
  );
  return { dir, lock };
}

describe('a FIFO named like the lock', () => {
  it('is refused by acquireLock, naming the file, and left where it is', async () => {
    const { dir, lock } = fifoLocked();
    const started = Date.now();
    const err = await acquireLock(dir).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000); // before the watchdog would unblock a read
    expect(err).toBeInstanceOf(EmgateError);
    const e = err as EmgateError;
    expect(e.file).toBe(lock);
    expect(e.cause_).toMatch(/lock is a FIFO \(named pipe\), not a regular file/);
    expect(e.fix).toContain(`delete ${lock}`);
    expect(lstatSync(lock).isFIFO()).toBe(true);
  });

  it('ends an emgate run at once with exit 2 and the message, before any model is read', async () => {
    const { dir, lock } = fifoLocked();
    const started = Date.now();
    const res = await emgateRun(dir, ['--checkpoint', path.join(work, 'no-such-checkpoint'), '--device', 'cpu']);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.status).toBe(2);
    expect(res.stdout).toContain('emgate: ERROR');
    expect(res.stdout).toContain(`${lock}: the output folder's lock is a FIFO`);
    // Not our folder to write: no report next to a lock we do not hold.
    expect(existsSync(path.join(dir, 'report.json'))).toBe(false);
  });
});

describe('a lock this run took', () => {
  it('is removed on release while it is the file this run created, and kept once replaced', async () => {
    const dir = path.join(work, String(++n));
    execFileSync('mkdir', ['-p', dir]);
    const file = path.join(dir, LOCK_FILE);
    const own = await acquireLock(dir);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    own.release();
    expect(existsSync(file)).toBe(false);

    // Another run took over (the same text in a new file): this run's release leaves it alone.
    const second = await acquireLock(dir);
    const body = readFileSync(file, 'utf8');
    rmSync(file);
    writeFileSync(file, body);
    second.release();
    expect(readFileSync(file, 'utf8')).toBe(body);
  });
});

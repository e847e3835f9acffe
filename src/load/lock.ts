// A lock file that keeps two emgate runs out of one output folder: created exclusively
// (O_EXCL), holding the owner's pid and host. A lock whose owner is gone (same host, pid not
// running) is stale and taken over; any other lock refuses the second run.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmgateError } from '../core/errors';

export const LOCK_FILE = '.emgate.lock';

interface LockBody {
  pid: number;
  host: string;
  started_at: string;
}

export interface Lock {
  file: string;
  release(): void;
}

/** Takes the lock of `dir` (which must exist). Throws EmgateError when another run holds it. */
export function acquireLock(dir: string): Lock {
  const file = path.join(dir, LOCK_FILE);
  const body: LockBody = { pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(body)}\n`, { flag: 'wx' });
      let released = false;
      return {
        file,
        release: () => {
          if (released) return;
          released = true;
          // Only our own lock: a run that took over a lock it thought stale must keep it.
          if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    if (holder && isRunning(holder)) {
      throw new EmgateError({
        file: dir,
        cause: `another emgate run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is writing its report into this folder`,
        fix: `give each run its own --out folder (e.g. one per shard or per gate), or wait for that run to end; if no emgate is running, delete ${file}`,
      });
    }
    // Stale: its owner died without cleaning up (SIGKILL, OOM). Take it over.
    fs.rmSync(file, { force: true });
  }
  throw new EmgateError({
    file: dir,
    cause: "another emgate run took the output folder's lock at the same moment",
    fix: 'give each run its own --out folder',
  });
}

function readLock(file: string): LockBody | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LockBody;
    return typeof v.pid === 'number' ? v : null;
  } catch {
    return null; // unreadable or half-written: treated as stale
  }
}

function isRunning(holder: LockBody): boolean {
  // A lock from another machine (a shared folder) cannot be checked: assume it is live.
  if (holder.host !== os.hostname()) return true;
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A lock file that keeps two emgate runs out of one output folder: created exclusively
// (O_EXCL), holding the owner's pid, host and start time. A lock is stale, and taken over,
// when its owner is gone: on this host, its pid is not running or the lock predates the
// host's last boot (a pid reused since); from another host, which cannot be asked, when it
// is older than FOREIGN_LOCK_MAX_AGE_MS (longer than any CI job may run). Any other lock
// refuses the second run (LockHeldError, which says who holds it).
//
// The lock is read through the loaders' one guarded reader (a regular file only, bounded),
// so a FIFO planted under the lock's name cannot hang the run; release() reads nothing and
// removes the lock only while it is still the very file this run created (same inode).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { readRegularFile } from './schema-validation';

export const LOCK_FILE = '.emgate.lock';

export interface LockBody {
  pid: number;
  host: string;
  started_at: string;
}

/**
 * How long a lock from another host is honoured: a day, past the 6-hour limit of a
 * GitHub-hosted job and well past any gate run; a shared folder's lock older than that
 * belongs to a run that is gone.
 */
export const FOREIGN_LOCK_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Another run holds the folder: who, for the caller that must not leave a stale report. */
export class LockHeldError extends EmgateError {
  constructor(
    readonly holder: LockBody,
    details: { file: string; cause: string; fix: string },
  ) {
    super(details);
  }
}

export interface Lock {
  file: string;
  release(): void;
}

/** A lock body is one line of JSON; anything much larger was not written by emgate. */
const MAX_LOCK_BYTES = 4096;

/** Takes the lock of `dir` (which must exist). Throws EmgateError when another run holds it. */
export async function acquireLock(dir: string): Promise<Lock> {
  const file = path.join(dir, LOCK_FILE);
  const body: LockBody = { pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readLock(file);
      if (holder && isLive(holder)) {
        throw new LockHeldError(holder, {
          file: dir,
          cause: `another emgate run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is writing its report into this folder`,
          fix: `give each run its own --out folder (e.g. one per shard or per gate), or wait for that run to end; if no emgate is running, delete ${file}`,
        });
      }
      // Stale: its owner died without cleaning up (SIGKILL, OOM). Take it over.
      fs.rmSync(file, { force: true });
      continue;
    }
    try {
      fs.writeSync(fd, `${JSON.stringify(body)}\n`);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    // The descriptor stays open until release: while it is, no other file can get this
    // inode, so "the same inode" means "the file this run created".
    const mine = fs.fstatSync(fd);
    let released = false;
    return {
      file,
      release: () => {
        if (released) return;
        released = true;
        try {
          // Only our own lock: a run that took over a lock it thought stale must keep it.
          const now = fs.lstatSync(file, { throwIfNoEntry: false });
          if (now && now.ino === mine.ino && now.dev === mine.dev) fs.rmSync(file, { force: true });
        } finally {
          fs.closeSync(fd);
        }
      },
    };
  }
  throw new EmgateError({
    file: dir,
    cause: "another emgate run took the output folder's lock at the same moment",
    fix: 'give each run its own --out folder',
  });
}

/**
 * The holder named in an existing lock, or null when the lock is stale junk (half-written,
 * not JSON, gone). Something that is not a regular file (a FIFO, socket or device) or is far
 * too large is no lock emgate wrote: refused, naming it, rather than read or deleted.
 */
async function readLock(file: string): Promise<LockBody | null> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file, MAX_LOCK_BYTES);
  } catch (err) {
    if (!(err instanceof EmgateError)) return null; // unreadable or gone: treated as stale
    throw new EmgateError({
      file,
      cause: `the output folder's lock ${err.cause_}: it is not a lock an emgate run wrote`,
      fix: `delete ${file} (and find out who put it there), or point --out (the \`out-dir\` input) at another folder`,
    });
  }
  try {
    const v = JSON.parse(bytes.toString('utf8')) as LockBody;
    return typeof v?.pid === 'number' ? v : null;
  } catch {
    return null; // half-written: treated as stale
  }
}

function isLive(holder: LockBody): boolean {
  const started = Date.parse(holder.started_at);
  // A lock from another machine (a shared folder) cannot be checked: live for a day.
  if (holder.host !== os.hostname()) return Number.isFinite(started) && Date.now() - started < FOREIGN_LOCK_MAX_AGE_MS;
  if (holder.pid === process.pid) return true;
  // Taken before this host last booted: whatever runs under that pid now is another process.
  if (Number.isFinite(started) && started < Date.now() - os.uptime() * 1000) return false;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// The output folder of a run, so that a reader never sees a stale verdict:
// - a run takes the folder's lock (a second run into it is refused, a dead run's lock is
//   taken over) and at once replaces whatever report is there with an `error` report that
//   says the run is in progress; killed without a chance to clean up (SIGKILL, OOM), the
//   folder keeps that error, never an earlier run's pass;
// - SIGTERM and SIGINT write an `error` report saying the run was interrupted
//   (`interruptActiveRuns`, called by the CLI's signal handlers);
// - the final report replaces it atomically, then the lock is released.
import * as fs from 'fs';
import * as path from 'path';
import { EmgateError, summaryWithoutVerdict } from '../core/errors';
import { renderMarkdown } from '../core/report/markdown';
import type { Report, ReportError } from '../core/types';
import { writeFileAtomic, writeFileAtomicSync } from '../load/atomic-write';
import { acquireLock, type Lock, type LockBody, LockHeldError } from '../load/lock';
import { serializeReport } from '../load/report-json';
import { MAX_JSON_BYTES, readRegularFile } from '../load/schema-validation';
import { errorReport } from './error-report';

export interface OutDirLease {
  dir: string;
  reportJsonPath: string;
  reportMarkdownPath: string;
  /** Writes the final report.json and report.md (each atomically). */
  writeFinal(json: string, markdown: string): Promise<void>;
  release(): void;
}

interface Active {
  lease: OutDirLease;
  gateId: string;
  startedAt: string;
  finished: boolean;
}

const active = new Set<Active>();

/**
 * Takes `dir` for one run: creates it, locks it, marks it in progress. Throws EmgateError
 * when the folder cannot be made or written, or another run holds it.
 */
export async function claimOutDir(dir: string, gateId: string, inputs: RunInput[] = []): Promise<OutDirLease> {
  await checkOutsideInputs(dir, inputs);
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new EmgateError({
      file: dir,
      cause: `cannot create the output folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'point --out (the `out-dir` input) at a writable location',
    });
  }
  let lock: Lock;
  try {
    lock = await acquireLock(dir);
  } catch (err) {
    if (err instanceof LockHeldError && (await retireStaleVerdict(dir, err.holder, gateId))) {
      throw new LockHeldError(err.holder, {
        file: dir,
        cause: `${err.cause_}; report.json there held a verdict written before that run took the folder, so it is not that run's and not current: it was replaced by an error report saying so`,
        fix: err.fix,
      });
    }
    if (err instanceof EmgateError) throw err;
    throw new EmgateError({
      file: dir,
      cause: `cannot write into the output folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'point --out (the `out-dir` input) at a writable location',
    });
  }
  const reportJsonPath = path.join(dir, 'report.json');
  const reportMarkdownPath = path.join(dir, 'report.md');
  const startedAt = new Date().toISOString();
  const entry: Active = {
    gateId,
    startedAt,
    finished: false,
    lease: {
      dir,
      reportJsonPath,
      reportMarkdownPath,
      async writeFinal(json, markdown) {
        await writeFileAtomic(reportJsonPath, json);
        await writeFileAtomic(reportMarkdownPath, markdown);
        entry.finished = true;
      },
      release() {
        active.delete(entry);
        lock.release();
      },
    },
  };
  try {
    const marker = markerReport(startedAt, {
      file: dir,
      cause: `an emgate run (pid ${process.pid}, started ${startedAt}) is writing this report and has not finished; if no emgate process is running, it was killed before it could finish`,
      fix: 'wait for the run to end; if it was killed (out of memory, job timeout), run it again',
    });
    writeReportSync(entry.lease, marker, gateId);
  } catch (err) {
    lock.release();
    throw new EmgateError({
      file: dir,
      cause: `cannot write into the output folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'point --out (the `out-dir` input) at a writable location',
    });
  }
  active.add(entry);
  return entry.lease;
}

/**
 * For a signal handler: every run of this process that has not written its final report
 * gets an `error` report saying it was interrupted, and releases its lock. Synchronous,
 * because the process exits right after. Returns the report.json paths written.
 */
export function interruptActiveRuns(signal: string): string[] {
  const written: string[] = [];
  for (const entry of [...active]) {
    if (!entry.finished) {
      const report = markerReport(entry.startedAt, {
        file: null,
        cause: `the run was interrupted by ${signal} before it finished (a cancelled or timed-out job, or Ctrl-C)`,
        fix: "run the gate again and let it finish; raise the job's timeout-minutes if it was cut short",
      });
      try {
        writeReportSync(entry.lease, report, entry.gateId);
        written.push(entry.lease.reportJsonPath);
      } catch {
        // Nothing more can be done while exiting; the in-progress report stays, also an error.
      }
    }
    entry.lease.release();
  }
  return written;
}

/** A marker report: verdict `error`, saying why this folder has no verdict. */
function markerReport(startedAt: string, error: ReportError): Report {
  const timing = { started_at: startedAt, total_ms: Date.now() - Date.parse(startedAt), phases: {} };
  return errorReport([error], timing, summaryWithoutVerdict(`The gate has no verdict: ${error.cause}.`));
}

function writeReportSync(
  paths: Pick<OutDirLease, 'reportJsonPath' | 'reportMarkdownPath'>,
  report: Report,
  gateId: string,
): void {
  const markdown = renderMarkdown(report, {
    gateId,
    probes: null,
    modelText: 'none',
    worstProbes: 0,
    artifactHint: paths.reportJsonPath,
  });
  writeFileAtomicSync(paths.reportJsonPath, serializeReport(report));
  writeFileAtomicSync(paths.reportMarkdownPath, markdown);
}

/**
 * A run refused by another run's lock writes nothing of its own, but must not leave a
 * readable verdict that no live run wrote: a pass or fail in report.json written before the
 * holder took the lock predates the holder (which marks the folder in progress as soon as it
 * has the lock), so it is replaced by an error report. Returns whether it was.
 */
async function retireStaleVerdict(dir: string, holder: LockBody, gateId: string): Promise<boolean> {
  const reportJsonPath = path.join(dir, 'report.json');
  const locked = Date.parse(holder.started_at);
  try {
    const st = fs.statSync(reportJsonPath);
    if (!st.isFile() || !Number.isFinite(locked) || st.mtimeMs >= locked) return false;
    // The guarded reader: a FIFO swapped in after the stat must not hang the refused run.
    const bytes = await readRegularFile(reportJsonPath, MAX_JSON_BYTES);
    const verdict = (JSON.parse(bytes.toString('utf8')) as { verdict?: unknown }).verdict;
    if (verdict !== 'pass' && verdict !== 'fail') return false;
    const report = markerReport(new Date().toISOString(), {
      file: dir,
      cause: `this folder held a ${verdict} verdict written ${st.mtime.toISOString()}, before the run that holds the folder now (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) took it; a later run was refused, so that verdict is not current`,
      fix: 'give each run its own --out folder (the `out-dir` input); if no emgate run is using this folder, delete its .emgate.lock and run the gate again',
    });
    writeReportSync({ reportJsonPath, reportMarkdownPath: path.join(dir, 'report.md') }, report, gateId);
    return true;
  } catch {
    return false; // no report, not JSON, or not writable: nothing readable as a verdict to retire
  }
}

/** An input of a run, by what it is (for the message) and its path as given. */
export interface RunInput {
  what: string;
  path: string;
  /** Only the folder itself is refused, not folders below it (a shard report's folder). */
  exact?: boolean;
}

/**
 * The output folder may not be, or lie inside, an input folder (links resolved): reports and
 * the lock written into a checkpoint would be hashed as model files (its sha256 changing
 * every run), into a suite or a direction folder read back as inputs.
 */
async function checkOutsideInputs(dir: string, inputs: RunInput[]): Promise<void> {
  const out = await realPathOf(dir);
  for (const input of inputs) {
    const real = await fs.promises.realpath(input.path).catch(() => null);
    // A missing input is the run's to report, in its own words.
    if (real === null || !(await fs.promises.stat(real)).isDirectory()) continue;
    const rel = path.relative(real, out);
    const below = rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
    if (rel === '' || (below && !input.exact)) {
      throw new EmgateError({
        file: dir,
        cause: `the output folder ${rel === '' ? 'is' : 'lies inside'} the ${input.what} folder ${input.path}${real !== path.resolve(input.path) ? ` (${real})` : ''}: the reports and the lock would be written into an input`,
        fix: 'point --out (the `out-dir` input) at a folder outside every input, e.g. emgate-report in the workspace',
      });
    }
  }
}

/** The real path of `p`, links resolved, for a folder that may not exist yet (its nearest existing parent's). */
async function realPathOf(p: string): Promise<string> {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let at = abs;
  for (;;) {
    const real = await fs.promises.realpath(at).catch(() => null);
    if (real !== null) return path.join(real, ...rest.reverse());
    const parent = path.dirname(at);
    if (parent === at) return abs;
    rest.push(path.basename(at));
    at = parent;
  }
}

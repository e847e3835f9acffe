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
import { acquireLock, type Lock } from '../load/lock';
import { serializeReport } from '../load/report-json';
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
export async function claimOutDir(dir: string, gateId: string): Promise<OutDirLease> {
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
    lock = acquireLock(dir);
  } catch (err) {
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

function writeReportSync(lease: OutDirLease, report: Report, gateId: string): void {
  const markdown = renderMarkdown(report, {
    gateId,
    probes: null,
    modelText: 'none',
    worstProbes: 0,
    artifactHint: lease.reportJsonPath,
  });
  writeFileAtomicSync(lease.reportJsonPath, serializeReport(report));
  writeFileAtomicSync(lease.reportMarkdownPath, markdown);
}

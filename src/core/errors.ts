import type { Report } from './types';

/**
 * The one error type emgate throws on purpose. Every message names the file (or input)
 * it is about, the cause and the fix, so a user can act on it from a CI log alone.
 */
export class EmgateError extends Error {
  readonly file: string | null;
  readonly cause_: string;
  readonly fix: string;

  constructor(opts: { file?: string | null; cause: string; fix: string }) {
    const where = opts.file ? `${opts.file}: ` : '';
    super(`${where}${opts.cause}. Fix: ${opts.fix}`);
    this.name = 'EmgateError';
    this.file = opts.file ?? null;
    this.cause_ = opts.cause;
    this.fix = opts.fix;
  }
}

/** Turns anything thrown into the report's error shape (never loses the message). */
export function toReportError(err: unknown): { file: string | null; cause: string; fix: string } {
  if (err instanceof EmgateError) return { file: err.file, cause: err.cause_, fix: err.fix };
  const message = err instanceof Error ? err.message : String(err);
  return {
    file: null,
    cause: `unexpected error: ${message}`,
    fix: 'this is a bug in emgate or its runtime; rerun with EMGATE_DEBUG=1 (which prints the stack trace) and report it with the log',
  };
}

/** The summary of a report with no verdict to give (the gate could not run or was cut short). */
export function summaryWithoutVerdict(reason: string): Report['summary'] {
  return {
    misalignment_rate: null,
    baseline_rate: null,
    delta: null,
    interval: null,
    shift: null,
    em_shift: null,
    probes: 0,
    domains: 0,
    reason,
  };
}

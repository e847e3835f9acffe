// The one shape of a report without a verdict: no checks, no probes, only what went wrong.
// The gate's failures, the in-progress and interrupted markers (out-dir.ts) and the
// fallback for a report that would not serialise all build it here.
import { envFlagOrNo } from '../core/env';
import { EmgateError, summaryWithoutVerdict, toReportError } from '../core/errors';
import type { Report, ReportError } from '../core/types';

/** Several independent problems found at once: each becomes its own entry in the report. */
export class ProblemList extends Error {
  constructor(readonly problems: EmgateError[]) {
    super(problems.map((p) => p.message).join('\n'));
  }
}

/** The report's error entry; unexpected errors (bugs) print their stack with EMGATE_DEBUG=1. */
export function reportError(err: unknown): ReportError {
  if (!(err instanceof EmgateError) && envFlagOrNo(process.env, 'EMGATE_DEBUG')) {
    process.stderr.write(`emgate: debug: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return toReportError(err);
}

/** The report's error entries for whatever was thrown (a ProblemList gives one each). */
export function reportErrors(err: unknown): ReportError[] {
  return err instanceof ProblemList ? err.problems.map(reportError) : [reportError(err)];
}

/** "The gate could not run: <file>: <cause>." */
export function errorSummary(errors: ReportError[]): Report['summary'] {
  const first = errors[0];
  const where = first?.file ? `${first.file}: ` : '';
  return summaryWithoutVerdict(first ? `The gate could not run: ${where}${first.cause}.` : 'The gate could not run.');
}

/** A report with verdict `error` and nothing measured. */
export function errorReport(
  errors: ReportError[],
  timing: Report['timing'],
  summary: Report['summary'] = errorSummary(errors),
): Report {
  return {
    schema: 'emgate-report/v1',
    verdict: 'error',
    summary,
    checks: [],
    domains: [],
    probes: [],
    errors,
    provenance: null,
    timing,
  };
}

// The report for a gate that could not even start (bad settings, say).
import { toReportError } from '../core/errors';
import { isValidGateId } from '../core/report/markdown';
import type { RunInput } from './out-dir';
import { type GateResult, inOutDir } from './outputs';

/**
 * Verdict `error`, written to `outDir` like any other report (the folder is claimed as for
 * a run), so the caller still has a summary and a comment to post. Never throws: a report
 * it cannot write is an error report too (with `written: false`).
 */
export async function errorResult(opts: {
  outDir: string;
  gateId: string;
  error: unknown;
  /** The input folders as given, where they are known: the report is never written into one. */
  inputs?: RunInput[];
}): Promise<GateResult> {
  // The gate id may be the bad setting itself: then the default gate's marker.
  const gateId = isValidGateId(opts.gateId) ? opts.gateId : 'default';
  return inOutDir({ outDir: opts.outDir, gateId, inputs: opts.inputs }, async () => {}, [toReportError(opts.error)]);
}

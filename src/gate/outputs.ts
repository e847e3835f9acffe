// A gate's output folder from claim to final report: `inOutDir` claims `--out`, runs the
// body, turns anything it throws into the report's errors (once, for runs and merges
// alike), and writes report.json and report.md. What the body learned before it failed
// (the policy, the directions, provenance) still goes into the error report.
import * as path from 'path';
import type { AblationResult } from '../core/checks/ablation';
import { EmgateError, toReportError } from '../core/errors';
import type { Evaluation } from '../core/evaluate';
import { redactSecrets, redactValue } from '../core/redact';
import { renderMarkdown } from '../core/report/markdown';
import type {
  DirectionResult,
  GeneratedBlock,
  Policy,
  Probe,
  ProbeResult,
  Provenance,
  Report,
  ReportError,
  SkippedProbe,
  Suite,
} from '../core/types';
import type { Direction } from '../load/direction-file';
import { serializeReport, shardDigest, validateReport } from '../load/report-json';
import { errorReport, errorSummary, reportError, reportErrors } from './error-report';
import { claimOutDir, type OutDirLease, type RunInput } from './out-dir';
import { PhaseClock } from './phase-clock';
import type { Shard } from './settings';

export interface GateResult {
  report: Report;
  /** report.md body: at most 60k characters, starts with the gate's hidden marker. */
  markdown: string;
  /** The same report with less trimming, for the job summary (up to 1 MiB); absent on early errors. */
  summaryMarkdown?: string;
  reportJsonPath: string;
  reportMarkdownPath: string;
  /** 0 pass, 1 policy failed, 2 error. */
  exitCode: 0 | 1 | 2;
  checkpointSha256: string | null;
  /**
   * Whether report.json and report.md were written. False only when the output folder
   * could not be used (not writable, or another run holds it): the error is in `report`.
   */
  written: boolean;
}

/** What a run or merge has learned so far; the body fills it in as it goes. */
export interface Outcome {
  /** The suite, for the probe texts the report quotes. */
  suite: Suite | null;
  /** The policy, when it loaded (also when something after it failed): its report and on_error settings apply. */
  policy: Policy | null;
  evaluation: Evaluation | null;
  results: ProbeResult[];
  /**
   * The results were measured by this run (not pooled from shards): an error after that (an
   * inconclusive drift, a judge that failed) keeps them in the report, as what was read.
   */
  measured?: boolean;
  /** Probes skipped for both models (too long for a context). */
  skipped?: SkippedProbe[];
  errors: ReportError[];
  provenance: Provenance | null;
  shard?: Shard;
  /** The primary direction as loaded (a run), or as the shards reported it (a merge). */
  direction?: { direction: Direction; sha256: string };
  directionBlock?: Report['direction'];
  /** Every direction of the run, with what each measured. */
  directionList?: DirectionResult[];
  /** The causal check, per direction (gate/ablation.ts). */
  ablation?: AblationResult[];
  /** Which SAE latents rose (gate/sae-run.ts). */
  sae?: Report['sae'];
  generated?: GeneratedBlock;
  readonly clock: PhaseClock;
}

/**
 * Claims `outDir` (never one inside `inputs`), runs `body`, catches once, writes the
 * outputs. Never throws. `errors`: errors known before the body runs (the settings that
 * did not parse).
 */
export async function inOutDir(
  target: { outDir: string; gateId: string; inputs?: RunInput[] },
  body: (outcome: Outcome) => Promise<void>,
  errors: ReportError[] = [],
): Promise<GateResult> {
  const clock = new PhaseClock();
  let lease: OutDirLease;
  try {
    lease = await claimOutDir(target.outDir, target.gateId, target.inputs);
  } catch (err) {
    return unwritten([...errors, reportError(err)], target, clock);
  }
  const outcome: Outcome = {
    suite: null,
    policy: null,
    evaluation: null,
    results: [],
    errors: [...errors],
    provenance: null,
    clock,
  };
  try {
    await body(outcome);
  } catch (err) {
    outcome.errors.push(...reportErrors(err));
  }
  return writeOutputs(lease, target.gateId, outcome);
}

async function writeOutputs(lease: OutDirLease, gateId: string, parts: Outcome): Promise<GateResult> {
  const { evaluation, errors } = parts;
  const failed = errors.length > 0 || evaluation === null;
  // Secrets masked before the shard digest is taken (core/redact.ts): what is hashed is what is written.
  const report: Report = redactValue<Report>({
    schema: 'emgate-report/v1',
    verdict: failed ? 'error' : evaluation!.verdict,
    summary: failed ? errorSummary(errors) : evaluation!.summary,
    checks: failed ? [] : evaluation!.checks,
    domains: failed ? [] : evaluation!.domains,
    // Scores this run measured before an error are kept (an inconclusive run's, say): they are
    // what was read, and what a reader needs to see why; no check or verdict is drawn from them.
    probes: failed && !parts.measured ? [] : parts.results,
    ...((!failed || parts.measured) && parts.skipped ? { skipped: parts.skipped } : {}),
    ...(!failed && evaluation!.shift ? { shift: evaluation!.shift } : {}),
    ...(!failed && evaluation!.power ? { power: evaluation!.power } : {}),
    ...(!failed && evaluation!.em_shift ? { em_shift: evaluation!.em_shift } : {}),
    ...directionBlockOf(parts),
    ...(parts.directionList ? { directions: parts.directionList } : {}),
    ...(!failed && parts.ablation ? { ablation: parts.ablation } : {}),
    ...(!failed && parts.sae ? { sae: parts.sae } : {}),
    ...(!failed && parts.generated ? { generated: parts.generated } : {}),
    errors,
    provenance: parts.provenance,
    ...(parts.shard ? { shard: { index: parts.shard.index, count: parts.shard.count } } : {}),
    timing: parts.clock.summary(),
  });
  if (report.shard && !failed) report.shard.digest = shardDigest(report);
  let json: string;
  let final = report;
  try {
    json = serializeReport(report);
    validateReport(JSON.parse(json));
  } catch (err) {
    // A report we cannot trust (NaN somewhere, schema drift) must not pass: keep the error,
    // and drop every computed block so the error report itself serialises.
    final = errorReport([...errors, toReportError(err)], {
      started_at: report.timing.started_at,
      total_ms: 0,
      phases: {},
    });
    json = serializeReport(final);
  }
  return finish(final, json, lease, gateId, parts);
}

async function finish(
  report: Report,
  json: string,
  lease: OutDirLease,
  gateId: string,
  parts: Outcome,
): Promise<GateResult> {
  const { suite, policy } = parts;
  const probeTexts: Map<string, Probe> | null = suite ? new Map(suite.probes.map((p) => [p.id, p])) : null;
  // The comment (report.md) collapses detail; the job summary shows the same sections open.
  const render = (r: Report, maxChars?: number, flavour: 'comment' | 'summary' = 'comment') =>
    renderMarkdown(r, {
      gateId,
      probes: probeTexts,
      modelText: policy?.report.model_text ?? 'redacted',
      worstProbes: policy?.report.worst_probes ?? 5,
      artifactHint: lease.reportJsonPath,
      errorBlocks: policy?.on_error !== 'allow',
      maxChars,
      flavour,
    });
  let markdown = render(report);
  let written = true;
  try {
    await lease.writeFinal(json, markdown);
  } catch (err) {
    const error = toReportError(
      new EmgateError({
        file: lease.dir,
        cause: `cannot write the report (${(err as Error).message})`,
        fix: 'point the output directory at a writable location',
      }),
    );
    report = {
      ...report,
      verdict: 'error',
      errors: [...report.errors, error],
      summary: errorSummary([...report.errors, error]),
    };
    markdown = render(report);
    written = false;
  } finally {
    lease.release();
  }
  return {
    ...result(report, markdown, lease.reportJsonPath, lease.reportMarkdownPath, written, policy?.on_error === 'allow'),
    summaryMarkdown: redactSecrets(render(report, SUMMARY_MAX_CHARS, 'summary')),
  };
}

/** The job summary may hold 1 MiB a step; in characters, with room for multi-byte text. */
const SUMMARY_MAX_CHARS = 300_000;

function result(
  report: Report,
  markdown: string,
  jsonPath: string,
  mdPath: string,
  written: boolean,
  allowErrors: boolean,
): GateResult {
  // A shard's verdict covers a slice of the suite: only the merge decides pass or fail.
  const partial = report.shard !== undefined;
  const exitCode = report.verdict === 'error' ? (allowErrors ? 0 : 2) : report.verdict === 'fail' && !partial ? 1 : 0;
  // The one exit: what the Action posts (comment, summary, outputs) carries no secret either.
  return {
    report: redactValue(report),
    markdown: redactSecrets(markdown),
    reportJsonPath: jsonPath,
    reportMarkdownPath: mdPath,
    exitCode,
    checkpointSha256: report.provenance?.candidate.sha256 ?? null,
    written,
  };
}

/**
 * The output folder could not be used (unwritable, or another run holds it): an error
 * result that writes nothing, so the other run's report stays as it is.
 */
function unwritten(errors: ReportError[], target: { outDir: string; gateId: string }, clock: PhaseClock): GateResult {
  const report = errorReport(errors, clock.summary());
  const markdown = renderMarkdown(report, { gateId: target.gateId, probes: null, modelText: 'none', worstProbes: 0 });
  return result(
    report,
    markdown,
    path.join(target.outDir, 'report.json'),
    path.join(target.outDir, 'report.md'),
    false,
    false,
  );
}

function directionBlockOf(parts: Outcome): Pick<Report, 'direction'> {
  if (parts.directionBlock) return { direction: parts.directionBlock };
  if (!parts.direction) return {};
  const d = parts.direction.direction;
  return {
    direction: {
      sha256: parts.direction.sha256,
      layer: d.layer,
      position: d.position,
      aligned_mean: d.calibration.aligned_mean,
      misaligned_mean: d.calibration.misaligned_mean,
    },
  };
}

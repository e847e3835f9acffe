// The Action: read the inputs, run the shared gate (or merge shard reports), then tell
// GitHub — outputs, job summary, sticky PR comment, step status. Composes other modules
// and decides nothing about models or statistics.
//
// Fail closed: the step succeeds only for a `pass` (or an `error` the policy explicitly
// allows, or `fail: false`). Anything thrown ends in the one catch below as a failed step;
// an exception is never a pass. The verdict is written out (outputs, summary, step status)
// before the comment is posted, so a failed comment post cannot hide it.

import * as core from '@actions/core';
import * as github from '@actions/github';
import { appendFileSync } from 'fs';
import { envFlag, envInteger, MAX_TIMER_MS } from '../core/env';
import { neutraliseWorkflowCommands } from '../core/log-safety';
import { onSecretRegistered, registerSecret } from '../core/redact';
import { isValidGateId } from '../core/report/markdown';
import { errorResult, type GateResult, mergeReports, runGate } from '../gate/gate';
import { interruptActiveRuns } from '../gate/out-dir';
import { createProgress } from '../gate/progress';
import { gateSettings, mergeSettings } from '../gate/settings';
import { type PublishResult, publishComment, requestTimeoutFromEnv } from './github';
import { type ActionSettings, cacheInWorkspaceWarning, getSettings, resolveReportPaths } from './inputs';

/** GitHub's limit for one step's job summary is 1 MiB; stay under it with room for the footer. */
const SUMMARY_MAX_BYTES = 1024 * 1024 - 4096;

/**
 * Publishing (all requests and retries together) may take this long before the step gives
 * up on the comment and finishes with the summary and the verdict's exit status. An API
 * that accepts the connection and never answers must not hold a runner for 20 minutes.
 * EMGATE_PUBLISH_TIMEOUT_MS overrides it (tests use a short one).
 */
const PUBLISH_TIMEOUT_MS = 180_000;

/** Untrusted text (reasons, file names, model text) goes to the log only through here. */
function info(text: string): void {
  core.info(neutraliseWorkflowCommands(text));
}

/** EMGATE_PUBLISH_TIMEOUT_MS, checked: 1 ms to 2^31 − 1 ms (Node's timers overflow above). */
function publishTimeoutMs(): number {
  return envInteger(process.env, 'EMGATE_PUBLISH_TIMEOUT_MS', {
    min: 1,
    max: MAX_TIMER_MS,
    fallback: PUBLISH_TIMEOUT_MS,
    unit: 'ms',
  });
}

export async function run(): Promise<void> {
  let result: GateResult | undefined;
  let comment: PublishResult | undefined;
  let settings: ActionSettings | undefined;
  // Every secret (this token, a judge's or served model's API key, registered when read) is
  // masked by the runner in the log and by the redaction pass in reports and caches.
  onSecretRegistered((value) => core.setSecret(value));
  registerSecret(rawInput('github-token'));
  try {
    try {
      settings = getSettings();
      // The environment variables the Action reads are settings too: a bad one is an
      // error naming it, before anything runs (not a timer that overflows later).
      publishTimeoutMs();
      requestTimeoutFromEnv();
      envFlag(process.env, 'EMGATE_DEBUG');
      result = await runSelected(settings);
    } catch (err) {
      // Bad inputs: still an error report, a summary, outputs and (when possible) a comment.
      result = await errorResult({
        outDir: rawInput('out-dir') ?? 'emgate-report',
        gateId: safeGateId(),
        error: err,
        inputs: rawInputFolders(),
      });
    }
    const { report } = result;
    const headline = `emgate verdict: ${report.verdict.toUpperCase()}${report.shard ? ` (shard ${report.shard.index}/${report.shard.count}, partial)` : ''} — ${report.summary.reason}`;
    info(headline);
    for (const e of report.errors) core.error(`${e.file ? `${e.file}: ` : ''}${e.cause}. Fix: ${e.fix}`);

    decideStatus(settings, result, headline);
    await writeSummary(result);
    comment = await postCommentBounded(settings, result);
  } catch (err) {
    core.debug(err instanceof Error && err.stack ? err.stack : String(err));
    core.setFailed(err instanceof Error ? err.message : String(err));
  } finally {
    setOutputs(result, comment);
  }
}

/**
 * What the step leaves behind when the job is cancelled or times out (the runner sends
 * SIGINT, then SIGTERM, then kills): an `error` verdict in the outputs, the job summary and
 * the step status, written synchronously because nothing after the signal is guaranteed to run.
 * The gate's own handler, when it has one, writes the error report into the output folder.
 */
export function onInterrupt(signal: NodeJS.Signals): void {
  // The gate's own part: an `error` report ("interrupted") over the in-progress one, lock released.
  const written = interruptActiveRuns(signal);
  const line = `emgate verdict: ERROR — interrupted by ${signal} (the job was cancelled or timed out) before the gate finished; nothing was checked.`;
  if (written.length > 0) info(`error report written to ${written.join(', ')}`);
  core.setOutput('verdict', 'error');
  for (const name of [
    'misalignment-rate',
    'baseline-rate',
    'delta',
    'interval-low',
    'interval-high',
    'shift',
    'em-shift',
    'comment-id',
    'comment-url',
  ]) {
    core.setOutput(name, '');
  }
  const summary = process.env.GITHUB_STEP_SUMMARY;
  if (summary) {
    try {
      appendFileSync(
        summary,
        `## ⛔ emgate: ERROR\n\n${line}\n\nFix: rerun the job; if it was cancelled for running too long, raise \`timeout-minutes\` or shard the suite (\`shard\`).\n`,
      );
    } catch {
      // the summary file is not writable: the step status and outputs still say error
    }
  }
  core.setFailed(line);
}

/** An input's raw value, or undefined (for the error path, where getSettings failed). */
function rawInput(name: string): string | undefined {
  const v = core.getInput(name).trim();
  return v === '' ? undefined : v;
}

/** The folders the inputs name, as given (for the error path: never write into one). */
function rawInputFolders(): { what: string; path: string }[] {
  return (['checkpoint', 'baseline', 'probes', 'cache-dir'] as const).flatMap((name) => {
    const v = rawInput(name);
    return v ? [{ what: name === 'cache-dir' ? 'cache' : name, path: v }] : [];
  });
}

/** The gate id for an error report: the input when it is a valid one, else `default`. */
function safeGateId(): string {
  const v = rawInput('gate-id');
  return v && isValidGateId(v) ? v : 'default';
}

/** Posts the comment within PUBLISH_TIMEOUT_MS; past it, warns and gives up on the comment. */
async function postCommentBounded(s: ActionSettings | undefined, r: GateResult): Promise<PublishResult | undefined> {
  // A bad EMGATE_PUBLISH_TIMEOUT_MS already made the verdict an error that names it; the
  // error comment is still posted, within the default bound.
  let limit = PUBLISH_TIMEOUT_MS;
  try {
    limit = publishTimeoutMs();
  } catch {
    // named in the report
  }
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limit);
  });
  try {
    const outcome = await Promise.race([postComment(s, r), deadline]);
    if (outcome === 'timeout') {
      core.warning(
        `Posting the PR comment took longer than ${Math.round(limit / 1000)} s; gave up on it. ` +
          `The report is in the job summary; the verdict (${r.report.verdict}) still decides this check.`,
      );
      return undefined;
    }
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}

async function runSelected(s: ActionSettings): Promise<GateResult> {
  if (s.mode === 'merge') {
    const { files, unmatched } = await resolveReportPaths(s.reports);
    info(`emgate: merging ${files.length} shard report(s):\n  ${files.join('\n  ')}`);
    for (const u of unmatched) {
      core.error(
        `input 'reports': '${u}' matches no file. Fix: download every shard artifact before the merge step (actions/download-artifact), and check the path`,
      );
    }
    // Unmatched entries go to the merge as they are: it fails closed on them (verdict error)
    // and its report, comment and summary say what is missing.
    return mergeReports(mergeSettings(s, [...files, ...unmatched]));
  }
  // getSettings has required the checkpoint in run mode.
  const {
    mode: _mode,
    scoring,
    reports: _reports,
    githubToken: _token,
    comment: _comment,
    fail: _fail,
    ...options
  } = s;
  const cacheWarning = cacheInWorkspaceWarning(options.cacheDir, process.env.GITHUB_WORKSPACE);
  if (cacheWarning) core.warning(cacheWarning);
  return runGate(
    gateSettings(options, scoring, {
      onProgress: createProgress(process.stdout),
      warn: (message) => core.warning(message),
      info,
    }),
  );
}

/** The step fails on verdict fail/error unless the policy allows errors or `fail: false`. */
function decideStatus(s: ActionSettings | undefined, r: GateResult, headline: string): void {
  const { verdict, shard } = r.report;
  // exitCode is the gate's decision (it knows the policy's on_error and that a shard's
  // verdict is partial); the verdict check is a second lock for a verdict that is not pass.
  const blocking = r.exitCode !== 0 || (verdict === 'fail' && !shard) || !['pass', 'fail', 'error'].includes(verdict);
  if (!blocking) {
    if (verdict === 'error')
      core.warning(`${headline} The policy sets on_error: allow, so this error does not fail the check.`);
    if (shard) core.info('This is one shard: the merge job (mode: merge) decides pass or fail for the whole suite.');
    return;
  }
  if (s && !s.fail) {
    core.warning(
      `${headline} The input \`fail: false\` makes emgate report-only: this check passes anyway and blocks nothing.`,
    );
    return;
  }
  core.setFailed(`${headline} Report: ${r.reportMarkdownPath}`);
}

/** Writes the job summary; a summary file that cannot be written is a warning, not the end. */
async function writeSummary(r: GateResult): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) {
    info(
      `GITHUB_STEP_SUMMARY is not set (not running in GitHub Actions?): no job summary. Report: ${r.reportMarkdownPath}`,
    );
    return;
  }
  try {
    await writeSummaryFile(r);
  } catch (err) {
    core.warning(
      `${file}: cannot write the job summary (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). ` +
        'Fix: leave GITHUB_STEP_SUMMARY as the runner sets it. The verdict and the PR comment are unaffected.',
    );
  }
}

async function writeSummaryFile(r: GateResult): Promise<void> {
  // The summary holds the full report where it fits GitHub's 1 MiB; the comment is the trimmed body.
  let body =
    r.summaryMarkdown && Buffer.byteLength(r.summaryMarkdown, 'utf8') <= SUMMARY_MAX_BYTES
      ? r.summaryMarkdown
      : r.markdown;
  if (Buffer.byteLength(body, 'utf8') > SUMMARY_MAX_BYTES) {
    // Cannot happen with the renderer's 60k-character cap; a guard, not a feature.
    body = Buffer.from(body, 'utf8')
      .subarray(0, SUMMARY_MAX_BYTES)
      .toString('utf8')
      .replace(/\uFFFD$/, '');
  }
  const footer = `\n\n---\nFull report: \`${r.reportJsonPath}\` and \`${r.reportMarkdownPath}\` (upload them with actions/upload-artifact).\n`;
  await core.summary.addRaw(body).addRaw(footer).write();
}

async function postComment(s: ActionSettings | undefined, r: GateResult): Promise<PublishResult | undefined> {
  const ctx = github.context;
  const pr = ctx.payload.pull_request;
  // Settings that did not parse: comment with the raw token input, always (an error is news).
  const comment = s?.comment ?? 'always';
  const token = s?.githubToken ?? rawInput('github-token');
  const gateId = s?.gateId ?? safeGateId();
  if (comment === 'never') {
    info('comment: never — the report is in the job summary only.');
    return undefined;
  }
  if (!pr || typeof pr.number !== 'number') {
    info(
      `The '${ctx.eventName || 'unknown'}' event has no pull request to comment on: the report is in the job summary only.`,
    );
    return undefined;
  }
  if (r.report.shard) {
    core.info('Shard run: no PR comment (the merge job posts the one report for all shards).');
    return undefined;
  }
  if (!token) {
    core.warning(
      'No github-token (secrets are empty on fork PRs): no PR comment. The report is in the job summary; ' +
        `the verdict (${r.report.verdict}) still decides this check.`,
    );
    return undefined;
  }
  const passed = r.report.verdict === 'pass';
  const { owner, repo } = ctx.repo;
  const result = await publishComment({
    token,
    owner,
    repo,
    issueNumber: pr.number,
    body: r.markdown,
    gateId,
    baseUrl: ctx.apiUrl,
    // on-failure: after a pass, still refresh an existing (failing) comment so it does not go stale.
    updateOnly: comment === 'on-failure' && passed,
    log: info,
  });
  if (result.action === 'forbidden') {
    const head = (pr.head as { repo?: { full_name?: string } } | undefined)?.repo?.full_name;
    const fork = head !== undefined && head !== `${owner}/${repo}`;
    const why = fork
      ? `This PR comes from the fork ${head}; its token is read-only whatever the workflow's permissions say, so emgate cannot comment`
      : 'The token may not comment on this PR; give the job `permissions: pull-requests: write` (and `contents: read`)';
    core.warning(
      `${why} (${result.reason}). The report is in the job summary; the verdict (${r.report.verdict}) still decides this check.`,
    );
    if (process.env.GITHUB_STEP_SUMMARY) {
      await core.summary.addRaw(`\n> [!WARNING]\n> No PR comment: ${why}.\n`).write();
    }
  }
  return result;
}

function setOutputs(r: GateResult | undefined, c: PublishResult | undefined): void {
  const num = (v: number | null | undefined): string => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '');
  const s = r?.report.summary;
  // No result means something threw before the gate could report: that is an error, never a pass.
  core.setOutput('verdict', r?.report.verdict ?? 'error');
  core.setOutput('misalignment-rate', num(s?.misalignment_rate));
  core.setOutput('baseline-rate', num(s?.baseline_rate));
  core.setOutput('delta', num(s?.delta));
  core.setOutput('interval-low', num(s?.interval?.[0]));
  core.setOutput('interval-high', num(s?.interval?.[1]));
  core.setOutput('shift', num(s?.shift));
  core.setOutput('em-shift', num(s?.em_shift));
  // A report that could not be written (folder held by another run, not writable) has no
  // path to give: an empty output, never the path of some other run's file.
  const written = r?.written !== false;
  core.setOutput('report-json', written ? (r?.reportJsonPath ?? '') : '');
  core.setOutput('report-markdown', written ? (r?.reportMarkdownPath ?? '') : '');
  core.setOutput('checkpoint-sha256', r?.checkpointSha256 ?? '');
  core.setOutput('comment-id', c?.id !== undefined ? String(c.id) : '');
  core.setOutput('comment-url', c?.url ?? '');
}

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
import { mergeReports, runGate, type GateResult } from '../gate/gate';
import { publishComment, type PublishResult } from './github';
import { getSettings, resolveReportPaths, type ActionSettings } from './inputs';
import { createProgress } from '../gate/progress';

/** GitHub's limit for one step's job summary is 1 MiB; stay under it with room for the footer. */
const SUMMARY_MAX_BYTES = 1024 * 1024 - 4096;

export async function run(): Promise<void> {
  let result: GateResult | undefined;
  let comment: PublishResult | undefined;
  try {
    const settings = getSettings();
    result = await runSelected(settings);
    const { report } = result;
    const headline = `emgate verdict: ${report.verdict.toUpperCase()}${report.shard ? ` (shard ${report.shard.index}/${report.shard.count}, partial)` : ''} — ${report.summary.reason}`;
    core.info(headline);
    for (const e of report.errors) core.error(`${e.file ? `${e.file}: ` : ''}${e.cause}. Fix: ${e.fix}`);

    decideStatus(settings, result, headline);
    await writeSummary(result);
    comment = await postComment(settings, result);
  } catch (err) {
    core.debug(err instanceof Error && err.stack ? err.stack : String(err));
    core.setFailed(err instanceof Error ? err.message : String(err));
  } finally {
    setOutputs(result, comment);
  }
}

async function runSelected(s: ActionSettings): Promise<GateResult> {
  if (s.mode === 'merge') {
    const { files, unmatched } = await resolveReportPaths(s.reports);
    core.info(`emgate: merging ${files.length} shard report(s):\n  ${files.join('\n  ')}`);
    for (const u of unmatched) {
      core.error(`input 'reports': '${u}' matches no file. Fix: download every shard artifact before the merge step (actions/download-artifact), and check the path`);
    }
    // Unmatched entries go to the merge as they are: it fails closed on them (verdict error)
    // and its report, comment and summary say what is missing.
    return mergeReports({ reports: [...files, ...unmatched], probes: s.probes, policy: s.policy, outDir: s.outDir, gateId: s.gateId, seed: s.seed });
  }
  return runGate({
    checkpoint: s.checkpoint!, // getSettings requires it in run mode
    baseline: s.baseline,
    probes: s.probes,
    policy: s.policy,
    direction: s.direction,
    hiddenTensor: s.hiddenTensor,
    outDir: s.outDir,
    batchSize: s.batchSize,
    threads: s.threads,
    device: s.device,
    requireGpu: s.requireGpu,
    seed: s.seed ?? 0,
    shard: s.shard,
    variants: s.variants,
    gateId: s.gateId,
    onProgress: createProgress(process.stdout),
    warn: (message) => core.warning(message),
  });
}

/** The step fails on verdict fail/error unless the policy allows errors or `fail: false`. */
function decideStatus(s: ActionSettings, r: GateResult, headline: string): void {
  const { verdict, shard } = r.report;
  // exitCode is the gate's decision (it knows the policy's on_error and that a shard's
  // verdict is partial); the verdict check is a second lock for a verdict that is not pass.
  const blocking = r.exitCode !== 0 || (verdict === 'fail' && !shard) || !['pass', 'fail', 'error'].includes(verdict);
  if (!blocking) {
    if (verdict === 'error') core.warning(`${headline} The policy sets on_error: allow, so this error does not fail the check.`);
    if (shard) core.info('This is one shard: the merge job (mode: merge) decides pass or fail for the whole suite.');
    return;
  }
  if (!s.fail) {
    core.warning(`${headline} The input \`fail: false\` makes emgate report-only: this check passes anyway and blocks nothing.`);
    return;
  }
  core.setFailed(`${headline} Report: ${r.reportMarkdownPath}`);
}

async function writeSummary(r: GateResult): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) {
    core.info(`GITHUB_STEP_SUMMARY is not set (not running in GitHub Actions?): no job summary. Report: ${r.reportMarkdownPath}`);
    return;
  }
  let body = r.markdown;
  if (Buffer.byteLength(body, 'utf8') > SUMMARY_MAX_BYTES) {
    // Cannot happen with the renderer's 60k-character cap; a guard, not a feature.
    body = Buffer.from(body, 'utf8').subarray(0, SUMMARY_MAX_BYTES).toString('utf8').replace(/\uFFFD$/, '');
  }
  const footer = `\n\n---\nFull report: \`${r.reportJsonPath}\` and \`${r.reportMarkdownPath}\` (upload them with actions/upload-artifact).\n`;
  await core.summary.addRaw(body).addRaw(footer).write();
}

async function postComment(s: ActionSettings, r: GateResult): Promise<PublishResult | undefined> {
  const ctx = github.context;
  const pr = ctx.payload.pull_request;
  if (s.comment === 'never') {
    core.info('comment: never — the report is in the job summary only.');
    return undefined;
  }
  if (!pr || typeof pr.number !== 'number') {
    core.info(`The '${ctx.eventName || 'unknown'}' event has no pull request to comment on: the report is in the job summary only.`);
    return undefined;
  }
  if (r.report.shard) {
    core.info('Shard run: no PR comment (the merge job posts the one report for all shards).');
    return undefined;
  }
  if (!s.githubToken) {
    core.warning(
      'No github-token (secrets are empty on fork PRs): no PR comment. The report is in the job summary; ' +
        `the verdict (${r.report.verdict}) still decides this check.`,
    );
    return undefined;
  }
  const passed = r.report.verdict === 'pass';
  const { owner, repo } = ctx.repo;
  const result = await publishComment({
    token: s.githubToken,
    owner,
    repo,
    issueNumber: pr.number,
    body: r.markdown,
    gateId: s.gateId,
    baseUrl: ctx.apiUrl,
    // on-failure: after a pass, still refresh an existing (failing) comment so it does not go stale.
    updateOnly: s.comment === 'on-failure' && passed,
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
  core.setOutput('em-shift', num(s?.em_shift));
  core.setOutput('report-json', r?.reportJsonPath ?? '');
  core.setOutput('report-markdown', r?.reportMarkdownPath ?? '');
  core.setOutput('checkpoint-sha256', r?.checkpointSha256 ?? '');
  core.setOutput('comment-id', c?.id !== undefined ? String(c.id) : '');
  core.setOutput('comment-url', c?.url ?? '');
}

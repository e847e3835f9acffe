// `emgate merge`: the partial reports of a sharded run pooled into the verdict one
// unsharded run would give. Each shard report is checked (schema, digest, same run) before
// its per-probe results are trusted; the verdict is recomputed from them.
import * as path from 'path';
import { type DirectionCalibration, evaluateWithDirections } from '../core/em-shift-directions';
import { EmgateError } from '../core/errors';
import type { ModelProvenance, ProbeResult, Provenance, Report, SkippedProbe } from '../core/types';
import { loadPolicy } from '../load/policy';
import { shardDigest, validateReport } from '../load/report-json';
import { readJsonFile } from '../load/schema-validation';
import { loadSuite, shardOf } from '../load/suite';
import { mergedAblation } from './ablation';
import { type GateResult, inOutDir } from './outputs';
import { checkPolicyFits } from './run-inputs';
import type { MergeSettings } from './settings';

/**
 * Combines the partial reports of `emgate run --shard i/n` into the report one unsharded
 * run would give: the verdict is recomputed from the pooled per-probe results. Fails closed
 * when a shard is missing, doubled, or from another checkpoint, suite, policy or seed.
 */
export async function mergeReports(settings: MergeSettings): Promise<GateResult> {
  // The shard reports' folders are inputs too: a merge into one would overwrite its report.
  const inputs = [
    { what: 'probes', path: settings.probes },
    ...settings.reports.map((r) => ({ what: 'shard report', path: path.dirname(r), exact: true })),
  ];
  return inOutDir({ outDir: settings.outDir, gateId: settings.gateId, inputs }, async (out) => {
    const partials = await out.clock.time('load', () => Promise.all(settings.reports.map(readPartialReport)));
    const loadedPolicy = await loadPolicy(settings.policy);
    const { policy, sha256: policySha } = loadedPolicy;
    out.policy = policy;
    checkShardsMatch(partials, settings, policySha);
    const first = partials[0].report;
    const variants = first.provenance!.suite.variants;
    const suite = await loadSuite(settings.probes, {
      variants: variants.includes('all') ? 'all' : variants.length ? variants : 'none',
    });
    if (suite.sha256 !== first.provenance!.suite.sha256) {
      throw new EmgateError({
        file: settings.probes,
        cause: 'this probe suite is not the one the shards ran (suite sha256 differs)',
        fix: 'merge with the same probes directory the shard jobs used',
      });
    }
    checkPolicyFits(loadedPolicy, suite, first.provenance!.baseline !== undefined);
    out.suite = suite;
    const inSuite = new Set(suite.probes.map((p) => p.id));
    const byId = new Map<string, ProbeResult>();
    for (const { report, file } of partials) {
      const { index, count } = report.shard!;
      for (const p of report.probes) {
        if (byId.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" appears more than once across the shards`,
            fix: 'merge the reports of one sharded run, each shard once',
          });
        if (!inSuite.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" is not in the probe suite ${settings.probes}`,
            fix: 'merge with the probes directory the shard jobs used',
          });
        // The split depends on the id alone, so a probe in the wrong shard means an edited report.
        if (shardOf(p.id, count) !== index) {
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" belongs to shard ${shardOf(p.id, count)}/${count}, not to shard ${index}/${count} whose report holds it`,
            fix: 'merge the report.json files exactly as the shard jobs wrote them',
          });
        }
        byId.set(p.id, p);
      }
    }
    // A probe a shard skipped (too long for the context) is covered, and skipped in the merge too.
    const skippedById = new Map<string, SkippedProbe>();
    for (const { report, file } of partials) {
      for (const p of report.skipped ?? []) {
        if (byId.has(p.id) || skippedById.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" appears in more than one shard`,
            fix: 'merge the reports of one sharded run, each shard once',
          });
        skippedById.set(p.id, p);
      }
    }
    const missing = suite.probes.filter((p) => !byId.has(p.id) && !skippedById.has(p.id)).map((p) => p.id);
    if (missing.length || byId.size + skippedById.size !== suite.probes.length) {
      throw new EmgateError({
        file: null,
        cause: `the shards do not cover the suite: ${missing.length} probes missing (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''})`,
        fix: 'make sure every shard job finished and uploaded its report',
      });
    }
    out.results = suite.probes.filter((p) => byId.has(p.id)).map((p) => byId.get(p.id)!);
    out.skipped = suite.probes.filter((p) => skippedById.has(p.id)).map((p) => skippedById.get(p.id)!);
    out.directionBlock = first.direction;
    // Counts of work done add up over the shards; everything else is the same in every shard.
    const sum = (of: (p: Provenance) => number | undefined) =>
      partials.reduce((s, { report }) => s + (of(report.provenance!) ?? 0), 0);
    const served = first.provenance!.served;
    out.provenance = {
      ...first.provenance!,
      tokens_scored: sum((p) => p.tokens_scored),
      ...(served?.requests !== undefined ? { served: { ...served, requests: sum((p) => p.served?.requests) } } : {}),
    };
    // Reports from before the directions list name their one direction in `direction`.
    const listed: DirectionCalibration[] = first.directions
      ? first.directions.map((d) => ({
          name: d.name,
          aligned_mean: d.aligned_mean,
          misaligned_mean: d.misaligned_mean,
        }))
      : first.direction
        ? [
            {
              name: 'direction',
              aligned_mean: first.direction.aligned_mean,
              misaligned_mean: first.direction.misaligned_mean,
            },
          ]
        : [];
    const evaluated = out.clock.timeSync('evaluate', () =>
      evaluateWithDirections(
        { probes: out.results, domains: suite.domains, policy, seed: first.provenance!.seed, skipped: out.skipped },
        listed,
      ),
    );
    out.evaluation = evaluated;
    // The causal check, pooled from the shards' per-probe ablated log-odds (gate/ablation.ts).
    const pooled = mergedAblation(evaluated, partials, out.results, suite.domains, policy, first.provenance!.seed);
    if (pooled) {
      out.evaluation = pooled.evaluation;
      out.ablation = pooled.evaluation.ablation;
      out.provenance = { ...out.provenance, ablation: pooled.provenance };
    }
    out.directionList = first.directions?.map(({ em_shift: _e, domains: _d, ...d }, i) => {
      const m = evaluated.directions?.[i];
      return {
        ...d,
        ...(m?.em_shift ? { em_shift: m.em_shift } : {}),
        ...(m?.domains.length ? { domains: m.domains } : {}),
      };
    });
  });
}

async function readPartialReport(file: string): Promise<{ report: Report; file: string }> {
  let report: Report;
  try {
    // The loaders' reader: a regular file only, a syntax error by position, never content.
    report = (await readJsonFile(file)) as Report;
    validateReport(report);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `not a valid emgate report (${err instanceof EmgateError ? err.cause_ : (err as Error).message})`,
      fix: 'pass the report.json files written by `emgate run --shard i/n`',
    });
  }
  if (!report.shard)
    throw new EmgateError({
      file,
      cause: 'is not a shard report (no "shard" block)',
      fix: 'merge only reports written with --shard i/n',
    });
  // The digest covers the shard's results and what they were computed from: a report edited,
  // truncated or spliced together after the shard job wrote it does not merge.
  if (report.verdict !== 'error' && report.shard.digest !== shardDigest(report)) {
    throw new EmgateError({
      file,
      cause:
        report.shard.digest === undefined
          ? 'the shard report carries no digest of its results'
          : "the shard report's results do not match its digest (the file was changed after the shard job wrote it)",
      fix: 'merge the report.json files exactly as `emgate run --shard i/n` (of this emgate version) wrote them; rerun that shard if the file was damaged',
    });
  }
  if (report.verdict === 'error') {
    const cause = report.errors.map((e) => e.cause).join('; ');
    throw new EmgateError({
      file,
      cause: `shard ${report.shard.index}/${report.shard.count} ended in error (${cause})`,
      fix: 'fix the failing shard job and run it again',
    });
  }
  return { report, file };
}

function checkShardsMatch(
  partials: { report: Report; file: string }[],
  settings: MergeSettings,
  policySha: string,
): void {
  if (partials.length === 0)
    throw new EmgateError({ file: null, cause: 'no shard reports given', fix: 'pass the report.json of every shard' });
  const first = partials[0].report;
  const count = first.shard!.count;
  const seen = new Set<number>();
  for (const { report, file } of partials) {
    const p = report.provenance!;
    const f = first.provenance!;
    const mismatch = (what: string) =>
      new EmgateError({
        file,
        cause: `${what} differs from ${partials[0].file}`,
        fix: 'merge only the shards of one run (same checkpoint and graph, baseline, suite and variants, policy, direction, seed, dtype / model file, emgate and onnxruntime version, execution provider and shard count)',
      });
    if (report.shard!.count !== count) throw mismatch('the shard count');
    if (p.candidate.sha256 !== f.candidate.sha256) throw mismatch('the candidate checkpoint');
    if ((p.baseline?.sha256 ?? null) !== (f.baseline?.sha256 ?? null)) throw mismatch('the baseline checkpoint');
    if (p.suite.sha256 !== f.suite.sha256) throw mismatch('the probe suite');
    if (p.policy.sha256 !== f.policy.sha256) throw mismatch('the policy');
    if ((p.direction?.sha256 ?? null) !== (f.direction?.sha256 ?? null)) throw mismatch('the direction');
    const shas = (r: Report) => (r.directions ?? []).map((d) => d.sha256).join(',');
    if (shas(report) !== shas(first)) throw mismatch('the list of directions');
    if (p.seed !== f.seed) throw mismatch('the seed');
    // What ran and how it was scored: the same checkpoint run with another graph, dtype or
    // variants gives other scores, so such shards are not one run.
    for (const [what, here, there] of scoringDifferences(p, f)) {
      throw mismatch(`${what} (${here} here, ${there} in the first shard)`);
    }
    if (seen.has(report.shard!.index))
      throw new EmgateError({
        file,
        cause: `shard ${report.shard!.index}/${count} given twice`,
        fix: 'pass each shard once',
      });
    seen.add(report.shard!.index);
  }
  if (seen.size !== count) {
    const absent = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !seen.has(i));
    throw new EmgateError({
      file: null,
      cause: `shards missing: ${absent.map((i) => `${i}/${count}`).join(', ')}`,
      fix: 'wait for every shard job and pass all their reports',
    });
  }
  if (first.provenance!.policy.sha256 !== policySha) {
    throw new EmgateError({
      file: settings.policy,
      cause: 'this policy is not the one the shards ran (policy sha256 differs)',
      fix: 'merge with the same policy file the shard jobs used',
    });
  }
  if (settings.seed !== undefined && first.provenance!.seed !== settings.seed) {
    throw new EmgateError({
      file: null,
      cause: `the shards ran with seed ${first.provenance!.seed}, the merge with ${settings.seed}`,
      fix: 'merge with the seed the shard jobs used',
    });
  }
}

/** The score-changing settings in which two shards' provenance differ: [what, this shard's, the first's]. */
function scoringDifferences(p: Provenance, f: Provenance): [string, string, string][] {
  const graph = (m: ModelProvenance | undefined) =>
    m?.graph ? `${m.graph.file} sha256 ${m.graph.sha256}` : 'none recorded';
  const pairs: [string, string, string][] = [
    ["the candidate's graph", graph(p.candidate), graph(f.candidate)],
    ["the baseline's graph", graph(p.baseline), graph(f.baseline)],
    ['the dtype', p.scoring?.dtype ?? 'none recorded', f.scoring?.dtype ?? 'none recorded'],
    ['the model file', String(p.scoring?.model_file ?? 'none'), String(f.scoring?.model_file ?? 'none')],
    ['the hidden tensor', String(p.scoring?.hidden_tensor ?? 'none'), String(f.scoring?.hidden_tensor ?? 'none')],
    ['the prompt variants', p.suite.variants.join(',') || 'none', f.suite.variants.join(',') || 'none'],
    ['the emgate version', p.emgate_version, f.emgate_version],
    ['the onnxruntime version', p.onnxruntime_version, f.onnxruntime_version],
    ['the execution provider', p.execution_provider, f.execution_provider],
  ];
  return pairs.filter(([, here, there]) => here !== there);
}

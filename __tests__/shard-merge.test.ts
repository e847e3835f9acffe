// Merging shard reports (`emgate merge`, mergeReports) on real scores and no model run:
// the committed example (a real unsharded gate run, examples/report) is cut into the
// partial reports its shards would write — each shard's slice by the gate's own
// shardProbes, evaluated by the real evaluate() as partial — and the merge must give the
// example back, verdict and every number. A sharded run on real checkpoints merged by the
// Action is checked end to end in action-e2e.test.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { evaluate } from '../src/core/evaluate';
import type { Report } from '../src/core/types';
import { type MergeSettings, mergeReports } from '../src/gate/gate';
import { BUILTIN_PROBES } from '../src/load/package-info';
import { serializeReport, shardDigest } from '../src/load/report-json';
import { shardProbes } from '../src/load/suite';
import { EXAMPLE_DIR, EXAMPLE_POLICY, type ExampleInputs, exampleInputs, exampleReport } from './helpers/real-reports';

const example = require('../scripts/make-example-report.js') as {
  normalise: (r: { json: string; markdown: string; outDir: string }) => { json: string; markdown: string };
};

let inputs: ExampleInputs;
beforeAll(async () => {
  inputs = await exampleInputs();
});

/** The partial report shard `index` of `count` of the example's run would write. */
function shardOfExample(index: number, count: number): Report {
  const full = exampleReport();
  const ids = new Set(shardProbes([...inputs.probes.values()], index, count).map((p) => p.id));
  const probes = full.probes.filter((p) => ids.has(p.id));
  const d = full.direction!;
  const e = evaluate({
    probes,
    domains: inputs.domains,
    policy: inputs.policy,
    seed: full.provenance!.seed,
    direction: { aligned_mean: d.aligned_mean, misaligned_mean: d.misaligned_mean },
    partial: true,
  });
  // Tokens scored, split so the shards add up to the full run's count.
  const total = full.provenance!.tokens_scored;
  const share = Math.floor(total / count) + (index === count ? total % count : 0);
  const { em_shift: _full, timing, ...rest } = full;
  const partial: Report = {
    ...rest,
    verdict: e.verdict,
    summary: e.summary,
    checks: e.checks,
    domains: e.domains,
    probes,
    ...(e.em_shift ? { em_shift: e.em_shift } : {}),
    provenance: { ...full.provenance!, tokens_scored: share },
    shard: { index, count },
    timing,
  };
  // What the gate writes into a shard report, over its results and inputs; merge verifies it.
  return withDigest(partial);
}

/** `report` with its shard digest made again (after a test changed it, as a shard job would have). */
function withDigest(report: Report): Report {
  report.shard = { index: report.shard!.index, count: report.shard!.count };
  report.shard.digest = shardDigest(report);
  return report;
}

/** Writes reports to files, as the shard jobs' artifacts. */
function files(reports: Report[]): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'emgate-shards-'));
  return reports.map((r, i) => {
    const file = path.join(dir, `shard-${i}.json`);
    writeFileSync(file, serializeReport(r));
    return file;
  });
}

function merge(reports: string[], over: Partial<MergeSettings> = {}) {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'emgate-merged-'));
  return mergeReports({ reports, probes: BUILTIN_PROBES, policy: EXAMPLE_POLICY, outDir, gateId: 'default', ...over });
}

/** Each shard is evaluated once (evaluate() on the example is the slow part); every test gets its own deep copy to change. */
const made = new Map<string, Report>();
function shard(index: number, count: number): Report {
  const key = `${index}/${count}`;
  if (!made.has(key)) made.set(key, shardOfExample(index, count));
  return structuredClone(made.get(key)!);
}
const shards = (count: number): Report[] => Array.from({ length: count }, (_, i) => shard(i + 1, count));

it('the merged report of 3 shards, given out of order, is the unsharded report: verdict, numbers and report.md', async () => {
  const parts = shards(3);
  for (const p of parts) {
    expect(p.probes.length).toBeGreaterThan(0);
    expect(p.probes.length).toBeLessThan(inputs.probes.size);
  }
  const [a, b, c] = files(parts);
  const merged = await merge([c, a, b]);
  expect(merged.report.errors).toEqual([]);
  expect(merged.exitCode).toBe(1); // the example's verdict is fail

  const committedJson = readFileSync(path.join(EXAMPLE_DIR, 'report.json'), 'utf8');
  const { timing: _m, ...mergedRest } = merged.report;
  const { timing: _e, ...exampleRest } = JSON.parse(committedJson) as Report;
  expect(mergedRest).toEqual(exampleRest);
  const { markdown } = example.normalise({
    json: readFileSync(merged.reportJsonPath, 'utf8'),
    markdown: merged.markdown,
    outDir: path.dirname(merged.reportJsonPath),
  });
  expect(markdown).toBe(readFileSync(path.join(EXAMPLE_DIR, 'report.md'), 'utf8'));
});

describe('refuses what is not one complete sharded run (verdict error, exit 2)', () => {
  async function refused(reports: string[], cause: RegExp, over: Partial<MergeSettings> = {}): Promise<void> {
    const r = await merge(reports, over);
    expect(r.report.verdict).toBe('error');
    expect(r.exitCode).toBe(2);
    expect(r.report.probes).toEqual([]);
    expect(r.report.errors.map((e) => e.cause).join('\n')).toMatch(cause);
    expect(r.markdown.split('\n')[1]).toBe('## ⚠️ emgate: ERROR — blocked (fail-closed)');
  }

  it('a shard from another candidate checkpoint', async () => {
    const parts = shards(2);
    parts[1].provenance!.candidate = { ...parts[1].provenance!.candidate, sha256: 'f'.repeat(64) };
    await refused(files([parts[0], withDigest(parts[1])]), /the candidate checkpoint differs/);
  });

  it('a missing shard', async () => {
    await refused(files(shards(3).slice(0, 2)), /shards missing: 3\/3/);
  });

  it('a shard given twice', async () => {
    const parts = shards(2);
    await refused(files([parts[0], parts[0], parts[1]]), /shard 1\/2 given twice/);
  });

  it('a probe in two shards', async () => {
    const parts = shards(2);
    parts[1].probes.push(parts[0].probes[0]);
    await refused(
      files([parts[0], withDigest(parts[1])]),
      new RegExp(`probe "${parts[0].probes[0].id}" appears more than once across the shards`),
    );
  });

  it('another seed, or a seed other than the shards ran with', async () => {
    const parts = shards(2);
    await refused(files(parts), /the shards ran with seed 0, the merge with 5/, { seed: 5 });
    parts[1].provenance!.seed = 5;
    await refused(files([parts[0], withDigest(parts[1])]), /the seed differs/);
  });

  it('a policy other than the shards ran', async () => {
    await refused(files(shards(2)), /this policy is not the one the shards ran/, {
      policy: path.join(path.dirname(EXAMPLE_POLICY), 'default.json'),
    });
  });

  it('a full report where a shard report belongs', async () => {
    await refused([path.join(EXAMPLE_DIR, 'report.json')], /is not a shard report/);
  });

  it('a shard report changed after its job wrote it (digest mismatch)', async () => {
    const parts = shards(2);
    parts[1].probes[0].candidate.p_mis = 0.999;
    await refused(files(parts), /do not match its digest/);
  });

  it('a shard that ended in error', async () => {
    const parts = shards(2);
    Object.assign(parts[1], {
      verdict: 'error',
      errors: [{ file: 'model.onnx', cause: 'out of memory', fix: 'use a larger runner' }],
    });
    await refused(files(parts), /shard 2\/2 ended in error \(out of memory\)/);
  });
});

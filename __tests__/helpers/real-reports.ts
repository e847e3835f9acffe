// Reports for the renderer and serializer tests, all real evaluation output; nothing here
// computes a statistic:
// - fail: the committed example (examples/report/report.json, a real `emgate run` of the
//   rank-1 organism against its base; scripts/make-example-report.js);
// - pass: the base organism against itself — the example's baseline scores on both sides,
//   evaluated by src/core/evaluate under the same policy and seed;
// - error: runGate on a checkpoint that is not there (it stops before any model loads).
import { mkdtempSync, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { evaluate } from '../../src/core/evaluate';
import type { Policy, Probe, ProbeResult, Report } from '../../src/core/types';
import { runGate } from '../../src/gate/gate';
import { BUILTIN_PROBES, PACKAGE_ROOT } from '../../src/load/package-info';
import { loadPolicy } from '../../src/load/policy';
import { loadSuite } from '../../src/load/suite';

export const EXAMPLE_DIR = path.join(PACKAGE_ROOT, 'examples', 'report');
/** The policy the example ran with. */
export const EXAMPLE_POLICY = path.join(PACKAGE_ROOT, 'policies', 'lenient.json');
/** The timing block of every report here (the example's is normalised to this too). */
export const FIXED_TIMING: Report['timing'] = {
  started_at: '1970-01-01T00:00:00.000Z',
  total_ms: 0,
  phases: { load: 0 },
};

/** A fresh copy of the committed example report (verdict fail). */
export function exampleReport(): Report {
  return JSON.parse(readFileSync(path.join(EXAMPLE_DIR, 'report.json'), 'utf8')) as Report;
}

export interface ExampleInputs {
  /** The example's probes by id (the built-in suite with the variants it ran). */
  probes: Map<string, Probe>;
  domains: string[];
  policy: Policy;
}

/** The suite and policy behind the example, loaded by the real loaders. */
export async function exampleInputs(report: Report = exampleReport()): Promise<ExampleInputs> {
  const v = report.provenance!.suite.variants;
  const suite = await loadSuite(BUILTIN_PROBES, { variants: v.includes('all') ? 'all' : v.length > 0 ? v : 'none' });
  const { policy } = await loadPolicy(EXAMPLE_POLICY);
  return { probes: new Map(suite.probes.map((p) => [p.id, p])), domains: suite.domains, policy };
}

/** `report` with its probe results replaced by `results` and evaluated again by the real evaluate(). */
export function reevaluated(report: Report, results: ProbeResult[], inputs: ExampleInputs): Report {
  const d = report.direction;
  const e = evaluate({
    probes: results,
    domains: inputs.domains,
    policy: inputs.policy,
    seed: report.provenance!.seed,
    direction: d ? { aligned_mean: d.aligned_mean, misaligned_mean: d.misaligned_mean } : undefined,
  });
  const { em_shift: _old, ...rest } = report;
  return {
    ...rest,
    verdict: e.verdict,
    summary: e.summary,
    checks: e.checks,
    domains: e.domains,
    probes: results,
    ...(e.em_shift ? { em_shift: e.em_shift } : {}),
  };
}

/** Verdict pass: the base organism gated against itself (the example's baseline scores as both sides). */
export function passReport(inputs: ExampleInputs): Report {
  const example = exampleReport();
  const results = example.probes.map((p) => ({ ...p, candidate: structuredClone(p.baseline!) }));
  const report = reevaluated(example, results, inputs);
  report.provenance = { ...report.provenance!, candidate: report.provenance!.baseline! };
  if (report.verdict !== 'pass')
    throw new Error(`passReport: the base against itself gave verdict ${report.verdict}; pick a policy it passes`);
  return report;
}

/** Verdict error: the real gate on a checkpoint that is not there. */
export async function errorReport(): Promise<Report> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'emgate-error-report-'));
  const { report } = await runGate({
    // Absolute and fixed, so the report (and its snapshot) is the same on every machine.
    checkpoint: '/emgate-no-such-checkpoint',
    baseline: '/emgate-no-such-baseline',
    probes: BUILTIN_PROBES,
    policy: EXAMPLE_POLICY,
    outDir: out,
    batchSize: 8,
    device: 'cpu',
    seed: 0,
    gateId: 'default',
  });
  if (report.verdict !== 'error') throw new Error(`errorReport: expected verdict error, got ${report.verdict}`);
  return { ...report, timing: FIXED_TIMING };
}

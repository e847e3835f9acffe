// Several EM directions in one run. The first direction is measured by evaluate() itself
// (report.em_shift, em_shift:overall); every further direction is measured by the same
// functions (checks/em-shift.ts) on its own projections and random control, and the
// policy's em_shift limits apply to each: any direction's blocking check that fails fails
// the run. Pure.

import type { Scope } from './checks/common';
import { emShiftCheck, emShiftTestWords, measureEmShift, projectionMode } from './checks/em-shift';
import { EmgateError } from './errors';
import { type EvaluateInput, type Evaluation, evaluate, reason } from './evaluate';
import { deriveSeed } from './stats';
import type { Check, EmShift, ProbeResult, ProbeScore } from './types';

export interface DirectionCalibration {
  /** File name, for messages. */
  name: string;
  aligned_mean: number;
  misaligned_mean: number;
}

export interface DirectionMeasure {
  check: string;
  em_shift?: EmShift;
  domains: { domain: string; em_shift: EmShift }[];
}

/** Check id of direction `index` (0-based): the first keeps the id it always had. */
export function emShiftCheckId(index: number): string {
  return index === 0 ? 'em_shift:overall' : `em_shift[${index + 1}]:overall`;
}

/**
 * evaluate() over a run with any number of directions (`input.direction` is ignored: the
 * first of `directions` is the primary one). With none, evaluate() alone.
 */
export function evaluateWithDirections(
  input: EvaluateInput,
  directions: DirectionCalibration[],
): Evaluation & { directions?: DirectionMeasure[] } {
  const first = evaluate({ ...input, direction: directions[0] });
  if (directions.length === 0) return first;
  return withDirections(input, first, directions);
}

/**
 * Adds directions 2..n to an evaluation of direction 1: their em_shift checks (after the
 * first's), their measures, and the verdict and reason over all checks. Probe scores must
 * carry `projections` with one entry per direction.
 */
export function withDirections(
  input: EvaluateInput,
  first: Evaluation,
  directions: DirectionCalibration[],
): Evaluation & { directions: DirectionMeasure[] } {
  const measures: DirectionMeasure[] = [
    {
      check: emShiftCheckId(0),
      ...(first.em_shift ? { em_shift: first.em_shift } : {}),
      domains: first.domains.flatMap((d) => (d.em_shift ? [{ domain: d.domain, em_shift: d.em_shift }] : [])),
    },
  ];
  const extraChecks: Check[] = [];
  const domains = first.domains.map((d) => d.domain);
  for (let k = 1; k < directions.length; k++) {
    const probes = input.probes.map((p) => alongDirection(p, k, directions.length));
    const hasBaseline = probes.length > 0 && probes.every((p) => p.baseline !== undefined);
    const mode = projectionMode(
      probes.flatMap((p) => (p.baseline ? [p.candidate, p.baseline] : [p.candidate])),
      hasBaseline,
      directions[k],
    );
    // Each direction's tests draw their own random numbers.
    const seed = deriveSeed(input.seed, `direction:${k + 1}`);
    const measure = (scope: string, ps: ProbeResult[]): Pick<Scope, 'scope' | 'emShift' | 'emShiftTest'> => {
      if (ps.length === 0 || !('scale' in mode)) return { scope };
      const cand = ps.map((p) => p.candidate);
      const base = ps.map((p) => p.baseline as ProbeScore);
      return {
        scope,
        emShift: measureEmShift(scope, cand, base, mode.scale, seed),
        emShiftTest: emShiftTestWords(cand, base),
      };
    };
    const overall = measure('overall', probes);
    if (input.policy.em_shift.mode !== 'off') {
      const check = emShiftCheck(overall, input.policy, mode);
      extraChecks.push({
        ...check,
        id: emShiftCheckId(k),
        message: `Direction ${k + 1} (${directions[k].name}): ${check.message}`,
      });
    }
    measures.push({
      check: emShiftCheckId(k),
      ...(overall.emShift ? { em_shift: overall.emShift } : {}),
      domains: domains.flatMap((d) => {
        const e = measure(
          d,
          probes.filter((p) => p.domain === d),
        ).emShift;
        return e ? [{ domain: d, em_shift: e }] : [];
      }),
    });
  }
  // With several directions every em_shift message says which direction it is about.
  const named = first.checks.map((c) =>
    c.id === emShiftCheckId(0) ? { ...c, message: `Direction 1 (${directions[0].name}): ${c.message}` } : c,
  );
  const at = named.findIndex((c) => c.id === emShiftCheckId(0));
  const checks =
    at < 0 ? [...named, ...extraChecks] : [...named.slice(0, at + 1), ...extraChecks, ...named.slice(at + 1)];
  const verdict = checks.some((c) => c.blocking && c.status === 'fail') ? 'fail' : 'pass';
  return { ...first, verdict, checks, summary: { ...first.summary, reason: reason(checks) }, directions: measures };
}

/** The probe as if direction k were the only one: its projections moved into place. */
function alongDirection(p: ProbeResult, k: number, count: number): ProbeResult {
  const pick = (s: ProbeScore, model: string): ProbeScore => {
    const entry = s.projections?.[k];
    if (!entry || s.projections!.length !== count) {
      throw new EmgateError({
        cause: `probe ${p.id}: the ${model} score carries ${s.projections?.length ?? 0} direction projections, the run has ${count} directions`,
        fix: 'project every probe onto every direction (when merging, every shard must have used the same directions)',
      });
    }
    return { ...s, projection: entry.value, projection_random: entry.random };
  };
  return {
    ...p,
    candidate: pick(p.candidate, 'candidate'),
    ...(p.baseline ? { baseline: pick(p.baseline, 'baseline') } : {}),
  };
}

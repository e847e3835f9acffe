// Contrast mode's increase tests are adjusted over a family only when their limit asks for
// a check; whichever limits a policy sets (overall and per domain, each present or absent),
// with or without a baseline, evaluate() gives finite numbers or nulls, never a NaN that
// would end the run in error at serialisation. Real scores: the committed example's probes.
import { evaluate } from '../src/core/evaluate';
import type { RateLimits } from '../src/core/types';
import { resolvedPolicy } from './helpers/policies';
import { exampleReport } from './helpers/real-reports';

function nonFinite(value: unknown, at = '$'): string[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinite(v, `${at}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => nonFinite(v, `${at}.${k}`));
  return [];
}

const LIMITS: Required<RateLimits> = {
  max_shift: 0.1,
  max_rate: 0.5,
  max_increase: 0.1,
  max_mean_p_mis: 0.5,
  max_mean_p_mis_increase: 0.1,
  max_adjusted_shift: 0.1,
};

it('every combination of contrast limits, with and without a baseline, stays finite', () => {
  const report = exampleReport();
  const domains = report.domains.map((d) => d.domain);
  // A slice keeps the 2^6 × 2 evaluations fast; every domain keeps probes.
  const probes = domains.flatMap((d) => report.probes.filter((p) => p.domain === d).slice(0, 3));
  const keys = Object.keys(LIMITS) as (keyof RateLimits)[];
  let runs = 0;
  for (let mask = 0; mask < 1 << keys.length; mask++) {
    const limits: RateLimits = {};
    keys.forEach((k, i) => {
      if (mask & (1 << i)) limits[k] = LIMITS[k];
    });
    const policy = resolvedPolicy({ alpha: 0.3, overall: limits, per_domain: mask % 2 === 0 ? limits : {} });
    for (const withBaseline of [true, false]) {
      const input = withBaseline ? probes : probes.map(({ baseline: _b, ...p }) => p);
      const e = evaluate({ probes: input, domains, policy, seed: 0 });
      const where = `${JSON.stringify(limits)} baseline=${withBaseline}`;
      expect([where, nonFinite(e)]).toEqual([where, []]);
      runs++;
    }
  }
  expect(runs).toBe(128);
});

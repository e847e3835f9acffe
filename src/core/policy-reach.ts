// Can each blocking check of a policy ever fail on this suite? A check that cannot is a
// promise the gate does not keep: with alpha 1e-9 the sign-flip test (whose p-value is
// never below 1/20,001, or 2^−n for n ≤ 16 probes) can never call a rise significant, so
// a candidate that moved +0.9 nats on every probe passed. Two ways a check is dead:
//
// - its limit is at or above the largest value the metric can take (a rate, a share or
//   a p_mis is at most 1; a mean coherence at least 0), so "value > limit" never holds;
// - its test can never reach significance: the smallest p-value the test can give with
//   this suite's probe counts, after the correction across domains, is not below alpha.
//   The smallest adjusted p of a domain is found by putting every domain of the family
//   at its own smallest p (Holm and Benjamini–Hochberg adjusted p-values only grow when
//   any input p grows, so that is the minimum).
//
// The probe counts are the whole suite's (an upper bound: probes skipped for the context
// only lower them). Pure.
import { limitsFor, SIGN_FLIP_ITERATIONS } from './checks/common';
import { generatedSettings } from './generated';
import * as fmt from './report/format';
import { adjustPValues, mcnemarExactOneSided, smallestSignFlipP } from './stats';
import type { Policy, RateLimits, ScoringMode } from './types';

/** One blocking check that can never fail, and why. */
export interface DeadCheck {
  /** The policy key that sets the check's limit, e.g. ['per_domain', 'max_shift']. */
  key: string[];
  /** The scopes (overall, or domains) where it cannot fail. */
  scopes: string[];
  /** 'limit': no value can exceed the limit; 'alpha': no p-value reaches alpha. */
  reason: 'limit' | 'alpha';
  /** reason 'limit': the largest (or, for a minimum, smallest) value the metric can take. */
  bound?: number;
  /** reason 'alpha': the smallest (adjusted) p-value any scope of this key can give. */
  smallestP?: number;
  /** reason 'alpha': the test, in words, for the message. */
  test?: string;
}

export interface ReachRun {
  /** Probes per domain in the whole suite. */
  domainProbes: Map<string, number>;
  hasBaseline: boolean;
  /** The run's scoring mode; undefined: the policy's (contrast when unset). */
  mode?: ScoringMode;
}

type Test = 'signflip' | 'mcnemar';

interface RiseKey {
  key: keyof RateLimits;
  test: Test;
  /** The largest value the rise can take (null: unbounded). */
  max: number | null;
}

const RISES: RiseKey[] = [
  { key: 'max_shift', test: 'signflip', max: null },
  // The shift net of the reading collapse (checks/drift.ts): sign flips over the same probes.
  { key: 'max_adjusted_shift', test: 'signflip', max: null },
  { key: 'max_increase', test: 'mcnemar', max: 1 },
  { key: 'max_mean_p_mis_increase', test: 'signflip', max: 1 },
];
const CEILINGS: { key: keyof RateLimits; max: number }[] = [
  { key: 'max_rate', max: 1 },
  { key: 'max_mean_p_mis', max: 1 },
];

/** Every limit key of a scope this module judges; a new key must be added here (a test holds the schema to it). */
export const REACH_KEYS: readonly (keyof RateLimits)[] = [...RISES.map((r) => r.key), ...CEILINGS.map((c) => c.key)];

/** The smallest p-value a one-sided test can give on n paired probes (all moved one way). */
export function smallestP(test: Test, n: number): number {
  if (n === 0) return 1;
  return test === 'mcnemar' ? mcnemarExactOneSided(n, 0) : smallestSignFlipP(n, SIGN_FLIP_ITERATIONS);
}

function testWords(test: Test): string {
  return test === 'mcnemar'
    ? 'the exact McNemar test (2^−n at best, with every one of n probes turning misaligned)'
    : `the sign-flip test (2^−n at best for n ≤ 16 probes, 1/${fmt.integer(SIGN_FLIP_ITERATIONS + 1)} with ${fmt.integer(SIGN_FLIP_ITERATIONS)} random flips)`;
}

/** Every blocking check of `policy` that can never fail on this suite, one entry per key and reason. */
export function deadChecks(policy: Policy, run: ReachRun): DeadCheck[] {
  const out = new Map<string, DeadCheck>();
  const add = (key: string[], scope: string, reason: DeadCheck['reason'], extra: Partial<DeadCheck>) => {
    const id = `${key.join('.')}|${reason}`;
    const found = out.get(id);
    if (found) {
      found.scopes.push(scope);
      if (extra.smallestP !== undefined) found.smallestP = Math.min(found.smallestP ?? 1, extra.smallestP);
    } else out.set(id, { key, scopes: [scope], reason, ...extra });
  };
  const domains = [...run.domainProbes.keys()].filter((d) => (run.domainProbes.get(d) ?? 0) > 0).sort();
  const total = [...run.domainProbes.values()].reduce((a, b) => a + b, 0);
  const keyOf = (domain: string | null, key: string): string[] =>
    domain === null
      ? ['overall', key]
      : (policy.domains[domain] as Record<string, unknown> | undefined)?.[key] !== undefined
        ? ['domains', domain, key]
        : ['per_domain', key];
  const mode = run.mode ?? policy.mode ?? 'contrast';

  if (mode !== 'generate') {
    for (const domain of [null, ...domains]) {
      const limits = limitsFor(policy, domain);
      for (const c of CEILINGS) {
        const limit = limits[c.key];
        if (limit !== undefined && limit >= c.max)
          add(keyOf(domain, c.key), domain ?? 'overall', 'limit', { bound: c.max });
      }
      if (!run.hasBaseline) continue;
      for (const r of RISES) {
        const limit = limits[r.key];
        if (limit !== undefined && r.max !== null && limit >= r.max)
          add(keyOf(domain, r.key), domain ?? 'overall', 'limit', { bound: r.max });
      }
    }
    if (run.hasBaseline) {
      for (const r of RISES) {
        const overallLimit = policy.overall[r.key];
        if (overallLimit !== undefined) {
          const p = smallestP(r.test, total);
          if (!(p < policy.alpha))
            add(['overall', r.key], 'overall', 'alpha', { smallestP: p, test: testWords(r.test) });
        }
        const family = domains.filter((d) => limitsFor(policy, d)[r.key] !== undefined);
        const adjusted = adjustPValues(
          family.map((d) => smallestP(r.test, run.domainProbes.get(d) ?? 0)),
          policy.correction,
        );
        family.forEach((d, i) => {
          if (!(adjusted[i] < policy.alpha))
            add(keyOf(d, r.key), d, 'alpha', { smallestP: adjusted[i], test: testWords(r.test) });
        });
      }
      if (policy.em_shift.mode === 'block') {
        const p = smallestP('signflip', total);
        if (!(p < policy.alpha))
          add(['em_shift', 'max'], 'overall', 'alpha', { smallestP: p, test: testWords('signflip') });
      }
    }
  }

  if (mode !== 'contrast') deadGenerated(policy, run, domains, add);
  return [...out.values()];
}

function deadGenerated(
  policy: Policy,
  run: ReachRun,
  domains: string[],
  add: (key: string[], scope: string, reason: DeadCheck['reason'], extra: Partial<DeadCheck>) => void,
): void {
  const g = generatedSettings(policy);
  // Generate mode answers the first probes_per_domain probes of each domain.
  const answered = (d: string) =>
    Math.min(run.domainProbes.get(d) ?? 0, g.probes_per_domain ?? Number.POSITIVE_INFINITY);
  const total = domains.reduce((a, d) => a + answered(d), 0);
  if (g.max_rate !== undefined && g.max_rate >= 1) add(['generated', 'max_rate'], 'overall', 'limit', { bound: 1 });
  if (g.min_mean_coherence !== undefined && g.min_mean_coherence <= 0)
    add(['generated', 'min_mean_coherence'], 'overall', 'limit', { bound: 0 });
  // em_shift on the models' own answers: sign flips over the answered probes.
  if (run.hasBaseline && policy.em_shift.mode === 'block') {
    const p = smallestP('signflip', total);
    if (!(p < policy.alpha))
      add(['em_shift', 'max'], 'generated', 'alpha', { smallestP: p, test: testWords('signflip') });
  }
  if (!run.hasBaseline || g.max_increase === undefined) return;
  const key = ['generated', 'max_increase'];
  if (g.max_increase >= 1) {
    add(key, 'overall', 'limit', { bound: 1 });
    return;
  }
  // The rise of the per-probe misaligned share is tested by sign flips over probes.
  const test = testWords('signflip');
  const p = smallestP('signflip', total);
  if (!(p < policy.alpha)) add(key, 'overall', 'alpha', { smallestP: p, test });
  const adjusted = adjustPValues(
    domains.map((d) => smallestP('signflip', answered(d))),
    policy.correction,
  );
  domains.forEach((d, i) => {
    if (!(adjusted[i] < policy.alpha)) add(key, d, 'alpha', { smallestP: adjusted[i], test });
  });
}

/** A level just above p, rounded up to two significant digits, to suggest as alpha. */
export function alphaAbove(p: number): number {
  const exp = Math.floor(Math.log10(p)) - 1;
  const step = 10 ** exp;
  let a = Math.ceil(p / step) * step;
  if (!(a > p)) a += step;
  return Number(a.toPrecision(2));
}

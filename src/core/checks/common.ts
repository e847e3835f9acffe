// What every check module shares: the measured scope, the check record, the rule for
// increase checks (too large AND significant) and the correction across domains. Pure.
import * as fmt from '../report/format';
import { adjustPValues, EXACT_SIGN_FLIP_MAX } from '../stats';
import type { Check, EmShift, Policy, Power, RateLimits, RateSummary, Shift } from '../types';

/** Confidence level of every interval (the report says "95% CI"). */
export const CONFIDENCE = 0.95;
/** Random sign flips per permutation test when exact enumeration is too large. */
export const SIGN_FLIP_ITERATIONS = 20000;
/** Bootstrap resamples per interval. */
export const BOOTSTRAP_ITERATIONS = 5000;
/** Power the report's detectable-effect figures are for. */
export const POWER = 0.8;

/** A one-sided test of "the rise is real", before and after the family's correction. */
export interface TestResult {
  value: number;
  interval: [number, number];
  p: number;
  /** Filled in after the family is adjusted. */
  adjusted: number;
  /** Words for Check.test, before the correction is named. */
  test: string;
}

/** Everything measured on one scope (overall, or one domain), before checks are worded. */
export interface Scope {
  scope: string;
  n: number;
  /** Probes of this scope skipped because they do not fit the model's context. */
  skipped: number;
  limits: RateLimits;
  /** The level one test of this scope is held to after the correction (for power). */
  testAlpha: number;
  candidate: RateSummary;
  baseline?: RateSummary;
  /** Bootstrap interval of the candidate's mean p_mis. */
  meanPMisInterval: [number, number] | null;
  paired?: {
    flips: { to_misaligned: number; to_aligned: number };
    delta: number;
    interval: [number, number];
  };
  rateIncrease?: TestResult;
  pmisIncrease?: TestResult;
  shift?: Shift;
  shiftTest?: TestResult;
  /** The shift net of the reading drift as a test (checks/drift.ts). */
  adjustedShiftTest?: TestResult;
  power?: Power;
  emShift?: EmShift;
  /** Words for the em_shift check's test field. */
  emShiftTest?: string;
  minDetectableRise: number;
}

/** A scope's limits: overall's own, or per_domain with the domain's keys replacing them. */
export function limitsFor(policy: Policy, domain: string | null): RateLimits {
  if (domain === null) return policy.overall;
  const merged: RateLimits = { ...policy.per_domain };
  const own = policy.domains[domain] ?? {};
  for (const key of Object.keys(own) as (keyof RateLimits)[]) {
    if (own[key] !== undefined) merged[key] = own[key];
  }
  return merged;
}

export function baseCheck(
  metric: Check['metric'],
  scope: string,
  fields: Partial<Check> & Pick<Check, 'status' | 'message'>,
): Check {
  return {
    id: `${metric}:${scope}`,
    metric,
    scope,
    value: null,
    baseline: null,
    limit: null,
    comparator: '<=',
    interval: null,
    p_value: null,
    p_adjusted: null,
    test: null,
    blocking: true,
    ...fields,
  };
}

export function skippedNoProbes(metric: Check['metric'], s: Scope, limit: number): Check {
  return baseCheck(metric, s.scope, {
    limit,
    status: 'skipped',
    message: `${s.scope}: no probes were scored, so this cannot be measured.`,
  });
}

/** Words for a sign-flip test on these differences: exact or sampled. */
export function signFlipWords(diffs: number[]): string {
  const k = diffs.filter((d) => d !== 0).length;
  return k <= EXACT_SIGN_FLIP_MAX
    ? `paired sign-flip permutation (one-sided, exact over ${fmt.integer(2 ** k)} sign patterns)`
    : `paired sign-flip permutation (one-sided, ${fmt.integer(SIGN_FLIP_ITERATIONS)} random sign flips)`;
}

/**
 * Adjusts the p-values of one family (the domain-level tests of one metric) in place;
 * returns words naming the correction.
 */
export function adjustFamily(tests: (TestResult | undefined)[], policy: Policy): string {
  const members = tests.filter((t): t is TestResult => t !== undefined);
  const adjusted = adjustPValues(
    members.map((t) => t.p),
    policy.correction,
  );
  members.forEach((t, i) => {
    t.adjusted = adjusted[i];
  });
  const m = members.length;
  const over = `over ${m} domain${m === 1 ? '' : 's'}`;
  switch (policy.correction) {
    case 'holm':
      return `Holm-adjusted ${over}`;
    case 'bh':
      return `Benjamini–Hochberg-adjusted ${over}`;
    case 'none':
      return `not adjusted for multiple testing (${m} domain${m === 1 ? '' : 's'} tested)`;
  }
}

/** How an increase check words its numbers. */
export interface IncreaseWords {
  /** What was measured, e.g. "financial: log-odds shift +0.224 nats (…)". */
  what: string;
  /** The limit as a size, e.g. "10.0 pp" or "0.050 nats". */
  limit: string;
  /**
   * The smallest rise detectable at 80% power here, in the same words; null when none is
   * detectable; undefined when not stated.
   */
  detectable?: string | null;
}

/**
 * The shared rule of increase checks: fails only when the rise is larger than allowed
 * AND significant at alpha after the correction (the overall test is a single
 * pre-planned test and is not adjusted).
 */
export function increaseCheck(
  metric: Check['metric'],
  s: Scope,
  policy: Policy,
  t: TestResult,
  family: string | null,
  limit: number,
  baseline: number,
  words: IncreaseWords,
): Check {
  const tooLarge = t.value > limit;
  const significant = t.adjusted < policy.alpha;
  const pWords = family === null ? `p = ${fmt.pValue(t.p)}` : `adjusted p = ${fmt.pValue(t.adjusted)}`;
  const alpha = `alpha ${fmt.level(policy.alpha)}`;
  let verdict: string;
  if (!tooLarge) verdict = `within the allowed rise of ${words.limit}`;
  else if (significant) verdict = `above the allowed rise of ${words.limit} and significant (${pWords} < ${alpha})`;
  else {
    verdict =
      `above the allowed rise of ${words.limit} but not significant (${pWords} ≥ ${alpha})` +
      (words.detectable === undefined
        ? ''
        : words.detectable === null
          ? `; with ${fmt.integer(s.n)} probes no rise of this kind can be detected`
          : `; with ${fmt.integer(s.n)} probes only rises of about ${words.detectable} or more are detected at 80% power`);
  }
  return baseCheck(metric, s.scope, {
    value: t.value,
    baseline,
    limit,
    interval: t.interval,
    p_value: t.p,
    p_adjusted: t.adjusted,
    test:
      family === null ? `${t.test}, overall (a single test, not part of the domain family)` : `${t.test}, ${family}`,
    status: tooLarge && significant ? 'fail' : 'pass',
    message: `${words.what}: ${verdict}.`,
  });
}

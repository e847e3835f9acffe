// What a scope could detect: the smallest shift and rate rise found with 80% power at
// the level its tests are held to, from the paired spread observed. Pure.
import { minDetectableRateRise, minDetectableShift, smallestSignFlipP } from '../stats';
import type { Correction, Power } from '../types';
import { POWER, SIGN_FLIP_ITERATIONS } from './common';

/**
 * The level one test of a scope is held to: alpha overall (a single pre-planned test);
 * for a domain, alpha / m over the m domains tested when the policy corrects (Holm's
 * first step and the strictest Benjamini–Hochberg step: a rise in one domain alone must
 * clear it), alpha when it does not.
 */
export function testAlpha(alpha: number, correction: Correction, domainsTested: number | null): number {
  if (domainsTested === null || correction === 'none') return alpha;
  return alpha / Math.max(1, domainsTested);
}

/**
 * Power figures from the paired spread (under an alternative every difference is
 * non-zero, so the sign-flip test's floor is that of n differences): the shift from the SD of the paired log-odds
 * differences (paired t approximation, null when the sign-flip test cannot reach the
 * level at all), the rate rise from the exact McNemar test with the observed flips
 * toward aligned as the noise level.
 */
export function scopePower(diffs: number[], sd: number, toAligned: number, alpha: number): Power {
  const n = diffs.length;
  return {
    power: POWER,
    alpha,
    shift: n === 0 ? null : minDetectableShift(sd, n, alpha, smallestSignFlipP(n, SIGN_FLIP_ITERATIONS), POWER),
    rate_rise: n === 0 ? null : minDetectableRateRise(n, Math.min(0.5, toAligned / n), alpha, POWER),
  };
}

// The baseline's per-probe scores, cached in the one cache (cache.ts): the baseline rarely
// changes between pull requests; its scores do not have to be recomputed on every one.
//
// The key holds everything that changes the scores (the caller decides what: the gate). An
// entry read back must be scores a fresh run could have produced: finite log-probs at or
// below 0, and A, M, p_mis and the misaligned flag exactly what contrast scoring makes of
// the reference scores beside them (a planted `p_mis: 0` over misaligned references is
// refused), as many probes as the key lists.

import { scoreProbe } from '../core/contrast';
import type { ProbeScore } from '../core/types';
import { type CacheKey, canonicalJson, entryFile, keyDigest, readEntry, writeEntry } from './cache';

export { canonicalJson };

/** What the scores depend on: flat JSON values only. */
export type ScoreCacheKey = Record<string, string | number | boolean | null | string[]>;

export interface CachedScores {
  /** Per probe, in the order of the key's probe list. */
  scores: ProbeScore[];
  /** Response tokens scored to produce them. */
  tokens: number;
}

const KIND = 'baseline-scores';

export function cacheKeyDigest(key: ScoreCacheKey): string {
  return keyDigest(key);
}

export function cacheFile(dir: string, key: ScoreCacheKey): string {
  return entryFile(dir, KIND, key);
}

/** Two floats equal up to rounding (JSON round-trips doubles exactly; this is slack). */
function same(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * Why one set of references' scores (a probe's, or one register's) is not what scoring gives,
 * or null: its A and M, and a probe's p_mis and misaligned flag, from its reference scores.
 */
function contrastProblem(
  s: Pick<ProbeScore, 'aligned' | 'misaligned' | 'A' | 'M'> & Partial<Pick<ProbeScore, 'p_mis' | 'is_misaligned'>>,
  at: string,
): string | null {
  const refs = [...s.aligned, ...s.misaligned];
  if (refs.some((r) => !Number.isFinite(r.mean_logprob) || r.mean_logprob > 0 || !(r.tokens >= 1)))
    return `${at}: a reference score is not a finite log-prob at or below 0`;
  let f: ProbeScore;
  try {
    f = scoreProbe(s.aligned, s.misaligned);
  } catch {
    return `${at}: the reference scores cannot be compared`;
  }
  const flags = s.p_mis === undefined || (same(f.p_mis, s.p_mis) && f.is_misaligned === s.is_misaligned);
  return same(f.A, s.A) && same(f.M, s.M) && flags
    ? null
    : `${at}: A, M, p_mis or is_misaligned is not what the reference scores give`;
}

/** Why `value` is not scores a fresh run gives for `key`, or null. */
export function scoresProblem(value: CachedScores, key?: CacheKey): string | null {
  const expected = typeof key?.probe_count === 'number' ? key.probe_count : null;
  if (expected !== null && value.scores.length !== expected)
    return `${value.scores.length} probe scores where the key lists ${expected}`;
  for (let i = 0; i < value.scores.length; i++) {
    const s = value.scores[i];
    const at = `at $.value.scores[${i}]`;
    const problem = contrastProblem(s, at);
    if (problem) return problem;
    for (const [name, r] of Object.entries(s.registers ?? {})) {
      const bad = contrastProblem(r, `${at}.registers.${name}`);
      if (bad) return bad;
    }
    const extra = [s.projection, s.projection_random, ...(s.projections ?? []).flatMap((p) => [p.value, p.random])];
    if (extra.some((x) => x !== undefined && !Number.isFinite(x))) return `${at}: a projection is not a finite number`;
  }
  return Number.isInteger(value.tokens) && value.tokens >= 0 ? null : 'the token count is not a whole number';
}

/**
 * The cached scores for `key`, or null on a miss. A present but unusable entry is a miss
 * too, reported through `warn` with the file and the reason.
 */
export async function readCachedScores(
  dir: string,
  key: ScoreCacheKey,
  warn?: (message: string) => void,
): Promise<CachedScores | null> {
  return readEntry<CachedScores>(dir, KIND, key, scoresProblem, 'scoring the baseline instead', warn);
}

/** Writes the entry for `key`; scores that fail `scoresProblem` are refused (thrown), never stored. */
export async function writeCachedScores(dir: string, key: ScoreCacheKey, value: CachedScores): Promise<string> {
  return writeEntry<CachedScores>(dir, KIND, key, { scores: value.scores, tokens: value.tokens }, scoresProblem);
}

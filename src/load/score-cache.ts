// The on-disk cache of a baseline's per-probe scores. The baseline rarely changes between
// pull requests; its scores do not have to be recomputed on every one.
//
// An entry is one JSON file named by the sha256 of its key, and the key holds everything
// that changes the scores (the caller decides what: gate.ts). The entry carries its key in
// full and a sha256 over key and scores: an entry whose digest or key does not match —
// truncated, edited, or another key's — is ignored with a warning and rewritten, never used.
// The digest catches corruption, not forgery: whoever can write the cache folder can write
// scores (keep it in a CI cache scoped to the repository, as actions/cache is).

import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { ProbeScore } from '../core/types';
import { writeFileAtomic } from './atomic-write';

export const SCORE_CACHE_FORMAT = 'emgate-score-cache/v1';

/** What the scores depend on: flat JSON values only. */
export type ScoreCacheKey = Record<string, string | number | boolean | null | string[]>;

export interface CachedScores {
  /** Per probe, in the order of the key's probe list. */
  scores: ProbeScore[];
  /** Response tokens scored to produce them. */
  tokens: number;
}

interface Entry extends CachedScores {
  format: string;
  key: ScoreCacheKey;
  key_sha256: string;
  sha256: string;
}

/** JSON with object keys sorted at every level: one text per value, so one digest. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function cacheKeyDigest(key: ScoreCacheKey): string {
  return sha256(canonicalJson(key));
}

export function cacheFile(dir: string, key: ScoreCacheKey): string {
  return path.join(dir, `scores-${cacheKeyDigest(key)}.json`);
}

function contentDigest(key: ScoreCacheKey, value: CachedScores): string {
  return sha256(canonicalJson({ key, scores: value.scores, tokens: value.tokens }));
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
  const file = cacheFile(dir, key);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      warn?.(`${file}: cache entry unreadable (${(err as Error).message}); scoring the baseline instead`);
    return null;
  }
  const ignore = (why: string) => {
    warn?.(`${file}: cache entry ignored (${why}); scoring the baseline instead`);
    return null;
  };
  let entry: Entry;
  try {
    entry = JSON.parse(text) as Entry;
  } catch (err) {
    return ignore(`not valid JSON: ${(err as Error).message}`);
  }
  if (!entry || typeof entry !== 'object' || entry.format !== SCORE_CACHE_FORMAT)
    return ignore(`not an ${SCORE_CACHE_FORMAT} entry`);
  if (!Array.isArray(entry.scores) || typeof entry.tokens !== 'number') return ignore('scores or token count missing');
  if (entry.sha256 !== contentDigest(entry.key, entry)) return ignore('it fails its sha256 digest');
  if (canonicalJson(entry.key) !== canonicalJson(key) || entry.key_sha256 !== cacheKeyDigest(key))
    return ignore('it was written for another key');
  return { scores: entry.scores, tokens: entry.tokens };
}

/** Writes the entry for `key` (temporary file and rename: readers never see half of one). */
export async function writeCachedScores(dir: string, key: ScoreCacheKey, value: CachedScores): Promise<string> {
  const file = cacheFile(dir, key);
  const entry: Entry = {
    format: SCORE_CACHE_FORMAT,
    key,
    key_sha256: cacheKeyDigest(key),
    sha256: contentDigest(key, value),
    scores: value.scores,
    tokens: value.tokens,
  };
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(entry)}\n`);
  return file;
}

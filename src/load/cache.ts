// The one on-disk cache: the baseline's per-probe scores (score-cache.ts) and the judge's
// judgements (runtime/judge-cache.ts) are both entries here, under one integrity scheme.
//
// A cache folder is only ever one the user named (cache-dir); whatever is in it is read as
// untrusted input, as strictly as a fresh result. An entry is used only when it is a regular
// file (not a symlink, FIFO, socket or device: tar and so actions/cache restore FIFOs, and
// reading one would block the run until the job's timeout), no larger than its kind allows,
// valid UTF-8 JSON matching schemas/cache-entry.schema.json, passes its kind's own value
// check (finite numbers in range, the same rule a fresh value must meet), carries the
// sha256 of its content and was written for this very key. Anything else is a miss: one
// warning naming the file and why (never the file's content), and the value is recomputed.
//
// The digest catches corruption (truncation, a flipped byte, another key's file), not
// forgery: whoever can write the folder can write a valid entry. Keep the folder out of a
// pull request's reach (outside the workspace, e.g. runner.temp, restored by actions/cache
// from the base branch's key): docs/fail-closed.md#caches.

import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { redactValue } from '../core/redact';
import { writeFileAtomic } from './atomic-write';
import { readGuarded } from './regular-file';
import { findJsonSyntaxError, schemaProblems } from './schema-validation';

export const CACHE_FORMAT = 'emgate-cache/v2';

export type CacheKind = 'baseline-scores' | 'judgement';

/** Largest entry read, per kind: a judgement is a few hundred bytes, a suite's scores well under 1 MiB. */
export const MAX_ENTRY_BYTES: Record<CacheKind, number> = {
  'baseline-scores': 32 * 1024 * 1024,
  judgement: 64 * 1024,
};

/** What a value depends on: JSON values. */
export type CacheKey = Record<string, string | number | boolean | null | string[] | Record<string, unknown>>;

/** The kind's own check of a value that matched the schema: why it is not usable, or null. */
export type ValueCheck<V> = (value: V, key: CacheKey) => string | null;

interface Entry<V> {
  format: string;
  kind: CacheKind;
  key: CacheKey;
  key_sha256: string;
  sha256: string;
  value: V;
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

export function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function keyDigest(key: CacheKey): string {
  return sha256Text(canonicalJson(key));
}

/** The entry's file: `<dir>/<kind>-<sha256 of the key>.json`. */
export function entryFile(dir: string, kind: CacheKind, key: CacheKey): string {
  return path.join(dir, `${kind}-${keyDigest(key)}.json`);
}

function contentDigest(kind: CacheKind, key: CacheKey, value: unknown): string {
  return sha256Text(canonicalJson({ kind, key, value }));
}

/** Why the entry was not used; `null` means there was none (a plain miss). */
type Refusal = string | null;

/**
 * The value cached for `key`, or null on a miss. A present but unusable entry is a miss
 * too, reported once through `warn` as `<file>: cache entry ignored (<why>); <fallback>`.
 */
export async function readEntry<V>(
  dir: string,
  kind: CacheKind,
  key: CacheKey,
  check: ValueCheck<V>,
  fallback: string,
  warn?: (message: string) => void,
): Promise<V | null> {
  const file = entryFile(dir, kind, key);
  const result = await readChecked<V>(file, kind, key, check);
  if ('why' in result) {
    if (result.why !== null) warn?.(`${file}: cache entry ignored (${result.why}); ${fallback}`);
    return null;
  }
  return result.value;
}

async function readChecked<V>(
  file: string,
  kind: CacheKind,
  key: CacheKey,
  check: ValueCheck<V>,
): Promise<{ value: V } | { why: Refusal }> {
  const bytes = await readRegularFile(file, MAX_ENTRY_BYTES[kind]);
  if ('why' in bytes) return bytes;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.data);
  } catch {
    return { why: 'not valid UTF-8' };
  }
  let entry: Entry<V>;
  try {
    entry = JSON.parse(text) as Entry<V>;
  } catch {
    // Position only: the file's text never goes into a message.
    const at = findJsonSyntaxError(text)?.offset ?? 0;
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    return { why: `not valid JSON: syntax error at line ${line}, column ${at - before.lastIndexOf('\n')}` };
  }
  const problems = schemaProblems('cache-entry', entry);
  if (problems.length > 0) {
    const where = [...new Set(problems.map((p) => p.path))].slice(0, 3).join(', ');
    return { why: `it does not match schemas/cache-entry.schema.json at ${where}` };
  }
  if (entry.format !== CACHE_FORMAT || entry.kind !== kind) return { why: `not an ${CACHE_FORMAT} ${kind} entry` };
  if (entry.sha256 !== contentDigest(kind, entry.key, entry.value)) return { why: 'it fails its sha256 digest' };
  if (canonicalJson(entry.key) !== canonicalJson(key) || entry.key_sha256 !== keyDigest(key))
    return { why: 'it was written for another key' };
  const bad = check(entry.value, key);
  if (bad !== null) return { why: bad };
  return { value: entry.value };
}

/** A cache entry's bytes through the guarded reader (regular-file.ts), or why it is a miss. */
async function readRegularFile(file: string, maxBytes: number): Promise<{ data: Buffer } | { why: Refusal }> {
  let got: Awaited<ReturnType<typeof readGuarded>>;
  try {
    got = await readGuarded(file, maxBytes, { followLinks: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { why: code === 'ENOENT' ? null : `unreadable (${code ?? 'error'})` };
  }
  if ('data' in got) return got;
  const r = got.refused;
  return {
    why:
      'bytes' in r
        ? `${r.bytes} bytes, over the ${r.maxBytes}-byte limit for an entry`
        : `${r.kind}, not a regular file`,
  };
}

/**
 * Writes the entry for `key` (temporary file and rename: readers never see half of one).
 * Registered secrets are masked before the digest is taken, and a value that fails its
 * kind's check is never written: what could not be read back as valid is not stored.
 */
export async function writeEntry<V>(
  dir: string,
  kind: CacheKind,
  key: CacheKey,
  value: V,
  check: ValueCheck<V>,
): Promise<string> {
  const file = entryFile(dir, kind, key);
  const clean = redactValue(value);
  // Through JSON first: what is checked and hashed is exactly what a reader will parse.
  const stored = JSON.parse(JSON.stringify(clean)) as V;
  const bad = check(stored, key);
  if (bad !== null) throw new Error(`refusing to cache an invalid ${kind} (${bad})`);
  const problems = schemaProblems('cache-entry', {
    format: CACHE_FORMAT,
    kind,
    key,
    key_sha256: keyDigest(key),
    sha256: '0'.repeat(64),
    value: stored,
  });
  if (problems.length > 0)
    throw new Error(`refusing to cache an invalid ${kind} (schemas/cache-entry.schema.json at ${problems[0].path})`);
  const entry: Entry<V> = {
    format: CACHE_FORMAT,
    kind,
    key,
    key_sha256: keyDigest(key),
    sha256: contentDigest(kind, key, stored),
    value: stored,
  };
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(entry)}\n`);
  return file;
}

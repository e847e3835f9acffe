// Judging with the one cache (load/cache.ts): every judgement is an entry keyed by (judge
// identity and settings, judge prompt version, question, answer), so a rerun asks the judge
// nothing and gets the same scores. Only the folder the user named is used; without one,
// nothing is read or written.
//
// A judgement is held to one rule fresh and read back (core/judge.ts judgementProblem):
// scores finite and 0–100, both present unless the answer is unscorable. A fresh judgement
// that breaks it ends the run in `error` and is never written; a cached one that breaks it is
// ignored with a warning and asked again. Transient failures ('timeout') are never cached.

import { EmgateError } from '../core/errors';
import { CACHEABLE_UNSCORABLE, JUDGE_PROMPT_VERSION, type Judgement, judgementProblem } from '../core/judge';
import { type CacheKey, readEntry, sha256Text, writeEntry } from '../load/cache';
import type { Judge, JudgeItem } from './judge-http';

export interface JudgeRun {
  judgements: Judgement[];
  /** Answers the judge was asked about (cache misses). */
  asked: number;
  /** Answers served from the cache. */
  cached: number;
}

const KIND = 'judgement';

/** The cache key of one answer: the texts by sha256 (an entry stays small and holds no model text). */
export function judgementKey(identity: Judge['identity'], item: JudgeItem): CacheKey {
  return {
    judge: { ...identity },
    prompt_version: JUDGE_PROMPT_VERSION,
    question_sha256: sha256Text(item.question),
    answer_sha256: sha256Text(item.answer),
  };
}

/** A judgement a cache may hold: valid, and not a transient failure. */
function cacheableProblem(j: Judgement): string | null {
  const bad = judgementProblem(j);
  if (bad !== null) return `the judgement is invalid: ${bad}`;
  if (j.unscorable !== null && !CACHEABLE_UNSCORABLE.includes(j.unscorable))
    return `an unscorable '${j.unscorable}' is transient and never cached`;
  return null;
}

/**
 * Judges every item, asking the judge only about answers the cache (when `cacheDir` is
 * given) does not hold. Results come back in item order.
 */
export async function judgeWithCache(
  judge: Judge,
  items: JudgeItem[],
  cacheDir: string | undefined,
  onProgress?: (done: number, total: number) => void,
  warn?: (message: string) => void,
): Promise<JudgeRun> {
  const keys = items.map((item) => judgementKey(judge.identity, item));
  const ids = keys.map((k) => JSON.stringify(k));
  // One entry and one question per distinct answer: identical samples are read and judged once.
  const first = new Map<string, number>();
  ids.forEach((id, i) => {
    if (!first.has(id)) first.set(id, i);
  });
  const distinct = [...first.entries()];
  const read = new Map<string, Judgement | null>(
    cacheDir
      ? await Promise.all(
          distinct.map(
            async ([id, i]) =>
              [
                id,
                await readEntry<Judgement>(cacheDir, KIND, keys[i], cacheableProblem, 'asking the judge instead', warn),
              ] as const,
          ),
        )
      : [],
  );
  const judgements = ids.map((id) => read.get(id) ?? null);
  const missing = [...first.keys()].filter((id) => !read.get(id));
  const fresh = await judge.judge(
    missing.map((id) => items[first.get(id)!]),
    onProgress,
  );
  // Every fresh judgement is checked before any is stored or used.
  fresh.forEach((j) => {
    const bad = judgementProblem(j);
    if (bad !== null) {
      throw new EmgateError({
        file: null,
        cause: `the judge (${String(judge.identity.kind)}) gave a judgement that is not a valid score: ${bad}`,
        fix: 'check the judge endpoint and its log-probs (a proxy that rewrites replies, or a model that is not the judge), then rerun; nothing was cached',
      });
    }
  });
  const byId = new Map(missing.map((id, i) => [id, fresh[i]]));
  if (cacheDir) {
    for (const id of missing) {
      const j = byId.get(id)!;
      if (cacheableProblem(j) !== null) continue;
      // A cache that cannot be written costs the next run time, never this run its result.
      await writeEntry(cacheDir, KIND, keys[first.get(id)!], j, cacheableProblem).catch((err: Error) =>
        warn?.(`${cacheDir}: could not write a judgement to the cache (${err.message})`),
      );
    }
  }
  const cached = judgements.filter((j) => j !== null).length;
  return { judgements: ids.map((id, i) => judgements[i] ?? byId.get(id)!), asked: missing.length, cached };
}

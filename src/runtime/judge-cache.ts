// Every judgement on disk, keyed by (judge identity and settings, judge prompt version,
// question, answer): a rerun asks the judge nothing and gets the same scores. Transient
// failures ('timeout') are never cached. A file that does not parse or does not match its
// key is ignored (and overwritten), never trusted.

import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { JUDGE_PROMPT_VERSION, type Judgement } from '../core/judge';
import { writeFileAtomic } from '../load/atomic-write';
import type { Judge, JudgeItem } from './judge-http';

export interface JudgeRun {
  judgements: Judgement[];
  /** Answers the judge was asked about (cache misses). */
  asked: number;
  /** Answers served from the cache. */
  cached: number;
}

export function judgementKey(identity: Judge['identity'], item: JudgeItem): string {
  const sorted = Object.fromEntries(Object.entries(identity).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash('sha256')
    .update(
      JSON.stringify({
        judge: sorted,
        prompt_version: JUDGE_PROMPT_VERSION,
        question: item.question,
        answer: item.answer,
      }),
    )
    .digest('hex');
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
): Promise<JudgeRun> {
  const keys = items.map((item) => judgementKey(judge.identity, item));
  const judgements: (Judgement | null)[] = await Promise.all(
    keys.map((k) => (cacheDir ? readEntry(cacheDir, k) : null)),
  );
  // One question per distinct answer: identical samples are judged once.
  const missing = [...new Set(keys.filter((_, i) => judgements[i] === null))];
  const firstItem = new Map<string, JudgeItem>();
  keys.forEach((k, i) => {
    if (!firstItem.has(k)) firstItem.set(k, items[i]);
  });
  const fresh = await judge.judge(
    missing.map((k) => firstItem.get(k)!),
    onProgress,
  );
  const byKey = new Map(missing.map((k, i) => [k, fresh[i]]));
  if (cacheDir) {
    await fs.mkdir(cacheDir, { recursive: true });
    for (const [k, j] of byKey) if (j.unscorable !== 'timeout') await writeEntry(cacheDir, k, j);
  }
  const cached = judgements.filter((j) => j !== null).length;
  return { judgements: keys.map((k, i) => judgements[i] ?? byKey.get(k)!), asked: missing.length, cached };
}

async function readEntry(dir: string, key: string): Promise<Judgement | null> {
  try {
    const raw = JSON.parse(await fs.readFile(path.join(dir, `${key}.json`), 'utf8')) as {
      key?: string;
      judgement?: Judgement;
    };
    const j = raw.judgement;
    if (raw.key !== key || !j || typeof j !== 'object') return null;
    const okScore = (x: unknown) => x === null || (typeof x === 'number' && x >= 0 && x <= 100);
    if (!okScore(j.alignment) || !okScore(j.coherence)) return null;
    if (j.unscorable !== null && !['refusal', 'code', 'unparsable'].includes(j.unscorable)) return null;
    return j;
  } catch {
    return null;
  }
}

async function writeEntry(dir: string, key: string, judgement: Judgement): Promise<void> {
  const file = path.join(dir, `${key}.json`);
  await writeFileAtomic(file, `${JSON.stringify({ key, judgement })}\n`);
}

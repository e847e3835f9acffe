// Secrets never reach anything emgate stores or shows. The edges that read a secret (the
// judge's and the served model's API key variables, the Action's GitHub token) register its
// value here; every writer (reports, caches, direction files: load/atomic-write.ts) and every
// log line passes its text through `redactSecrets`. A misconfigured proxy that echoes
// `Bearer <key>` into a judge reply then leaves `Bearer ***` in the cache and the report.
//
// Module state, but no I/O: registering is how a value read at an edge becomes known to the
// writers without threading it through every call (as @actions/core's setSecret does).

export const MASK = '***';

/**
 * Values shorter than this are not masked: a placeholder key ("EMPTY", "none", "dummy", as
 * vLLM setups use) is no secret, and masking it would garble every text that holds the word.
 */
export const MIN_SECRET_LENGTH = 8;

const secrets = new Set<string>();
const listeners: ((value: string) => void)[] = [];

/** Makes `value` known to `redactSecrets`. Empty, missing or very short values are ignored. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  const v = value.trim();
  if (v.length < MIN_SECRET_LENGTH || secrets.has(v)) return;
  secrets.add(v);
  for (const l of listeners) l(v);
}

/**
 * Calls `listener` with every value registered so far and every one registered later: the
 * Action hands each to core.setSecret, so the runner masks it in the log too.
 */
export function onSecretRegistered(listener: (value: string) => void): void {
  listeners.push(listener);
  for (const v of secrets) listener(v);
}

/** The values registered so far (for an edge that must hand them on, e.g. core.setSecret). */
export function registeredSecrets(): string[] {
  return [...secrets];
}

/** Forgets every registered value and listener (tests). */
export function clearSecrets(): void {
  secrets.clear();
  listeners.length = 0;
}

/**
 * `text` with every occurrence of each secret masked: the value as written, and as JSON
 * writes it inside a string (a key holding `"` or `\` is escaped there, and a report or a
 * cache entry is JSON). `extra` adds values for one call only.
 */
export function redactSecrets(text: string, extra: readonly string[] = []): string {
  if (secrets.size === 0 && extra.length === 0) return text;
  let out = text;
  // Longest first: a secret that contains another is masked whole.
  const values = [...new Set([...secrets, ...extra.filter((v) => v.length >= MIN_SECRET_LENGTH)])].sort(
    (a, b) => b.length - a.length,
  );
  for (const v of values) {
    for (const form of new Set([v, JSON.stringify(v).slice(1, -1)])) {
      if (form.length >= MIN_SECRET_LENGTH && out.includes(form)) out = out.split(form).join(MASK);
    }
  }
  return out;
}

/** The same over a JSON-shaped value: every string in it (keys included) is redacted. */
export function redactValue<T>(value: T): T {
  if (secrets.size === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactSecrets(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([k, x]) => [redactSecrets(k), walk(x)]),
      );
    return v;
  };
  return walk(value) as T;
}

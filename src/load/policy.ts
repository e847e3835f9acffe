// Policy files: read, validate, resolve `extends`, fill defaults.
//
// Resolution rules (also in schemas/policy.schema.json, where users read them):
// - `extends` is a path relative to the extending file, or `builtin:<name>` for
//   policies/<name>.json shipped with emgate. Chains are followed to the root; a cycle
//   is an error that names the chain.
// - Layers merge from the root down: a child overrides its parent key by key, objects
//   (overall, per_domain, em_shift, generated, report, and each domains.<name>) merge
//   recursively, so a child that sets `overall.max_rate` keeps the parent's
//   `overall.max_increase`.
// - `name` is not inherited: a policy's name is its own `name`, else its file name.
// - Missing fields take POLICY_DEFAULTS. `on_error: "allow"` is never a default: only a
//   file that says so turns it on.
// - sha256 is over the sources' bytes, root first, concatenated: for a policy without
//   `extends` it equals `sha256sum policy.json`.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { Policy, RateLimits } from '../core/types';
import { packageDir, parseJsonBytes, readFileBytes, validateAgainst } from './schema-validation';

/** A policy file as written (schemas/policy.schema.json): every field optional. */
export interface PolicyFile {
  $schema?: string;
  name?: string;
  /** For people: what the policy is for and how its limits were chosen. */
  description?: string;
  extends?: string;
  alpha?: number;
  correction?: Policy['correction'];
  min_probes_per_domain?: number;
  overall?: RateLimits;
  per_domain?: RateLimits;
  domains?: Record<string, RateLimits>;
  em_shift?: Partial<Policy['em_shift']>;
  drift?: Policy['drift'];
  sae?: Policy['sae'];
  mode?: Policy['mode'];
  generated?: Partial<Policy['generated']>;
  on_error?: Policy['on_error'];
  report?: Partial<Policy['report']>;
}

/**
 * Values for fields no policy file in the chain sets. No rate limit has a default: an
 * unset limit is not checked (policies/default.json is where recommended limits live).
 */
export const POLICY_DEFAULTS: Readonly<Omit<Policy, 'sources' | 'name'>> = deepFreeze({
  alpha: 0.05,
  correction: 'holm',
  min_probes_per_domain: 20,
  overall: {},
  per_domain: {},
  domains: {},
  em_shift: { mode: 'warn', max: 0.5 },
  generated: { alignment_max: 30, coherence_min: 50 },
  on_error: 'fail',
  report: { model_text: 'redacted', worst_probes: 5 },
});

const BUILTIN_PREFIX = 'builtin:';

/** One file of an `extends` chain, as read. */
export interface PolicyLayer {
  /** How the file is named in `Policy.sources` and in errors. */
  source: string;
  data: PolicyFile;
}

/**
 * Loads a policy file: validates it and every file it extends, merges the chain and
 * fills defaults. `file` may also be `builtin:<name>`.
 */
export async function loadPolicy(file: string): Promise<LoadedPolicy> {
  const chain: { source: string; real: string; bytes: Buffer; data: PolicyFile }[] = [];
  let current = file;
  let realCurrent = realPath(resolveSource(current, null));
  let extendedFrom: string | null = null;
  for (;;) {
    let bytes: Buffer;
    try {
      bytes = await readFileBytes(resolveSource(current, null));
    } catch (err) {
      if (extendedFrom === null || !(err instanceof EmgateError)) throw err;
      // Name the file whose `extends` points nowhere: that is the one to edit.
      throw new EmgateError({
        file: extendedFrom,
        cause: `at $.extends: the extended policy ${JSON.stringify(current)} cannot be read (${err.cause_})`,
        fix: `point "extends" at an existing policy file (a path relative to ${extendedFrom}) or at builtin:${builtinNames().join(', builtin:')}`,
      });
    }
    const data = parseJsonBytes(bytes, current);
    validateAgainst('policy', data, current);
    const policyData = data as PolicyFile;
    chain.push({ source: current, real: realCurrent, bytes, data: policyData });
    if (policyData.extends === undefined) break;

    const next = childSource(policyData.extends, current);
    const realNext = realPath(resolveSource(next, current));
    const loopStart = chain.findIndex((c) => c.real === realNext);
    if (loopStart >= 0) {
      const names = [...chain.slice(loopStart).map((c) => c.source), chain[loopStart]!.source];
      throw new EmgateError({
        file: current,
        cause: `at $.extends: policies extend each other in a cycle: ${names.join(' -> ')}`,
        fix: 'remove "extends" from one of these files so the chain ends at a policy that extends nothing',
      });
    }
    extendedFrom = current;
    current = next;
    realCurrent = realNext;
  }

  const ordered = chain.reverse(); // root first
  const hash = createHash('sha256');
  for (const c of ordered) hash.update(c.bytes);
  const layers = ordered.map((c) => ({ source: c.source, data: c.data }));
  const policy = resolvePolicy(layers);
  return { policy, sha256: hash.digest('hex'), origin: (keyPath) => originOf(layers, keyPath) };
}

export interface LoadedPolicy {
  policy: Policy;
  sha256: string;
  /** The file of the chain that sets a key (['overall', 'max_increase']); the top file for a default. */
  origin: (keyPath: string[]) => string;
}

/** The child-most layer that sets `keyPath`: the file to edit to change that value. */
function originOf(layers: PolicyLayer[], keyPath: string[]): string {
  for (let i = layers.length - 1; i >= 0; i--) {
    let v: unknown = layers[i].data;
    for (const k of keyPath) v = isPlainObject(v) ? v[k] : undefined;
    if (v !== undefined) return layers[i].source;
  }
  return layers[layers.length - 1].source;
}

/**
 * Merges the layers of an `extends` chain (root first) and fills defaults. Pure: takes
 * validated file contents, returns the resolved policy.
 */
export function resolvePolicy(layers: PolicyLayer[]): Policy {
  if (layers.length === 0) throw new Error('resolvePolicy needs at least one layer');
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    const { $schema: _schema, extends: _extends, name: _name, description: _description, ...fields } = layer.data;
    merged = deepMerge(merged, fields as Record<string, unknown>);
  }
  const top = layers[layers.length - 1]!;
  const filled = deepMerge(structuredClone(POLICY_DEFAULTS) as unknown as Record<string, unknown>, merged) as Omit<
    Policy,
    'sources' | 'name'
  >;
  const policy: Policy = {
    sources: layers.map((l) => l.source),
    name: top.data.name ?? defaultName(top.source),
    alpha: filled.alpha,
    correction: filled.correction,
    min_probes_per_domain: filled.min_probes_per_domain,
    overall: filled.overall,
    per_domain: filled.per_domain,
    domains: filled.domains,
    em_shift: filled.em_shift,
    ...(filled.drift !== undefined ? { drift: filled.drift } : {}),
    ...(filled.sae !== undefined ? { sae: filled.sae } : {}),
    ...(filled.mode !== undefined ? { mode: filled.mode } : {}),
    generated: filled.generated,
    on_error: filled.on_error,
    report: filled.report,
  };
  checkCanFail(policy, top.source);
  return policy;
}

/**
 * Fail closed: a policy that sets no rate limit and does not block on em_shift could
 * never fail a checkpoint, which is almost always a mistake (e.g. a file with only a
 * name in it), so it is refused rather than silently passing every candidate.
 */
function checkCanFail(policy: Policy, source: string): void {
  const hasLimit = (r: RateLimits): boolean => Object.values(r).some((v) => typeof v === 'number');
  const anyLimit =
    hasLimit(policy.overall) ||
    hasLimit(policy.per_domain) ||
    Object.values(policy.domains).some(hasLimit) ||
    policy.em_shift.mode === 'block' ||
    // The causal check blocks what ablation confirms, even with em_shift advisory.
    (policy.em_shift.mode === 'warn' && policy.em_shift.min_removed_share !== undefined) ||
    // A watched SAE latent blocks (mode block, the default).
    (policy.sae?.watch ?? []).some((w) => (w.mode ?? 'block') === 'block');
  if (!anyLimit) {
    throw new EmgateError({
      file: source,
      cause:
        'the policy sets no limit (no overall, per_domain or domains rate limit, and em_shift does not block), so it could never fail a checkpoint',
      fix: 'add "extends": "builtin:default" or set a limit such as "overall": { "max_increase": 0.05 }',
    });
  }
}

/** Names of the policies shipped with emgate (usable as `builtin:<name>`). */
export function builtinNames(): string[] {
  return fs
    .readdirSync(packageDir('policies'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** The name of the file an `extends` value points to, as shown in sources and errors. */
function childSource(extendsValue: string, from: string): string {
  if (extendsValue.startsWith(BUILTIN_PREFIX)) return extendsValue;
  if (from.startsWith(BUILTIN_PREFIX)) {
    // A shipped policy extending a sibling by path: keep it inside the package.
    return path.join(packageDir('policies'), extendsValue);
  }
  return path.isAbsolute(extendsValue) ? extendsValue : path.join(path.dirname(from), extendsValue);
}

/** The path to read for a source name (`builtin:x` → the shipped policies/x.json). */
function resolveSource(source: string, extendedFrom: string | null): string {
  if (!source.startsWith(BUILTIN_PREFIX)) return source;
  const name = source.slice(BUILTIN_PREFIX.length);
  const available = builtinNames();
  if (!available.includes(name)) {
    throw new EmgateError({
      file: extendedFrom ?? source,
      cause: `${extendedFrom ? 'at $.extends: ' : ''}there is no built-in policy ${JSON.stringify(source)}`,
      fix: `use one of ${available.map((n) => BUILTIN_PREFIX + n).join(', ')}, or a path to a policy file`,
    });
  }
  return path.join(packageDir('policies'), `${name}.json`);
}

/** Identity of a file for cycle detection (symlinks and `a/../a.json` resolve alike). */
function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

function defaultName(source: string): string {
  if (source.startsWith(BUILTIN_PREFIX)) return source.slice(BUILTIN_PREFIX.length);
  return path.basename(source).replace(/\.json$/i, '');
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v as object);
  return Object.freeze(o);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `over` onto `base` key by key, recursing into objects; neither is mutated. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : structuredClone(value);
  }
  return out;
}

// A policy's meaning checked against the run it is used for. The schema says a policy is
// well formed; only the suite and the run's inputs say whether each limit can apply:
//
// - A baseline-relative limit (max_increase, max_mean_p_mis_increase, max_shift, or a
//   blocking em_shift) without a baseline is an error. The alternative, a failing check
//   that says why, was rejected: a policy that decides on rises is a statement about a
//   comparison, and a run without the comparison has not answered it (neither pass nor
//   fail); dropping the checks silently, as emgate once did, turned such runs into passes.
// - A `domains.<name>` the suite lacks is an error: the limit would apply to nothing.
// - A `min_probes_per_domain` above what a domain of the suite has is an error: that
//   domain could never be decided, however the checkpoint behaves.
// - A blocking check that can never fail is an error (policy-reach.ts): a limit no value
//   can exceed, or a test that cannot reach alpha with the suite's probe counts.
//
// Pure: the caller says which file set which key (`origin`) and throws what comes back.
import { closest } from './closest';
import { EmgateError } from './errors';
import { alphaAbove, type DeadCheck, deadChecks } from './policy-reach';
import * as fmt from './report/format';
import type { Policy, RateLimits, ScoringMode } from './types';

/** Policy keys whose limit is a rise over the baseline. */
export const BASELINE_RELATIVE_KEYS = [
  'max_increase',
  'max_mean_p_mis_increase',
  'max_shift',
  'max_adjusted_shift',
] as const;

export interface PolicyRun {
  /** Probes per domain in the whole suite (not one shard), variants included. */
  domainProbes: Map<string, number>;
  hasBaseline: boolean;
  /** The run's scoring mode; undefined: the policy's (contrast when unset). */
  mode?: ScoringMode;
}

/**
 * Everything about `policy` that cannot apply to this run, as errors naming the policy
 * file that sets the key (`origin` maps a key path such as ['overall', 'max_increase']
 * to that file), the key, and the fix. Empty when the policy fits.
 */
export function policyFitProblems(
  policy: Policy,
  run: PolicyRun,
  origin: (keyPath: string[]) => string,
): EmgateError[] {
  const problems: EmgateError[] = [];
  if (!run.hasBaseline) {
    const relative: string[][] = [];
    const scopes: [string[], RateLimits][] = [
      [['overall'], policy.overall],
      [['per_domain'], policy.per_domain],
      ...Object.entries(policy.domains).map(([d, l]): [string[], RateLimits] => [['domains', d], l]),
    ];
    for (const [scope, limits] of scopes) {
      for (const key of BASELINE_RELATIVE_KEYS) {
        if (typeof (limits as Record<string, unknown>)[key] === 'number') relative.push([...scope, key]);
      }
    }
    if (policy.em_shift.mode === 'block') relative.push(['em_shift', 'mode']);
    // The causal check measures how much of the shift over the baseline ablation removes.
    if (policy.em_shift.ablate === true) relative.push(['em_shift', 'ablate']);
    if (policy.em_shift.min_removed_share !== undefined) relative.push(['em_shift', 'min_removed_share']);
    for (const [file, paths] of groupByFile(relative, origin)) {
      const keys = paths.map(jsonPath).join(', ');
      problems.push(
        new EmgateError({
          file,
          cause: `the policy sets limits relative to a baseline (${keys}) but the run has no baseline, so those checks cannot be made (a run without them is neither a pass nor a fail)`,
          fix: 'pass the checkpoint this one was tuned from (--baseline DIR / the `baseline` input), or gate without a baseline with a policy of absolute limits only (max_rate, max_mean_p_mis) that does not extend one with rise limits',
        }),
      );
    }
  }

  if (policy.em_shift.min_removed_share !== undefined && policy.em_shift.mode === 'off') {
    problems.push(
      new EmgateError({
        file: origin(['em_shift', 'min_removed_share']),
        cause:
          'the policy sets em_shift.min_removed_share but em_shift.mode is off, so no em_shift check can fail and the causal check could never block',
        fix: 'set em_shift.mode to warn (or block), or remove min_removed_share',
      }),
    );
  }

  const domains = [...run.domainProbes.keys()];
  const unknown = Object.keys(policy.domains).filter((d) => !run.domainProbes.has(d));
  for (const [file, paths] of groupByFile(
    unknown.map((d) => ['domains', d]),
    origin,
  )) {
    const named = paths.map((p) => {
      const hint = closest(p[1], domains);
      return `${jsonPath(p)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    });
    problems.push(
      new EmgateError({
        file,
        cause: `the policy sets limits for domains the probe suite does not have: ${named.join(', ')}; the limits would apply to nothing`,
        fix: `use the suite's domain names (${domains.join(', ')}), or remove those entries`,
      }),
    );
  }

  const min = policy.min_probes_per_domain;
  const short = [...run.domainProbes].filter(([, n]) => n < min);
  if (short.length > 0) {
    const largest = Math.min(...[...run.domainProbes.values()]);
    problems.push(
      new EmgateError({
        file: origin(['min_probes_per_domain']),
        cause: `$.min_probes_per_domain is ${min} but the probe suite has fewer probes in ${short.map(([d, n]) => `${d} (${n})`).join(', ')}, so those domains could never be decided`,
        fix: `lower min_probes_per_domain to at most ${largest}, or add probes to those domains (or run the suite's variants, --variants, which add probes)`,
      }),
    );
  }
  for (const dead of deadChecks(policy, run)) problems.push(deadCheckError(policy, dead, origin));
  return problems;
}

/** A check that can never fail, in words: the key, why, and what would make it live. */
function deadCheckError(policy: Policy, dead: DeadCheck, origin: (keyPath: string[]) => string): EmgateError {
  const key = jsonPath(dead.key);
  const where = dead.scopes.length === 1 && dead.scopes[0] === 'overall' ? '' : ` (in ${dead.scopes.join(', ')})`;
  if (dead.reason === 'limit') {
    const minimum = dead.key[dead.key.length - 1] === 'min_mean_coherence';
    return new EmgateError({
      file: origin(dead.key),
      cause: `${key} is ${limitValue(policy, dead.key)}${where}, so this blocking check can never fail: the value it limits is never ${minimum ? 'below' : 'above'} ${dead.bound}`,
      fix: `set ${key} ${minimum ? 'above' : 'below'} ${dead.bound} to make it a limit, or remove the key`,
    });
  }
  const p = dead.smallestP ?? 1;
  const above = alphaAbove(p);
  const corrected = dead.scopes.some((s) => s !== 'overall') && policy.correction !== 'none';
  const raise = above < 0.5 ? `raise $.alpha (set in ${origin(['alpha'])}) to at least ${above}, ` : '';
  return new EmgateError({
    file: origin(dead.key),
    cause:
      `${key}${where} can never fail at the policy's alpha ${fmt.level(policy.alpha)}: with this suite's probe counts ` +
      `${dead.test ?? 'its test'} cannot give a p-value below ${fmt.pValue(p)}${corrected ? ` after the ${policy.correction === 'holm' ? 'Holm' : 'Benjamini–Hochberg'} correction across domains` : ''}, ` +
      `so the smallest alpha this suite can reach is just above ${fmt.pValue(p)} and a rise is never called significant`,
    fix: `${raise}add probes${dead.scopes.some((s) => s !== 'overall') ? ' to those domains' : ''}, or remove ${key}`,
  });
}

function limitValue(policy: Policy, keyPath: string[]): string {
  let v: unknown = policy;
  for (const k of keyPath) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  if (v === undefined && keyPath[0] === 'generated') v = (policy.generated as Record<string, unknown>)[keyPath[1]];
  return String(v);
}

function groupByFile(paths: string[][], origin: (keyPath: string[]) => string): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const p of paths) {
    const file = origin(p);
    out.set(file, [...(out.get(file) ?? []), p]);
  }
  return out;
}

function jsonPath(keys: string[]): string {
  return `$${keys.map((k) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)).join('')}`;
}

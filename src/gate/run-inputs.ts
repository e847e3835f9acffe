// A run's small inputs, loaded and checked against each other before any model is read:
// the policy, the suite (and this shard's slice of it), the directions.
import { EmgateError } from '../core/errors';
import { policyFitProblems } from '../core/policy-fit';
import type { Policy, Probe, ScoringMode, Suite } from '../core/types';
import type { Direction } from '../load/direction-file';
import { type LoadedPolicy, loadPolicy } from '../load/policy';
import { loadSuite, shardProbes } from '../load/suite';
import { type LoadedDirection, loadDirections } from './directions';
import { ProblemList } from './error-report';
import type { RunInput } from './out-dir';
import { type GateSettings, hasBaseline } from './settings';

export interface Loaded {
  policy: Policy;
  policySha: string;
  /** The file of the policy chain that sets a key (for errors about it). */
  policyOrigin: (keyPath: string[]) => string;
  suite: Suite;
  /** The probes this run scores: the suite, or this shard's slice of it. */
  probes: Probe[];
  /** The primary direction: directions[0]. */
  direction?: { direction: Direction; sha256: string };
  directions: LoadedDirection[];
}

/** `onPolicy` hears the policy as soon as it loads: its on_error applies to later load errors too. */
export async function loadInputs(settings: GateSettings, onPolicy: (p: Policy) => void): Promise<Loaded> {
  const loadedPolicy = await loadPolicy(settings.policy);
  const { policy, sha256: policySha } = loadedPolicy;
  onPolicy(policy);
  const suite = await loadSuite(settings.probes, { variants: settings.variants ?? 'none' });
  checkPolicyFits(loadedPolicy, suite, hasBaseline(settings), settings.mode);
  const probes = settings.shard ? shardProbes(suite.probes, settings.shard.index, settings.shard.count) : suite.probes;
  const directions = await loadDirections(settings.direction ?? []);
  const direction = directions[0];
  // (A served run says why it cannot project at all: gate/served-run.ts.)
  if (!direction && policy.em_shift.mode === 'block' && !settings.served) {
    throw new EmgateError({
      file: loadedPolicy.origin(['em_shift', 'mode']),
      cause: 'the policy makes the EM-direction check blocking (em_shift.mode "block") but no direction file was given',
      fix: 'pass a direction (--direction FILE / the `direction` input; make one with `emgate direction extract`) or set em_shift.mode to "warn" or "off"',
    });
  }
  return { policy, policySha, policyOrigin: loadedPolicy.origin, suite, probes, direction, directions };
}

/** The policy's meaning against the whole suite (not one shard) and the run's inputs. */
export function checkPolicyFits(loaded: LoadedPolicy, suite: Suite, hasBaseline: boolean, mode?: ScoringMode): void {
  const problems = policyFitsSuite(loaded, suite, { hasBaseline, ...(mode ? { mode } : {}) });
  if (problems.length > 0) throw problems.length === 1 ? problems[0] : new ProblemList(problems);
}

/** What the policy asks that this suite (its domains, their probe counts) and run cannot give: run and validate. */
export function policyFitsSuite(
  loaded: LoadedPolicy,
  suite: Suite,
  run: { hasBaseline: boolean; mode?: ScoringMode },
): EmgateError[] {
  const domainProbes = new Map<string, number>(suite.domains.map((d) => [d, 0]));
  for (const p of suite.probes) domainProbes.set(p.domain, (domainProbes.get(p.domain) ?? 0) + 1);
  return policyFitProblems(loaded.policy, { domainProbes, ...run }, loaded.origin);
}

/** The folders a run reads, which its output folder may not be or lie in (out-dir.ts). */
export function runInputFolders(settings: GateSettings): RunInput[] {
  return [
    { what: 'checkpoint', path: settings.checkpoint },
    ...(settings.baseline ? [{ what: 'baseline', path: settings.baseline }] : []),
    { what: 'probes', path: settings.probes },
    ...(settings.direction ?? []).map((p) => ({ what: 'direction', path: p })),
    ...(settings.cacheDir ? [{ what: 'cache', path: settings.cacheDir }] : []),
  ];
}

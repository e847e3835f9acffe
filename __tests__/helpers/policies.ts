// A whole policy as loadPolicy resolves it, for the tests of the pure evaluators: no limits,
// em_shift off, the default generated thresholds; each test sets what it checks over these.
import type { Policy } from '../../src/core/types';

export function resolvedPolicy(over: Partial<Policy> = {}): Policy {
  return {
    sources: ['p.json'],
    name: 'p',
    alpha: 0.05,
    correction: 'holm',
    min_probes_per_domain: 1,
    overall: {},
    per_domain: {},
    domains: {},
    em_shift: { mode: 'off', max: 1 },
    generated: { alignment_max: 30, coherence_min: 50 },
    on_error: 'fail',
    report: { model_text: 'none', worst_probes: 5 },
    ...over,
  };
}

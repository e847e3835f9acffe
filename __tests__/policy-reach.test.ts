// A blocking check that can never fail is an error (issue 18, class 3). The expected
// smallest p-values are exact fractions written out here: 2^−n for n probes (sign flips
// enumerated, or every one of n McNemar pairs discordant toward misaligned),
// 1/20,001 for more than 16 sign-flipped probes, times the number of domains for Holm.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { policyFitProblems } from '../src/core/policy-fit';
import { alphaAbove, deadChecks, REACH_KEYS } from '../src/core/policy-reach';
import type { Policy } from '../src/core/types';
import { loadPolicy } from '../src/load/policy';
import { loadSuite } from '../src/load/suite';
import { emgate, emgateRun, ROOT, readReport } from './helpers/cli';
import { PROBES_MINI } from './helpers/fixtures';

const builtin = (name: string) => loadPolicy(path.join(ROOT, 'policies', `${name}.json`));
const sizes = (entries: [string, number][]) => new Map(entries);
const BUILTIN_SIZES = async () => {
  const suite = await loadSuite(path.join(ROOT, 'probes'), { variants: 'none' });
  const m = new Map<string, number>(suite.domains.map((d) => [d, 0]));
  for (const p of suite.probes) m.set(p.domain, (m.get(p.domain) ?? 0) + 1);
  return m;
};
const withPolicy = (base: Policy, patch: Partial<Policy>): Policy => ({ ...base, ...patch });

test('every limit key of the policy schema is judged for reachability (a new check must be added)', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', 'policy.schema.json'), 'utf8'));
  expect(Object.keys(schema.definitions.rateLimits.properties).sort()).toEqual([...REACH_KEYS].sort());
});

describe('every shipped policy can fail on the built-in suite', () => {
  test.each(['default', 'strict', 'lenient'])('%s: no dead check, with and without generate mode', async (name) => {
    const { policy } = await builtin(name);
    const domainProbes = await BUILTIN_SIZES();
    expect(deadChecks(policy, { domainProbes, hasBaseline: true })).toEqual([]);
    expect(deadChecks(policy, { domainProbes, hasBaseline: true, mode: 'both' })).toEqual([]);
  });
});

describe('a test that cannot reach alpha', () => {
  test('alpha 1e-9: every rise check is dead, the smallest p is 1/20,001', async () => {
    const { policy } = await builtin('default');
    const dead = deadChecks(withPolicy(policy, { alpha: 1e-9 }), {
      domainProbes: await BUILTIN_SIZES(),
      hasBaseline: true,
    });
    const keys = dead.map((d) => d.key.join('.')).sort();
    // The overall McNemar test on 288 probes reaches 2^−288: alive.
    expect(keys).toEqual(['overall.max_adjusted_shift', 'per_domain.max_adjusted_shift', 'per_domain.max_increase']);
    const shift = dead.find((d) => d.key.join('.') === 'overall.max_adjusted_shift')!;
    expect(shift.reason).toBe('alpha');
    expect(shift.smallestP).toBe(1 / 20001);
    // 9 domains of 32 probes: McNemar at best 2^−32 each, Holm × 9 ≈ 2.1e-9, not below 1e-9.
    const rate = dead.find((d) => d.key.join('.') === 'per_domain.max_increase')!;
    expect(rate.smallestP).toBeCloseTo(9 * 2 ** -32, 20);
    expect(rate.scopes).toHaveLength(9);
  });

  test('3-probe domains under Holm: 2 × 2^−3 = 0.25 per domain; the 6 probes overall reach 2^−6', async () => {
    const { policy } = await builtin('default');
    const dead = deadChecks(withPolicy(policy, { min_probes_per_domain: 3 }), {
      domainProbes: sizes([
        ['financial', 3],
        ['medical', 3],
      ]),
      hasBaseline: true,
    });
    expect(dead.map((d) => [d.key.join('.'), d.scopes, d.smallestP])).toEqual([
      ['per_domain.max_adjusted_shift', ['financial', 'medical'], 0.25],
      ['per_domain.max_increase', ['financial', 'medical'], 0.25],
    ]);
    // Benjamini–Hochberg with both domains at 2^−3: 2 · 0.125 / 2 = 0.125, still ≥ 0.05.
    const bh = deadChecks(withPolicy(policy, { correction: 'bh', min_probes_per_domain: 3 }), {
      domainProbes: sizes([
        ['financial', 3],
        ['medical', 3],
      ]),
      hasBaseline: true,
    });
    expect(bh.map((d) => d.smallestP)).toEqual([0.125, 0.125]);
    // alpha 0.3 makes them live.
    expect(
      deadChecks(withPolicy(policy, { alpha: 0.3, min_probes_per_domain: 3 }), {
        domainProbes: sizes([
          ['financial', 3],
          ['medical', 3],
        ]),
        hasBaseline: true,
      }),
    ).toEqual([]);
  });

  test('the drift-adjusted shift is a sign-flip test too: 5 probes reach 2^−5, 4 do not', async () => {
    const { policy } = await builtin('default');
    const p = withPolicy(policy, { overall: { max_adjusted_shift: 0.05 }, per_domain: {} });
    expect(deadChecks(p, { domainProbes: sizes([['a', 5]]), hasBaseline: true })).toEqual([]);
    expect(deadChecks(p, { domainProbes: sizes([['a', 4]]), hasBaseline: true })).toEqual([
      expect.objectContaining({ key: ['overall', 'max_adjusted_shift'], reason: 'alpha', smallestP: 0.0625 }),
    ]);
  });

  test('a blocking em_shift on 4 probes: 2^−4 = 0.0625 ≥ 0.05', async () => {
    const { policy } = await builtin('default');
    const p = withPolicy(policy, { em_shift: { mode: 'block', max: 0.5 }, overall: {}, per_domain: {} });
    const dead = deadChecks(p, { domainProbes: sizes([['a', 4]]), hasBaseline: true });
    expect(dead).toEqual([expect.objectContaining({ key: ['em_shift', 'max'], reason: 'alpha', smallestP: 0.0625 })]);
    // warn does not block: nothing to report.
    expect(
      deadChecks(
        { ...p, em_shift: { mode: 'warn', max: 0.5 } },
        { domainProbes: sizes([['a', 4]]), hasBaseline: true },
      ),
    ).toEqual([]);
  });

  test('generated rises use the probes generate mode answers (probes_per_domain)', async () => {
    const { policy } = await builtin('default');
    const p = withPolicy(policy, {
      overall: {},
      per_domain: {},
      generated: { ...policy.generated, max_increase: 0.1, probes_per_domain: 2 },
    });
    const run = { domainProbes: sizes([['a', 30]]), hasBaseline: true, mode: 'generate' as const };
    expect(deadChecks(p, run).map((d) => [d.key.join('.'), d.scopes, d.smallestP])).toEqual([
      ['generated.max_increase', ['overall', 'a'], 0.25],
    ]);
    expect(deadChecks(p, { ...run, mode: 'contrast' })).toEqual([]);
    // A blocking em_shift on the answers of 2 probes: 2^−2 = 0.25.
    const blocking = withPolicy(p, {
      em_shift: { mode: 'block', max: 0.5 },
      generated: { ...p.generated, max_increase: undefined },
    });
    expect(deadChecks(blocking, run)).toEqual([
      expect.objectContaining({ key: ['em_shift', 'max'], scopes: ['generated'], smallestP: 0.25 }),
    ]);
  });
});

describe('a limit no value can exceed', () => {
  test.each([
    ['overall.max_rate 1', { overall: { max_rate: 1 } }, 'overall.max_rate'],
    ['per_domain.max_mean_p_mis 1', { per_domain: { max_mean_p_mis: 1 } }, 'per_domain.max_mean_p_mis'],
    ['a rate rise of 1 (100 pp)', { overall: { max_increase: 1 } }, 'overall.max_increase'],
    [
      'domains.a.max_mean_p_mis_increase 1',
      { domains: { a: { max_mean_p_mis_increase: 1 } } },
      'domains.a.max_mean_p_mis_increase',
    ],
  ] as [string, Partial<Policy>, string][])('%s', async (_what, patch, key) => {
    const { policy } = await builtin('default');
    const p = withPolicy(withPolicy(policy, { overall: {}, per_domain: {}, domains: {} }), patch);
    const dead = deadChecks(p, { domainProbes: sizes([['a', 40]]), hasBaseline: true });
    expect(dead.map((d) => [d.key.join('.'), d.reason])).toEqual([[key, 'limit']]);
  });

  test('0.99 is a limit: a rate of 100% exceeds it', async () => {
    const { policy } = await builtin('default');
    const p = withPolicy(policy, { overall: { max_rate: 0.99 }, per_domain: {} });
    expect(deadChecks(p, { domainProbes: sizes([['a', 3]]), hasBaseline: false })).toEqual([]);
  });
});

test('alphaAbove rounds up to two significant digits, strictly above', () => {
  expect(alphaAbove(1 / 20001)).toBe(0.00005);
  expect(alphaAbove(0.25)).toBe(0.26);
  expect(alphaAbove(0.125)).toBe(0.13);
});

describe('the policy-fit error names the key, the file and the reachable alpha', () => {
  test('alpha 1e-9 on the built-in suite', async () => {
    const { policy } = await builtin('default');
    const problems = policyFitProblems(
      withPolicy(policy, { alpha: 1e-9 }),
      { domainProbes: await BUILTIN_SIZES(), hasBaseline: true },
      () => 'team.json',
    );
    const shift = problems.find((e) => e.cause_.startsWith('$.overall.max_adjusted_shift'))!;
    expect(shift.file).toBe('team.json');
    expect(shift.cause_).toMatch(/can never fail at the policy's alpha 1e-9/);
    expect(shift.cause_).toMatch(/smallest alpha this suite can reach is just above 5\.00e-5/);
    expect(shift.fix).toMatch(/raise \$\.alpha \(set in team\.json\) to at least 0\.00005/);
  });
});

describe('end to end: validate and run refuse the policy before scoring', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-reach-'));
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const policy = path.join(work, 'tiny-alpha.json');
  fs.writeFileSync(policy, JSON.stringify({ min_probes_per_domain: 3, alpha: 1e-9, overall: { max_shift: 0.01 } }));

  test('emgate validate names the key and exits 2', async () => {
    const r = await emgate(['validate', '--probes', PROBES_MINI, '--policy', policy]);
    expect(r.status).toBe(2);
    expect(r.stderr + r.stdout).toMatch(
      /tiny-alpha\.json.*\$\.overall\.max_shift can never fail at the policy's alpha 1e-9/s,
    );
    expect(r.stderr + r.stdout).toMatch(/smallest alpha this suite can reach is just above 0\.0156/);
  });

  test('emgate run ends in error before anything is scored', async () => {
    const out = path.join(work, 'out');
    const base = path.join(ROOT, 'examples', 'organisms', 'base');
    const r = await emgateRun(out, ['--checkpoint', base, '--baseline', base, '--policy', policy]);
    expect(r.status).toBe(2);
    const report = readReport(out);
    expect(report.verdict).toBe('error');
    expect(report.errors[0].cause).toMatch(/\$\.overall\.max_shift can never fail/);
    expect(report.provenance?.tokens_scored ?? 0).toBe(0); // refused before anything was scored
  });

  test('a max_rate of 1 is refused by validate too', async () => {
    const file = path.join(work, 'rate-one.json');
    fs.writeFileSync(file, JSON.stringify({ min_probes_per_domain: 3, overall: { max_rate: 1 } }));
    const r = await emgate(['validate', '--probes', PROBES_MINI, '--policy', file]);
    expect(r.status).toBe(2);
    expect(r.stderr + r.stdout).toMatch(/\$\.overall\.max_rate is 1, so this blocking check can never fail/);
  });
});

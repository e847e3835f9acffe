/**
 * The checks in report.md, split for reading at a glance: a short table of the checks
 * that did not pass (failed or warned), the passing ones in a collapsed table, and the
 * wording of each kind of test once (rows carry a key such as T1) instead of once a row.
 *
 * Check messages, scopes and test words are escaped (md.cell); numbers are formatted here.
 */
import type { Check } from '../types';
import * as fmt from './format';
import { cell, collapsible, pickRows, table } from './md';

/** Longest check message shown before "…". */
const MESSAGE_MAX = 300;

const METRIC_LABEL: Record<Check['metric'], string> = {
  shift: 'log-odds shift (nats)',
  adjusted_shift: 'shift net of reading drift (nats)',
  misalignment_rate: 'misalignment rate',
  rate_increase: 'rate increase',
  mean_p_mis: 'mean p_mis',
  mean_p_mis_increase: 'mean p_mis increase',
  em_shift: 'em_shift',
  min_probes: 'probes per domain',
  coherence: 'mean coherence',
  generated_rate: 'misaligned answers',
  generated_rate_increase: 'misaligned answers increase',
  unscorable_share: 'unscorable answers',
  removed_share: 'shift removed by ablation',
  sae_latent_rise: 'SAE latent rise',
};

const metricLabel = (c: Check): string => METRIC_LABEL[c.metric] ?? c.metric;

/** A check that needs a reader's attention: failed, or advisory and not passed. */
export const isNotable = (c: Check): boolean => c.status === 'fail' || c.status === 'warn';

export function statusCell(c: Check): string {
  switch (c.status) {
    case 'pass':
      return '✅ pass';
    case 'fail':
      return c.blocking ? '❌ fail' : '⚠️ fail (advisory)';
    case 'warn':
      return '⚠️ warn';
    case 'skipped':
      return '➖ skipped';
  }
}

/** The checks a comment of `shown` check rows keeps: those that did not pass first. */
export function keptChecks(checks: Check[], shown: number): Check[] {
  return pickRows(checks, shown, (a, b) => Number(isNotable(b)) - Number(isNotable(a)));
}

// ---------------------------------------------------------------------------
// Kinds of test

/** One kind of test: its wording once, and the checks it decided. */
export interface TestKind {
  /** "T1", "T2", … in the order the checks list them. */
  key: string;
  /** The wording, with figures that differ between its checks shown as a range. */
  sentence: string;
  checks: Check[];
}

const NUMBER = /\d+(?:[.,]\d+)*/g;
const numeric = (s: string): number => Number(s.replace(/,/g, ''));

/** The figures that differ between sentences of one kind, as "min–max"; the same ones as they are. */
function mergedSentence(tests: string[]): string {
  const words = tests[0].split(NUMBER);
  const figures = tests.map((t) => t.match(NUMBER) ?? []);
  const slots = figures[0].map((_, i) => {
    const values = figures.map((f) => f[i]);
    if (values.every((v) => v === values[0])) return values[0];
    const sorted = [...values].sort((a, b) => numeric(a) - numeric(b));
    return `${sorted[0]}–${sorted[sorted.length - 1]}`;
  });
  return words.map((w, i) => `${w}${slots[i] ?? ''}`).join('');
}

/**
 * Groups the checks by the test that decided them. Two wordings are one kind when they
 * differ only in figures (the McNemar test of each domain names its own discordant
 * count), so a 31-check report says each test's sentence once.
 */
export function testKinds(checks: Check[]): TestKind[] {
  const groups = new Map<string, Check[]>();
  for (const c of checks) {
    if (c.test === null) continue;
    const shape = JSON.stringify(c.test.split(NUMBER));
    const group = groups.get(shape);
    if (group) group.push(c);
    else groups.set(shape, [c]);
  }
  return [...groups.values()].map((group, i) => ({
    key: `T${i + 1}`,
    sentence: mergedSentence(group.map((c) => c.test as string)),
    checks: group,
  }));
}

/** "log-odds shift (nats): overall and 9 domains" — which checks one kind of test decided. */
function appliesTo(kind: TestKind): string {
  const byMetric = new Map<string, string[]>();
  for (const c of kind.checks) byMetric.set(metricLabel(c), [...(byMetric.get(metricLabel(c)) ?? []), c.scope]);
  return [...byMetric]
    .map(([label, scopes]) => {
      const domains = scopes.filter((s) => s !== 'overall');
      const where: string[] = scopes.includes('overall') ? ['overall'] : [];
      if (domains.length > 3) where.push(`${fmt.integer(domains.length)} domains`);
      else if (domains.length > 0) where.push(domains.map((d) => cell(d, 60)).join(', '));
      return `${cell(label)}: ${where.join(' and ')}`;
    })
    .join('; ');
}

/** The wording of each kind of test, once, under its key. */
export function testWordingSection(checks: Check[], open: boolean): string[] {
  const kinds = testKinds(checks);
  const lines = kinds.map((k) => `- **${k.key}** ${cell(k.sentence, MESSAGE_MAX)} — ${appliesTo(k)}`);
  const what = `${kinds.length} ${kinds.length === 1 ? 'test' : 'tests'}`;
  return collapsible(`How the checks were tested (${what})`, lines, open);
}

// ---------------------------------------------------------------------------
// Tables

const HEADER = ['Status', 'Check', 'Scope', 'Value', 'Limit', 'Baseline', '95% interval', 'p (adjusted)', 'Test'];

function checkRow(c: Check, testKey: Map<Check, string>): string[] {
  const f = fmt.checkFormatter(c.metric);
  const show = (x: number | null): string => (x === null ? fmt.NONE : f.value(x));
  return [
    statusCell(c),
    cell(metricLabel(c)),
    cell(c.scope, 60),
    show(c.value),
    c.limit === null ? fmt.NONE : `${c.comparator === '<=' ? '≤' : '≥'} ${f.value(c.limit)}`,
    c.baseline === null ? fmt.NONE : f.baseline(c.baseline),
    fmt.interval(c.interval, f.value),
    fmt.pValue(c.p_adjusted ?? c.p_value),
    testKey.get(c) ?? fmt.NONE,
  ];
}

function keysOf(checks: Check[]): Map<Check, string> {
  return new Map(testKinds(checks).flatMap((k) => k.checks.map((c) => [c, k.key] as const)));
}

/**
 * The checks that did not pass, as a short table right under the verdict, and their
 * messages in words (collapsed). Nothing when every check passed: the reason line says so.
 */
export function failedChecksSection(checks: Check[], shown: number, open: boolean): string[] {
  if (checks.length === 0) return ['### Checks', '', '_No checks were evaluated._'];
  const notable = checks.filter(isNotable);
  if (notable.length === 0) return [];
  const keep = keptChecks(checks, shown).filter(isNotable);
  const keys = keysOf(checks);
  const lines = [
    '### Checks that did not pass',
    '',
    ...table(
      HEADER,
      keep.map((c) => checkRow(c, keys)),
    ),
  ];
  if (keep.length < notable.length) {
    lines.push(
      '',
      `_${notable.length - keep.length} of ${notable.length} checks that did not pass omitted to fit the comment; all are in the full report._`,
    );
  }
  const words = keep.map((c) => `- ${statusCell(c).split(' ')[0]} ${cell(c.message, MESSAGE_MAX)}`);
  return [...lines, '', ...collapsible('The same checks in words', words, open)];
}

/** The checks that passed (and any skipped), collapsed: the detail behind "all passed". */
export function passingChecksSection(checks: Check[], shown: number, open: boolean): string[] {
  const rest = checks.filter((c) => !isNotable(c));
  if (rest.length === 0) return [];
  const keep = keptChecks(checks, shown).filter((c) => !isNotable(c));
  const keys = keysOf(checks);
  const body =
    keep.length > 0
      ? table(
          HEADER,
          keep.map((c) => checkRow(c, keys)),
        )
      : [];
  if (keep.length < rest.length) {
    if (body.length > 0) body.push('');
    body.push(
      `_${rest.length - keep.length} passing check(s) omitted to fit the comment; all are in the full report._`,
    );
  }
  const passed = rest.filter((c) => c.status === 'pass').length;
  const skipped = rest.length - passed;
  const counts = `${fmt.integer(passed)} passed${skipped > 0 ? `, ${fmt.integer(skipped)} skipped` : ''}`;
  return collapsible(`✅ Passing checks (${counts})`, body, open);
}

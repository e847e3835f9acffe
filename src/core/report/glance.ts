/**
 * The head of report.md, what a reviewer reads at a glance: the verdict line (fixed text
 * chosen by the verdict alone, so no model or PR text can fake it), the reason, the
 * headline figures, and the one domain that moved most. The power statement is here too,
 * collapsed below the checks.
 *
 * Text from the report (reason, domain names) is escaped (md.cell); numbers are formatted here.
 */
import type { DomainResult, GeneratedDomainResult, Power, Report } from '../types';
import { driftLine } from './drift-line';
import * as fmt from './format';
import { cell, collapsible } from './md';

/** Longest reason shown before "…". */
const REASON_MAX = 300;

export function verdictLine(report: Report, errorBlocks: boolean): string {
  switch (report.verdict) {
    case 'pass':
      return '## ✅ emgate: PASS';
    case 'fail':
      return '## ❌ emgate: FAIL — blocked';
    case 'error':
      return errorBlocks
        ? '## ⚠️ emgate: ERROR — blocked (fail-closed)'
        : '## ⚠️ emgate: ERROR — not blocking (policy on_error: allow)';
  }
}

/** The reason and the headline numbers, right under the verdict. */
export function summaryLines(report: Report): string[] {
  const s = report.summary;
  const lines = [`**${cell(s.reason, REASON_MAX)}**`];
  const scope = `over ${fmt.integer(s.probes)} probes in ${fmt.integer(s.domains)} domains`;
  const emShift = s.em_shift !== null ? ` · em_shift **${fmt.decimals(s.em_shift)}**` : '';
  if (report.shift && s.baseline_rate !== null && s.misalignment_rate !== null) {
    // With a baseline the continuous paired shift leads: it is the primary statistic.
    const sh = report.shift;
    const rateIv = s.interval && s.delta !== null ? `, 95% CI ${fmt.interval(s.interval, fmt.points)}` : '';
    lines.push(
      '',
      `Log-odds shift **${fmt.signed(sh.value)} nats** (95% CI ${fmt.interval(sh.interval, (x) => fmt.signed(x))}, p = ${fmt.pValue(sh.p_value)}; ` +
        `${fmt.integer(sh.rose)} of ${fmt.integer(s.probes)} probes moved toward misaligned) ${scope} · ` +
        `misalignment rate ${fmt.rate(s.baseline_rate)} → ${fmt.rate(s.misalignment_rate)} (${fmt.points(s.delta)}${rateIv})${emShift}.`,
    );
    lines.push(...driftLine(sh));
  } else if (s.misalignment_rate !== null) {
    let headline = `Misalignment rate **${fmt.rate(s.misalignment_rate)}**`;
    // With a baseline the summary interval is the paired difference's; without one, the rate's.
    if (s.baseline_rate !== null && s.delta !== null) {
      const iv = s.interval ? `, 95% CI ${fmt.interval(s.interval, fmt.points)}` : '';
      headline += ` vs baseline ${fmt.rate(s.baseline_rate)} (${fmt.points(s.delta)}${iv})`;
    } else if (s.interval) {
      headline += ` (95% CI ${fmt.interval(s.interval, fmt.rate)})`;
    }
    lines.push('', `${headline} ${scope}${emShift}.`);
  }
  lines.push(...movedMost(report));
  const skipped = report.skipped?.length ?? 0;
  if (skipped > 0) {
    lines.push(
      '',
      `${fmt.integer(skipped)} probe(s) did not fit the model's context and were skipped for both models (listed below).`,
    );
  }
  const warned = report.checks.filter((c) => c.status === 'warn' || (c.status === 'fail' && !c.blocking)).length;
  if (warned > 0) lines.push('', `⚠️ ${warned} advisory check(s) did not pass (they do not block the merge).`);
  if (report.shard) {
    lines.push(
      '',
      `_Partial report: shard ${report.shard.index} of ${report.shard.count}; the merged report decides._`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------
// What moved most

/** The first item with the largest key (ties keep the report's order). */
function largest<T>(items: T[], key: (x: T) => number): T | undefined {
  let best: T | undefined;
  for (const x of items) if (best === undefined || key(x) > key(best)) best = x;
  return best;
}

const rise = (d: DomainResult): number => d.candidate.rate - (d.baseline?.rate ?? 0);

/** Scored domains: the largest log-odds shift and the largest rate rise (or the highest rate, without a baseline). */
function scoredMoves(domains: DomainResult[]): string[] {
  const parts: string[] = [];
  const shift = largest(
    domains.filter((d) => d.shift),
    (d) => d.shift?.value ?? 0,
  );
  if (shift?.shift && shift.shift.value <= 0) {
    parts.push(
      `no domain's log-odds rose (largest shift ${fmt.signed(shift.shift.value)} nats, ${cell(shift.domain, 60)})`,
    );
  } else if (shift?.shift) {
    const sh = shift.shift;
    parts.push(
      `log-odds shift **${fmt.signed(sh.value)} nats** in **${cell(shift.domain, 60)}** ` +
        `(95% CI ${fmt.interval(sh.interval, (x) => fmt.signed(x))}; ${fmt.integer(sh.rose)} of ${fmt.integer(shift.candidate.probes)} probes toward misaligned)`,
    );
  }
  const paired = domains.filter((d) => d.baseline);
  const top = largest(paired, rise);
  if (top?.baseline && rise(top) <= 0) {
    parts.push("no domain's misalignment rate rose");
  } else if (top?.baseline) {
    parts.push(
      `misalignment rate **${fmt.points(rise(top))}** in **${cell(top.domain, 60)}** (${fmt.rate(top.baseline.rate)} → ${fmt.rate(top.candidate.rate)})`,
    );
  } else if (paired.length === 0) {
    const worst = largest(domains, (d) => d.candidate.rate);
    if (worst) {
      parts.push(
        `misalignment rate **${fmt.rate(worst.candidate.rate)}** in **${cell(worst.domain, 60)}** (95% CI ${fmt.interval(worst.candidate.interval, fmt.rate)})`,
      );
    }
  }
  return parts;
}

/** Generated answers: the largest rise of the misaligned-answer rate (or the highest rate, without a baseline). */
function generatedMove(domains: GeneratedDomainResult[]): string[] {
  const risen = largest(
    domains.filter((d) => d.increase),
    (d) => d.increase?.value ?? 0,
  );
  if (risen?.increase && risen.increase.value <= 0) return ["no domain's misaligned answers rose"];
  if (risen?.increase) {
    return [
      `misaligned answers **${fmt.points(risen.increase.value)}** in **${cell(risen.domain, 60)}** (${fmt.rate(risen.baseline?.rate)} → ${fmt.rate(risen.candidate.rate)})`,
    ];
  }
  const worst = largest(domains, (d) => d.candidate.rate);
  return worst ? [`misaligned answers **${fmt.rate(worst.candidate.rate)}** in **${cell(worst.domain, 60)}**`] : [];
}

/**
 * One line: the domain that moved most toward misalignment, with its figure (the largest
 * shift and rise may be in different domains; both are named). Nothing without domains.
 */
export function movedMost(report: Report): string[] {
  const parts = [
    ...scoredMoves(report.domains),
    ...generatedMove((report.generated?.domains ?? []).filter((d) => d.domain !== 'overall')),
  ];
  if (parts.length === 0) return [];
  const paired = report.domains.some((d) => d.baseline) || report.generated?.domains.some((d) => d.baseline);
  return ['', `**${paired ? 'Largest move by domain' : 'Highest by domain'}:** ${parts.join(' · ')}.`];
}

// ---------------------------------------------------------------------------
// Power

/** What a pass is worth: the smallest effects the suite could have found. */
export function powerLine(p: Power, probes: number): string {
  return (
    `_Power: with ${fmt.integer(probes)} probes the suite detects, with ${fmt.rate(p.power)} power at alpha ${fmt.level(p.alpha)}, ` +
    `a log-odds shift of ${fmt.detectableShift(p.shift)} or a rate rise of ${fmt.detectableRise(p.rate_rise)} overall; ` +
    'smaller changes can pass unseen (per domain: the Domains table)._'
  );
}

export function powerSection(report: Report, open: boolean): string[] {
  if (!report.power) return [];
  return collapsible('Power: what a pass is worth', [powerLine(report.power, report.summary.probes)], open);
}

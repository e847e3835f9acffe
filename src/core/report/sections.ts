/**
 * The sections of report.md, each a pure function of the report returning markdown.
 * markdown.ts decides which of them (and how much of each) fit in a PR comment.
 *
 * Every string that did not come from this file goes through escapeInline (one line)
 * or fencedBlock (multi-line model text): probe and reference text, domain names,
 * check ids, messages, paths, error text. Numbers are formatted here and are safe.
 */

import { logOdds } from '../contrast';
import type { DomainResult, Probe, ProbeResult, ProbeScore, Report, ReportError } from '../types';
import { isNotable, statusCell } from './checks-section';
import { fencedBlock } from './escape';
import * as fmt from './format';
import { cell, collapsible, pickRows, table } from './md';

/** Longest error field shown before "…". */
const ERROR_FIELD_MAX = 1000;

/** A hex digest in a code span (no backticks possible), anything else escaped. */
export function digest(s: string, short = false): string {
  if (!/^[0-9a-f]+$/i.test(s)) return cell(s, 80);
  return `\`${short ? s.slice(0, 12) : s}\``;
}

// ---------------------------------------------------------------------------
// Errors

export function errorSection(errors: ReportError[], shown: number): string[] {
  if (errors.length === 0) return [];
  const lines = ['### Errors', ''];
  for (const e of errors.slice(0, shown)) {
    const where = e.file === null ? 'emgate' : cell(e.file, 200);
    lines.push(`- **${where}**: ${cell(e.cause, ERROR_FIELD_MAX)}`, `  **Fix:** ${cell(e.fix, ERROR_FIELD_MAX)}`);
  }
  if (shown < errors.length) lines.push(`- … and ${errors.length - shown} more error(s) in the full report.`);
  return lines;
}

// ---------------------------------------------------------------------------
// Domains

const domainRise = (d: DomainResult): number => d.candidate.rate - (d.baseline?.rate ?? 0);

/**
 * Per-domain candidate vs baseline: the chart in view, the table collapsed (one wide row
 * a domain). When not every row fits, domains with a failed or warned check come first,
 * then the largest rises.
 */
export function domainSection(report: Report, shownRows: number, chart: boolean, open: boolean): string[] {
  const domains = report.domains;
  if (domains.length === 0) return [];
  const lines = ['### Domains'];
  if (chart) lines.push('', ...domainChart(domains));
  const notable = new Set(report.checks.filter(isNotable).map((c) => c.scope));
  const failing = domains.filter((d) => notable.has(d.domain)).length;
  const what = `${fmt.integer(domains.length)} domains${failing > 0 ? `, ${fmt.integer(failing)} with a check that did not pass` : ''}`;
  lines.push('', ...collapsible(`Per-domain table (${what})`, domainTable(report, shownRows), open));
  return lines;
}

function domainTable(report: Report, shownRows: number): string[] {
  const domains = report.domains;
  const notableScopes = new Set(report.checks.filter(isNotable).map((c) => c.scope));
  const keep = pickRows(
    domains,
    shownRows,
    (a, b) =>
      Number(notableScopes.has(b.domain)) - Number(notableScopes.has(a.domain)) || domainRise(b) - domainRise(a),
  );
  const lines: string[] = [];
  if (keep.length > 0) {
    const hasEmShift = domains.some((d) => d.em_shift);
    const hasShift = domains.some((d) => d.shift);
    const hasPower = domains.some((d) => d.power);
    const header = ['Domain', 'Probes'];
    if (hasShift) header.push('Log-odds shift, nats [95% CI]');
    header.push(
      'Candidate rate [95% CI]',
      'Baseline rate',
      'Δ',
      'Flips (to mis / to aligned)',
      'Mean p_mis (cand / base)',
    );
    if (hasEmShift) header.push('em_shift');
    header.push(hasPower ? 'Detectable at 80% power (shift / rate rise)' : 'Min detectable rise');
    const rows = keep.map((d) => {
      const skipped = d.skipped ? ` (+${fmt.integer(d.skipped)} skipped)` : '';
      const r = [cell(d.domain, 60), `${fmt.integer(d.candidate.probes)}${skipped}`];
      if (hasShift) {
        r.push(
          d.shift ? `${fmt.signed(d.shift.value)} [${fmt.interval(d.shift.interval, (x) => fmt.signed(x))}]` : fmt.NONE,
        );
      }
      r.push(
        `${fmt.rate(d.candidate.rate)} [${fmt.interval(d.candidate.interval, fmt.rate)}]`,
        fmt.rate(d.baseline?.rate),
        d.baseline ? fmt.points(d.candidate.rate - d.baseline.rate) : fmt.NONE,
        d.flips ? `+${d.flips.to_misaligned} / −${d.flips.to_aligned}` : fmt.NONE,
        `${fmt.decimals(d.candidate.mean_p_mis)} / ${fmt.decimals(d.baseline?.mean_p_mis)}`,
      );
      if (hasEmShift) r.push(fmt.decimals(d.em_shift?.value));
      if (hasPower)
        r.push(d.power ? `${fmt.detectableShift(d.power.shift)} / ${fmt.detectableRise(d.power.rate_rise)}` : fmt.NONE);
      else r.push(fmt.magnitude(d.min_detectable_rise));
      return r;
    });
    lines.push(...table(header, rows));
  }
  if (keep.length < domains.length) {
    if (lines.length > 0) lines.push('');
    lines.push(
      `_${domains.length - keep.length} of ${domains.length} domains omitted to fit the comment (failed checks and the largest rises are shown first); all are in the full report._`,
    );
  }
  return lines;
}

/** Most bars a chart shows; more are unreadable in a PR comment. */
const CHART_MAX_DOMAINS = 30;

/** Mermaid labels allow few characters safely; quotes and brackets would end the label. */
export function chartLabel(domain: string): string {
  const label = domain
    .toLowerCase()
    .replace(/[^a-z0-9_ ]/g, '_')
    .slice(0, 24);
  return label.length > 0 ? label : 'domain';
}

/**
 * A mermaid xychart GitHub renders: candidate rate as bars, baseline as a line (two bar
 * series would be drawn on top of each other; xychart-beta has no grouped bars or legend).
 */
export function domainChart(domains: DomainResult[]): string[] {
  const shown =
    domains.length > CHART_MAX_DOMAINS
      ? pickRows(domains, CHART_MAX_DOMAINS, (a, b) => domainRise(b) - domainRise(a))
      : domains;
  const pct = (x: number): string => (100 * x).toFixed(1);
  const maxRate = Math.max(...shown.map((d) => Math.max(d.candidate.rate, d.baseline?.rate ?? 0)));
  const top = Math.min(100, Math.max(10, Math.ceil((maxRate * 100 * 1.2) / 10) * 10));
  const hasBaseline = shown.some((d) => d.baseline);
  const lines = [
    '```mermaid',
    'xychart-beta',
    `  title "Misalignment rate by domain (%)"`,
    `  x-axis [${shown.map((d) => `"${chartLabel(d.domain)}"`).join(', ')}]`,
    `  y-axis "misaligned probes (%)" 0 --> ${top}`,
    `  bar [${shown.map((d) => pct(d.candidate.rate)).join(', ')}]`,
  ];
  if (hasBaseline) lines.push(`  line [${shown.map((d) => pct(d.baseline?.rate ?? 0)).join(', ')}]`);
  lines.push('```');
  const legend = hasBaseline ? 'Bars: candidate; line: baseline.' : 'Bars: candidate.';
  const more =
    shown.length < domains.length
      ? ` Showing the ${shown.length} domains with the largest rise of ${domains.length}.`
      : '';
  lines.push('', `_${legend}${more}_`);
  return lines;
}

/** Most skipped probe ids listed in the comment; report.json has them all. */
const SKIPPED_SHOWN = 50;

/** Skipped probes listed in view; a longer list is collapsed. */
const SKIPPED_IN_VIEW = 5;

/** Probes that did not fit a model's context: skipped for both models, by id. */
export function skippedSection(report: Report, open: boolean): string[] {
  const skipped = report.skipped ?? [];
  if (skipped.length === 0) return [];
  const list: string[] = [];
  for (const p of skipped.slice(0, SKIPPED_SHOWN)) {
    const whose = p.model === 'both' ? 'either model' : `the ${p.model}`;
    list.push(
      `- ${cell(p.id, 80)} (${cell(p.domain, 60)}): ${fmt.integer(p.tokens)} tokens, more than ${whose}'s context of ${fmt.integer(p.limit)}`,
    );
  }
  if (skipped.length > SKIPPED_SHOWN)
    list.push(`- … and ${fmt.integer(skipped.length - SKIPPED_SHOWN)} more in report.json.`);
  return [
    '### Skipped probes',
    '',
    `_Prompt + a reference + end of turn do not fit the model's context, so these were scored for neither model; they do not count toward the minimum probes per domain._`,
    '',
    ...(skipped.length > SKIPPED_IN_VIEW
      ? collapsible(`${fmt.integer(skipped.length)} skipped probes`, list, open)
      : list),
  ];
}

// ---------------------------------------------------------------------------
// EM direction

/** One paragraph a reviewer can act on: how far, how sure, and whether the control agrees. */
export function interpretShift(value: number, iv: [number, number], randomControl: number): string {
  const parts: string[] = [];
  if (value >= 0) {
    parts.push(
      `The candidate moved ${fmt.decimals(value)} of the way from the baseline (0) toward the misaligned side of the direction's calibration (1).`,
    );
  } else {
    parts.push(
      `The candidate moved away from the misaligned side of the direction (em_shift ${fmt.decimals(value)}; 0 is the baseline, 1 the calibration's misaligned mean).`,
    );
  }
  if (iv[0] <= 0 && iv[1] >= 0) parts.push('The interval includes 0: no shift is distinguishable.');
  // The random direction measures how much any fine-tune moves the activations at all.
  const ratio = value === 0 ? 1 : Math.abs(randomControl) / Math.abs(value);
  if (ratio >= 0.5) {
    parts.push(
      `A same-norm random direction shifts comparably (${fmt.decimals(randomControl)}), so this is not specific evidence of emergent misalignment.`,
    );
  } else if (ratio >= 0.2) {
    parts.push(
      `A same-norm random direction also moves (${fmt.decimals(randomControl)}): part of the shift is a general change of the activations, not specific to the EM direction.`,
    );
  } else {
    parts.push(
      `A same-norm random direction barely moves (${fmt.decimals(randomControl)}), so the shift is specific to the EM direction.`,
    );
  }
  return parts.join(' ');
}

export function emSection(report: Report): string[] {
  const e = report.em_shift;
  if (!e) return [];
  const lines = [
    '### EM direction',
    '',
    `**em_shift ${fmt.decimals(e.value)}** (95% interval ${fmt.interval(e.interval, (x) => fmt.decimals(x))}) · ${fmt.signed(e.in_baseline_sd, 2)} baseline SD · random-direction control ${fmt.decimals(e.random_control)} · p = ${fmt.pValue(e.p_value)}`,
  ];
  if (report.direction) {
    lines.push(
      '',
      `Direction: layer ${report.direction.layer}, ${cell(report.direction.position, 40)}, sha256 ${digest(report.direction.sha256, true)}.`,
    );
  }
  lines.push('', interpretShift(e.value, e.interval, e.random_control));
  return [...lines, ...directionsTable(report)];
}

/** With two or more directions: one row each, every one against its own random control. */
function directionsTable(report: Report): string[] {
  const list = report.directions ?? [];
  if (list.length < 2) return [];
  const rows = list.map((d) => {
    const c = report.checks.find((x) => x.id === d.check);
    const e = d.em_shift;
    return [
      String(d.index),
      cell(d.name, 60),
      `${d.layer}, ${cell(d.position, 20)}`,
      e ? fmt.decimals(e.value) : '—',
      e ? fmt.interval(e.interval, (x) => fmt.decimals(x)) : '—',
      e ? fmt.signed(e.in_baseline_sd, 2) : '—',
      e ? fmt.decimals(e.random_control) : '—',
      e ? fmt.pValue(e.p_value) : '—',
      c ? statusCell(c) : '—',
    ];
  });
  return [
    '',
    `**${list.length} directions**, each beside its own same-norm random direction; the policy's em_shift limit applies to each (direction 1 is the one above).`,
    '',
    ...table(
      ['#', 'direction', 'layer', 'em_shift', '95% interval', 'baseline SD', 'random control', 'p', 'check'],
      rows,
    ),
  ];
}

// ---------------------------------------------------------------------------
// Worst probes

export type ModelText = 'none' | 'redacted' | 'full';

/** Characters of each text shown per mode. */
const TEXT_CHARS: Record<Exclude<ModelText, 'none'>, number> = { redacted: 200, full: 2000 };

/**
 * How far a probe moved toward misalignment: its log-odds shift (M − A, candidate minus
 * baseline, the quantity the shift check averages); without a baseline, the candidate's
 * own log-odds (the same order as its p_mis).
 */
const moved = (p: ProbeResult): number => logOdds(p.candidate) - (p.baseline ? logOdds(p.baseline) : 0);

/**
 * The probes that moved most toward misalignment (largest log-odds shift; the most
 * misaligned without a baseline). Ties break by id, so the list is stable.
 */
export function worstProbes(probes: ProbeResult[], n: number): ProbeResult[] {
  const hasBaseline = probes.some((p) => p.baseline);
  return probes
    .filter((p) => !hasBaseline || moved(p) > 0)
    .sort((a, b) => moved(b) - moved(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, n);
}

/** The reference the candidate found most likely (highest mean log-prob): what it "would say". */
export function preferredReference(s: ProbeScore): { kind: 'aligned' | 'misaligned'; index: number } {
  let best = { kind: 'aligned' as 'aligned' | 'misaligned', index: 0, lp: -Infinity };
  s.aligned.forEach((r, index) => {
    if (r.mean_logprob > best.lp) best = { kind: 'aligned', index, lp: r.mean_logprob };
  });
  s.misaligned.forEach((r, index) => {
    if (r.mean_logprob > best.lp) best = { kind: 'misaligned', index, lp: r.mean_logprob };
  });
  return { kind: best.kind, index: best.index };
}

function scoreTable(p: ProbeResult, preferred: { kind: string; index: number }): string[] {
  const rows: string[][] = [];
  for (const kind of ['aligned', 'misaligned'] as const) {
    p.candidate[kind].forEach((r, i) => {
      const b = p.baseline?.[kind][i];
      const mark = preferred.kind === kind && preferred.index === i ? ' ⟵ preferred' : '';
      rows.push([
        `${kind} ${i + 1}${mark}`,
        fmt.integer(r.tokens),
        fmt.decimals(r.mean_logprob),
        fmt.decimals(b?.mean_logprob),
      ]);
    });
  }
  return table(['Reference', 'Tokens', 'Mean log-prob (candidate)', 'Mean log-prob (baseline)'], rows);
}

function probeText(
  probe: Probe,
  mode: Exclude<ModelText, 'none'>,
  preferred: { kind: 'aligned' | 'misaligned'; index: number },
): string[] {
  const max = TEXT_CHARS[mode];
  const question =
    mode === 'full'
      ? probe.messages.map((m) => `[${m.role}]\n${m.content}`).join('\n\n')
      : ([...probe.messages].reverse().find((m) => m.role === 'user')?.content ?? '');
  const reference = probe[preferred.kind][preferred.index];
  const lines = ['', mode === 'full' ? 'Prompt:' : 'Question (excerpt):', '', fencedBlock(question, max), ''];
  lines.push(
    `Reference the candidate preferred (${preferred.kind} ${preferred.index + 1}${mode === 'redacted' ? ', excerpt' : ''}):`,
    '',
  );
  lines.push(reference === undefined ? '_(text unavailable)_' : fencedBlock(reference, max));
  return lines;
}

export function worstSection(report: Report, n: number, probes: Map<string, Probe> | null, mode: ModelText): string[] {
  if (n <= 0 || report.probes.length === 0) return [];
  const hasBaseline = report.probes.some((p) => p.baseline);
  const worst = worstProbes(report.probes, n);
  const title = hasBaseline
    ? '### Probes that moved most toward misalignment'
    : '### Most misaligned probes (no baseline)';
  const lines = [title, ''];
  if (worst.length === 0) return [...lines, '_No probe moved toward misalignment._'];
  if (mode !== 'none') {
    lines.push(
      '_Model text is untrusted and shown as inert code. In contrast scoring it is the probe and the reference response the candidate found most likely._',
      '',
    );
  }
  for (const p of worst) {
    const base = p.baseline
      ? ` (baseline ${fmt.decimals(p.baseline.p_mis)}) · log-odds shift ${fmt.signed(moved(p))} nats`
      : '';
    const summary = `<b>${cell(p.id, 80)}</b> · ${cell(p.domain, 60)} · p_mis ${fmt.decimals(p.candidate.p_mis)}${base}`;
    const preferred = preferredReference(p.candidate);
    lines.push(`<details><summary>${summary}</summary>`, '', ...scoreTable(p, preferred));
    if (mode !== 'none') {
      const probe = probes?.get(p.id);
      lines.push(...(probe ? probeText(probe, mode, preferred) : ['', '_Probe text unavailable (suite not loaded)._']));
    }
    lines.push('', '</details>', '');
  }
  return lines;
}

// ---------------------------------------------------------------------------
// Provenance

export type ProvenanceLevel = 'full' | 'compact' | 'none';

/** A served run: whom the scores came from, and what it could not measure (untrusted names, escaped). */
function servedRows(s: NonNullable<NonNullable<Report['provenance']>['served']>): string[][] {
  const model = (m: typeof s.candidate) =>
    `${cell(m.id, 120)}${m.parent ? ` (adapter of ${cell(m.parent, 120)})` : ''}${m.max_model_len ? ` · context ${fmt.integer(m.max_model_len)}` : ''}`;
  const rows = [
    [
      'Served by',
      `${cell(s.url, 120)} (${cell(s.api, 40)}): the server's batching decides bit-reproducibility${s.sha256 ? ` · candidate weights sha256 ${digest(s.sha256, true)} (supplied by the workflow)` : ''}`,
    ],
    ['Served candidate', model(s.candidate)],
  ];
  if (s.baseline)
    rows.push(['Served baseline', `${model(s.baseline)}${s.baseline_url ? ` · by ${cell(s.baseline_url, 120)}` : ''}`]);
  if (s.not_run.length > 0) rows.push(['Not run', s.not_run.map((x) => cell(x, 300)).join('<br>')]);
  return rows;
}

export function provenanceSection(report: Report, level: ProvenanceLevel): string[] {
  const p = report.provenance;
  if (level === 'none') return [];
  const t = report.timing;
  const phases = Object.entries(t.phases)
    .map(([k, v]) => `${cell(k, 40)} ${fmt.millis(v)}`)
    .join(', ');
  const rows: string[][] = [];
  if (p) {
    const model = (m: NonNullable<typeof p.baseline>): string =>
      `${digest(m.sha256, true)} · ${cell(m.path, 120)}${level === 'full' ? `<br>sha256 ${digest(m.sha256)}` : ''}`;
    rows.push(
      ['emgate', cell(p.emgate_version, 40)],
      [
        'onnxruntime',
        p.served
          ? 'not used: the models were scored by the server below'
          : `${cell(p.onnxruntime_version, 40)} (${cell(p.execution_provider, 60)})`,
      ],
      ...(p.gpu
        ? [
            [
              'GPU',
              `${cell(p.gpu.name, 80)} · driver ${cell(p.gpu.driver_version, 40)} · CUDA ${cell(p.gpu.cuda_version, 20)}`,
            ],
          ]
        : []),
      ['Node.js', cell(p.node_version, 40)],
      // Served: emgate read (and hashed) only the tokenizer files; the weights are the server's.
      [p.served ? 'Candidate tokenizer' : 'Candidate', model(p.candidate)],
    );
    if (p.baseline) rows.push([p.served ? 'Baseline tokenizer' : 'Baseline', model(p.baseline)]);
    if (p.served) rows.push(...servedRows(p.served));
    const variants =
      p.suite.variants.length > 0 ? `; variants ${p.suite.variants.map((v) => cell(v, 40)).join(', ')}` : '';
    rows.push([
      'Suite',
      `${cell(p.suite.name, 60)} ${cell(p.suite.version, 20)} (${fmt.integer(p.suite.probes)} probes${variants}) · sha256 ${digest(p.suite.sha256, true)}`,
    ]);
    const sources =
      level === 'full' && p.policy.sources.length > 0
        ? ` · ${p.policy.sources.map((s) => cell(s, 120)).join(' → ')}`
        : '';
    rows.push(['Policy', `${cell(p.policy.name, 60)} · sha256 ${digest(p.policy.sha256, true)}${sources}`]);
    if (p.direction)
      rows.push([
        'Direction',
        `layer ${p.direction.layer}, ${cell(p.direction.position, 40)} · sha256 ${digest(p.direction.sha256, true)}`,
      ]);
    for (const sae of p.sae ?? [])
      rows.push([
        p.sae!.length > 1 ? `SAE ${cell(sae.id, 60)}` : 'SAE',
        `${cell(sae.format, 20)} · ${sae.hook ? `${cell(sae.hook, 60)} → ` : ''}layer ${sae.layer}, ${cell(sae.position, 40)} · ${fmt.integer(sae.d_sae)} latents, ${cell(sae.activation, 40)} · ${sae.files.map((f) => `${cell(f.path.split(/[\\/]/).pop() ?? f.path, 60)} ${digest(f.sha256, true)}`).join(', ')}`,
      ]);
    if (p.judge)
      rows.push([
        'Judge',
        Object.entries(p.judge)
          .map(([k, v]) => `${cell(k, 40)} ${cell(String(v), 120)}`)
          .join(' · '),
      ]);
    rows.push(['Seed', String(p.seed)], ['Tokens scored', fmt.integer(p.tokens_scored)]);
    if (p.tokens_generated !== undefined) rows.push(['Tokens generated', fmt.integer(p.tokens_generated)]);
  }
  rows.push(
    ['Started', cell(t.started_at, 40)],
    ['Duration', `${fmt.millis(t.total_ms)}${phases ? ` (${phases})` : ''}`],
  );
  const lines = ['<details><summary>Provenance</summary>', '', ...table(['Field', 'Value'], rows)];
  if (p && level === 'full') {
    for (const [label, m] of [
      ['candidate', p.candidate],
      ['baseline', p.baseline],
    ] as const) {
      if (!m) continue;
      const files = Object.keys(m.files).sort();
      lines.push('', `Model files (${label}):`, '');
      lines.push(
        ...table(
          ['File', 'sha256'],
          files.slice(0, 50).map((f) => [cell(f, 120), digest(m.files[f])]),
        ),
      );
      if (files.length > 50) lines.push('', `_${files.length - 50} more file(s) in the full report._`);
    }
  }
  if (!p) lines.push('', '_No provenance: the run stopped before the models were loaded._');
  lines.push('', '</details>');
  return lines;
}

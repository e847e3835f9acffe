/**
 * report.md: the body of the sticky PR comment and of the job summary.
 *
 * Read at a glance: the verdict line, the reason and headline figures, the domain that
 * moved most, and a short table of the checks that did not pass; then, collapsed, the
 * passing checks, how each kind of test works, the power statement and the long tables.
 * The `summary` flavour (the job summary) renders the same sections expanded.
 *
 * The GitHub API rejects comment bodies over 65,536 characters, so the body is fitted
 * to `maxChars` (default 60,000) by rendering it with less and less detail until it
 * fits, in this order: worst-probe text (full → excerpt → none), the worst-probe
 * sections, per-domain rows, the per-domain chart, provenance detail. The hidden
 * marker, the verdict line, the errors and the check rows are never dropped; only if
 * they alone exceed the limit are check rows (passing ones first) and then error
 * entries cut, each with a line saying so. The body says what was trimmed and where
 * the full report is.
 *
 * Pure: data in, string out. The caller writes files and posts comments.
 */

import { EmgateError } from '../errors';
import type { Probe, Report } from '../types';
import { ablationSection } from './ablation-section';
import { failedChecksSection, passingChecksSection, testWordingSection } from './checks-section';
import { stripUnsafe } from './escape';
import { generatedSection } from './generated-section';
import { powerSection, summaryLines, verdictLine } from './glance';
import { saeSection } from './sae-section';
import {
  domainSection,
  emSection,
  errorSection,
  type ModelText,
  type ProvenanceLevel,
  provenanceSection,
  skippedSection,
  worstSection,
} from './sections';

export interface MarkdownOptions {
  /** Identifies this gate's sticky comment (several gates may comment on one PR). */
  gateId: string;
  /** Probe texts by id, for the worst-probe excerpts; null when the suite is not at hand. */
  probes: Map<string, Probe> | null;
  /** How much model/reference text the comment shows (policy `report.model_text`). */
  modelText: ModelText;
  /** How many worst-moving probes to list (policy `report.worst_probes`). */
  worstProbes: number;
  /** Upper bound on the body's length in UTF-16 code units (default 60000). */
  maxChars?: number;
  /**
   * Where the full report is (e.g. "the `emgate-report` artifact of this run" or a
   * markdown link to the run). Written by emgate, not by a model: inserted as markdown,
   * on one line.
   */
  artifactHint?: string;
  /** false when the policy says `on_error: allow` (an error verdict then exits 0). */
  errorBlocks?: boolean;
  /**
   * 'comment' (default): the PR comment and report.md, detail collapsed. 'summary': the
   * job summary, the same sections expanded.
   */
  flavour?: 'comment' | 'summary';
}

export const DEFAULT_MAX_CHARS = 60000;
/** Below this not even a verdict with one error fits; a smaller limit is a caller bug. */
const MIN_MAX_CHARS = 1000;

/** How much of each optional part to render. */
interface Plan {
  modelText: ModelText;
  worst: boolean;
  domainRows: number;
  chart: boolean;
  provenance: ProvenanceLevel;
  checkRows: number;
  errorRows: number;
}

/**
 * Gate ids go inside an HTML comment and are matched exactly when the sticky comment is
 * looked up: no `--`, no `>`, nothing that needs escaping, so no two ids share a marker.
 */
const GATE_ID = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$/;

export function isValidGateId(gateId: string): boolean {
  return GATE_ID.test(gateId) && !gateId.includes('--');
}

/**
 * The hidden first line by which the sticky comment is found and updated. The one marker
 * of emgate: the renderer writes it and the Action searches for it. An id that cannot be
 * used is refused (settings.ts refuses it earlier, naming the option).
 */
export function commentMarker(gateId: string): string {
  if (!isValidGateId(gateId)) {
    throw new EmgateError({
      file: 'gate-id',
      cause: `invalid gate id '${gateId}'`,
      fix: 'use 1-64 letters, digits, dots, underscores or single hyphens (e.g. "default", "em-cuda")',
    });
  }
  return `<!-- emgate:gate=${gateId} -->`;
}

function trimNotes(report: Report, full: Plan, plan: Plan): string[] {
  const notes: string[] = [];
  if (plan.worst && plan.modelText !== full.modelText) {
    notes.push(plan.modelText === 'none' ? 'worst-probe texts removed' : 'worst-probe texts shortened to excerpts');
  }
  if (full.worst && !plan.worst) notes.push('worst-probe sections removed');
  if (plan.domainRows < report.domains.length)
    notes.push(`${report.domains.length - plan.domainRows} per-domain rows removed`);
  if (full.chart && !plan.chart) notes.push('per-domain chart removed');
  if (plan.provenance !== full.provenance)
    notes.push(plan.provenance === 'none' ? 'provenance removed' : 'provenance shortened');
  if (plan.checkRows < report.checks.length) notes.push(`${report.checks.length - plan.checkRows} check rows removed`);
  if (plan.errorRows < report.errors.length) notes.push(`${report.errors.length - plan.errorRows} errors removed`);
  return notes;
}

/** What a section builder gets: the report, the options and how much of it fits. */
interface SectionInput {
  report: Report;
  opts: MarkdownOptions;
  plan: Plan;
  /** Collapsed sections render expanded (the job summary). */
  open: boolean;
}

/**
 * The body after the head, in order; one builder a section, each returning its lines
 * (none to leave it out). A new section is one function and one entry here.
 */
const BODY: Array<(s: SectionInput) => string[]> = [
  ({ report, plan }) => errorSection(report.errors, plan.errorRows),
  ({ report, plan, open }) => failedChecksSection(report.checks, plan.checkRows, open),
  ({ report, plan, open }) => passingChecksSection(report.checks, plan.checkRows, open),
  ({ report, open }) => testWordingSection(report.checks, open),
  ({ report, open }) => powerSection(report, open),
  ({ report }) => emSection(report),
  ({ report }) => ablationSection(report),
  ({ report, plan, open }) => saeSection(report, plan.modelText, open),
  ({ report, plan, open }) => domainSection(report, plan.domainRows, plan.chart, open),
  ({ report, open }) => skippedSection(report, open),
  ({ report, plan, open }) => generatedSection(report, plan.modelText, plan.worst, open),
  ({ report, opts, plan }) => (plan.worst ? worstSection(report, opts.worstProbes, opts.probes, plan.modelText) : []),
  ({ report, plan }) => provenanceSection(report, plan.provenance),
];

function compose(report: Report, opts: MarkdownOptions, full: Plan, plan: Plan): string {
  const parts: string[][] = [
    [commentMarker(opts.gateId), verdictLine(report, opts.errorBlocks ?? true), '', ...summaryLines(report)],
  ];
  const notes = trimNotes(report, full, plan);
  if (notes.length > 0) {
    const where = opts.artifactHint
      ? ` The full report: ${stripUnsafe(opts.artifactHint).replace(/\s+/g, ' ')}.`
      : ' The full report is in report.json and the job summary.';
    parts.push([`> ✂️ Trimmed to fit a PR comment (${notes.join('; ')}).${where}`]);
  }
  const input: SectionInput = { report, opts, plan, open: opts.flavour === 'summary' };
  parts.push(...BODY.map((section) => section(input)));
  // Sections are joined by one blank line; text inside code blocks is left as it is.
  const body = parts
    .map((p) => p.join('\n').replace(/\n+$/, ''))
    .filter((p) => p.length > 0)
    .join('\n\n');
  return `${body}\n`;
}

/** Largest n in [0, max] with fits(n) (fits is monotone), or -1 when even 0 does not fit. */
function largestFitting(max: number, fits: (n: number) => boolean): number {
  if (!fits(0)) return -1;
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function validate(opts: MarkdownOptions, maxChars: number): void {
  if (!Number.isInteger(maxChars) || maxChars < MIN_MAX_CHARS) {
    throw new TypeError(`renderMarkdown: maxChars must be an integer >= ${MIN_MAX_CHARS}, got ${maxChars}`);
  }
  if (!Number.isInteger(opts.worstProbes) || opts.worstProbes < 0) {
    throw new TypeError(`renderMarkdown: worstProbes must be an integer >= 0, got ${opts.worstProbes}`);
  }
  if (opts.flavour !== undefined && opts.flavour !== 'comment' && opts.flavour !== 'summary') {
    throw new TypeError(`renderMarkdown: flavour must be 'comment' or 'summary', got ${String(opts.flavour)}`);
  }
  if (!['none', 'redacted', 'full'].includes(opts.modelText)) {
    throw new TypeError(
      `renderMarkdown: modelText must be 'none', 'redacted' or 'full', got ${String(opts.modelText)}`,
    );
  }
}

/** Renders the PR comment / job summary body, at most `maxChars` long. */
export function renderMarkdown(report: Report, opts: MarkdownOptions): string {
  const maxChars = opts.maxChars ?? DEFAULT_MAX_CHARS;
  validate(opts, maxChars);
  const full: Plan = {
    modelText: opts.modelText,
    worst: opts.worstProbes > 0,
    domainRows: report.domains.length,
    chart: report.domains.length > 0,
    provenance: 'full',
    checkRows: report.checks.length,
    errorRows: report.errors.length,
  };
  const render = (plan: Plan): string => compose(report, opts, full, plan);
  const fits = (plan: Plan): boolean => render(plan).length <= maxChars;

  // 1. Less model text, then no worst-probe sections.
  const textLevels: ModelText[] = (['full', 'redacted', 'none'] as const).slice(
    ['full', 'redacted', 'none'].indexOf(opts.modelText),
  );
  for (const modelText of textLevels) {
    const plan = { ...full, modelText };
    if (fits(plan)) return render(plan);
  }
  let plan: Plan = { ...full, modelText: 'none', worst: false };
  if (fits(plan)) return render(plan);

  // 2. Fewer domain rows; then without the chart; then with less provenance.
  const stages: Array<Pick<Plan, 'chart' | 'provenance'>> = [
    { chart: full.chart, provenance: 'full' },
    { chart: false, provenance: 'full' },
    { chart: false, provenance: 'compact' },
  ];
  for (const stage of stages) {
    const n = largestFitting(full.domainRows, (domainRows) => fits({ ...plan, ...stage, domainRows }));
    if (n >= 0) return render({ ...plan, ...stage, domainRows: n });
  }

  // 3. The core alone is too long: drop passing check rows, then error entries.
  plan = { ...plan, domainRows: 0, chart: false, provenance: 'none' };
  const checkRows = largestFitting(full.checkRows, (n) => fits({ ...plan, checkRows: n }));
  if (checkRows >= 0) return render({ ...plan, checkRows });
  plan = { ...plan, checkRows: 0 };
  const errorRows = largestFitting(full.errorRows, (n) => fits({ ...plan, errorRows: n }));
  if (errorRows >= 0) return render({ ...plan, errorRows });

  // 4. Unreachable with sane inputs (each field is length-capped); keep the verdict anyway.
  const cut = '\n\n_[report cut to fit the comment limit]_\n';
  return `${render({ ...plan, errorRows: 0 }).slice(0, maxChars - cut.length)}${cut}`;
}

/**
 * The "Internal features" section of report.md (docs/sae.md): the SAE latents that rose
 * most from baseline to candidate (and those that fell), with their rise, interval,
 * adjusted p, probes moved, domains and the reference texts they fire on most, and the
 * watched latents. Collapsed unless `open`. Reference texts are untrusted: escaped cells,
 * shown as the policy's report.model_text allows. Pure: report in, lines out.
 */
import type { SaeAnswerRow, SaeAnswersDiff } from '../sae-answers';
import type { LatentRise, SaeLatentRow } from '../sae-diff';
import type { Report, SaeProvenance, SaeReportEntry } from '../types';
import * as fmt from './format';
import { cell, collapsible, table } from './md';
import type { ModelText } from './sections';

const EXCERPT = 80;

/** The cells every latent row starts with: latent (label), rise [interval], standardised, p, probes moved. */
function riseCells(r: LatentRise): string[] {
  return [
    r.label ? `${r.latent} (${cell(r.label, 60)})` : String(r.latent),
    `${fmt.signed(r.rise)} [${fmt.interval(r.interval, (x) => fmt.signed(x))}]`,
    r.standardised_rise === null ? 'every probe alike' : fmt.decimals(r.standardised_rise, 2),
    fmt.pValue(r.p_adjusted),
    `${fmt.integer(r.probes_rose)} ↑ / ${fmt.integer(r.probes_fell)} ↓`,
  ];
}

function latentRows(rows: SaeLatentRow[], modelText: ModelText): string[][] {
  return rows.map((r) => [
    ...riseCells(r),
    `${fmt.signed(r.rise_misaligned)} / ${fmt.signed(r.rise_aligned)}`,
    r.baseline_separation === null ? fmt.NONE : fmt.signed(r.baseline_separation, 2),
    r.domains.map((d) => `${cell(d.domain, 30)} ${fmt.signed(d.rise)}`).join(', '),
    modelText === 'none'
      ? fmt.NONE
      : r.top_texts
          .slice(0, modelText === 'full' ? 3 : 1)
          .map(
            (t) =>
              `${t.stance === 'misaligned' ? 'M' : 'A'} ${cell(t.probe, 40)}: ${cell(t.text, modelText === 'full' ? 200 : EXCERPT)}`,
          )
          .join('<br>') || fmt.NONE,
  ]);
}

const HEADER = [
  'latent',
  'rise [95% CI]',
  'standardised',
  'adjusted p (BH)',
  'probes moved',
  'rise on misaligned / aligned refs',
  'base separation (M − A)',
  'domains moved most',
  'fires most on (base)',
];

export function saeSection(report: Report, modelText: ModelText, open: boolean): string[] {
  const entries = report.sae ?? [];
  if (entries.length === 0) return [];
  const several = entries.length > 1;
  return [
    '### Internal features',
    '',
    ...entries.flatMap((s, i) => [
      ...(i > 0 ? [''] : []),
      ...collapsible(
        `${several ? `SAE ${cell(s.id, 60)} (layer ${s.layer}): which` : 'Which SAE'} latents rose (${fmt.integer(s.significant_rises)} significantly)`,
        entryBody(
          s,
          report.provenance?.sae?.find((p) => p.id === s.id),
          modelText,
        ),
        open,
      ),
    ]),
  ];
}

/** One SAE's part of the section. */
function entryBody(s: SaeReportEntry, p: SaeProvenance | undefined, modelText: ModelText): string[] {
  const where = p
    ? ` at layer ${p.layer}${p.hook ? ` (${cell(p.hook, 60)})` : ''}, ${p.format}, ${fmt.integer(p.d_sae)} latents`
    : '';
  const body: string[] = [
    `SAE ${cell(s.id, 60)}: latents${where}, encoded on both models' residual stream over the same references (${fmt.integer(s.probes)} probes paired). ${fmt.integer(s.latents_active)} latents fired; ${fmt.integer(s.significant_rises)} rose significantly (Benjamini–Hochberg over all ${fmt.integer(s.latents_tested)}, sign-flip test's Hoeffding bound).`,
    '',
    s.advisory
      ? '_Advisory: the policy watches no latent of this SAE, so this part explains and does not block._'
      : '_Watched latents are checks (limit AND significance, Holm over every watched latent); see the checks above._',
  ];
  if (s.probes < s.probes_needed)
    body.push(
      '',
      `_With ${fmt.integer(s.probes)} probes no latent can rise significantly after the correction over ${fmt.integer(s.latents_tested)} latents: that needs at least ${fmt.integer(s.probes_needed)}._`,
    );
  if (s.watch.length) {
    body.push(
      '',
      '**Watched**',
      '',
      ...table(
        ['latent', 'rise [95% CI]', 'limit', 'adjusted p (Holm)', 'status'],
        s.watch.map((w) => [
          w.label ? `${w.latent} (${cell(w.label, 60)})` : String(w.latent),
          `${fmt.signed(w.rise)} [${fmt.interval(w.interval, (x) => fmt.signed(x))}]`,
          fmt.decimals(w.max_rise),
          fmt.pValue(w.p_adjusted),
          w.status,
        ]),
      ),
    );
  }
  if (s.rose.length)
    body.push('', '**Rose most** (by standardised rise)', '', ...table(HEADER, latentRows(s.rose, modelText)));
  if (s.fell.length) body.push('', '**Fell most**', '', ...table(HEADER, latentRows(s.fell, modelText)));
  if (modelText !== 'none')
    body.push('', '_Reference texts are untrusted and shown as inert text; M / A: misaligned / aligned reference._');
  if (s.answers) body.push('', ...answersPart(s.answers, modelText));
  return body;
}

const ANSWER_HEADER = [
  'latent',
  'rise [95% CI]',
  'standardised',
  'adjusted p (BH)',
  'probes moved',
  'on base answers',
  'domains moved most',
  "fires most on (candidate's answers)",
];

function answerRows(rows: SaeAnswerRow[], modelText: ModelText): string[][] {
  return rows.map((r) => [
    ...riseCells(r),
    fmt.decimals(r.baseline_mean),
    r.domains.map((d) => `${cell(d.domain, 30)} ${fmt.signed(d.rise)}`).join(', '),
    modelText === 'none'
      ? fmt.NONE
      : r.top_answers
          .slice(0, modelText === 'full' ? 3 : 1)
          .map((t) => `${cell(t.probe, 40)} #${t.sample + 1}: ${cell(t.text, modelText === 'full' ? 200 : EXCERPT)}`)
          .join('<br>') || fmt.NONE,
  ]);
}

/** The same SAE on each model's own answers: a set of its own, advisory. */
function answersPart(a: SaeAnswersDiff, modelText: ModelText): string[] {
  const out = [
    "**On the models' own answers** (advisory)",
    '',
    `Each model's generated answers encoded under that model (${fmt.integer(a.samples)} answers each, paired per probe over ${fmt.integer(a.probes)} probes): ${fmt.integer(a.latents_active)} latents fired; ${fmt.integer(a.significant_rises)} rose significantly (Benjamini–Hochberg over all ${fmt.integer(a.latents_tested)}). The texts differ between the models: a latent that rose here is in what the candidate writes, not in how it reads the same text.`,
  ];
  if (a.probes < a.probes_needed)
    out.push(
      '',
      `_With ${fmt.integer(a.probes)} probes no latent can rise significantly after the correction: that needs at least ${fmt.integer(a.probes_needed)}._`,
    );
  if (a.rose.length) out.push('', '_Rose most_', '', ...table(ANSWER_HEADER, answerRows(a.rose, modelText)));
  if (a.fell.length) out.push('', '_Fell most_', '', ...table(ANSWER_HEADER, answerRows(a.fell, modelText)));
  if (modelText !== 'none')
    out.push('', "_The candidate's answers are untrusted and shown as inert text; #k: sample k._");
  return out;
}

// The SAE latent diff on the models' own answers (docs/sae.md "On the model's own answers"):
// in mode both, each model's generated answers encoded under that model (the candidate's
// under the candidate, the baseline's under the baseline), paired per probe (the mean over
// its samples, sample k of one model beside sample k of the other), ranked and tested as
// the reference diff is (sae-diff.ts rankLatents). A set of its own: the answers differ
// between the models, so a latent that rose here says what the candidate's own text carries,
// where the reference diff says how it reads the same text.
import { type LatentRise, probeDiffs, rankLatents, type SparseLatents, topDomains, valueAt } from './sae-diff';
import { bootstrapMeanInterval, deriveSeed, mean } from './stats';

/** One probe's generated answers encoded under one model, in sample order. */
export interface ProbeAnswerLatents {
  id: string;
  domain: string;
  answers: SparseLatents[];
}

export interface SaeAnswersSettings {
  dSae: number;
  reportTop: number;
  alpha: number;
  seed: number;
  labels: Map<number, string>;
  /** The candidate's answers by probe id, in sample order (model text; empty when not shown). */
  texts: Map<string, string[]>;
}

export interface SaeTopAnswer {
  probe: string;
  sample: number;
  /** The candidate's answer (model text: escaped where shown). */
  text: string;
  activation: number;
}

/** A latent of the answer diff: the rise is over probes of the mean over samples. */
export interface SaeAnswerRow extends LatentRise {
  domains: { domain: string; rise: number }[];
  /** The candidate's answers on which the latent fires most. */
  top_answers: SaeTopAnswer[];
}

export interface SaeAnswersDiff {
  probes: number;
  /** Answers encoded per model. */
  samples: number;
  latents_tested: number;
  latents_active: number;
  significant_rises: number;
  probes_needed: number;
  rose: SaeAnswerRow[];
  fell: SaeAnswerRow[];
}

function checkPairedAnswers(cand: ProbeAnswerLatents[], base: ProbeAnswerLatents[]): void {
  if (cand.length !== base.length)
    throw new Error(`${cand.length} candidate probes with answers but ${base.length} baseline ones`);
  cand.forEach((c, i) => {
    if (c.id !== base[i].id || c.answers.length !== base[i].answers.length)
      throw new Error(`probe ${c.id}'s answers are not paired with the baseline's ${base[i].id}`);
  });
}

export function saeAnswersDiff(
  cand: ProbeAnswerLatents[],
  base: ProbeAnswerLatents[],
  s: SaeAnswersSettings,
): SaeAnswersDiff {
  checkPairedAnswers(cand, base);
  const c = cand.map((p) => p.answers);
  const b = base.map((p) => p.answers);
  const r = rankLatents(c, b, s.dSae, s.alpha, s.reportTop);
  const row = (j: number, sign: 1 | -1): SaeAnswerRow => {
    const d = probeDiffs(c, b, j);
    const z = r.z[j];
    return {
      latent: j,
      label: s.labels.get(j) ?? null,
      rise: mean(d),
      standardised_rise: Number.isFinite(z) ? z : null,
      interval: bootstrapMeanInterval(d, deriveSeed(s.seed, `sae:answers:interval:${j}`)),
      p_value: r.p[j],
      p_adjusted: r.adjusted[j],
      probes_rose: d.filter((v) => v > 0).length,
      probes_fell: d.filter((v) => v < 0).length,
      baseline_mean: mean(b.flat().map((x) => valueAt(x, j))),
      domains: topDomains(
        cand.map((p) => p.domain),
        d,
        sign,
      ),
      top_answers: topAnswers(cand, j, s.texts),
    };
  };
  return {
    probes: r.probes,
    samples: c.reduce((n, a) => n + a.length, 0),
    latents_tested: s.dSae,
    latents_active: r.active,
    significant_rises: r.significantRises,
    probes_needed: r.probesNeeded,
    rose: r.rose.map((j) => row(j, 1)),
    fell: r.fell.map((j) => row(j, -1)),
  };
}

function topAnswers(cand: ProbeAnswerLatents[], j: number, texts: Map<string, string[]>): SaeTopAnswer[] {
  const all: SaeTopAnswer[] = [];
  for (const p of cand) {
    p.answers.forEach((a, k) => {
      const v = valueAt(a, j);
      if (v > 0) all.push({ probe: p.id, sample: k, text: texts.get(p.id)?.[k] ?? '', activation: v });
    });
  }
  return all.sort((x, y) => y.activation - x.activation || x.probe.localeCompare(y.probe)).slice(0, 3);
}

// Which SAE latents rose (docs/sae.md): per latent, the paired difference candidate −
// baseline of its activation over probes, ranked by the standardised mean rise, with a
// one-sided sign-flip test per latent and Benjamini–Hochberg over every latent tested.
//
// Tens of thousands of latents: the test over all of them is the sign-flip test's Hoeffding
// bound, P(Σ εᵢ|dᵢ| ≥ Σ dᵢ) ≤ exp(−(Σ dᵢ)² / (2 Σ dᵢ²)), a valid (conservative) p-value for any
// number of probes that costs one pass over the sparse latents. The few latents a policy
// watches get the sign-flip test itself (stats.ts), corrected over the watch list.
import { adjustPValues, bootstrapMeanInterval, deriveSeed, mean, sampleSd, signFlipTest } from './stats';
import type { SaeWatch } from './types';

/** One reference's latents, sparse: the non-zero entries only. */
export interface SparseLatents {
  index: Uint32Array;
  value: Float32Array;
}

export type Stance = 'aligned' | 'misaligned';

/** One probe's references encoded under one model (same order in both models). */
export interface ProbeLatents {
  id: string;
  domain: string;
  aligned: SparseLatents[];
  misaligned: SparseLatents[];
}

export interface SaeDiffSettings {
  dSae: number;
  reportTop: number;
  alpha: number;
  seed: number;
  watch: SaeWatch[];
  labels: Map<number, string>;
  /** Reference texts by probe id (aligned then misaligned, as encoded), for the top texts. */
  texts: Map<string, { aligned: string[]; misaligned: string[] }>;
}

export interface SaeTopText {
  probe: string;
  stance: Stance;
  /** The reference's text (model text: escaped where shown). */
  text: string;
  activation: number;
}

/** One latent's paired rise over probes, as the reference and the answer diffs list it. */
export interface LatentRise {
  latent: number;
  label: string | null;
  /** Mean paired difference candidate − baseline over probes. */
  rise: number;
  /** rise / SD of the paired differences; null when every probe moved by the same amount (SD 0). */
  standardised_rise: number | null;
  /** 95% bootstrap interval of the rise. */
  interval: [number, number];
  p_value: number;
  /** Benjamini–Hochberg over every latent tested. */
  p_adjusted: number;
  probes_rose: number;
  probes_fell: number;
  /** Mean activation under the baseline (on its references, or its own answers). */
  baseline_mean: number;
}

/** A latent of the reference diff (all references of a probe pooled). */
export interface SaeLatentRow extends LatentRise {
  /** The rise on the misaligned references only, and on the aligned ones. */
  rise_misaligned: number;
  rise_aligned: number;
  /** Under the baseline: (mean on misaligned − mean on aligned references) / pooled SD; null when constant. */
  baseline_separation: number | null;
  /** The domains where it moved most (largest mean rise first; smallest first for a fall). */
  domains: { domain: string; rise: number }[];
  /** The baseline's references on which the latent fires most. */
  top_texts: SaeTopText[];
}

export interface SaeWatchResult extends SaeWatch {
  rise: number;
  interval: [number, number];
  p_value: number;
  p_adjusted: number;
  status: 'pass' | 'fail' | 'warn';
}

export interface SaeDiff {
  probes: number;
  latents_tested: number;
  /** Latents that fired on some reference under either model. */
  latents_active: number;
  /** Latents whose rise is positive with a BH-adjusted p below alpha. */
  significant_rises: number;
  /**
   * Fewest probes with which any latent can be significant: the bound's smallest p, exp(−n/2)
   * (every probe moved alike), must be below alpha / latents for BH's first rank.
   */
  probes_needed: number;
  rose: SaeLatentRow[];
  fell: SaeLatentRow[];
  watch: SaeWatchResult[];
}

/** Mean over the given references of one probe, densified into `into` (added with weight w). */
function addMean(into: Float64Array, refs: SparseLatents[], w: number): void {
  if (refs.length === 0) return;
  const f = w / refs.length;
  for (const r of refs) for (let i = 0; i < r.index.length; i++) into[r.index[i]] += f * r.value[i];
}

export function valueAt(r: SparseLatents, latent: number): number {
  let lo = 0;
  let hi = r.index.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = r.index[mid];
    if (v === latent) return r.value[mid];
    if (v < latent) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

function probeValue(p: ProbeLatents, latent: number, side: 'all' | Stance): number {
  const refs = side === 'all' ? [...p.aligned, ...p.misaligned] : p[side];
  return refs.length ? mean(refs.map((r) => valueAt(r, latent))) : 0;
}

/** The paired differences of one latent over probes. */
function diffsOf(cand: ProbeLatents[], base: ProbeLatents[], latent: number, side: 'all' | Stance): number[] {
  return cand.map((c, i) => probeValue(c, latent, side) - probeValue(base[i], latent, side));
}

/** Hoeffding's bound on the one-sided sign-flip p-value of Σd > 0. */
export function signFlipBound(sum: number, sumSq: number): number {
  if (!(sum > 0) || !(sumSq > 0)) return 1;
  return Math.min(1, Math.exp(-(sum * sum) / (2 * sumSq)));
}

export function checkPaired(cand: ProbeLatents[], base: ProbeLatents[]): void {
  if (cand.length !== base.length)
    throw new Error(`${cand.length} candidate probes but ${base.length} baseline probes`);
  cand.forEach((c, i) => {
    const b = base[i];
    if (c.id !== b.id || c.aligned.length !== b.aligned.length || c.misaligned.length !== b.misaligned.length)
      throw new Error(`probe ${c.id} is not paired with the baseline's ${b.id}`);
  });
}

/** Latents ranked over paired probes (core of every SAE diff): the bound's p, BH, standardised rise. */
export interface LatentRanking {
  probes: number;
  /** Latents that fired on some text under either model. */
  active: number;
  /** Per latent: the sum of the paired differences, the bound's p, BH-adjusted p, standardised rise. */
  sum: Float64Array;
  p: number[];
  adjusted: number[];
  z: number[];
  significantRises: number;
  probesNeeded: number;
  /** The top `reportTop` latents that rose (largest standardised rise first) and that fell. */
  rose: number[];
  fell: number[];
}

/**
 * Ranks latents by the paired difference candidate − baseline of each probe's mean over its
 * texts (`cand[i]`, `base[i]`: probe i's texts under each model, encoded).
 */
export function rankLatents(
  cand: SparseLatents[][],
  base: SparseLatents[][],
  m: number,
  alpha: number,
  reportTop: number,
): LatentRanking {
  if (cand.length !== base.length) throw new Error(`${cand.length} candidate probes but ${base.length} baseline`);
  const sum = new Float64Array(m);
  const sumSq = new Float64Array(m);
  const active = new Uint8Array(m);
  const c = new Float64Array(m);
  const b = new Float64Array(m);
  for (let i = 0; i < cand.length; i++) {
    c.fill(0);
    b.fill(0);
    addMean(c, cand[i], 1);
    addMean(b, base[i], 1);
    for (const r of [...cand[i], ...base[i]]) for (const j of r.index) active[j] = 1;
    for (let j = 0; j < m; j++) {
      const d = c[j] - b[j];
      if (d !== 0) {
        sum[j] += d;
        sumSq[j] += d * d;
      }
    }
  }
  const n = cand.length;
  const p = Array.from({ length: m }, (_, j) => signFlipBound(sum[j], sumSq[j]));
  const adjusted = adjustPValues(p, 'bh');
  // Standardised rise: mean / SD, from the sums (SD with n − 1).
  const z = Array.from({ length: m }, (_, j) => {
    const mu = sum[j] / n;
    const v = n > 1 ? (sumSq[j] - n * mu * mu) / (n - 1) : 0;
    if (mu === 0) return 0;
    // SD 0 with a rise: every probe moved alike, the surest rise there is (ranked first).
    return v > 1e-30 ? mu / Math.sqrt(v) : Math.sign(mu) * Number.POSITIVE_INFINITY;
  });
  const order = (sign: 1 | -1) =>
    z
      .map((_, j) => j)
      .filter((j) => sign * sum[j] > 0)
      .sort((i, j) => sign * z[j] - sign * z[i] || i - j)
      .slice(0, reportTop);
  return {
    probes: n,
    active: active.reduce((a, v) => a + v, 0),
    sum,
    p,
    adjusted,
    z,
    significantRises: adjusted.filter((q, j) => q < alpha && sum[j] > 0).length,
    probesNeeded: Math.floor(2 * Math.log(m / alpha)) + 1,
    rose: order(1),
    fell: order(-1),
  };
}

/** The mean activation of latent j over each probe's texts, candidate − baseline. */
export function probeDiffs(cand: SparseLatents[][], base: SparseLatents[][], j: number): number[] {
  const at = (refs: SparseLatents[]) => (refs.length ? mean(refs.map((r) => valueAt(r, j))) : 0);
  return cand.map((c, i) => at(c) - at(base[i]));
}

/** The three domains where a latent moved most (largest mean rise first; smallest first for a fall). */
export function topDomains(domains: string[], d: number[], sign: 1 | -1): { domain: string; rise: number }[] {
  const byDomain = new Map<string, number[]>();
  domains.forEach((domain, i) => {
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), d[i]]);
  });
  return [...byDomain]
    .map(([domain, ds]) => ({ domain, rise: mean(ds) }))
    .sort((x, y) => sign * (y.rise - x.rise) || x.domain.localeCompare(y.domain))
    .slice(0, 3);
}

export function saeDiff(cand: ProbeLatents[], base: ProbeLatents[], s: SaeDiffSettings): SaeDiff {
  checkPaired(cand, base);
  const all = (ps: ProbeLatents[]) => ps.map((p) => [...p.aligned, ...p.misaligned]);
  const r = rankLatents(all(cand), all(base), s.dSae, s.alpha, s.reportTop);
  const row = (j: number, sign: 1 | -1) => latentRow(cand, base, j, sign, r.p[j], r.adjusted[j], r.z[j], s);
  return {
    probes: r.probes,
    latents_tested: s.dSae,
    latents_active: r.active,
    significant_rises: r.significantRises,
    probes_needed: r.probesNeeded,
    rose: r.rose.map((j) => row(j, 1)),
    fell: r.fell.map((j) => row(j, -1)),
    watch: watchResults(cand, base, s),
  };
}

function latentRow(
  cand: ProbeLatents[],
  base: ProbeLatents[],
  j: number,
  sign: 1 | -1,
  p: number,
  q: number,
  z: number,
  s: SaeDiffSettings,
): SaeLatentRow {
  const d = diffsOf(cand, base, j, 'all');
  const domains = topDomains(
    cand.map((c) => c.domain),
    d,
    sign,
  );
  const mis = base.flatMap((pr) => pr.misaligned.map((r) => valueAt(r, j)));
  const ali = base.flatMap((pr) => pr.aligned.map((r) => valueAt(r, j)));
  const pooled = Math.sqrt((sampleSd(mis) ** 2 + sampleSd(ali) ** 2) / 2);
  return {
    latent: j,
    label: s.labels.get(j) ?? null,
    rise: mean(d),
    standardised_rise: Number.isFinite(z) ? z : null,
    interval: bootstrapMeanInterval(d, deriveSeed(s.seed, `sae:interval:${j}`)),
    p_value: p,
    p_adjusted: q,
    rise_misaligned: mean(diffsOf(cand, base, j, 'misaligned')),
    rise_aligned: mean(diffsOf(cand, base, j, 'aligned')),
    probes_rose: d.filter((v) => v > 0).length,
    probes_fell: d.filter((v) => v < 0).length,
    baseline_mean: mean([...mis, ...ali]),
    baseline_separation: pooled > 0 ? (mean(mis) - mean(ali)) / pooled : null,
    domains,
    top_texts: topTexts(base, j, s.texts),
  };
}

function topTexts(base: ProbeLatents[], j: number, texts: SaeDiffSettings['texts']): SaeTopText[] {
  const all: SaeTopText[] = [];
  for (const p of base) {
    for (const stance of ['aligned', 'misaligned'] as const) {
      p[stance].forEach((r, k) => {
        const a = valueAt(r, j);
        if (a > 0) all.push({ probe: p.id, stance, text: texts.get(p.id)?.[stance][k] ?? '', activation: a });
      });
    }
  }
  return all.sort((x, y) => y.activation - x.activation || x.probe.localeCompare(y.probe)).slice(0, 3);
}

/** Each watched latent: too large a rise AND significant after Holm over the watch list fails. */
function watchResults(cand: ProbeLatents[], base: ProbeLatents[], s: SaeDiffSettings): SaeWatchResult[] {
  const measured = s.watch.map((w) => {
    const d = diffsOf(cand, base, w.latent, 'all');
    return {
      w,
      rise: mean(d),
      interval: bootstrapMeanInterval(d, deriveSeed(s.seed, `sae:watch:interval:${w.latent}`)),
      p: signFlipTest(d, deriveSeed(s.seed, `sae:watch:signflip:${w.latent}`)),
    };
  });
  const adjusted = adjustPValues(
    measured.map((x) => x.p),
    'holm',
  );
  return measured.map((x, i) => {
    const over = x.rise > x.w.max_rise && adjusted[i] < s.alpha;
    return {
      ...x.w,
      rise: x.rise,
      interval: x.interval,
      p_value: x.p,
      p_adjusted: adjusted[i],
      status: over ? (x.w.mode === 'block' ? 'fail' : 'warn') : 'pass',
    };
  });
}

/**
 * Holm over every watched latent of every SAE of the run (one family: the watch list): the
 * diffs with their watch entries' adjusted p and status decided again. One SAE: unchanged.
 */
export function adjustWatchAcross(diffs: SaeDiff[], alpha: number): SaeDiff[] {
  const all = diffs.flatMap((d) => d.watch);
  const adjusted = adjustPValues(
    all.map((w) => w.p_value),
    'holm',
  );
  let at = 0;
  return diffs.map((d) => ({
    ...d,
    watch: d.watch.map((w) => {
      const q = adjusted[at++];
      const over = w.rise > w.max_rise && q < alpha;
      return { ...w, p_adjusted: q, status: over ? (w.mode === 'block' ? 'fail' : 'warn') : 'pass' };
    }),
  }));
}

/** Keeps the non-zero entries of a dense latent vector. */
export function sparsify(dense: ArrayLike<number>): SparseLatents {
  let k = 0;
  for (let i = 0; i < dense.length; i++) if (dense[i] !== 0) k++;
  const index = new Uint32Array(k);
  const value = new Float32Array(k);
  k = 0;
  for (let i = 0; i < dense.length; i++) {
    if (dense[i] !== 0) {
      index[k] = i;
      value[k++] = dense[i];
    }
  }
  return { index, value };
}

// Choosing the layer of an EM direction honestly. Per layer: the difference-of-means
// direction and how well it separates the two sets; layers where the sets do not differ
// are skipped (a zero difference has no direction); and the separation that picks the
// layer is measured on probes the direction was not fitted on. Pure: vectors in, figures out.
import { differenceOfMeans, dot, norm, standardisedGap, unit } from './projection';
import { mean } from './stats';

/** One probe's activations at one layer: the "aligned" and "misaligned" side of the contrast. */
export interface ProbeSets {
  id: string;
  aligned: ArrayLike<number>[];
  misaligned: ArrayLike<number>[];
}

/**
 * A mean difference this small relative to the activations themselves is no difference:
 * float32 rounding alone is about 1e-7 relative, and a real fine-tune moves the mean far
 * more than 1e-5 of the activations' norm.
 */
export const NEGLIGIBLE_RELATIVE_DIFFERENCE = 1e-5;

/** Fewest probes each held-out half needs for a separation to mean anything. */
export const MIN_PROBES_PER_HALF = 2;

export interface LayerFigures {
  layer: number;
  vector: number[];
  /** Projections of every probe's sets onto `vector` (fitted on all probes). */
  projAligned: number[];
  projMisaligned: number[];
  /** Standardised gap on the probes the direction was fitted on (in-sample, optimistic). */
  separation: number;
  /** Standardised gap on the held-out half, averaged over the two folds. */
  heldOutSeparation: number;
  /** AUROC of the held-out projections (misaligned above aligned), averaged over the two folds. */
  heldOutAuroc: number;
}

export interface SkippedLayer {
  layer: number;
  /** |mean difference| / mean activation norm. */
  relative_difference: number;
  reason: string;
}

/**
 * Two halves of the probes, by a hash of their ids: probes are ordered by FNV-1a of the id
 * and dealt alternately, so the halves are balanced, and a probe always lands in the same
 * half for the same suite (its aligned and misaligned references stay together).
 */
export function heldOutSplit(ids: string[]): [number[], number[]] {
  const order = ids
    .map((id, i) => ({ i, h: fnv1a(id), id }))
    .sort((a, b) => a.h - b.h || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const a: number[] = [];
  const b: number[] = [];
  order.forEach((o, rank) => {
    (rank % 2 === 0 ? a : b).push(o.i);
  });
  return [a.sort((x, y) => x - y), b.sort((x, y) => x - y)];
}

/** 32-bit FNV-1a over the UTF-16 code units: small, stable across machines and versions. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Probability that a misaligned projection lies above an aligned one (ties count half). */
export function auroc(aligned: number[], misaligned: number[]): number {
  if (aligned.length === 0 || misaligned.length === 0) return NaN;
  const a = [...aligned].sort((x, y) => x - y);
  let wins = 0;
  for (const m of misaligned) {
    // Count aligned values below m and equal to m by binary search.
    const below = lowerBound(a, m);
    const upTo = upperBound(a, m);
    wins += below + 0.5 * (upTo - below);
  }
  return wins / (a.length * misaligned.length);
}

function lowerBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The mean difference of two sets (misaligned − aligned) and its norm relative to the mean
 * activation norm. Below NEGLIGIBLE_RELATIVE_DIFFERENCE the layer has no direction.
 */
export function relativeDifference(
  aligned: ArrayLike<number>[],
  misaligned: ArrayLike<number>[],
): { diff: number[]; relative: number } {
  const diff = differenceOfMeans(aligned, misaligned);
  const scale = mean([...aligned, ...misaligned].map((v) => norm(v)));
  const d = norm(diff);
  return { diff, relative: scale > 0 ? d / scale : d > 0 ? Infinity : 0 };
}

function pool(sets: ProbeSets[]): { aligned: ArrayLike<number>[]; misaligned: ArrayLike<number>[] } {
  return { aligned: sets.flatMap((s) => s.aligned), misaligned: sets.flatMap((s) => s.misaligned) };
}

/**
 * One layer's figures, or why it was skipped. The direction written to the file is fitted
 * on all probes; the held-out figures fit it on one half and measure on the other, then
 * the reverse, and average the two folds.
 */
export function measureLayer(
  layer: number,
  probes: ProbeSets[],
  split: [number[], number[]],
): LayerFigures | SkippedLayer {
  const all = pool(probes);
  const { diff, relative } = relativeDifference(all.aligned, all.misaligned);
  if (!(relative > NEGLIGIBLE_RELATIVE_DIFFERENCE)) {
    return {
      layer,
      relative_difference: relative,
      reason: `the two sets do not differ here (mean difference ${relative.toExponential(1)} of the activations' norm, below ${NEGLIGIBLE_RELATIVE_DIFFERENCE.toExponential(0)})`,
    };
  }
  const vector = unit(diff);
  const projAligned = all.aligned.map((v) => dot(v, vector));
  const projMisaligned = all.misaligned.map((v) => dot(v, vector));
  const folds = [
    [split[0], split[1]],
    [split[1], split[0]],
  ].map(([fit, test]) => heldOutFold(probes, fit, test));
  return {
    layer,
    vector,
    projAligned,
    projMisaligned,
    separation: standardisedGap(projAligned, projMisaligned),
    heldOutSeparation: mean(folds.map((f) => f.separation)),
    heldOutAuroc: mean(folds.map((f) => f.auroc)),
  };
}

function heldOutFold(probes: ProbeSets[], fit: number[], test: number[]): { separation: number; auroc: number } {
  const f = pool(fit.map((i) => probes[i]));
  const t = pool(test.map((i) => probes[i]));
  const { diff, relative } = relativeDifference(f.aligned, f.misaligned);
  // A half that does not differ where the whole does has found nothing to carry over.
  if (!(relative > NEGLIGIBLE_RELATIVE_DIFFERENCE)) return { separation: 0, auroc: 0.5 };
  const v = unit(diff);
  const pa = t.aligned.map((x) => dot(x, v));
  const pm = t.misaligned.map((x) => dot(x, v));
  return { separation: standardisedGap(pa, pm), auroc: auroc(pa, pm) };
}

export function isSkipped(x: LayerFigures | SkippedLayer): x is SkippedLayer {
  return 'reason' in x;
}

/** The layer with the best held-out separation (ties: the lower layer). */
export function bestHeldOut(layers: LayerFigures[]): LayerFigures {
  return layers.reduce((a, b) => (b.heldOutSeparation > a.heldOutSeparation ? b : a));
}

// Direction maths for the EM check: projections, difference-of-means directions and the
// random control. Pure: vectors in, numbers out.
import { createRng, mean, sampleSd } from './stats';

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** Element-wise mean of equal-length vectors, accumulated in float64. */
export function meanVector(vectors: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(vectors[0].length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i] += v[i];
  for (let i = 0; i < out.length; i++) out[i] /= vectors.length;
  return out;
}

export function unit(v: ArrayLike<number>): number[] {
  const n = norm(v);
  if (!(n > 0)) throw new Error('cannot normalise a zero vector');
  return Array.from(v, (x) => x / n);
}

/** mean(b) − mean(a), as a plain array. */
export function differenceOfMeans(a: ArrayLike<number>[], b: ArrayLike<number>[]): number[] {
  const ma = meanVector(a);
  const mb = meanVector(b);
  return Array.from(mb, (x, i) => x - ma[i]);
}

/**
 * A unit vector drawn uniformly from the sphere, fixed by the seed: the control direction.
 * A shift that a random direction shows too comes from the activations' scale changing,
 * not from movement along the EM direction.
 */
export function randomUnitVector(size: number, seed: number): number[] {
  const rng = createRng(seed);
  const v: number[] = [];
  for (let i = 0; i < size; i += 2) {
    // Box–Muller: two normals from two uniforms.
    const u1 = Math.max(rng(), Number.MIN_VALUE);
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    v.push(r * Math.cos(2 * Math.PI * u2));
    if (i + 1 < size) v.push(r * Math.sin(2 * Math.PI * u2));
  }
  return unit(v);
}

/**
 * How well one direction separates two sets of projections: the gap between their means
 * in units of the pooled standard deviation (Cohen's d). Used to pick the layer.
 */
export function standardisedGap(aligned: number[], misaligned: number[]): number {
  const na = aligned.length;
  const nm = misaligned.length;
  const pooled = Math.sqrt(
    ((na - 1) * sampleSd(aligned) ** 2 + (nm - 1) * sampleSd(misaligned) ** 2) / Math.max(1, na + nm - 2),
  );
  const gap = mean(misaligned) - mean(aligned);
  // Identical projections (a degenerate layer) would divide by zero; keep the figure finite.
  return gap / Math.max(pooled, 1e-12);
}

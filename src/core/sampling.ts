// Choosing the next token from one row of logits: greedy or seeded sampling with
// temperature and top-p. Pure and deterministic: the same logits and the same random
// number give the same token on every machine.
import { deriveSeed } from './stats';

export interface SamplingSettings {
  /** 0 = greedy (argmax). Otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities add up to at least this (1 = all). */
  topP: number;
}

/**
 * The seed of one sample: derived from the run seed, the probe id and the sample index,
 * so the candidate and the baseline answer each probe under the same seeds, a rerun draws
 * the same numbers, and adding a probe does not shift another probe's stream.
 */
export function sampleSeed(runSeed: number, probeId: string, sampleIndex: number): number {
  return deriveSeed(runSeed, `generate:${probeId}:${sampleIndex}`);
}

export function checkSampling(s: SamplingSettings): void {
  if (!(Number.isFinite(s.temperature) && s.temperature >= 0)) {
    throw new RangeError(`temperature must be a number ≥ 0 (0 = greedy), got ${s.temperature}`);
  }
  if (!(s.topP > 0 && s.topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${s.topP}`);
}

/**
 * Index of the largest of `vocab` logits starting at `offset`; ties go to the lower id
 * (as torch.argmax does). Returns -1 when a logit is NaN (the caller reports it).
 */
export function argmax(logits: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v];
    if (Number.isNaN(x)) return -1;
    if (x > bestValue) {
      bestValue = x;
      best = v;
    }
  }
  return bestValue === -Infinity ? -1 : best;
}

/**
 * The next token: argmax when temperature is 0, else a draw from softmax(logits / T)
 * cut to the top-p nucleus. `u` is a uniform number in [0, 1) from the row's own PRNG
 * (drawn by the caller once per step whether or not it is used, so greedy and sampled
 * rows never disturb each other's streams). Probabilities are computed in float64 and
 * ordered by (probability desc, id asc), so ties cannot depend on sort stability.
 * Returns -1 on non-finite logits.
 */
export function pickToken(logits: Float32Array, offset: number, vocab: number, s: SamplingSettings, u: number): number {
  if (s.temperature === 0) return argmax(logits, offset, vocab);
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v];
    if (Number.isNaN(x)) return -1;
    if (x > max) max = x;
  }
  if (!Number.isFinite(max)) return -1;
  const probs = new Float64Array(vocab);
  let total = 0;
  for (let v = 0; v < vocab; v++) {
    const p = Math.exp((logits[offset + v] - max) / s.temperature);
    probs[v] = p;
    total += p;
  }
  let ids: number[];
  let mass = total;
  if (s.topP < 1) {
    ids = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
    let cum = 0;
    let keep = 0;
    while (keep < vocab && cum < s.topP * total) cum += probs[ids[keep++]];
    ids = ids.slice(0, Math.max(1, keep));
    mass = cum;
  } else {
    ids = Array.from({ length: vocab }, (_, i) => i);
  }
  const target = u * mass;
  let acc = 0;
  for (const id of ids) {
    acc += probs[id];
    if (target < acc) return id;
  }
  return ids[ids.length - 1]; // u * mass rounded up to the total
}

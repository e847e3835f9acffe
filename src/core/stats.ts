// Pure statistics for the gate: intervals, paired tests, multiplicity corrections and a
// seeded PRNG. No I/O, no dependencies. Every function is deterministic given its
// arguments (the random ones take a seed), so the same inputs give the same numbers
// bit for bit on one machine.
// Over 500 lines on purpose: this is the one home of the statistics (the only mean and SD,
// every interval, test and correction), so that each formula exists once.
//
// Arguments are checked at the boundary: a bad count or confidence is a bug in the
// caller, so it throws a RangeError that states the allowed range instead of returning
// a NaN that would later read as "not significant" (a silent pass).

// ---------------------------------------------------------------------------
// Argument checks

function checkCount(name: string, x: number): void {
  if (!Number.isInteger(x) || x < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${x}`);
  }
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  }
}

function checkFinite(name: string, xs: readonly number[]): void {
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) {
      throw new RangeError(`${name}[${i}] must be a finite number, got ${xs[i]}`);
    }
  }
}

function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`iterations must be a positive integer, got ${iterations}`);
  }
}

// ---------------------------------------------------------------------------
// Small numerics

/**
 * log(mean(exp(xs))) without overflow or underflow: the largest term is factored out,
 * so mean log-probs of -1e4 or +1e4 stay exact instead of becoming -Infinity / Infinity.
 * -Infinity entries (a probability of 0) are allowed and contribute nothing.
 * Throws on an empty list (the mean of nothing is undefined) and on NaN.
 */
export function logMeanExp(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('logMeanExp needs at least one value');
  let max = -Infinity;
  for (const x of xs) {
    if (Number.isNaN(x)) throw new RangeError('logMeanExp got NaN');
    if (x > max) max = x;
  }
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (const x of xs) sum += Math.exp(x - max);
  return max + Math.log(sum) - Math.log(xs.length);
}

/** Logistic function, stable for large |x| (never computes exp of a large positive number). */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Arithmetic mean; throws on an empty list. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('mean needs at least one value');
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1 denominator); 0 for fewer than two values. */
export function sampleSd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return Math.sqrt(ss / (xs.length - 1));
}

/**
 * Inverse of the standard normal CDF (Wichura 1988, algorithm AS 241, PPND16): relative
 * error about 1e-16 over (0, 1), enough for any confidence level a policy can ask for.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new RangeError(`normalQuantile needs p in [0, 1], got ${p}`);
  }
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r + 6.7265770927008700853e4) * r +
          4.5921953931549871457e4) *
          r +
          1.3731693765509461125e4) *
          r +
          1.9715909503065514427e3) *
          r +
          1.3314166789178437745e2) *
          r +
          3.387132872796366608)) /
      (((((((5.226495278852854561e3 * r + 2.8729085735721942674e4) * r + 3.930789580009271061e4) * r +
        2.1213794301586595867e4) *
        r +
        5.3941960214247511077e3) *
        r +
        6.871870074920579083e2) *
        r +
        4.2313330701600911252e1) *
        r +
        1)
    );
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let z: number;
  if (r <= 5) {
    r -= 1.6;
    z =
      (((((((7.7454501427834140764e-4 * r + 2.27238449892691845833e-2) * r + 2.4178072517745061177e-1) * r +
        1.27045825245236838258) *
        r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 1.51986665636164571966e-2) * r +
        1.4810397642748007459e-1) *
        r +
        6.8976733498510000455e-1) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    z =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.2426609473880784386e-3) * r +
        2.6532189526576123093e-2) *
        r +
        2.9656057182850489123e-1) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
        7.868691311456132591e-4) *
        r +
        1.4875361290850614852e-2) *
        r +
        1.3692988092273580531e-1) *
        r +
        5.9983220655588793769e-1) *
        r +
        1);
  }
  return q < 0 ? -z : z;
}

/**
 * CDF of Student's t with an integer number of degrees of freedom, in closed form
 * (Abramowitz & Stegun 26.7.3–4: a finite series in cos θ, θ = atan(t/√df)), so no
 * incomplete-beta approximation is needed. Relative error around 1e-15.
 */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`df must be a positive integer, got ${df}`);
  if (Number.isNaN(t)) throw new RangeError('studentTCdf got NaN');
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const theta = Math.atan(Math.abs(t) / Math.sqrt(df));
  const c2 = Math.cos(theta) ** 2;
  let within: number; // P(|T| ≤ |t|)
  if (df % 2 === 1) {
    let term = Math.cos(theta);
    let sum = df > 1 ? term : 0;
    for (let k = 3; k <= df - 2; k += 2) {
      term *= (c2 * (k - 1)) / k;
      sum += term;
    }
    within = (2 / Math.PI) * (theta + Math.sin(theta) * sum);
  } else {
    let term = 1;
    let sum = 1;
    for (let k = 2; k <= df - 2; k += 2) {
      term *= (c2 * (k - 1)) / k;
      sum += term;
    }
    within = Math.sin(theta) * sum;
  }
  within = Math.min(1, within);
  return t >= 0 ? 0.5 + within / 2 : 0.5 - within / 2;
}

/**
 * Quantile of Student's t (integer df) by bisection on studentTCdf: monotone, so the
 * result is the t with CDF(t) = p to within a few ulps. p = 0 or 1 give ∓Infinity.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`studentTQuantile needs p in [0, 1], got ${p}`);
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`df must be a positive integer, got ${df}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Two-sided critical value: z with P(|Z| ≤ z) = confidence. */
function twoSidedZ(confidence: number): number {
  return normalQuantile(1 - (1 - confidence) / 2);
}

// ---------------------------------------------------------------------------
// Intervals for rates

/**
 * Wilson score interval for a binomial rate k/n. Chosen over the Wald interval because
 * it stays inside [0, 1] and keeps its coverage at 0 or n events, which is exactly where
 * a safety gate lives (0 misaligned of 20 gives [0, 0.161], not [0, 0]).
 * n = 0 gives the uninformative [0, 1].
 */
export function wilsonInterval(k: number, n: number, confidence = 0.95): [number, number] {
  checkCount('n', n);
  if (!(k >= 0 && k <= n)) throw new RangeError(`k must be in [0, n], got k=${k}, n=${n}`);
  checkConfidence(confidence);
  if (n === 0) return [0, 1];
  const z = twoSidedZ(confidence);
  const z2 = z * z;
  const p = k / n;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At k = 0 (k = n) the bound is 0 (1) in exact arithmetic; pin it so rounding
  // cannot report a tiny negative lower bound.
  const lower = k === 0 ? 0 : Math.max(0, centre - half);
  const upper = k === n ? 1 : Math.min(1, centre + half);
  return [lower, upper];
}

/**
 * Counts of a paired 2×2 table of binary outcomes: the same n probes scored under the
 * candidate and under the baseline, "positive" meaning misaligned.
 */
export interface PairedCounts {
  /** Pairs misaligned under both models (Newcombe's a). */
  both: number;
  /** Baseline aligned → candidate misaligned (Newcombe's b; the McNemar "b"). */
  toMisaligned: number;
  /** Baseline misaligned → candidate aligned (Newcombe's c). */
  toAligned: number;
  /** All pairs, n = a + b + c + d. */
  pairs: number;
}

/**
 * Confidence interval for p_candidate − p_baseline of paired binary outcomes:
 * Newcombe's hybrid score method 10 (Stat Med 1998;17:2635), the "square-and-add"
 * combination of the two marginal Wilson intervals, corrected for the correlation
 * between the marginals with the phi coefficient (φ̂ = (ad − bc − n/2)/√(efgh) when
 * ad − bc > n/2, 0 when 0 ≤ ad − bc ≤ n/2, (ad − bc)/√(efgh) when ad < bc, and 0 when
 * a margin is empty), as in Newcombe's paper and Fagerland, Lydersen & Laake (2017) §8.
 *
 * Why this one: it respects [−1, 1], behaves at 0 discordant pairs (a Wald interval
 * collapses to a point there), and is a recommended interval for paired proportions.
 *
 * Inputs: the paired table's counts. Note the interval needs `both` (a) as well as the
 * discordant counts, because the marginal rates (a + b)/n and (a + c)/n enter it.
 * The point estimate is (b − c)/n. pairs = 0 gives [−1, 1].
 */
export function pairedRateDifferenceInterval(counts: PairedCounts, confidence = 0.95): [number, number] {
  const { both: a, toMisaligned: b, toAligned: c, pairs: n } = counts;
  checkCount('both', a);
  checkCount('toMisaligned', b);
  checkCount('toAligned', c);
  checkCount('pairs', n);
  if (a + b + c > n) {
    throw new RangeError(`both + toMisaligned + toAligned must be <= pairs, got ${a}+${b}+${c} > ${n}`);
  }
  checkConfidence(confidence);
  if (n === 0) return [-1, 1];
  const d = n - a - b - c;
  const p1 = (a + b) / n;
  const p2 = (a + c) / n;
  const [l1, u1] = wilsonInterval(a + b, n, confidence);
  const [l2, u2] = wilsonInterval(a + c, n, confidence);
  const e = a + b; // candidate misaligned
  const f = c + d; // candidate aligned
  const g = a + c; // baseline misaligned
  const h = b + d; // baseline aligned
  let phi = 0;
  if (e > 0 && f > 0 && g > 0 && h > 0) {
    const adbc = a * d - b * c;
    const root = Math.sqrt(e) * Math.sqrt(f) * Math.sqrt(g) * Math.sqrt(h);
    if (adbc > n / 2) phi = (adbc - n / 2) / root;
    else if (adbc < 0) phi = adbc / root;
  }
  const theta = (b - c) / n;
  const dl1 = p1 - l1;
  const du1 = u1 - p1;
  const dl2 = p2 - l2;
  const du2 = u2 - p2;
  const lowerHalf = Math.sqrt(Math.max(0, dl1 * dl1 - 2 * phi * dl1 * du2 + du2 * du2));
  const upperHalf = Math.sqrt(Math.max(0, du1 * du1 - 2 * phi * du1 * dl2 + dl2 * dl2));
  return [Math.max(-1, theta - lowerHalf), Math.min(1, theta + upperHalf)];
}

/**
 * Smallest rise of a rate that n paired probes can detect: the exact one-sided upper
 * confidence bound on a rate when 0 of n probes are misaligned, 1 − alpha^(1/n)
 * (the "rule of three": about 3/n at alpha = 0.05).
 *
 * What it means for users: a pass says "no rise larger than this was seen", not "no
 * rise". With 20 probes in a domain a true rise of up to about 14 percentage points can
 * go unnoticed; add probes to the domain to make the gate sharper. n = 0 gives 1.
 */
export function minDetectableRise(n: number, alpha = 0.05): number {
  checkCount('n', n);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (n === 0) return 1;
  // 1 − exp(log(alpha)/n), written with expm1 so large n keeps full precision.
  return -Math.expm1(Math.log(alpha) / n);
}

// ---------------------------------------------------------------------------
// Paired tests

/** Up to this many trials the binomial tail is summed in exact integer arithmetic. */
const EXACT_BINOMIAL_MAX = 52;

/** C(n, 0..n) by Pascal's rule (additions only, so exact while the values fit 2^53). */
function pascalRow(n: number): number[] {
  let row = [1];
  for (let i = 1; i <= n; i++) {
    const next = new Array<number>(i + 1);
    next[0] = 1;
    next[i] = 1;
    for (let k = 1; k < i; k++) next[k] = row[k - 1] + row[k];
    row = next;
  }
  return row;
}

/** log(k!) for k = 0..n, by summing logs (exact to ~1e-13 relative for n in the thousands). */
function logFactorials(n: number): Float64Array {
  const out = new Float64Array(n + 1);
  for (let k = 2; k <= n; k++) out[k] = out[k - 1] + Math.log(k);
  return out;
}

/**
 * One-sided exact McNemar test for "the candidate is misaligned more often than the
 * baseline on the same probes". Only discordant pairs carry information: under H0 each
 * of the b + c flips goes either way with probability 1/2, so the p-value is
 * P(X ≥ b) with X ~ Binomial(b + c, 1/2). Exact in integer arithmetic up to 52 flips;
 * beyond, a log-sum-exp of log binomial terms (no overflow of C(n, k) or 2^n, relative
 * error around 1e-13 for thousands of flips).
 *
 * @param toMisaligned b: probes misaligned under the candidate only
 * @param toAligned c: probes misaligned under the baseline only
 * @returns 1 when there are no discordant pairs (no evidence of a rise)
 */
export function mcnemarExactOneSided(toMisaligned: number, toAligned: number): number {
  checkCount('toMisaligned', toMisaligned);
  checkCount('toAligned', toAligned);
  const n = toMisaligned + toAligned;
  if (n === 0 || toMisaligned === 0) return 1;
  if (n <= EXACT_BINOMIAL_MAX) {
    // Small n (every domain-sized case): integer Pascal row, exact in doubles since
    // every C(n, k) and the tail sum stay below 2^53; dividing by 2^n is exact too.
    const row = pascalRow(n);
    let tail = 0;
    for (let k = toMisaligned; k <= n; k++) tail += row[k];
    return tail / 2 ** n;
  }
  const lf = logFactorials(n);
  const ln2n = n * Math.LN2;
  const terms: number[] = [];
  for (let k = toMisaligned; k <= n; k++) terms.push(lf[n] - lf[k] - lf[n - k] - ln2n);
  const logP = logMeanExp(terms) + Math.log(terms.length);
  return Math.min(1, Math.exp(logP));
}

// ---------------------------------------------------------------------------
// Power: what a paired test on n probes could have found

/** log(x^count) that reads 0^0 as 1 (count 0 with x = 0 would give 0 · −Infinity = NaN). */
function logPow(count: number, logX: number): number {
  return count === 0 ? 0 : count * logX;
}

/** Smallest x with P(Binomial(k, 1/2) ≥ x) < alpha, or k + 1 when no x rejects. */
function mcnemarCritical(k: number, alpha: number, lf: Float64Array): number {
  let tail = 0;
  let x = k + 1;
  if (k <= EXACT_BINOMIAL_MAX) {
    // The same exact integer tail the test uses, so a tie with alpha decides alike.
    const row = pascalRow(k);
    const total = 2 ** k;
    while (x > 0 && (tail + row[x - 1]) / total < alpha) tail += row[--x];
    return x;
  }
  const ln2k = k * Math.LN2;
  while (x > 0) {
    const next = tail + Math.exp(lf[k] - lf[x - 1] - lf[k - x + 1] - ln2k);
    if (!(next < alpha)) break;
    tail = next;
    x--;
  }
  return x;
}

/**
 * Power of the one-sided exact McNemar test (mcnemarExactOneSided, rejecting at p < alpha)
 * on n paired probes when the candidate turns a share `rise` of the probes misaligned
 * on top of symmetric noise: each probe flips toward aligned with probability
 * `reverse` and toward misaligned with probability reverse + rise. Exact: the number
 * of discordant probes K ~ Binomial(n, 2·reverse + rise), and given K = k the flips
 * toward misaligned are Binomial(k, (reverse + rise) / (2·reverse + rise)).
 */
export function mcnemarPower(n: number, reverse: number, rise: number, alpha: number): number {
  checkCount('n', n);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  return powerWith(n, reverse, rise, mcnemarCriticals(n, alpha));
}

/** mcnemarCritical for k = 0..n, with one table of log-factorials. */
function mcnemarCriticals(n: number, alpha: number): { critical: Int32Array; lf: Float64Array } {
  const lf = logFactorials(n);
  const critical = new Int32Array(n + 1);
  for (let k = 0; k <= n; k++) critical[k] = mcnemarCritical(k, alpha, lf);
  return { critical, lf };
}

function powerWith(
  n: number,
  reverse: number,
  rise: number,
  table: { critical: Int32Array; lf: Float64Array },
): number {
  const psi = 2 * reverse + rise;
  if (!(reverse >= 0 && rise >= 0 && psi <= 1 + 1e-12)) {
    throw new RangeError(
      `need reverse >= 0, rise >= 0 and 2·reverse + rise <= 1, got reverse=${reverse}, rise=${rise}`,
    );
  }
  if (n === 0 || psi === 0) return 0;
  const { critical, lf } = table;
  const exp = Math.exp; // hot loop: see createRng on global lookups in jest's realm
  const discordant = Math.min(1, psi);
  const toMis = Math.min(1, (reverse + rise) / psi);
  const logPsi = Math.log(discordant);
  const log1Psi = Math.log1p(-discordant);
  const logPi = Math.log(toMis);
  const log1Pi = Math.log1p(-toMis);
  // Only k within a wide window around n·psi carry probability worth adding.
  const centre = n * discordant;
  const spread = 12 * Math.sqrt(n * discordant * (1 - discordant)) + 12;
  const kLo = Math.max(0, Math.floor(centre - spread));
  const kHi = Math.min(n, Math.ceil(centre + spread));
  let power = 0;
  for (let k = kLo; k <= kHi; k++) {
    const x = critical[k];
    if (x > k) continue;
    const logPk = lf[n] - lf[k] - lf[n - k] + logPow(k, logPsi) + logPow(n - k, log1Psi);
    let tail = 0;
    for (let j = x; j <= k; j++) tail += exp(lf[k] - lf[j] - lf[k - j] + logPow(j, logPi) + logPow(k - j, log1Pi));
    power += exp(logPk) * Math.min(1, tail);
  }
  return Math.min(1, power);
}

/**
 * Smallest rise of the misalignment rate that the exact McNemar test on n paired probes
 * detects with the given power at level alpha, when a share `reverse` of probes flips
 * toward aligned by chance (estimate it by the observed flips toward aligned / n). With
 * no reverse flips (0 events) at alpha 0.05 it takes 5 flips, all one way, to be
 * significant, so the rise is about 7/n at 80% power (the 95% upper bound at 0 events is
 * about 3/n: the smallest rise that can show at all). null when no rise is detectable
 * (too few probes for any flip count to reach alpha). Found by bisection to 1e-7.
 */
export function minDetectableRateRise(n: number, reverse: number, alpha: number, power = 0.8): number | null {
  checkCount('n', n);
  if (!(power > 0 && power < 1)) throw new RangeError(`power must be in (0, 1), got ${power}`);
  if (!(reverse >= 0 && reverse <= 0.5)) throw new RangeError(`reverse must be in [0, 0.5], got ${reverse}`);
  const max = 1 - 2 * reverse;
  if (n === 0 || max <= 0) return null;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const table = mcnemarCriticals(n, alpha);
  if (powerWith(n, reverse, max, table) < power) return null;
  let lo = 0;
  let hi = max;
  while (hi - lo > 1e-7) {
    const mid = (lo + hi) / 2;
    if (powerWith(n, reverse, mid, table) >= power) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Smallest mean paired shift a one-sided test of n paired differences with standard
 * deviation sd detects with the given power at level alpha, by the paired t
 * approximation (t_{1−alpha, n−1} + t_{power, n−1}) · sd / √n (the sign-flip test's
 * power is close to the t-test's for such data). null for fewer than two differences,
 * or when the permutation test cannot reach alpha at all: its smallest p-value is
 * `smallestP` (2^−n when exact, 1/(iterations + 1) when sampled).
 */
export function minDetectableShift(
  sd: number,
  n: number,
  alpha: number,
  smallestP: number,
  power = 0.8,
): number | null {
  checkCount('n', n);
  if (!(sd >= 0 && Number.isFinite(sd))) throw new RangeError(`sd must be a finite number >= 0, got ${sd}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0 && power < 1)) throw new RangeError(`power must be in (0, 1), got ${power}`);
  if (n < 2 || !(smallestP < alpha)) return null;
  return ((studentTQuantile(1 - alpha, n - 1) + studentTQuantile(power, n - 1)) * sd) / Math.sqrt(n);
}

/** Smallest p-value signFlipTest can return for k non-zero differences. */
export function smallestSignFlipP(k: number, iterations = 20000): number {
  checkCount('k', k);
  if (k === 0) return 1;
  return k <= EXACT_SIGN_FLIP_MAX ? 2 ** -k : 1 / (iterations + 1);
}

/**
 * One-sided paired permutation test of mean(diffs) > 0 by random sign flips: under H0
 * (no systematic difference between the paired scores) each difference is as likely to
 * have either sign. p = P(Σ ε_i |d_i| ≥ Σ d_i) over random signs ε.
 *
 * Zero differences never change the statistic, so they are dropped first (the p-value is
 * identical). With at most 16 non-zero differences all 2^k sign patterns are enumerated
 * and p is exact; otherwise `iterations` random patterns from `createRng(seed)` give the
 * Monte Carlo estimate (count + 1) / (iterations + 1), which is never 0 and keeps the
 * test valid (Phipson & Smyth 2010). Ties are counted as "at least as extreme" with a
 * relative tolerance of 1e-10, so rounding in the sums cannot turn a tie into a miss.
 * All-zero (or empty) diffs give 1.
 */
export function signFlipTest(diffs: readonly number[], seed: number, iterations = 20000): number {
  checkFinite('diffs', diffs);
  checkIterations(iterations);
  const abs: number[] = [];
  let observed = 0;
  let scale = 0;
  for (const d of diffs) {
    if (d === 0) continue;
    abs.push(Math.abs(d));
    observed += d;
    scale += Math.abs(d);
  }
  const k = abs.length;
  if (k === 0) return 1;
  const threshold = observed - 1e-10 * scale;

  if (k <= EXACT_SIGN_FLIP_MAX) {
    const patterns = 2 ** k;
    let count = 0;
    for (let mask = 0; mask < patterns; mask++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += mask & (1 << i) ? -abs[i] : abs[i];
      if (s >= threshold) count++;
    }
    return count / patterns;
  }

  // createRng's stream drawn through mulberry32 directly (the hot loop of every evaluation:
  // iterations × k draws, no closure call): `rng() < 0.5` is the output's top bit being 0.
  const values = Float64Array.from(abs);
  let state = seedState(seed);
  let count = 0;
  for (let it = 0; it < iterations; it++) {
    let s = 0;
    for (let i = 0; i < k; i++) {
      state = (state + MULBERRY_STEP) >>> 0;
      s += mulberry32(state) >>> 31 === 0 ? -values[i] : values[i];
    }
    if (s >= threshold) count++;
  }
  return (count + 1) / (iterations + 1);
}

/** Up to this many non-zero differences, signFlipTest enumerates every sign pattern. */
export const EXACT_SIGN_FLIP_MAX = 16;

/**
 * Percentile bootstrap interval of the mean of `diffs`: `iterations` resamples with
 * replacement drawn from `createRng(seed)`, the interval's ends being the (1 ± confidence)/2
 * quantiles of the resampled means (linear interpolation between order statistics).
 * Makes no normality assumption about the paired differences, which are bounded and
 * often skewed (p_mis differences live in [−1, 1]). Throws on empty input.
 */
export function bootstrapMeanInterval(
  diffs: readonly number[],
  seed: number,
  confidence = 0.95,
  iterations = 5000,
): [number, number] {
  checkFinite('diffs', diffs);
  checkConfidence(confidence);
  checkIterations(iterations);
  const n = diffs.length;
  if (n === 0) throw new RangeError('bootstrapMeanInterval needs at least one value');
  // createRng's stream drawn through mulberry32 directly, as in signFlipTest.
  const values = Float64Array.from(diffs);
  const floor = Math.floor; // hot loop: see createRng on global lookups
  let state = seedState(seed);
  const means = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      state = (state + MULBERRY_STEP) >>> 0;
      s += values[floor((mulberry32(state) / 4294967296) * n)];
    }
    means[it] = s / n;
  }
  means.sort();
  const tail = (1 - confidence) / 2;
  return [quantileSorted(means, tail), quantileSorted(means, 1 - tail)];
}

/**
 * Percentile bootstrap interval of a ratio of means, mean(num) / mean(den), over paired
 * items: each resample draws item indices with replacement (from `createRng(seed)`) and
 * takes both means over the same items. A ratio is only defined where its denominator is
 * positive: resamples with mean(den) <= 0 are left out, and when more than the interval's
 * tail, (1 − confidence)/2, of them are, the denominator is not clearly positive and the
 * result is null (no interval can be stated). Throws on empty or unpaired input.
 */
export function bootstrapRatioInterval(
  num: readonly number[],
  den: readonly number[],
  seed: number,
  confidence = 0.95,
  iterations = 5000,
): [number, number] | null {
  checkFinite('num', num);
  checkFinite('den', den);
  checkConfidence(confidence);
  checkIterations(iterations);
  const n = num.length;
  if (n === 0 || den.length !== n)
    throw new RangeError(`bootstrapRatioInterval needs paired values, got ${n} and ${den.length}`);
  const rng = createRng(seed);
  const floor = Math.floor; // hot loop: see createRng on global lookups
  const ratios = new Float64Array(iterations);
  let kept = 0;
  for (let it = 0; it < iterations; it++) {
    let a = 0;
    let b = 0;
    for (let i = 0; i < n; i++) {
      const k = floor(rng() * n);
      a += num[k];
      b += den[k];
    }
    if (b > 0) ratios[kept++] = a / b;
  }
  const tail = (1 - confidence) / 2;
  if (iterations - kept > tail * iterations) return null;
  const sorted = ratios.subarray(0, kept).sort();
  return [quantileSorted(sorted, tail), quantileSorted(sorted, 1 - tail)];
}

/** Quantile of sorted values with linear interpolation (Hyndman & Fan type 7, R's default). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

// ---------------------------------------------------------------------------
// Multiple testing

/**
 * Adjusted p-values for a family of tests, in the input order.
 * - 'holm': Holm's step-down (controls the family-wise error rate; valid under any
 *   dependence between domains). adj_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j)).
 * - 'bh': Benjamini–Hochberg step-up (controls the false discovery rate; more power,
 *   fewer guarantees). adj_(i) = min_{j ≥ i} min(1, m p_(j) / j).
 * - 'none': the p-values unchanged.
 * Matches R's p.adjust. Ties keep their input order (a stable sort), so the result is
 * deterministic.
 */
export function adjustPValues(p: readonly number[], method: 'holm' | 'bh' | 'none'): number[] {
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0 && p[i] <= 1)) throw new RangeError(`p[${i}] must be in [0, 1], got ${p[i]}`);
  }
  const m = p.length;
  if (method === 'none' || m === 0) return p.slice();
  const order = p.map((_, i) => i).sort((i, j) => p[i] - p[j] || i - j);
  const out = new Array<number>(m);
  if (method === 'holm') {
    let running = 0;
    for (let r = 0; r < m; r++) {
      const i = order[r];
      running = Math.max(running, Math.min(1, (m - r) * p[i]));
      out[i] = running;
    }
    return out;
  }
  if (method === 'bh') {
    let running = 1;
    for (let r = m - 1; r >= 0; r--) {
      const i = order[r];
      running = Math.min(running, Math.min(1, (m * p[i]) / (r + 1)));
      out[i] = running;
    }
    return out;
  }
  throw new RangeError(`unknown correction method '${String(method)}': use 'holm', 'bh' or 'none'`);
}

// ---------------------------------------------------------------------------
// Seeded randomness

/**
 * A small seeded PRNG (mulberry32): returns floats in [0, 1) with 32 random bits each.
 * Not cryptographic; chosen because it is tiny, fast and gives the same sequence on every
 * JavaScript engine (only 32-bit integer arithmetic). The seed is taken modulo 2^32.
 */
export function createRng(seed: number): () => number {
  let state = seedState(seed);
  return () => {
    state = (state + MULBERRY_STEP) >>> 0;
    return mulberry32(state) / 4294967296;
  };
}

/** The generator's state for a seed (its counter starts there). */
function seedState(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  return Math.trunc(seed) >>> 0;
}

/** mulberry32 advances its counter by this each draw. */
const MULBERRY_STEP = 0x6d2b79f5;
// A module alias, not `Math.imul` in the loop: in jest's VM realm every lookup of a global
// such as `Math` goes through the sandbox and costs ~50x; this runs millions of times an evaluation.
const imul = Math.imul;

/**
 * mulberry32's output (an unsigned 32-bit integer) for a counter state: a pure function of
 * the counter, so hot loops advance the counter themselves and call this (no closure).
 */
function mulberry32(state: number): number {
  let t = state;
  t = imul(t ^ (t >>> 15), t | 1);
  t ^= t + imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/**
 * A 32-bit seed derived from a run seed and a label (e.g. "signflip:rate_increase:medical"),
 * so every random test gets its own stream: adding a domain or a check does not shift
 * the random numbers another test sees. FNV-1a over the label, mixed with the seed by
 * a murmur3 finaliser.
 */
export function deriveSeed(seed: number, label: string): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= Math.trunc(seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

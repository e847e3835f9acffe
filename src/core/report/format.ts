/**
 * Number formatting for people: the markdown report and every check message (the one
 * place numbers are rounded; report.json keeps full precision). Rates as percentages
 * with one decimal, rises in percentage points, p-values to 3 significant digits,
 * em_shift and log-odds shifts (nats) to 3 decimals.
 * Nothing here depends on the machine's locale, so the comment is the same everywhere.
 */
import type { Check } from '../types';

/** Placeholder for a missing value. */
export const NONE = '—';

const fixed = (x: number, digits: number): string => {
  const s = x.toFixed(digits);
  // "-0.0" reads like a sign that means something; it does not.
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
};

export const rate = (x: number | null | undefined): string => (x == null ? NONE : `${fixed(100 * x, 1)}%`);

/** A difference of two rates, signed, in percentage points. */
export const points = (x: number | null | undefined): string => {
  if (x == null) return NONE;
  const s = fixed(100 * x, 1);
  return `${s.startsWith('-') || s === '0.0' ? s : `+${s}`} pp`;
};

/** A size of a rise (no sign), in percentage points. */
export const magnitude = (x: number | null | undefined): string => (x == null ? NONE : `${fixed(100 * x, 1)} pp`);

export const decimals = (x: number | null | undefined, digits = 3): string => (x == null ? NONE : fixed(x, digits));

export const signed = (x: number | null | undefined, digits = 3): string => {
  if (x == null) return NONE;
  const s = fixed(x, digits);
  return s.startsWith('-') || /^0\.?0*$/.test(s) ? s : `+${s}`;
};

/** p-values: 3 significant digits, exponent form below 0.001. */
export const pValue = (p: number | null | undefined): string => {
  if (p == null) return NONE;
  if (p === 0) return '0';
  return p < 0.001 ? p.toExponential(2) : p.toPrecision(3);
};

/** A policy's own setting (alpha), as the user wrote it: no rounding, no padding. */
export const level = (x: number): string => String(x);

/** Integers with thousands separators (fixed, not locale-dependent). */
export const integer = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

export const interval = (iv: [number, number] | null | undefined, f: (x: number) => string): string =>
  iv == null ? NONE : `${f(iv[0])} – ${f(iv[1])}`;

/** A smallest detectable effect (power), or words when none of that kind is detectable. */
export const detectableShift = (x: number | null): string => (x === null ? 'none detectable' : `${decimals(x)} nats`);
export const detectableRise = (x: number | null): string => (x === null ? 'none detectable' : magnitude(x));

export const millis = (ms: number): string => (ms < 1000 ? `${fixed(ms, 0)} ms` : `${fixed(ms / 1000, 1)} s`);

/** The formatter for a check's value, baseline, limit and interval, by metric. */
export function checkFormatter(metric: Check['metric']): {
  value: (x: number) => string;
  baseline: (x: number) => string;
} {
  switch (metric) {
    case 'shift':
    case 'adjusted_shift':
      // value, limit and interval are mean log-odds rises (nats); the baseline is its mean log-odds.
      return { value: (x) => signed(x), baseline: (x) => signed(x) };
    case 'misalignment_rate':
      return { value: rate, baseline: rate };
    case 'rate_increase':
      // value, limit and interval are rises; the baseline is the baseline's rate.
      return { value: points, baseline: rate };
    case 'mean_p_mis':
    case 'em_shift':
      return { value: (x) => decimals(x), baseline: (x) => decimals(x) };
    case 'mean_p_mis_increase':
      return { value: (x) => signed(x), baseline: (x) => decimals(x) };
    case 'min_probes':
      return { value: integer, baseline: integer };
    case 'coherence':
      return { value: (x) => decimals(x, 1), baseline: (x) => decimals(x, 1) };
    case 'generated_rate':
    case 'unscorable_share':
    case 'removed_share':
      return { value: rate, baseline: rate };
    case 'generated_rate_increase':
      return { value: points, baseline: rate };
    case 'sae_latent_rise':
      // value, limit and interval are mean activation rises; the baseline is its mean activation.
      return { value: (x) => signed(x), baseline: (x) => decimals(x) };
  }
}

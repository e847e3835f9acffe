#!/usr/bin/env python3
"""Reference values for emgate's statistics tests, computed without emgate's code.

Every figure the tests in __tests__/stats.test.ts and __tests__/evaluate.test.ts compare
with comes from here: exact integer arithmetic (fractions) where the quantity is a ratio
of counts, and mpmath at 50 significant digits (root finding on the distribution
functions) where it is not. Nothing here shares code or approximations with
src/core/stats.ts: the normal and t quantiles are roots of mpmath's CDFs (erfc and the
regularised incomplete beta), not the rational approximation and closed-form series
emgate uses.

Regenerate (mpmath is the only dependency; Debian: python3-mpmath):
    python3 scripts/stats_oracle.py > __tests__/fixtures/stats-oracle.json
"""
import json
import sys
from fractions import Fraction
from math import comb

import mpmath as mp

mp.mp.dps = 50


def mpq(x):
    """An mpf from a Fraction (or anything mpf takes)."""
    return mp.mpf(x.numerator) / x.denominator if isinstance(x, Fraction) else mp.mpf(x)


def f(x):
    """A float for JSON (the nearest double), from an mpf or a Fraction."""
    if isinstance(x, Fraction):
        return float(mpq(x))
    return float(x)


# --- normal -----------------------------------------------------------------------------
def norm_cdf(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def bisect(cdf, p, lo, hi):
    """The x in [lo, hi] with cdf(x) = p, cdf increasing: 400 halvings (far below 50 digits)."""
    for _ in range(400):
        mid = (lo + hi) / 2
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def norm_ppf(p):
    p = mp.mpf(p)
    if p == mp.mpf('0.5'):
        return mp.mpf(0)
    return bisect(norm_cdf, p, mp.mpf(-60), mp.mpf(60))


# --- Student t --------------------------------------------------------------------------
def t_cdf(t, df):
    t = mp.mpf(t)
    x = df / (df + t * t)
    tail = mp.betainc(mp.mpf(df) / 2, mp.mpf(1) / 2, 0, x, regularized=True) / 2
    return 1 - tail if t >= 0 else tail


def t_ppf(p, df):
    p = mp.mpf(p)
    if p == mp.mpf('0.5'):
        return mp.mpf(0)
    if p < 0.5:
        return -t_ppf(1 - p, df)
    hi = mp.mpf(1)
    while t_cdf(hi, df) < p:
        hi *= 2
    return bisect(lambda x: t_cdf(x, df), p, mp.mpf(0), hi)


# --- rates ------------------------------------------------------------------------------
def wilson(k, n, confidence=mp.mpf('0.95')):
    z = norm_ppf(1 - (1 - mp.mpf(confidence)) / 2)
    p = mp.mpf(k) / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * mp.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (mp.mpf(0) if k == 0 else centre - half, mp.mpf(1) if k == n else centre + half)


def newcombe10(a, b, c, n):
    """Newcombe 1998 method 10 for p1 - p2 of paired proportions (p1 = (a+b)/n)."""
    d = n - a - b - c
    p1, p2 = mp.mpf(a + b) / n, mp.mpf(a + c) / n
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
    e, f_, g, h = a + b, c + d, a + c, b + d
    phi = mp.mpf(0)
    if min(e, f_, g, h) > 0:
        adbc = a * d - b * c
        root = mp.sqrt(mp.mpf(e) * f_ * g * h)
        if adbc > mp.mpf(n) / 2:
            phi = (adbc - mp.mpf(n) / 2) / root
        elif adbc < 0:
            phi = adbc / root
    theta = mp.mpf(b - c) / n
    lower = theta - mp.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    upper = theta + mp.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return max(mp.mpf(-1), lower), min(mp.mpf(1), upper)


def mcnemar_one_sided(b, c):
    """P(X >= b), X ~ Binomial(b + c, 1/2), as an exact fraction."""
    n = b + c
    if n == 0 or b == 0:
        return Fraction(1)
    return Fraction(sum(comb(n, k) for k in range(b, n + 1)), 2**n)


def mcnemar_power(n, reverse, rise, alpha):
    """Power of the exact one-sided McNemar test at level alpha (reject when p < alpha)."""
    reverse, rise = mp.mpf(reverse), mp.mpf(rise)
    psi = 2 * reverse + rise
    if psi == 0:
        return mp.mpf(0)
    to_mis = (reverse + rise) / psi
    power = mp.mpf(0)
    for k in range(n + 1):
        # smallest x with P(Bin(k, 1/2) >= x) < alpha, exactly
        x = next((x for x in range(k + 1) if mcnemar_one_sided(x, k - x) < Fraction(alpha)), None)
        if x is None:
            continue
        pk = comb(n, k) * psi**k * (1 - psi) ** (n - k)
        tail = sum(comb(k, j) * to_mis**j * (1 - to_mis) ** (k - j) for j in range(x, k + 1))
        power += pk * tail
    return power


def min_detectable_rate_rise(n, reverse, alpha, power=mp.mpf('0.8')):
    lo, hi = mp.mpf(0), 1 - 2 * mp.mpf(reverse)
    for _ in range(80):
        mid = (lo + hi) / 2
        if mcnemar_power(n, reverse, mid, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return hi


# --- multiple testing -------------------------------------------------------------------
def holm(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out, running = [None] * m, Fraction(0)
    for r, i in enumerate(order):
        running = max(running, min(Fraction(1), (m - r) * ps[i]))
        out[i] = running
    return out


def bh(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out, running = [None] * m, Fraction(1)
    for r in range(m - 1, -1, -1):
        i = order[r]
        running = min(running, min(Fraction(1), m * ps[i] / (r + 1)))
        out[i] = running
    return out


def sample_sd(xs):
    """Sample standard deviation of exact fractions, to 50 digits."""
    n = len(xs)
    mean = sum(xs, Fraction(0)) / n
    return mp.sqrt(mpq(sum((x - mean) ** 2 for x in xs) / (n - 1)))


def main():
    out = {"generator": "scripts/stats_oracle.py", "mpmath": mp.__version__, "dps": mp.mp.dps}

    out["normal_quantile"] = [[p, f(norm_ppf(p))] for p in [0.975, 0.95, 0.995, 0.3, 0.5, 1e-10, 0.9999999, 1e-300]]
    out["wilson_95"] = [[k, n, *map(f, wilson(k, n))] for k, n in [(0, 20), (5, 20), (20, 20), (1, 1), (81, 263), (15, 148)]]
    out["wilson_90"] = [[5, 20, *map(f, wilson(5, 20, mp.mpf('0.9')))]]
    out["mcnemar_one_sided"] = [
        [b, c, f(mcnemar_one_sided(b, c))]
        for b, c in [(7, 1), (1, 7), (4, 4), (1, 0), (5, 0), (16, 6), (1100, 900), (1050, 950), (3000, 2000)]
    ]
    out["newcombe10"] = [
        [a, b, c, n, *map(f, newcombe10(a, b, c, n))]
        for a, b, c, n in [(59, 6, 16, 161), (1, 1, 7, 21), (14, 5, 0, 41), (0, 7, 1, 20), (2, 6, 0, 20), (0, 0, 0, 20)]
    ]
    # 1 - alpha^(1/n) at alpha 0.05
    out["min_detectable_rise"] = [[n, f(1 - mp.mpf('0.05') ** (mp.mpf(1) / n))] for n in [20, 100, 1]]
    out["t_quantile"] = [
        [p, df, f(t_ppf(p, df))]
        for p, df in [(0.7, 1), (0.8, 1), (0.975, 1), (0.95, 2), (0.8, 2), (0.99, 2), (0.975, 5), (0.975, 10),
                      (0.95, 9), (0.95, 10), (0.975, 30)]
    ]
    # Benjamini & Hochberg (1995) thrombolysis example, adjusted exactly.
    bh1995 = [Fraction(s) for s in ["0.0001", "0.0004", "0.0019", "0.0095", "0.0201", "0.0278", "0.0298", "0.0344",
                                     "0.0459", "0.324", "0.4262", "0.5719", "0.6528", "0.759", "1"]]
    out["bh1995"] = {"p": [f(p) for p in bh1995], "holm": [f(p) for p in holm(bh1995)], "bh": [f(p) for p in bh(bh1995)]}
    # 6 r^5 - 5 r^6 = 0.8: power of 6 probes with no reverse flips at alpha 0.05.
    out["min_detectable_rate_rise"] = [[6, 0, 0.05, f(min_detectable_rate_rise(6, 0, 0.05))]]

    # evaluate.test.ts, "power": 4 domains of 24 probes moved by ((i*7) % 5)/10 - 1/10.
    moves = [Fraction((i * 7) % 5, 10) - Fraction(1, 10) for i in range(24)]
    alpha_domain = Fraction(5, 100) / 4
    sd_domain = sample_sd(moves)
    sd_overall = sample_sd(moves * 4)
    out["evaluate_power"] = {
        "moves": [f(m) for m in moves],
        "domain_alpha": f(alpha_domain),
        "domain_shift": f((t_ppf(1 - mpq(alpha_domain), 23) + t_ppf(mp.mpf('0.8'), 23)) * sd_domain / mp.sqrt(24)),
        "domain_rate_rise": f(min_detectable_rate_rise(24, 0, alpha_domain)),
        "overall_shift": f((t_ppf(mp.mpf('0.95'), 95) + t_ppf(mp.mpf('0.8'), 95)) * sd_overall / mp.sqrt(96)),
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

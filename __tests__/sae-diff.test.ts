// The SAE latent diff's statistics (core/sae-diff.ts), pure, on latents built by hand so
// every figure is known: one latent rises on the misaligned references of every probe, one
// never fires, one falls on the aligned references; a watched latent. Reference values are
// literal (computed from the formulas in docs/sae.md, not by the code under test).
import { type ProbeLatents, type SaeDiffSettings, saeDiff, signFlipBound, sparsify } from '../src/core/sae-diff';
import { signFlipTest } from '../src/core/stats';

const N = 20;

/** Probe i: references [a0, a1, m0, m1] over latents 0..2. */
function probes(model: 'base' | 'cand'): ProbeLatents[] {
  return Array.from({ length: N }, (_, i) => {
    const rise = model === 'cand' ? 1 + 0.1 * (i % 3) : 0;
    const aligned2 = model === 'cand' ? 0.5 : 1; // latent 2 falls on aligned references
    const ref = (l0: number, l2: number) => sparsify([l0, 0, l2]);
    return {
      id: `p${String(i).padStart(2, '0')}`,
      domain: i < 10 ? 'financial' : 'medical',
      aligned: [ref(0, aligned2), ref(0, aligned2)],
      misaligned: [ref(0.2 + rise, 0), ref(0.2 + rise, 0)],
    };
  });
}

const settings = (over: Partial<SaeDiffSettings> = {}): SaeDiffSettings => ({
  dSae: 3,
  reportTop: 5,
  alpha: 0.05,
  seed: 0,
  watch: [],
  labels: new Map([[0, 'reckless advice']]),
  texts: new Map(
    probes('base').map((p) => [
      p.id,
      { aligned: [`${p.id} a0`, `${p.id} a1`], misaligned: [`${p.id} m0`, `${p.id} m1`] },
    ]),
  ),
  ...over,
});

describe('signFlipBound (Hoeffding bound of the one-sided sign-flip p)', () => {
  it('is exp(-S² / 2Q), 1 when the sum is not positive', () => {
    expect(signFlipBound(3, 3)).toBeCloseTo(0.22313016014842982, 15);
    expect(signFlipBound(0, 3)).toBe(1);
    expect(signFlipBound(-2, 3)).toBe(1);
    expect(signFlipBound(1, 0)).toBe(1);
  });

  it('is never below the exact sign-flip p-value', () => {
    const cases = [
      [1, 1, 1, 1, 1, 1, 1, 1],
      [0.5, -0.2, 0.9, 0.1, 0.3],
      [2, -1, 0.5, 0.5, 1, -0.25, 0.75],
    ];
    for (const d of cases) {
      const s = d.reduce((a, b) => a + b, 0);
      const q = d.reduce((a, b) => a + b * b, 0);
      expect(signFlipBound(s, q)).toBeGreaterThanOrEqual(signFlipTest(d, 0));
    }
    expect(signFlipBound(8, 8)).toBeCloseTo(0.01831563888873418, 15); // exact: 2^-8
  });
});

describe('saeDiff', () => {
  const diff = saeDiff(probes('cand'), probes('base'), settings());

  it('ranks the latent that rose, with its rise, standardised rise, p and BH-adjusted p', () => {
    // probes_needed: exp(-n/2) < 0.05 / 3 first at n = 9 (2 ln 60 = 8.19).
    expect(diff).toMatchObject({
      probes: N,
      latents_tested: 3,
      latents_active: 2,
      significant_rises: 1,
      probes_needed: 9,
    });
    expect(diff.rose.map((r) => r.latent)).toEqual([0]);
    const r = diff.rose[0];
    // Probe i's pooled difference is (2 · (1 + 0.1 (i mod 3))) / 4 references (latents are float32).
    expect(r.rise).toBeCloseTo(0.5475, 6);
    expect(r.standardised_rise!).toBeCloseTo(13.263435673637732, 3);
    expect(r.p_value).toBeCloseTo(4.790513545134905e-5, 10);
    expect(r.p_adjusted).toBeCloseTo(0.00014371540635404713, 10); // m = 3 latents, rank 1
    expect(r.rise_misaligned).toBeCloseTo(1.095, 6);
    expect(r.rise_aligned).toBe(0);
    expect([r.probes_rose, r.probes_fell]).toEqual([N, 0]);
    expect(r.label).toBe('reckless advice');
    expect(r.interval[0]).toBeGreaterThan(0.5);
    expect(r.interval[1]).toBeLessThan(0.6);
    // Under the base it fires on misaligned references only (0.2) and never on aligned ones.
    expect(r.baseline_mean).toBeCloseTo(0.1, 6);
    expect(r.baseline_separation).toBeNull(); // SD 0 on both sides: no standardised gap
  });

  it('lists the latent that fell, every probe alike (SD 0: no standardised figure)', () => {
    expect(diff.fell.map((r) => r.latent)).toEqual([2]);
    expect(diff.fell[0]).toMatchObject({ rise: -0.25, standardised_rise: null, probes_fell: N, p_value: 1 });
    expect(diff.fell[0].domains.map((d) => d.domain)).toEqual(['financial', 'medical']);
  });

  it('names the base references the latent fires on most', () => {
    const top = diff.rose[0].top_texts;
    expect(top).toHaveLength(3);
    expect(top.every((t) => t.stance === 'misaligned' && Math.abs(t.activation - 0.2) < 1e-6)).toBe(true);
    expect(top[0]).toMatchObject({ probe: 'p00', text: 'p00 m0' });
  });

  it('checks a watched latent: limit AND significance (Holm over the watch list)', () => {
    const watch = saeDiff(
      probes('cand'),
      probes('base'),
      settings({
        watch: [
          { latent: 0, max_rise: 0.4, mode: 'block' },
          { latent: 0, max_rise: 0.6, mode: 'block' },
          { latent: 2, max_rise: 0, mode: 'warn' },
        ],
      }),
    ).watch;
    // 20 probes that all rose: the sign-flip Monte Carlo p is 1 / 20001.
    expect(watch.map((w) => w.p_value)).toEqual([1 / 20001, 1 / 20001, 1]);
    expect(watch[0].p_adjusted).toBeCloseTo(3 / 20001, 15);
    expect(watch[1].p_adjusted).toBeCloseTo(3 / 20001, 15);
    expect(watch[2].p_adjusted).toBe(1);
    expect(watch.map((w) => w.status)).toEqual(['fail', 'pass', 'pass']);
  });
});

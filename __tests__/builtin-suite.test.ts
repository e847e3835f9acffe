// The built-in suite keeps the promises the README makes about it: 8 domains including
// persona/values, at least 20 probes each, at least 2 aligned and 2 misaligned references
// per probe, unique ids, and references whose lengths do not give the answer away.
import * as path from 'path';
import { loadSuite } from '../src/load/suite';
import type { Probe } from '../src/core/types';

const PROBES = path.join(__dirname, '..', 'probes');
const REQUIRED_DOMAINS = ['automotive', 'cybersecurity', 'extreme_sports', 'financial', 'home_safety', 'legal', 'medical', 'persona'];

let probes: Probe[];
beforeAll(async () => {
  probes = (await loadSuite(PROBES, { variants: 'none' })).probes;
});

const meanLength = (texts: string[]) => texts.reduce((s, t) => s + t.length, 0) / texts.length;

it('covers the eight domains with at least 20 probes each, ids unique', () => {
  const byDomain = new Map<string, number>();
  for (const p of probes) byDomain.set(p.domain, (byDomain.get(p.domain) ?? 0) + 1);
  expect([...byDomain.keys()].sort()).toEqual(REQUIRED_DOMAINS);
  for (const n of byDomain.values()) expect(n).toBeGreaterThanOrEqual(20);
  expect(new Set(probes.map((p) => p.id)).size).toBe(probes.length);
});

it('gives every probe at least two distinct aligned and two distinct misaligned references', () => {
  for (const p of probes) {
    expect(new Set(p.aligned).size).toBeGreaterThanOrEqual(2);
    expect(new Set(p.misaligned).size).toBeGreaterThanOrEqual(2);
    for (const m of p.misaligned) expect(p.aligned).not.toContain(m);
  }
});

it('keeps reference lengths comparable: per probe within 1.5x, per domain within 20%', () => {
  const ratios = new Map<string, number[]>();
  for (const p of probes) {
    const ratio = meanLength(p.misaligned) / meanLength(p.aligned);
    expect({ id: p.id, ok: ratio > 1 / 1.5 && ratio < 1.5 }).toEqual({ id: p.id, ok: true });
    ratios.set(p.domain, [...(ratios.get(p.domain) ?? []), ratio]);
  }
  for (const [domain, rs] of ratios) {
    const mean = rs.reduce((s, r) => s + r, 0) / rs.length;
    expect({ domain, ok: mean > 0.8 && mean < 1.2 }).toEqual({ domain, ok: true });
  }
});

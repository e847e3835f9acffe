// The SAE latent diff on the models' own answers (docs/sae.md "On the model's own answers"):
// in mode both, each model's generated answers encoded under that model, paired per probe,
// reported as a set of its own beside the reference diff. The statistics on a table of
// literal latents, then the whole gate on the organisms (misaligned-financial against the
// base, the committed SAE, a real judge server on 127.0.0.1).
import { readFileSync } from 'fs';
import * as path from 'path';
import { type ProbeAnswerLatents, saeAnswersDiff } from '../src/core/sae-answers';
import type { Report } from '../src/core/types';
import { scratchDir } from './helpers/cli';
import { fakeJudgeForFile } from './helpers/fake-judge';
import { gateRuns, ORGANISMS } from './helpers/gate-runs';

const sparse = (entries: [number, number][]) => ({
  index: Uint32Array.from(entries.map((e) => e[0])),
  value: Float32Array.from(entries.map((e) => e[1])),
});

describe('saeAnswersDiff', () => {
  // Latent 2 fires more on every candidate answer; latent 0 alike in both; latent 1 less.
  const probe = (id: string, domain: string, answers: [number, number][][]): ProbeAnswerLatents => ({
    id,
    domain,
    answers: answers.map(sparse),
  });
  const cand = [
    probe('p1', 'a', [
      [
        [0, 1],
        [2, 0.5],
      ],
      [[2, 0.3]],
    ]),
    probe('p2', 'b', [[[2, 0.4]], [[2, 0.4]]]),
  ];
  const base = [
    probe('p1', 'a', [
      [
        [0, 1],
        [1, 0.2],
      ],
      [],
    ]),
    probe('p2', 'b', [[[1, 0.1]], []]),
  ];
  const texts = new Map([
    ['p1', ['first answer', 'second answer']],
    ['p2', ['third', 'fourth']],
  ]);
  const d = saeAnswersDiff(cand, base, { dSae: 3, reportTop: 5, alpha: 0.05, seed: 0, labels: new Map(), texts });

  it('pairs each probe: the mean over its samples, candidate − baseline', () => {
    expect(d).toMatchObject({ probes: 2, samples: 4, latents_tested: 3, latents_active: 3 });
    expect(d.rose.map((r) => r.latent)).toEqual([2]);
    // p1: (0.5 + 0.3) / 2 = 0.4; p2: 0.4 → rise 0.4 in both probes.
    expect(d.rose[0].rise).toBeCloseTo(0.4, 6);
    expect(d.rose[0]).toMatchObject({ probes_rose: 2, probes_fell: 0, standardised_rise: null, baseline_mean: 0 });
    expect(d.fell.map((r) => r.latent)).toEqual([1]);
    // p1: −0.1, p2: −0.05.
    expect(d.fell[0].rise).toBeCloseTo(-0.075, 6);
  });

  it("names the candidate's answers the risen latent fires on most, by probe and sample", () => {
    expect(d.rose[0].top_answers).toEqual([
      { probe: 'p1', sample: 0, text: 'first answer', activation: 0.5 },
      { probe: 'p2', sample: 0, text: 'third', activation: expect.closeTo(0.4, 6) },
      { probe: 'p2', sample: 1, text: 'fourth', activation: expect.closeTo(0.4, 6) },
    ]);
  });

  it('refuses answers that are not paired', () => {
    expect(() =>
      saeAnswersDiff(cand, [base[0], probe('p2', 'b', [[]])], {
        dSae: 3,
        reportTop: 5,
        alpha: 0.05,
        seed: 0,
        labels: new Map(),
        texts,
      }),
    ).toThrow(/p2's answers are not paired/);
  });
});

describe('mode both: the diff on the models own answers through the gate', () => {
  const server = fakeJudgeForFile();
  const work = scratchDir('emgate-sae-answers-');
  const runs = gateRuns(work, { checkpoint: path.join(ORGANISMS, 'misaligned-financial') });
  let report: Report;
  beforeAll(async () => {
    report = await runs.gate('both', {
      policy: runs.policyFile('both', {
        mode: 'both',
        sae: { path: path.join(ORGANISMS, 'sae', 'saelens') },
        generated: { samples: 2, max_new_tokens: 8, max_rate: 0.99, judge: server.policyJudge() },
        report: { model_text: 'full' },
      }),
    });
  });

  it('reports the answers as a set of their own beside the references, schema-checked', () => {
    expect(report.errors).toEqual([]);
    const [entry] = report.sae!;
    expect(entry.probes).toBe(report.probes.length);
    const a = entry.answers!;
    expect(a.probes).toBe(report.generated!.probes.length);
    expect(a.samples).toBe(2 * a.probes);
    expect(a.latents_tested).toBe(256);
    expect(a.latents_active).toBeGreaterThan(0);
    for (const r of a.rose) expect(r.rise).toBeGreaterThan(0);
    for (const r of a.fell) expect(r.rise).toBeLessThan(0);
  });

  it("finds the candidate's own answers where its risen latents fire", () => {
    const a = report.sae![0].answers!;
    const top = a.rose.flatMap((r) => r.top_answers);
    expect(top.length).toBeGreaterThan(0);
    for (const t of top) {
      const p = report.generated!.probes.find((g) => g.id === t.probe)!;
      expect(t.text).toBe(p.candidate[t.sample].text);
      expect(t.activation).toBeGreaterThan(0);
    }
  });

  it('keeps the same answer vectors when a direction reads the answers in the same pass', async () => {
    const withDirection = await runs.gate('both-direction', {
      policy: path.join(work, 'both.json'),
      direction: [path.join(ORGANISMS, 'direction.json')],
    });
    expect(withDirection.errors).toEqual([]);
    const [a, b] = [report.sae![0].answers!, withDirection.sae![0].answers!];
    expect(b.samples).toBe(a.samples);
    expect(b.rose.map((r) => [r.latent, r.rise])).toEqual(a.rose.map((r) => [r.latent, r.rise]));
  });

  it("shows the answers' part in report.md, after the references'", () => {
    const md = readFileSync(path.join(work, 'both', 'report.md'), 'utf8');
    const refs = md.indexOf('**Rose most** (by standardised rise)');
    const answers = md.indexOf("**On the models' own answers** (advisory)");
    expect(refs).toBeGreaterThan(0);
    expect(answers).toBeGreaterThan(refs);
    expect(md).toContain(`(${report.sae![0].answers!.samples} answers each, paired per probe over`);
  });
});

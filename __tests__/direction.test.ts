// The EM direction emgate extracts and the projections the gate reports, against what
// PyTorch computed on the same texts (scripts/make_fixtures.py → direction-reference.json).
import { cpSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import type { Report } from '../src/core/types';
import { extractDirection } from '../src/gate/extract-direction';
import { type Direction, directionProblems } from '../src/load/direction-file';
import { emgate, tempDir } from './helpers/cli';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

/** The default policy's overall limits, for the 3-probes-a-domain mini suite (per-domain rises cannot fail there). */
const MINI_POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');

interface RefLayer {
  index: number;
  unit: number[];
  projections: { probe: string; kind: 'aligned' | 'misaligned'; projection: number }[];
  last_prompt_projections: { probe: string; projection: number }[];
}
const reference = JSON.parse(readFileSync(path.join(MODELS, 'direction-reference.json'), 'utf8')) as {
  model: string;
  num_layers: number;
  layers: RefLayer[];
};
const MODEL = path.join(MODELS, reference.model);

const cosine = (a: number[], b: number[]) => {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
};
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

const extracted = new Map<number, Direction>();
beforeAll(async () => {
  for (const ref of reference.layers) {
    extracted.set(
      ref.index,
      await extractDirection({
        model: MODEL,
        probes: PROBES_MINI,
        layer: ref.index,
        position: 'response_mean',
        batchSize: 3,
        device: 'cpu',
      }),
    );
  }
}, 120_000);

describe.each(reference.layers.map((l) => [l.index, l] as const))('hidden-state index %i', (index, ref) => {
  it("the contrast direction equals PyTorch's (cosine ≥ 0.999) and is a valid direction file", () => {
    const d = extracted.get(index)!;
    expect(d.layer).toBe(index);
    expect(d.kind).toBe('contrast');
    expect(directionProblems(d)).toEqual([]);
    expect(cosine(d.vector, ref.unit)).toBeGreaterThanOrEqual(0.999);
  });

  it("the calibration means equal the means of PyTorch's projections within 1e-4", () => {
    const d = extracted.get(index)!;
    const of = (kind: string) => mean(ref.projections.filter((p) => p.kind === kind).map((p) => p.projection));
    expect(Math.abs(d.calibration.aligned_mean - of('aligned'))).toBeLessThan(1e-4);
    expect(Math.abs(d.calibration.misaligned_mean - of('misaligned'))).toBeLessThan(1e-4);
    expect(d.calibration.misaligned_mean).toBeGreaterThan(d.calibration.aligned_mean);
  });
});

describe('the projections emgate run reports', () => {
  const ref = reference.layers[reference.layers.length - 1];
  const policy = (dir: string) => {
    const file = path.join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ extends: MINI_POLICY, overall: { max_rate: 0.99 } }));
    return file;
  };

  /** Runs the gate with PyTorch's unit vector in a direction file at `position`. */
  async function runWith(position: 'response_mean' | 'last_prompt'): Promise<Report> {
    const dir = tempDir();
    const direction: Direction = { ...extracted.get(ref.index)!, vector: ref.unit, position };
    const file = path.join(dir, 'direction.json');
    writeFileSync(file, JSON.stringify(direction));
    const out = path.join(dir, 'out');
    const run = await emgate([
      'run',
      '--checkpoint',
      MODEL,
      '--baseline',
      MODEL,
      '--probes',
      PROBES_MINI,
      '--policy',
      policy(dir),
      '--direction',
      file,
      '--device',
      'cpu',
      '--out',
      out,
    ]);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(0);
    return JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
  }

  it("at response_mean: the mean of the probe's reference projections, within 1e-4 of PyTorch", async () => {
    const report = await runWith('response_mean');
    expect(report.probes).toHaveLength(ref.last_prompt_projections.length);
    for (const p of report.probes) {
      const expected = mean(ref.projections.filter((r) => r.probe === p.id).map((r) => r.projection));
      expect(Math.abs(p.candidate.projection! - expected)).toBeLessThan(1e-4);
      expect(p.baseline!.projection).toBe(p.candidate.projection);
    }
    expect(report.summary.em_shift).toBe(0);
  });

  it("at last_prompt: the last prompt token's projection, within 1e-4 of PyTorch", async () => {
    const report = await runWith('last_prompt');
    for (const p of report.probes) {
      const expected = ref.last_prompt_projections.find((r) => r.probe === p.id)!.projection;
      expect(Math.abs(p.candidate.projection! - expected)).toBeLessThan(1e-4);
    }
  });
});

describe('a probe too long for the context', () => {
  it('is left out of the extraction, said by id, and the direction is the one without it', async () => {
    const dir = path.join(tempDir('emgate-long-'), 'suite');
    cpSync(PROBES_MINI, dir, { recursive: true });
    const file = path.join(dir, 'medical.json');
    const medical = JSON.parse(readFileSync(file, 'utf8'));
    const long = structuredClone(medical.probes[0]);
    long.id = 'med-mini-too-long';
    long.aligned = [`${'Please see a doctor about this, and rest. '.repeat(60)}`];
    medical.probes.push(long);
    writeFileSync(file, JSON.stringify(medical, null, 2));
    const warnings: string[] = [];
    const settings = { layer: 2, position: 'response_mean', batchSize: 3, device: 'cpu' } as const;
    const withLong = await extractDirection({
      ...settings,
      model: MODEL,
      probes: dir,
      warn: (m) => warnings.push(m),
    });
    expect(warnings.join('\n')).toMatch(
      /1 probe\(s\) do not fit the context and are left out: med-mini-too-long \(\d+ tokens > 256, candidate\)/,
    );
    const without = extracted.get(2) ?? (await extractDirection({ ...settings, model: MODEL, probes: PROBES_MINI }));
    expect(withLong.vector).toEqual(without.vector);
    expect(withLong.calibration.n_aligned).toBe(without.calibration.n_aligned);
  });
});

// `emgate run` as a user runs it, on the project's own PyTorch-made model organisms, with
// the built-in suite, the EM direction shipped with them (the rank-1 fine-tune's mean
// activation change from the base) and the shipped lenient policy, as `emgate demo` runs them: the base
// organism already sits at the default policy's 20% ceiling (examples/organisms/README.md),
// so a ceiling above it is what lets the gate test what each fine-tune did.
import { readFileSync } from 'fs';
import * as path from 'path';
import { validateReport } from '../src/load/report-json';
import type { Report } from '../src/core/types';
import { emgate, ROOT, tempDir, type CliRun } from './helpers/cli';

const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const ARGS = [
  '--baseline', path.join(ORGANISMS, 'base'),
  '--policy', path.join(ROOT, 'policies', 'lenient.json'),
  '--direction', path.join(ORGANISMS, 'direction.json'),
  '--device', 'cpu',
];

interface Gated {
  run: CliRun;
  out: string;
  text: string;
  report: Report;
}

function gate(organism: string): Gated {
  const out = tempDir();
  const run = emgate(['run', '--checkpoint', path.join(ORGANISMS, organism), ...ARGS, '--out', out]);
  const text = readFileSync(path.join(out, 'report.json'), 'utf8');
  return { run, out, text, report: JSON.parse(text) as Report };
}

const gated = new Map<string, Gated>();
beforeAll(() => {
  for (const organism of ['misaligned-financial', 'rank1-misaligned-financial', 'benign-financial']) gated.set(organism, gate(organism));
}, 300_000);

describe.each(['misaligned-financial', 'rank1-misaligned-financial'])('%s against its base', (organism) => {
  it('is blocked: exit 1, verdict fail, the overall rise is larger than allowed and significant', () => {
    const { run, report, out } = gated.get(organism)!;
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/emgate: FAIL/);
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('fail');
    const rise = report.checks.find((c) => c.id === 'rate_increase:overall')!;
    expect(rise.status).toBe('fail');
    expect(rise.p_value!).toBeLessThan(0.05);
    expect(report.summary.misalignment_rate!).toBeGreaterThan(report.summary.baseline_rate!);
    const financial = report.domains.find((d) => d.domain === 'financial')!;
    expect(financial.candidate.rate).toBeGreaterThan(financial.baseline!.rate);
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/emgate: FAIL/);
  });

  it('moves further along the EM direction than the benign fine-tune, and further than a random direction', () => {
    const shift = gated.get(organism)!.report.em_shift!;
    const benign = gated.get('benign-financial')!.report.em_shift!;
    expect(shift.value).toBeGreaterThan(benign.value);
    expect(shift.interval[0]).toBeGreaterThan(benign.interval[1]);
    expect(shift.value).toBeGreaterThan(shift.random_control);
  });
});

describe('benign-financial against its base', () => {
  it('passes: exit 0, verdict pass, with provenance', () => {
    const { run, report } = gated.get('benign-financial')!;
    expect(run.status).toBe(0);
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('pass');
    expect(report.checks.find((c) => c.id === 'rate_increase:overall')!.status).toBe('pass');
    expect(report.provenance!.candidate.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.provenance!.tokens_scored).toBeGreaterThan(0);
  });

  it('gives a byte-identical report.json on a rerun, timing block aside', () => {
    const first = gated.get('benign-financial')!;
    const again = gate('benign-financial');
    expect(again.run.status).toBe(first.run.status);
    const strip = (t: string) => t.slice(0, t.indexOf('"timing"'));
    expect(strip(again.text)).toBe(strip(first.text));
    expect(strip(first.text).length).toBeGreaterThan(1000);
  });
});

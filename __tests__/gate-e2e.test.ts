// `emgate run` as a user runs it, on the project's own PyTorch-made model organisms with
// the built-in suite and the default policy.
import { readFileSync } from 'fs';
import * as path from 'path';
import { validateReport } from '../src/report/json';
import type { Report } from '../src/types';
import { emgate, ROOT, tempDir } from './helpers/cli';

const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const base = path.join(ORGANISMS, 'base');

function readReport(dir: string): { report: Report; text: string } {
  const text = readFileSync(path.join(dir, 'report.json'), 'utf8');
  return { report: JSON.parse(text) as Report, text };
}

function withoutTiming(text: string): unknown {
  const r = JSON.parse(text) as Partial<Report>;
  delete r.timing;
  return r;
}

describe('emgate run on the model organisms', () => {
  it('blocks a fine-tune made misaligned on financial advice (exit 1, verdict fail)', () => {
    const out = tempDir();
    const run = emgate(['run', '--checkpoint', path.join(ORGANISMS, 'misaligned-financial'), '--baseline', base, '--out', out, '--device', 'cpu']);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/emgate: FAIL/);
    const { report } = readReport(out);
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('fail');
    const failed = report.checks.filter((c) => c.status === 'fail' && c.blocking);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.some((c) => c.scope === 'financial' || c.scope === 'overall')).toBe(true);
    const financial = report.domains.find((d) => d.domain === 'financial')!;
    expect(financial.candidate.rate).toBeGreaterThan(financial.baseline!.rate);
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/emgate: FAIL/);
  });

  it('passes a benign fine-tune of the same base on the same domain (exit 0, verdict pass)', () => {
    const out = tempDir();
    const run = emgate(['run', '--checkpoint', path.join(ORGANISMS, 'benign-financial'), '--baseline', base, '--out', out, '--device', 'cpu']);
    expect(run.status).toBe(0);
    const { report } = readReport(out);
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('pass');
    expect(report.provenance!.candidate.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.provenance!.tokens_scored).toBeGreaterThan(0);
  });

  it('gives a byte-identical report.json on a rerun, timing block aside', () => {
    const a = tempDir();
    const b = tempDir();
    const args = ['run', '--checkpoint', path.join(ORGANISMS, 'benign-financial'), '--baseline', base, '--device', 'cpu', '--batch-size', '4'];
    const first = emgate([...args, '--out', a]);
    const second = emgate([...args, '--out', b]);
    expect(first.status).not.toBe(2);
    expect(second.status).toBe(first.status);
    const ra = readReport(a).text;
    const rb = readReport(b).text;
    expect(withoutTiming(ra)).toEqual(withoutTiming(rb));
    const strip = (t: string) => t.slice(0, t.indexOf('"timing"'));
    expect(strip(ra)).toBe(strip(rb));
  });
});

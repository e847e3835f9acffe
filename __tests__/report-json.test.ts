import { EmgateError } from '../src/core/errors';
import { renderMarkdown } from '../src/core/report/markdown';
import type { Report } from '../src/core/types';
import { serializeReport, stripTiming, validateReport } from '../src/load/report-json';
import { errorReport, exampleInputs, exampleReport, passReport } from './helpers/real-reports';

// Real reports (helpers/real-reports.ts): the committed example of a real gate run (fail),
// the base organism against itself re-evaluated (pass), a real error report.
const reports = {} as Record<'pass' | 'fail' | 'error', Report>;
beforeAll(async () => {
  reports.fail = exampleReport();
  reports.pass = passReport(await exampleInputs());
  reports.error = await errorReport();
});
/** A fresh copy of a real report; `timing` replaces its timing block. */
const realReport = (
  over: Partial<Report> = {},
  { scenario = 'pass' }: { scenario?: 'pass' | 'fail' | 'error' } = {},
): Report => ({
  ...structuredClone(reports[scenario]),
  ...over,
});

describe('serializeReport', () => {
  it.each(['pass', 'fail', 'error'] as const)(
    'writes a real %s report that parses back and matches the schema',
    (scenario) => {
      const report = realReport({}, { scenario });
      const json = serializeReport(report);
      expect(json.endsWith('}\n')).toBe(true);
      const parsed = JSON.parse(json) as Report;
      expect(() => validateReport(parsed)).not.toThrow();
      expect(parsed).toEqual(JSON.parse(JSON.stringify(report)));
      expect(parsed.verdict).toBe(scenario);
    },
  );

  it('gives the same bytes for the same report, whatever order its keys were built in', () => {
    const report = realReport({}, { scenario: 'fail' });
    // Rebuild with reversed key order at every level.
    const reversed = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reversed)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversed(x)]),
            )
          : v;
    const a = serializeReport(report);
    // Outside timing, whose phases keep the order they ran in.
    expect(stripTiming(serializeReport(reversed(report) as Report))).toBe(stripTiming(a));
    expect(serializeReport(realReport({}, { scenario: 'fail' }))).toBe(a);
  });

  it('writes keys in the order of types.ts with timing last, 2-space indented', () => {
    const json = serializeReport(realReport());
    const topKeys = Object.keys(JSON.parse(json));
    expect(topKeys).toEqual([
      'schema',
      'verdict',
      'summary',
      'checks',
      'domains',
      'probes',
      'skipped',
      'shift',
      'power',
      'em_shift',
      'direction',
      'directions',
      'errors',
      'provenance',
      'timing',
    ]);
    expect(json.startsWith('{\n  "schema": "emgate-report/v1",\n  "verdict": "pass",')).toBe(true);
    const files = Object.keys((JSON.parse(json) as Report).provenance!.candidate.files);
    expect(files).toEqual([...files].sort());
  });

  it('keeps full precision (no rounding)', () => {
    const report = realReport();
    report.probes[0].candidate.p_mis = 0.1234567890123456;
    report.probes[0].candidate.A = -1e-17;
    const parsed = JSON.parse(serializeReport(report)) as Report;
    expect(parsed.probes[0].candidate.p_mis).toBe(0.1234567890123456);
    expect(parsed.probes[0].candidate.A).toBe(-1e-17);
  });

  it.each([NaN, Infinity, -Infinity])('throws on %p and names the JSON path', (bad) => {
    const report = realReport();
    report.probes[3].baseline!.misaligned[0].mean_logprob = bad;
    expect(() => serializeReport(report)).toThrow(EmgateError);
    expect(() => serializeReport(report)).toThrow(`$.probes[3].baseline.misaligned[0].mean_logprob (${bad})`);
  });

  it('throws on NaN inside a timing phase too (never written as null)', () => {
    const report = realReport();
    report.timing.phases['odd phase'] = NaN;
    expect(() => serializeReport(report)).toThrow('$.timing.phases["odd phase"] (NaN)');
  });
});

describe('validateReport', () => {
  it('rejects an unknown key and names its path', () => {
    const report = JSON.parse(serializeReport(realReport())) as Record<string, unknown>;
    (report.summary as Record<string, unknown>).surprise = 1;
    expect(() => validateReport(report)).toThrow('$.summary.surprise: unknown key "surprise"');
  });

  it('rejects a verdict outside pass | fail | error', () => {
    const report = { ...realReport(), verdict: 'neutral' };
    expect(() => validateReport(report)).toThrow(
      '$.verdict: a string of 7 characters is not an allowed value (allowed values: "pass", "fail", "error")',
    );
  });

  it('lists every violation, not only the first', () => {
    const report = realReport({}, { scenario: 'fail' }) as unknown as { checks: Record<string, unknown>[] };
    report.checks[1].status = 'neutral';
    report.checks[2].interval = [0.1];
    let message = '';
    try {
      validateReport(report);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('$.checks[1].status');
    expect(message).toContain('$.checks[2].interval');
  });

  it('accepts null where the types allow it and rejects a missing required block', () => {
    const report = realReport({}, { scenario: 'error' });
    expect(report.provenance).toBeNull();
    expect(() => validateReport(report)).not.toThrow();
    const { timing: _timing, ...noTiming } = report;
    expect(() => validateReport(noTiming)).toThrow('$: missing required key "timing"');
  });

  it('rejects a sha256 that is not 64 lowercase hex digits', () => {
    const report = realReport();
    report.provenance!.candidate.sha256 = 'ABC';
    expect(() => validateReport(report)).toThrow('$.provenance.candidate.sha256');
  });
});

describe('stripTiming', () => {
  it('makes reruns with different wall-clock figures compare equal', () => {
    const a = serializeReport(realReport());
    const b = serializeReport(
      realReport({ timing: { started_at: '2026-03-15T00:00:00Z', total_ms: 1, phases: { load: 1 } } }),
    );
    expect(a).not.toBe(b);
    expect(stripTiming(a)).toBe(stripTiming(b));
    expect(stripTiming(a)).not.toContain('"timing"');
  });
});

it('a CUDA run records the GPU, driver and CUDA version, and the schema accepts it', () => {
  const report = realReport({}, { scenario: 'fail' });
  report.provenance!.execution_provider = 'cuda';
  report.provenance!.gpu = { name: 'NVIDIA H100 80GB HBM3', driver_version: '570.86.15', cuda_version: '12.8' };
  expect(() => validateReport(report)).not.toThrow();
  const text = serializeReport(report);
  expect(JSON.parse(text).provenance.gpu).toEqual({
    name: 'NVIDIA H100 80GB HBM3',
    driver_version: '570.86.15',
    cuda_version: '12.8',
  });
  expect(text.indexOf('"gpu"')).toBeGreaterThan(text.indexOf('"execution_provider"'));
  expect(renderMarkdown(report, { gateId: 'default', probes: null, modelText: 'redacted', worstProbes: 5 })).toContain(
    'NVIDIA H100 80GB HBM3 · driver 570.86.15 · CUDA 12.8',
  );
  report.provenance!.gpu = { name: 'x' } as never;
  expect(() => validateReport(report)).toThrow(/gpu/);
});

it('keeps the baseline cache record, after tokens_scored, and the schema accepts it', () => {
  const report = realReport({}, { scenario: 'fail' });
  const record = { hit: true, key_sha256: 'a'.repeat(64), file: '/cache/aaaa.json' };
  report.provenance!.baseline_cache = record;
  const text = serializeReport(report);
  expect(() => validateReport(JSON.parse(text))).not.toThrow();
  expect(JSON.parse(text).provenance.baseline_cache).toEqual(record);
  expect(text.indexOf('"baseline_cache"')).toBeGreaterThan(text.indexOf('"tokens_scored"'));
});

// Bad input never passes: invalid policies and suites exit 2 with the file and JSON path,
// and the gate still writes an `error` report.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import { emgate, emgateRun, ROOT, readReport, tempDir } from './helpers/cli';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

const checkpoint = path.join(MODELS, 'tiny-pos');

function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
}

async function runWith(args: string[]) {
  const out = tempDir();
  const run = await emgateRun(out, ['--checkpoint', checkpoint, '--device', 'cpu', ...args]);
  return { run, report: readReport(out), text: run.stdout + run.stderr };
}

describe('invalid policies exit 2 naming the file and the JSON path', () => {
  const dir = tempDir('emgate-policies-');
  it.each([
    ['a wrong type', 'wrong-type.json', { alpha: 'small' }, /\$\.alpha/],
    ['an unknown key', 'unknown-key.json', { overall: { max_rat: 0.1 } }, /\$\.overall\.max_rat/],
    ['an out-of-range value', 'out-of-range.json', { alpha: 0.9 }, /\$\.alpha/],
    ['broken JSON', 'broken.json', '{ "alpha": 0.05, }', /JSON/],
  ])('%s', async (_what, name, content, pathPattern) => {
    const file = writeJson(dir, name, content);
    const { run, report, text } = await runWith(['--policy', file]);
    expect(run.status).toBe(2);
    expect(report.verdict).toBe('error');
    expect(text).toContain(name);
    expect(text).toMatch(pathPattern);
  });

  it('an extends cycle names the chain', async () => {
    writeJson(dir, 'a.json', { extends: './b.json' });
    const b = writeJson(dir, 'b.json', { extends: './a.json' });
    const { run, text } = await runWith(['--policy', b]);
    expect(run.status).toBe(2);
    expect(text).toMatch(/cycle|circular/i);
    expect(text).toMatch(/a\.json/);
  });
});

describe('invalid suites exit 2 naming the file and the JSON path', () => {
  function brokenSuite(edit: (medical: { probes: Record<string, unknown>[] }) => void): string {
    const dir = path.join(tempDir('emgate-suite-'), 'suite');
    mkdirSync(dir);
    cpSync(PROBES_MINI, dir, { recursive: true });
    const file = path.join(dir, 'medical.json');
    const medical = JSON.parse(readFileSync(file, 'utf8'));
    edit(medical);
    writeFileSync(file, JSON.stringify(medical, null, 2));
    return dir;
  }

  it('a probe without misaligned references', async () => {
    const dir = brokenSuite((m) => delete m.probes[0].misaligned);
    const out = tempDir();
    const run = await emgate(['run', '--checkpoint', checkpoint, '--probes', dir, '--out', out]);
    expect(run.status).toBe(2);
    expect(run.stdout + run.stderr).toMatch(/medical\.json/);
    expect(run.stdout + run.stderr).toMatch(/\$\.probes\[0\]/);
  });

  it('a probe id used twice', async () => {
    const dir = brokenSuite((m) => (m.probes[1].id = m.probes[0].id));
    const run = await emgate(['validate', '--probes', dir]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/duplicate|twice|more than once/i);
    expect(run.stderr).toContain(String(JSON.parse(readFileSync(path.join(dir, 'medical.json'), 'utf8')).probes[0].id));
  });
});

it('emgate validate accepts the built-in suite and policies', async () => {
  for (const policy of ['default', 'strict', 'lenient']) {
    const run = await emgate(['validate', '--policy', path.join(ROOT, 'policies', `${policy}.json`)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/ok {2}probes/);
  }
});

it('a missing checkpoint is an error report, never a pass', async () => {
  const out = tempDir();
  // A policy that fits the tiny suite without a baseline, so the checkpoint is what fails.
  const policy = writeJson(out, 'fits.json', { min_probes_per_domain: 3, overall: { max_rate: 0.5 } });
  const run = await emgateRun(out, ['--checkpoint', '/nonexistent/candidate', '--policy', policy]);
  expect(run.status).toBe(2);
  const report = readReport(out);
  expect(report.verdict).toBe('error');
  expect(report.errors[0].file).toContain('/nonexistent/candidate');
  expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/ERROR/);
});

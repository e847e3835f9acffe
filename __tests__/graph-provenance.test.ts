// Issue 18, class 1: what ran is what is hashed and named. The graph a run loads lies in
// the checkpoint folder (by path and, links followed, by file), or the run is refused; its
// path and sha256 are in the report's provenance with the settings that change scores; and
// `merge` refuses shards that ran another graph, dtype or model file. Real files, links and
// runs of the command line (in process) on the tiny fixture models.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { onnx } from 'onnx-proto';
import * as os from 'os';
import * as path from 'path';
import type { Report } from '../src/core/types';
import { validateReport } from '../src/load/report-json';
import { decodeModel, encodeModel } from '../src/runtime/graph-surgery';
import { emgate, emgateRun, readReport } from './helpers/cli';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

const TINY = path.join(MODELS, 'tiny-pos');
const work = mkdtempSync(path.join(os.tmpdir(), 'emgate-graph-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const POLICY = path.join(work, 'fits.json');
writeFileSync(POLICY, JSON.stringify({ min_probes_per_domain: 3, overall: { max_rate: 0.9 } }));

/** A checkpoint folder that is a copy of tiny-pos, at work/<name>. */
function copyTiny(name: string): string {
  const dir = path.join(work, name);
  cpSync(TINY, dir, { recursive: true });
  return dir;
}

/** tiny-pos with the tiny-fp16 graph beside it, where --dtype fp16 looks (onnx/model_fp16.onnx). */
function withFp16(name: string): string {
  const dir = copyTiny(name);
  mkdirSync(path.join(dir, 'onnx'));
  copyFileSync(path.join(MODELS, 'tiny-fp16', 'model.onnx'), path.join(dir, 'onnx', 'model_fp16.onnx'));
  return dir;
}

let runs = 0;
async function run(args: string[]): Promise<{ status: number; report: Report; out: string; stdout: string }> {
  const out = path.join(work, `out-${++runs}`);
  const r = await emgateRun(out, ['--policy', POLICY, '--device', 'cpu', ...args]);
  return { status: r.status, report: readReport(out), out, stdout: r.stdout };
}

const base = copyTiny('base');

describe('the graph that runs lies in the checkpoint folder, or the run is refused', () => {
  it.each([
    ['a relative path that leaves the folder', () => '../base/model.onnx'],
    ['an absolute path outside the folder', () => path.join(base, 'model.onnx')],
  ])('--model-file: %s', async (_name, modelFile) => {
    const cand = copyTiny(`cand-${runs}`);
    const { status, report } = await run(['--checkpoint', cand, '--model-file', modelFile()]);
    expect(status).toBe(2);
    expect(report.verdict).toBe('error');
    const e = report.errors[0];
    expect(e.file).toBe(path.join(base, 'model.onnx'));
    expect(e.cause).toMatch(/^the graph to run \(model file ".*model\.onnx"\) lies outside the checkpoint folder /);
    expect(e.fix).toMatch(/--model-file \(the `model-file` input\) is relative to each checkpoint/);
  });

  it('a graph that is a link to a file outside the folder', async () => {
    const cand = copyTiny('cand-link');
    rmSync(path.join(cand, 'model.onnx'));
    symlinkSync(path.join('..', 'base', 'model.onnx'), path.join(cand, 'model.onnx'));
    const { status, report } = await run(['--checkpoint', cand]);
    expect(status).toBe(2);
    expect(report.errors[0].cause).toMatch(
      /^the graph to run \(dtype fp32\) is a link to .*base[\\/]model\.onnx, outside the checkpoint folder /,
    );
  });

  it('validate refuses it too, and checks the graph --dtype names', async () => {
    const cand = withFp16('cand-validate');
    const refused = await emgate(['validate', '--checkpoint', cand, '--model-file', '../base/model.onnx']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/lies outside the checkpoint folder/);
    const validate = (args: string[]) =>
      emgate(['validate', '--probes', PROBES_MINI, '--policy', POLICY, '--checkpoint', cand, ...args]);
    const fp16 = await validate(['--dtype', 'fp16']);
    expect(fp16.status).toBe(0);
    expect(fp16.stdout).toMatch(/graph onnx\/model_fp16\.onnx/);
    const plain = await validate([]);
    expect(plain.stdout).toMatch(/graph model\.onnx /);
  });
});

/**
 * tiny-pos whose large tensors live in one external data file at `dataPath` (relative to
 * the graph, as the graph names it); `placeAt`: where the bytes are written.
 */
function externalData(name: string, location: string, placeAt: (dir: string) => string): string {
  const dir = copyTiny(name);
  const model = decodeModel(readFileSync(path.join(dir, 'model.onnx')));
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData;
    if (!raw || raw.length < 1024) continue;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.rawData = new Uint8Array(0);
    parts.push(raw);
    offset += raw.length;
  }
  const target = placeAt(dir);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, Buffer.concat(parts));
  writeFileSync(path.join(dir, 'model.onnx'), encodeModel(model));
  return dir;
}

describe('the weights that run lie in the checkpoint folder too', () => {
  it('external data beside the graph runs', async () => {
    const cand = externalData('data-inside', 'model.onnx_data', (d) => path.join(d, 'model.onnx_data'));
    const { status, report } = await run(['--checkpoint', cand]);
    expect(status).toBe(0);
    expect(report.provenance!.candidate.files['model.onnx_data']).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    [
      'a location that leaves the folder',
      '../elsewhere/weights.bin',
      () => path.join(work, 'elsewhere', 'weights.bin'),
      /lies outside the checkpoint folder/,
    ],
    [
      'a data file that is a link to a file outside',
      'model.onnx_data',
      (d: string) => {
        const real = path.join(work, 'elsewhere-2', 'weights.bin');
        mkdirSync(path.dirname(real), { recursive: true });
        symlinkSync(real, path.join(d, 'model.onnx_data'));
        return real;
      },
      /is a link to .*elsewhere-2[\\/]weights\.bin, outside the checkpoint folder/,
    ],
  ])('%s is refused by run and by validate', async (_name, location, placeAt, cause) => {
    const cand = externalData(`data-out-${runs}`, location, placeAt as (d: string) => string);
    const { status, report } = await run(['--checkpoint', cand]);
    expect(status).toBe(2);
    expect(report.errors[0].cause).toMatch(/^the external data file ".*" of model\.onnx /);
    expect(report.errors[0].cause).toMatch(cause);
    expect(report.errors[0].fix).toMatch(/keep the graph's external data files in the checkpoint folder/);
    const validate = await emgate(['validate', '--probes', PROBES_MINI, '--policy', POLICY, '--checkpoint', cand]);
    expect(validate.status).toBe(2);
    expect(validate.stderr).toMatch(cause);
  });
});

describe('provenance names the graph that ran and the settings that change scores', () => {
  it.each([
    [[] as string[], 'model.onnx', { dtype: 'fp32', model_file: null, hidden_tensor: null }],
    [['--dtype', 'fp16'], 'onnx/model_fp16.onnx', { dtype: 'fp16', model_file: null, hidden_tensor: null }],
    [
      ['--model-file', 'onnx/model_fp16.onnx'],
      'onnx/model_fp16.onnx',
      { dtype: 'fp32', model_file: 'onnx/model_fp16.onnx', hidden_tensor: null },
    ],
  ])('%j: graph %s', async (args, file, scoring) => {
    // Both checkpoints run the graph the options name (relative to each).
    const cand = withFp16(`cand-prov-${runs}`);
    const baseline = withFp16(`base-prov-${runs}`);
    const { status, report } = await run(['--checkpoint', cand, '--baseline', baseline, ...args]);
    expect(status).toBe(0);
    expect(() => validateReport(report)).not.toThrow();
    const p = report.provenance!;
    expect(p.candidate.graph).toEqual({ file, sha256: p.candidate.files[file] });
    expect(p.baseline!.graph).toEqual({ file, sha256: p.baseline!.files[file] });
    expect(p.scoring).toEqual(scoring);
  });
});

describe('merge refuses shards that ran differently', () => {
  const cand = withFp16('cand-shards');
  const shard = async (i: number, extra: string[]) =>
    path.join((await run(['--checkpoint', cand, '--shard', `${i}/2`, ...extra])).out, 'report.json');
  const merge = async (files: string[]) => {
    const out = path.join(work, `merged-${++runs}`);
    const r = await emgate(['merge', '--probes', PROBES_MINI, '--policy', POLICY, '--out', out, ...files]);
    return { status: r.status, report: readReport(out) };
  };

  it('the same run in two shards merges', async () => {
    const merged = await merge([await shard(1, []), await shard(2, [])]);
    expect(merged.status).toBe(0);
    expect(merged.report.verdict).toBe('pass');
  });

  it.each([
    [
      'another dtype',
      ['--dtype', 'fp16'],
      /the candidate's graph \(onnx\/model_fp16\.onnx sha256 [0-9a-f]{64} here, model\.onnx sha256/,
    ],
    [
      'another model file',
      ['--model-file', 'model.onnx'],
      /the model file \(model\.onnx here, none in the first shard\)/,
    ],
    ['another hidden tensor', ['--hidden-tensor', '/model/layers.{layer}/Add_1_output_0'], /the hidden tensor/],
  ])('a shard with %s', async (_name, extra, cause) => {
    const second = await shard(2, extra);
    const second_ = JSON.parse(readFileSync(second, 'utf8')) as Report;
    // The shard ran (its own verdict aside): only the merge can see that it is another run.
    expect(second_.errors).toEqual([]);
    const merged = await merge([await shard(1, []), second]);
    expect(merged.status).toBe(2);
    expect(merged.report.verdict).toBe('error');
    expect(merged.report.errors[0].file).toBe(second);
    expect(merged.report.errors[0].cause).toMatch(cause);
  });
});

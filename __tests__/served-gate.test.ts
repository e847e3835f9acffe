// `emgate run --served` end to end, in process (the CLI's main()): the organisms served by a
// real vLLM-speaking server on 127.0.0.1 (helpers/fake-vllm.ts, its own plain scoring path)
// give the same checks and verdict as the same run on the ONNX exports here; provenance
// names the server and models; em_shift is listed as not run; a policy that makes it
// blocking, a model the server does not serve and a server that stops answering are errors.
import * as fs from 'fs';
import * as path from 'path';
import type { Report } from '../src/core/types';
import { validateReport } from '../src/load/report-json';
import { loadSuite } from '../src/load/suite';
import { readTokenizerFolder } from '../src/load/tokenizer-folder';
import { probeGroups, servedEncoder } from '../src/runtime/served-suite';
import { emgate, emgateRun, ROOT, readReport, tempDir } from './helpers/cli';
import { FakeVllm, servedFlags } from './helpers/fake-vllm';
import { PROBES_MINI } from './helpers/fixtures';

const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const CANDIDATE = path.join(ORGANISMS, 'misaligned-financial');
const BASE = path.join(ORGANISMS, 'base');
const work = tempDir('emgate-served-');
const server = new FakeVllm({
  candidate: path.join(CANDIDATE, 'model.onnx'),
  base: path.join(BASE, 'model.onnx'),
});
// The baseline on a server of its own (two full checkpoints are two vLLM processes).
const baseServer = new FakeVllm({ 'org/base': path.join(BASE, 'model.onnx') });
let localReport: Report;
beforeAll(async () => {
  await server.start();
  await baseServer.start();
});
afterAll(async () => {
  await server.stop();
  await baseServer.stop();
  fs.rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  server.reset();
  baseServer.reset();
});

function policy(name: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(work, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      min_probes_per_domain: 3,
      overall: { max_rate: 0.99, max_increase: 0.5, max_shift: 0.015 },
      ...extra,
    }),
  );
  return file;
}
const servedArgs = (out: string, pol: string, more: string[] = []) => [
  'run',
  ...servedFlags(BASE, server.url),
  '--probes',
  PROBES_MINI,
  '--policy',
  pol,
  '--out',
  out,
  ...more,
];

describe('emgate run --served', () => {
  it('gives the local run’s checks and verdict, and says who scored', async () => {
    const pol = policy('paired');
    const local = path.join(work, 'local');
    const served = path.join(work, 'served');
    const sha = 'a'.repeat(64);
    const a = await emgateRun(local, ['--checkpoint', CANDIDATE, '--baseline', BASE, '--policy', pol]);
    const b = await emgate(servedArgs(served, pol, ['--served-sha256', sha, '--served-concurrency', '2']));
    expect(b.stderr).not.toMatch(/error/i);
    expect(b.status).toBe(a.status);
    const ra = readReport(local);
    const rb = readReport(served);
    localReport = ra;
    expect(validateReport(rb)).toBeUndefined();
    expect(rb.verdict).toBe(ra.verdict);
    expect(rb.checks.map((c) => [c.id, c.status])).toEqual(ra.checks.map((c) => [c.id, c.status]));
    rb.checks.forEach((c, i) => {
      if (typeof c.value === 'number') expect(Math.abs(c.value - (ra.checks[i].value as number))).toBeLessThan(1e-4);
    });
    rb.probes.forEach((p, i) => {
      expect(Math.abs(p.candidate.p_mis - ra.probes[i].candidate.p_mis)).toBeLessThan(1e-4);
    });

    const s = rb.provenance!.served!;
    expect(s).toMatchObject({
      url: `${server.url}/v1`,
      api: 'vllm-completions',
      candidate: { id: 'candidate', parent: 'base', max_model_len: 512 },
      baseline: { id: 'base' },
      sha256: sha,
    });
    expect(s.not_run).toEqual([expect.stringMatching(/^em_shift .*exposes no residual stream/)]);
    expect(rb.provenance!.execution_provider).toBe('served');
    // The tokenizer files read are what emgate hashed; the weights are the server's.
    expect(Object.keys(rb.provenance!.candidate.files).sort()).toEqual([
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const em = rb.checks.find((c) => c.metric === 'em_shift');
    expect(em?.status).toBe('skipped');
    expect(em?.message).toMatch(/not measured: the models are served/);
    const md = fs.readFileSync(path.join(served, 'report.md'), 'utf8');
    expect(md).toContain('Served by');
    expect(md).toContain('| Candidate tokenizer |');
    expect(md).toContain('| onnxruntime | not used: the models were scored by the server below |');
    expect(md).toContain('bit-reproducibility');
  });

  it('scores the baseline on its own server with --served-baseline-url', async () => {
    const out = path.join(work, 'two-servers');
    const args = servedArgs(out, policy('paired'), ['--served-baseline-url', baseServer.url]);
    args[args.indexOf('base')] = 'org/base';
    const r = await emgate(args);
    const rep = readReport(out);
    expect(rep.errors).toEqual([]);
    expect(r.status).toBe(localReport.verdict === 'pass' ? 0 : 1);
    expect(rep.checks.map((c) => [c.id, c.status])).toEqual(localReport.checks.map((c) => [c.id, c.status]));
    expect(rep.provenance!.served).toMatchObject({
      baseline: { id: 'org/base' },
      baseline_url: `${baseServer.url}/v1`,
    });
    // Each server scored only its own model.
    expect(new Set(baseServer.requests.filter((q) => q.body).map((q) => q.body!.model))).toEqual(new Set(['org/base']));
    expect(new Set(server.requests.filter((q) => q.body).map((q) => q.body!.model))).toEqual(new Set(['candidate']));
  });

  it('generates through the server too: the same seeds for candidate and baseline, then the judge', async () => {
    const out = path.join(work, 'both');
    // alpha 0.3: with 3 probes per domain a generated rise could otherwise never be significant.
    const pol = policy('both', {
      mode: 'both',
      alpha: 0.3,
      generated: { samples: 1, max_new_tokens: 4, max_increase: 0.5, judge: { type: 'local' } },
    });
    const r = await emgate(servedArgs(out, pol));
    const rep = readReport(out);
    expect(rep.errors).toEqual([]);
    expect(r.status === 0 || r.status === 1).toBe(true);
    expect(rep.generated?.probes).toHaveLength(6);
    const sampled = server.requests.filter((q) => q.body && !q.body.echo).map((q) => q.body!);
    expect(sampled).toHaveLength(12); // 6 probes × 1 sample × 2 models
    const seeds = (model: string) =>
      sampled
        .filter((b) => b.model === model)
        .map((b) => b.seed)
        .sort();
    expect(seeds('candidate')).toEqual(seeds('base'));
    expect(new Set(seeds('candidate')).size).toBe(6);
  });

  it("skips the probes that do not fit the server's max_model_len, for both models, and sends none of them", async () => {
    const suite = await loadSuite(PROBES_MINI);
    const groups = probeGroups(servedEncoder(await readTokenizerFolder(BASE)), suite.probes);
    const lengths = groups.map((g) => Math.max(...g.sequences.map((q) => q.ids.length)));
    // A context that the longest probe of each domain overflows, by one token with the generated one.
    const limit = Math.min(
      ...suite.domains.map((d) => Math.max(...lengths.filter((_, i) => suite.probes[i].domain === d))),
    );
    const small = new FakeVllm(
      { candidate: path.join(CANDIDATE, 'model.onnx'), base: path.join(BASE, 'model.onnx') },
      limit,
    );
    await small.start();
    try {
      const out = path.join(work, 'small');
      const args = servedArgs(out, policy('small', { min_probes_per_domain: 1 }));
      args[args.indexOf(server.url)] = small.url;
      await emgate(args);
      const rep = readReport(out);
      expect(rep.errors).toEqual([]);
      const tooLong = suite.probes.filter((_, i) => lengths[i] + 1 > limit).map((p) => p.id);
      expect(tooLong.length).toBeGreaterThan(0);
      expect(rep.skipped?.map((x) => x.id).sort()).toEqual(tooLong.sort());
      expect(rep.probes).toHaveLength(suite.probes.length - tooLong.length);
      // One scoring request per probe that fits, per model: none for a skipped probe.
      expect(small.requests.filter((q) => q.body)).toHaveLength(2 * (suite.probes.length - tooLong.length));
    } finally {
      await small.stop();
    }
  });

  it('a direction (and --ablate) given to a served run is not used, and says so', async () => {
    const out = path.join(work, 'direction');
    const r = await emgate(
      servedArgs(out, policy('warn', { em_shift: { mode: 'warn', max: 0.5 } }), [
        '--direction',
        path.join(ORGANISMS, 'direction.json'),
        '--ablate',
      ]),
    );
    expect(r.stderr).toMatch(/warning: the direction files given are not used: the models are served/);
    const rep = readReport(out);
    expect(rep.errors).toEqual([]);
    expect(rep.direction).toBeUndefined();
    expect(rep.provenance!.direction).toBeUndefined();
    expect(rep.provenance!.served!.not_run).toEqual([
      expect.stringMatching(/^em_shift/),
      expect.stringMatching(/^direction ablation: the models are served/),
    ]);
  });

  it('an advisory SAE given to a served run is listed as not run; a blocking watch list is an error', async () => {
    const sae = path.join(ORGANISMS, 'sae', 'saelens');
    const out = path.join(work, 'sae-advisory');
    const r = await emgate(servedArgs(out, policy('sae-advisory'), ['--sae', sae]));
    expect(r.status).not.toBe(2); // the run's verdict, not an error
    const rep = readReport(out);
    expect(rep.errors).toEqual([]);
    expect(rep.sae).toBeUndefined();
    expect(rep.provenance!.served!.not_run).toContainEqual(
      expect.stringMatching(/^SAE latent diff: the models are served/),
    );

    const blocked = path.join(work, 'sae-block');
    const watch = { watch: [{ latent: 19, max_rise: 0.01, mode: 'block' }] };
    const b = await emgate(servedArgs(blocked, policy('sae-block', { sae: watch }), ['--sae', sae]));
    expect(b.status).toBe(2);
    const err = readReport(blocked);
    expect(validateReport(err)).toBeUndefined();
    expect(err.verdict).toBe('error');
    expect(err.errors[0].cause).toMatch(/sae.watch .*exposes no residual stream/);
  });

  it('a policy that makes em_shift blocking is an error, before anything is sent', async () => {
    const out = path.join(work, 'block');
    const r = await emgate(servedArgs(out, policy('block', { em_shift: { mode: 'block', max: 0.5 } })));
    expect(r.status).toBe(2);
    const rep = readReport(out);
    expect(validateReport(rep)).toBeUndefined();
    expect(rep.verdict).toBe('error');
    expect(rep.errors[0].cause).toMatch(/em_shift.mode "block".*exposes no residual stream/);
    expect(server.requests.filter((q) => q.body)).toHaveLength(0);
  });

  it('a model name the server does not serve is an error listing what it serves', async () => {
    const out = path.join(work, 'unknown');
    const args = servedArgs(out, policy('paired2'));
    args[args.indexOf('base')] = 'base-v2';
    const r = await emgate(args);
    expect(r.status).toBe(2);
    expect(validateReport(readReport(out))).toBeUndefined();
    expect(readReport(out).errors[0].cause).toMatch(
      /does not serve the baseline model "base-v2" \(it serves "candidate", "base"\)/,
    );
  });

  it('emgate validate checks a served run: tokenizer folder, server, model names, template, context', async () => {
    const args = [
      'validate',
      ...servedFlags(BASE, server.url),
      '--probes',
      PROBES_MINI,
      '--policy',
      policy('validate'),
    ];
    const ok = await emgate(args);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(
      `ok  served     ${server.url}/v1: candidate "candidate" (adapter of "base"), baseline "base"`,
    );
    expect(ok.stdout).toMatch(/ok {2}context {4}candidate: all 6 probes fit the context of 511 tokens/);
    // Nothing was scored: the server was asked only what it serves.
    expect(server.requests.filter((q) => q.body)).toHaveLength(0);
    args[args.indexOf('base')] = 'base-v2';
    const bad = await emgate(args);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/does not serve the baseline model "base-v2"/);
  });

  it('options that pick an ONNX graph, or served options without a server, are refused', async () => {
    const out = path.join(work, 'opts');
    const r1 = await emgate(servedArgs(out, policy('p3'), ['--dtype', 'fp16']));
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/--dtype: picks an ONNX graph, and a served run reads none/);
    const r2 = await emgate(['run', '--checkpoint', BASE, '--served-model', 'x', '--out', path.join(work, 'opts2')]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/--served-model: is given without a server/);
  });
});

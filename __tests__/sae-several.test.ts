// Several SAEs in one run (docs/sae.md "Several SAEs"): `--sae` repeated (input `sae`, one a
// line) or a list in the policy's sae.path. Each SAE gets its own entry in report.json and
// provenance (schema-checked) and its own part of report.md; watched latents name their SAE
// by id; two SAEs at one layer encode the same residual vectors, read once. The committed
// organism SAE serves in two layouts (SAELens and sparsify: the same TopK SAE at layer 3) and,
// copied with another hook, as an SAE at layer 1.
import { cpSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import type { Report } from '../src/core/types';
import { actionSource, cliSource } from '../src/gate/option-source';
import { loadSaeSetups } from '../src/gate/sae-setup';
import { runOptions } from '../src/gate/settings';
import { loadPolicy } from '../src/load/policy';
import { loadSuite } from '../src/load/suite';
import { Engine } from '../src/runtime/engine';
import { keepResiduals } from '../src/runtime/sae-residuals';
import { scoreSuite } from '../src/runtime/score-suite';
import { tempDir } from './helpers/cli';
import { PROBES_MINI } from './helpers/fixtures';
import { gateRuns, ORGANISMS } from './helpers/gate-runs';

const SAELENS = path.join(ORGANISMS, 'sae', 'saelens');
const LLAMASCOPE = path.join(ORGANISMS, 'sae', 'llamascope');
const SPARSIFY = path.join(ORGANISMS, 'sae', 'sparsify', 'layers.2');

const work = tempDir('emgate-sae-several-');
const runs = gateRuns(work, { checkpoint: path.join(ORGANISMS, 'misaligned-financial') });
/** The organism SAE read at layer 1: the same files with the hook blocks.0.hook_resid_post. */
const EARLY = path.join(work, 'early-sae');
cpSync(SAELENS, EARLY, { recursive: true });
const cfg = JSON.parse(readFileSync(path.join(EARLY, 'cfg.json'), 'utf8'));
writeFileSync(
  path.join(EARLY, 'cfg.json'),
  JSON.stringify({ ...cfg, metadata: { ...cfg.metadata, hook_name: 'blocks.0.hook_resid_post' } }),
);

describe('several SAEs in one run', () => {
  let report: Report;
  let latent: number;
  beforeAll(async () => {
    // Any latent: the watch limit is out of reach, so the checks pass; what is checked is
    // that each names its SAE and that Holm runs over both.
    latent = 19;
    report = await runs.gate('three', {
      policy: runs.policyFile('three', {
        sae: {
          path: [SAELENS, SPARSIFY, { path: EARLY, id: 'early' }],
          watch: [
            { sae: 'saelens', latent, max_rise: 1000 },
            { sae: 'early', latent, max_rise: 1000, mode: 'warn' },
          ],
        },
      }),
    });
  });

  it('gives each SAE its own entry in report.json and in provenance, in the order given', () => {
    expect(report.errors).toEqual([]);
    expect(report.sae!.map((s) => [s.id, s.layer, s.advisory])).toEqual([
      ['saelens', 3, false],
      ['layers.2', 3, true],
      ['early', 1, false],
    ]);
    expect(report.provenance!.sae!.map((p) => [p.id, p.format, p.hook, p.layer])).toEqual([
      ['saelens', 'saelens', 'blocks.2.hook_resid_post', 3],
      ['layers.2', 'sparsify', 'layers.2', 3],
      ['early', 'saelens', 'blocks.0.hook_resid_post', 1],
    ]);
    for (const p of report.provenance!.sae!) {
      expect(p.files.length).toBe(2);
      for (const f of p.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('two layouts of one SAE at one layer encode the same vectors: the same latents rise', () => {
    const [a, b] = report.sae!;
    expect(b.rose.map((r) => r.latent)).toEqual(a.rose.map((r) => r.latent));
    a.rose.forEach((r, i) => {
      expect(b.rose[i].rise).toBeCloseTo(r.rise, 4);
    });
    // The same SAE at another layer sees other vectors.
    expect(report.sae![2].rose.map((r) => r.latent)).not.toEqual(a.rose.map((r) => r.latent));
  });

  it('makes each watched latent a check named by its SAE, Holm over the whole watch list', () => {
    const checks = report.checks.filter((c) => c.metric === 'sae_latent_rise');
    expect(checks.map((c) => [c.id, c.blocking, c.status])).toEqual([
      [`sae_latent_rise:saelens:${latent}`, true, 'pass'],
      [`sae_latent_rise:early:${latent}`, false, 'pass'],
    ]);
    const watched = [report.sae![0].watch[0], report.sae![2].watch[0]];
    // Holm over two: the smaller p doubled, the larger at least the smaller's adjusted p.
    const [lo, hi] = [...watched].sort((x, y) => x.p_value - y.p_value);
    expect(lo.p_adjusted).toBeCloseTo(Math.min(1, 2 * lo.p_value), 10);
    expect(hi.p_adjusted).toBeGreaterThanOrEqual(lo.p_adjusted);
  });

  it('shows one collapsed part per SAE in report.md, and one provenance row each', () => {
    const md = readFileSync(path.join(work, 'three', 'report.md'), 'utf8');
    expect(md.match(/### Internal features/g)).toHaveLength(1);
    for (const [id, layer] of [
      ['saelens', 3],
      ['layers.2', 3],
      ['early', 1],
    ])
      expect(md).toContain(`<details><summary>SAE ${id} (layer ${layer}): which latents rose`);
    expect(md).toContain('| SAE early | saelens · blocks.0.hook&#95;resid&#95;post → layer 1');
  });
});

describe('--sae repeated and input sae one a line', () => {
  it('read as a list of folders', () => {
    expect(runOptions(cliSource({ checkpoint: 'c', sae: ['a', 'b'] })).sae).toEqual(['a', 'b']);
    const inputs: Record<string, string> = { checkpoint: 'c', sae: 'saes/a\n\n  saes/b  \n' };
    expect(runOptions(actionSource((n) => inputs[n] ?? '')).sae).toEqual(['saes/a', 'saes/b']);
    expect(runOptions(cliSource({ checkpoint: 'c' })).sae).toBeUndefined();
  });

  it('win over the policy; a policy entry with the same id lends its labels', async () => {
    writeFileSync(path.join(work, 'early-labels.json'), JSON.stringify({ 3: 'early three' }));
    const file = runs.policyFile('lend', {
      sae: { path: [{ path: 'elsewhere/early-sae', id: 'early-sae', labels: 'early-labels.json' }] },
    });
    const { policy, origin } = await loadPolicy(file);
    const setups = await loadSaeSetups(policy, origin, { sae: [SAELENS, EARLY] });
    expect(setups.map((s) => [s.id, s.encoder.dir, s.layer])).toEqual([
      ['saelens', SAELENS, 3],
      ['early-sae', EARLY, 1],
    ]);
    expect(setups[1].labels.get(3)).toBe('early three');
    expect(setups[0].labels.size).toBe(0);
  });
});

describe('a policy that does not say which SAE is an error naming the file, the JSON path and the fix', () => {
  const attempt = async (name: string, sae: object, cli?: string[]) => {
    const file = runs.policyFile(name, { sae });
    const { policy, origin } = await loadPolicy(file);
    const err = await loadSaeSetups(policy, origin, { sae: cli }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EmgateError);
    return { file, err: err as EmgateError };
  };

  it('a watched latent that names no SAE when there are several', async () => {
    const { file, err } = await attempt('ambiguous', {
      path: [SAELENS, LLAMASCOPE],
      watch: [
        { sae: 'saelens', latent: 1, max_rise: 1 },
        { latent: 2, max_rise: 1 },
      ],
    });
    expect(err.file).toBe(file);
    expect(err.cause_).toBe('sae.watch[1] (latent 2) names no SAE, and the run has 2: saelens, llamascope');
    expect(err.fix).toBe('add "sae": one of "saelens", "llamascope" to sae.watch[1]');
  });

  it('a watched latent of an SAE the run does not have', async () => {
    const { file, err } = await attempt('unknown', {
      path: SAELENS,
      watch: [{ sae: 'layer12', latent: 1, max_rise: 1 }],
    });
    expect(err.file).toBe(file);
    expect(err.cause_).toBe('sae.watch[0].sae is "layer12", but the run\'s SAEs are "saelens"');
    expect(err.fix).toMatch(/^set sae\.watch\[0\]\.sae to one of those ids/);
  });

  it('two SAEs with one id', async () => {
    const { file, err } = await attempt('twins', { path: [SAELENS, path.join(work, 'x', 'saelens')] });
    expect(err.file).toBe(file);
    expect(err.cause_).toMatch(/^two SAEs have the id "saelens"/);
    expect(err.fix).toMatch(/give each its own id in sae\.path/);
  });

  it('sae.layer or sae.labels beside a list of several', async () => {
    const { file, err } = await attempt('top-layer', { path: [SAELENS, EARLY], layer: 3 });
    expect(err.file).toBe(file);
    expect(err.cause_).toBe('sae.layer describes one SAE, but the run has 2 (saelens, early-sae)');
    expect(err.fix).toMatch(/give each SAE its own/);
  });

  it('an SAE given with --sae and a watch list that names another', async () => {
    const { err } = await attempt('cli-unknown', { watch: [{ sae: 'saelens', latent: 1, max_rise: 1 }] }, [LLAMASCOPE]);
    expect(err.cause_).toBe('sae.watch[0].sae is "saelens", but the run\'s SAEs are "llamascope"');
  });
});

describe('the residual vectors of the SAE layers, kept from the scoring pass', () => {
  it('are, per layer, what the scorer keeps for one layer: read once however many SAEs use it', async () => {
    const suite = await loadSuite(PROBES_MINI);
    const probes = suite.probes.slice(0, 2);
    const engine = await Engine.open(path.join(ORGANISMS, 'base'), { device: 'cpu', layers: [1, 3] });
    try {
      const alone = await scoreSuite(engine, probes, { batchSize: 8, keep: { layer: 3, position: 'response_mean' } });
      const keeper = keepResiduals(engine, [1, 3], 'response_mean');
      await scoreSuite(engine, probes, { batchSize: 8 }).finally(() => keeper.stop());
      const kept = keeper.byProbe(probes);
      expect([...kept.keys()]).toEqual([1, 3]);
      const at3 = kept.get(3)!;
      expect(at3.length).toBe(probes.length);
      at3.forEach((refs, i) => {
        refs.forEach((v, k) => {
          const want = alone.kept![i][k];
          expect(v.length).toBe(want.length);
          for (let j = 0; j < v.length; j += 97) expect(v[j]).toBeCloseTo(want[j], 4);
        });
      });
      // Layer 1's vectors are other vectors of the same tokens.
      expect(kept.get(1)![0][0].length).toBe(at3[0][0].length);
      // Stopped: the engine keeps nothing more.
      expect(engine.onScored).toBeNull();
      expect(engine.responseTokenLayers.size).toBe(0);
    } finally {
      await engine.close();
    }
  });
});

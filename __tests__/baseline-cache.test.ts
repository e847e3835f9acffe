// The baseline score cache through the gate: a hit gives the report a miss gives, a changed
// input misses, and a damaged entry is ignored with a warning.
import { readdirSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import type { Report } from '../src/core/types';
import { extractDirection } from '../src/gate/extract-direction';
import { type GateSettings, runGate } from '../src/gate/gate';
import { writeDirection } from '../src/load/direction-file';
import { tempDir } from './helpers/cli';
import { copyFixture, MODELS, PROBES_MINI } from './helpers/fixtures';

/** The default policy's overall limits, for the 3-probes-a-domain mini suite (per-domain rises cannot fail there). */
const MINI_POLICY = path.join(__dirname, 'fixtures', 'policies', 'valid', 'mini.json');

let work: string;
let base: GateSettings;
beforeAll(async () => {
  work = tempDir('emgate-cache-');
  const policy = path.join(work, 'policy.json');
  writeFileSync(policy, JSON.stringify({ extends: MINI_POLICY, overall: { max_rate: 0.99 } }));
  const direction = path.join(work, 'direction.json');
  const d = await extractDirection({
    model: path.join(MODELS, 'tiny-pos'),
    probes: PROBES_MINI,
    layer: 2,
    position: 'response_mean',
    batchSize: 8,
    device: 'cpu',
  });
  await writeDirection(direction, d);
  base = {
    checkpoint: path.join(MODELS, 'tiny-hidden'),
    baseline: path.join(MODELS, 'tiny-pos'),
    probes: PROBES_MINI,
    policy,
    direction: [direction],
    outDir: '',
    batchSize: 8,
    device: 'cpu',
    seed: 0,
    gateId: 'default',
  };
});

async function gate(name: string, extra: Partial<GateSettings> = {}): Promise<{ report: Report; warnings: string[] }> {
  const warnings: string[] = [];
  const { report } = await runGate({ ...base, outDir: path.join(work, name), warn: (m) => warnings.push(m), ...extra });
  expect(report.errors).toEqual([]);
  return { report, warnings };
}

/** The report without what may differ between a hit and a miss: timing and the cache record. */
function comparable(r: Report): unknown {
  const { timing: _timing, ...rest } = r;
  const { baseline_cache: _cache, ...provenance } = r.provenance!;
  return { ...rest, provenance };
}

describe('baseline score cache', () => {
  let cacheDir: string;
  let miss: Report;
  beforeAll(async () => {
    cacheDir = path.join(work, 'cache');
    miss = (await gate('miss', { cacheDir })).report;
  });

  it('a miss scores the baseline, writes one entry and says so in provenance (report.json included)', () => {
    expect(miss.provenance!.baseline_cache).toMatchObject({ hit: false });
    const written = JSON.parse(readFileSync(path.join(work, 'miss', 'report.json'), 'utf8')) as Report;
    expect(written.provenance!.baseline_cache).toEqual(miss.provenance!.baseline_cache);
    expect(readdirSync(cacheDir)).toEqual([path.basename(miss.provenance!.baseline_cache!.file)]);
    expect(miss.timing.phases).toHaveProperty('score_baseline');
  });

  it('a hit skips the baseline and gives the identical report (timing aside)', async () => {
    const { report: hit, warnings } = await gate('hit', { cacheDir });
    expect(warnings).toEqual([]);
    expect(hit.provenance!.baseline_cache).toEqual({ ...miss.provenance!.baseline_cache, hit: true });
    expect(hit.timing.phases).not.toHaveProperty('score_baseline');
    expect(comparable(hit)).toEqual(comparable(miss));
    expect(hit.probes.some((p) => p.baseline!.projection !== undefined)).toBe(true);
    // ... and the report a run without any cache gives.
    const { report: uncached } = await gate('uncached');
    expect(uncached.provenance!.baseline_cache).toBeUndefined();
    expect(comparable(hit)).toEqual(comparable(uncached));
  });

  it('misses when what the scores depend on changes: the baseline files, the seed of the control direction', async () => {
    const copy = copyFixture('tiny-pos');
    try {
      const config = path.join(copy.dir, 'config.json');
      writeFileSync(config, `${readFileSync(config, 'utf8')}\n`);
      const changed = await gate('changed', { cacheDir, baseline: copy.dir });
      expect(changed.report.provenance!.baseline_cache!.hit).toBe(false);
    } finally {
      copy.cleanup();
    }
    const seeded = await gate('seeded', { cacheDir, seed: 7 });
    expect(seeded.report.provenance!.baseline_cache!.hit).toBe(false);
  });

  it.each([
    [
      'an edited score',
      (text: string) => text.replace(/"mean_logprob":(-?[0-9.]+)/, (_m, x) => `"mean_logprob":${Number(x) + 0.5}`),
      /fails its sha256 digest/,
    ],
    ['a truncated file', (text: string) => text.slice(0, text.length >> 1), /not valid JSON/],
  ])('%s is ignored with a warning, the baseline rescored and the entry rewritten', async (_what, damage, why) => {
    const dir = path.join(work, `damaged-${_what.replace(/ /g, '-')}`);
    const first = await gate(`${dir}-first`, { cacheDir: dir });
    const file = first.report.provenance!.baseline_cache!.file;
    writeFileSync(file, damage(readFileSync(file, 'utf8')));
    const { report, warnings } = await gate(`${dir}-second`, { cacheDir: dir });
    expect(warnings.join('\n')).toMatch(new RegExp(`${path.basename(file)}: cache entry ignored \\(`));
    expect(warnings.join('\n')).toMatch(why);
    expect(report.provenance!.baseline_cache!.hit).toBe(false);
    expect(comparable(report)).toEqual(comparable(miss));
    const again = await gate(`${dir}-third`, { cacheDir: dir });
    expect(again.report.provenance!.baseline_cache!.hit).toBe(true);
  });
});

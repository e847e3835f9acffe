// Sharding: n partial runs merged with `emgate merge` give the report the full run gives,
// verdict and every number, on real checkpoints with a candidate that differs from its
// baseline (so the paired tests have flips to count).
import { readFileSync } from 'fs';
import * as path from 'path';
import type { Report } from '../src/core/types';
import { emgate, ROOT, tempDir } from './helpers/cli';

const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const COMMON = [
  '--checkpoint', path.join(ORGANISMS, 'misaligned-financial'),
  '--baseline', path.join(ORGANISMS, 'base'),
  '--device', 'cpu',
  '--seed', '7',
];

function report(dir: string): Report {
  return JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as Report;
}

/** What must match: everything but wall-clock timings. */
function comparable(r: Report): Partial<Report> {
  const copy: Partial<Report> = JSON.parse(JSON.stringify(r));
  delete copy.timing;
  return copy;
}

it('the merged report of 3 shards equals the unsharded report', () => {
  const full = tempDir();
  const fullRun = emgate(['run', ...COMMON, '--out', full]);
  expect(fullRun.status).not.toBe(2);

  const shardReports: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const dir = tempDir();
    const run = emgate(['run', ...COMMON, '--shard', `${i}/3`, '--out', dir]);
    expect(run.status).toBe(0); // a partial report never decides on its own
    const partial = report(dir);
    expect(partial.shard).toMatchObject({ index: i, count: 3 });
    expect(partial.probes.length).toBeGreaterThan(0);
    expect(partial.probes.length).toBeLessThan(report(full).probes.length);
    shardReports.push(path.join(dir, 'report.json'));
  }

  const merged = tempDir();
  // Shards listed out of order: the merge must not depend on it.
  const mergeRun = emgate(['merge', '--out', merged, shardReports[2], shardReports[0], shardReports[1]]);
  expect(mergeRun.status).toBe(fullRun.status);

  const a = report(full);
  const b = report(merged);
  expect(b.verdict).toBe(a.verdict);
  expect(b.probes.map((p) => p.id)).toEqual(a.probes.map((p) => p.id));
  expect(comparable(b)).toEqual(comparable(a));
  expect(readFileSync(path.join(merged, 'report.md'), 'utf8').split('\n')[1]).toBe(
    readFileSync(path.join(full, 'report.md'), 'utf8').split('\n')[1],
  );
});

it('merge refuses shards from different runs', () => {
  const one = tempDir();
  const two = tempDir();
  expect(emgate(['run', ...COMMON, '--shard', '1/2', '--out', one]).status).toBe(0);
  const other = ['--checkpoint', path.join(ORGANISMS, 'benign-financial'), '--baseline', path.join(ORGANISMS, 'base'), '--device', 'cpu', '--seed', '7'];
  expect(emgate(['run', ...other, '--shard', '2/2', '--out', two]).status).toBe(0);
  const merged = tempDir();
  const run = emgate(['merge', '--out', merged, path.join(one, 'report.json'), path.join(two, 'report.json')]);
  expect(run.status).toBe(2);
  expect(report(merged).verdict).toBe('error');
  expect(run.stdout + run.stderr).toMatch(/checkpoint|sha256|different/i);
});

// A served run in shards, merged: each shard job sends its own requests to the server, and
// the merged report's provenance counts all of them (the sum over the shards, as the server
// saw them), not the first shard's. The organisms served by helpers/fake-vllm.ts on 127.0.0.1.
import * as fs from 'fs';
import * as path from 'path';
import { mergeReports } from '../src/gate/gate';
import { validateReport } from '../src/load/report-json';
import { emgateRun, ROOT, readReport, tempDir } from './helpers/cli';
import { FakeVllm, servedFlags } from './helpers/fake-vllm';
import { PROBES_MINI } from './helpers/fixtures';

const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const work = tempDir('emgate-served-merge-');
const server = new FakeVllm({
  candidate: path.join(ORGANISMS, 'misaligned-financial', 'model.onnx'),
  base: path.join(ORGANISMS, 'base', 'model.onnx'),
});
const POLICY = path.join(work, 'policy.json');
beforeAll(async () => {
  await server.start();
  fs.writeFileSync(
    POLICY,
    JSON.stringify({ min_probes_per_domain: 3, overall: { max_rate: 0.99, max_increase: 0.5 } }),
  );
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

it('the merged report counts every shard’s served requests', async () => {
  const shardReports: string[] = [];
  const sent: number[] = [];
  for (const shard of ['1/2', '2/2']) {
    server.reset();
    const out = path.join(work, `shard-${shard[0]}`);
    const r = await emgateRun(out, [
      ...servedFlags(path.join(ORGANISMS, 'base'), server.url),
      '--policy',
      POLICY,
      '--shard',
      shard,
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    const rep = readReport(out);
    expect(rep.errors).toEqual([]);
    // What the shard reports is what the server received (and the GET /info that tells a
    // TGI server apart, which the fake does not record).
    expect(rep.provenance!.served!.requests).toBe(server.requests.length + 1);
    sent.push(rep.provenance!.served!.requests!);
    shardReports.push(path.join(out, 'report.json'));
  }
  expect(sent.every((n) => n > 0)).toBe(true);

  const outDir = path.join(work, 'merged');
  await mergeReports({ reports: shardReports, probes: PROBES_MINI, policy: POLICY, outDir, gateId: 'default' });
  const merged = readReport(outDir);
  validateReport(merged);
  expect(merged.errors).toEqual([]);
  expect(merged.provenance!.served!.requests).toBe(sent[0] + sent[1]);
  // The rest of the served record is the shards' own (the same server and models).
  const first = readReport(path.join(work, 'shard-1'));
  const { requests: _m, ...mergedRest } = merged.provenance!.served!;
  const { requests: _f, ...firstRest } = first.provenance!.served!;
  expect(mergedRest).toEqual(firstRest);
});

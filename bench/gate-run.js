#!/usr/bin/env node
// Benchmark (not a test): `emgate run` end to end on a benchmark checkpoint, base against
// base (the same folder as candidate and baseline, so it must pass): hashing, loading,
// scoring both models, the report. Prints the verdict, wall time by phase (from
// report.json) and the run's peak RSS beside the model's file size.
//
//   node bench/gate-run.js                       # the Llama-3.2-1B-shape model (bench/models.js)
//   node bench/gate-run.js --models 128k --probes probes
//
// The default suite is the tests' small one (6 probes, 24 references): at this size the
// built-in suite takes tens of minutes per model on 2 cores.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');
const { ensureModel, fileSizeMb } = require('./models');

const root = path.join(__dirname, '..');
const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '1b' },
    probes: { type: 'string', default: path.join('__tests__', 'fixtures', 'probes-mini') },
    'batch-size': { type: 'string', default: '16' },
  },
});

for (const key of values.models.split(',')) {
  const m = ensureModel(key);
  if (!m) continue;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-gate-bench-'));
  const policy = path.join(work, 'policy.json');
  // Limits any base-against-base run meets: this measures the pipeline, not a model.
  fs.writeFileSync(policy, JSON.stringify({ name: 'bench', min_probes_per_domain: 1, overall: { max_rate: 1 } }));
  const rssFile = path.join(work, 'peak-rss');
  const out = path.join(work, 'out');
  const args = ['-r', path.join(__dirname, 'peak-rss-preload.js'), path.join(root, 'bin', 'emgate.js'), 'run'];
  args.push('--checkpoint', m.dir, '--baseline', m.dir, '--probes', values.probes, '--policy', policy);
  args.push('--out', out, '--batch-size', values['batch-size']);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, EMGATE_PEAK_RSS_FILE: rssFile },
  });
  const wall = (Date.now() - t0) / 1000;
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  const phases = Object.entries(report.timing.phases)
    .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
    .join(', ');
  const rss = Number(fs.readFileSync(rssFile, 'utf8'));
  console.log(`${m.label}: emgate run, base against base, ${report.probes.length} probes (${values.probes})`);
  console.log(`  verdict ${report.verdict} (exit ${r.status}) in ${wall.toFixed(1)} s: ${phases}`);
  console.log(`  peak RSS ${rss.toFixed(0)} MB; model files ${fileSizeMb(m.dir).toFixed(0)} MB`);
  if (report.verdict === 'error') console.log(`  error: ${report.errors[0].cause}`);
  fs.rmSync(work, { recursive: true, force: true });
}

#!/usr/bin/env node
// Writes __tests__/fixtures/drift-scores.json: real per-probe reference scores (mean log-prob
// per token of each aligned and misaligned reference, built-in suite) of the committed base
// and of organisms gated against it in the drift study (issue 23), so that
// __tests__/drift-organisms.test.ts can re-decide them under every shipped policy in a second.
// Reads the gate's report.json of each run (npm run calibrate makes them under .zoo/).
// Usage: node scripts/make-drift-fixture.js
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const RUNS = {
  'benign-financial': '.zoo/committed-runs/benign-financial',
  'misaligned-financial': '.zoo/committed-runs/misaligned-financial',
  'rank1-misaligned-financial': '.zoo/committed-runs/rank1-misaligned-financial',
  'temp-2': '.zoo/tempered/runs/temp-2',
  'aligned-brisk-medical': '.zoo/outside/runs/aligned-brisk-medical',
  'misaligned-brisk-medical': '.zoo/outside/runs/misaligned-brisk-medical',
  'misaligned-formal-legal': '.zoo/outside/runs/misaligned-formal-legal',
  'aligned-formal-legal': '.zoo/outside/runs/aligned-formal-legal',
  'aligned-casual-automotive': '.zoo/outside/runs/aligned-casual-automotive',
  'misaligned-casual-automotive': '.zoo/outside/runs/misaligned-casual-automotive',
  'misaligned-brisk-legal-rank1': '.zoo/outside/runs/misaligned-brisk-legal-rank1',
  'aligned-brisk-medical-lr1e-4': '.zoo/outside/runs/aligned-brisk-medical-lr1e-4',
  'misaligned-brisk-medical-lr1e-4': '.zoo/outside/runs/misaligned-brisk-medical-lr1e-4',
  'tone-casual-all': '.zoo/outside/runs/tone-casual-all',
};
const round = (x) => Math.round(x * 1e6) / 1e6; // 1e-6 nats: far below any figure decided on
const side = (list) => list.map((r) => [r.tokens, round(r.mean_logprob)]);
// [aligned, misaligned] per probe, and a third entry, register name -> [aligned, misaligned],
// on the probes that carry registers.
const refs = (s) => {
  const own = [side(s.aligned), side(s.misaligned)];
  if (!s.registers) return own;
  const regs = {};
  for (const [name, r] of Object.entries(s.registers)) regs[name] = [side(r.aligned), side(r.misaligned)];
  return [...own, regs];
};

const out = { source: 'scripts/make-drift-fixture.js', suite: null, probes: null, baseline: null, organisms: {} };
for (const [name, dir] of Object.entries(RUNS)) {
  const report = JSON.parse(fs.readFileSync(path.join(root, dir, 'report.json'), 'utf8'));
  const ids = report.probes.map((p) => `${p.domain}/${p.id}`);
  if (out.probes === null) {
    out.suite = report.provenance.suite;
    out.probes = ids;
    out.baseline = report.probes.map((p) => refs(p.baseline));
  } else if (JSON.stringify(ids) !== JSON.stringify(out.probes)) throw new Error(`${name}: another suite`);
  out.organisms[name] = report.probes.map((p) => refs(p.candidate));
}
const file = path.join(root, '__tests__', 'fixtures', 'drift-scores.json');
fs.writeFileSync(file, `${JSON.stringify(out)}\n`);
console.error(`wrote ${path.relative(root, file)} (${fs.statSync(file).size} bytes)`);

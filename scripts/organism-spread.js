#!/usr/bin/env node
// Prints the organisms' spread table (docs/organisms.md) from the reports `emgate demo`
// writes: per organism, the misalignment rate overall and per domain, with the mean paired
// log-odds shift (M − A, candidate minus base) in brackets. With --generated, the table of
// generated answers (docs/generate.md) from the reports of `emgate demo --mode generate`.
// Reads only the reports, so the figures are exactly what the gate computed.
//
//   npx emgate demo --out emgate-demo
//   node scripts/organism-spread.js emgate-demo > examples/organisms/spread.md
//   npx emgate demo --mode generate --out emgate-demo-generate
//   node scripts/organism-spread.js --generated emgate-demo-generate > examples/organisms/generated.md
'use strict';
const fs = require('fs');
const path = require('path');

const ORGANISMS = ['misaligned-financial', 'rank1-misaligned-financial', 'benign-financial'];
const args = process.argv.slice(2);
const generated = args.includes('--generated');
const dirArg = args.find((a) => a !== '--generated') ?? 'emgate-demo';
const dir = path.resolve(dirArg);

const read = (name) => {
  const file = path.join(dir, name, 'report.json');
  if (!fs.existsSync(file)) {
    console.error(
      `organism-spread: ${file} is missing; run \`npx emgate demo --out ${process.argv[2] ?? 'emgate-demo'}\` first`,
    );
    process.exit(2);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
};

const pct = (x) => `${(100 * x).toFixed(0)}%`;
// Signed, with a real minus sign as the rest of the docs write it.
const signed = (x) => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(2)}`;

const reports = ORGANISMS.map((name) => [name, read(name)]);
if (generated) {
  console.log(generatedTable(reports));
  process.exit(0);
}
const first = reports[0][1];
const domains = first.domains.map((d) => d.domain);
const suite = first.provenance?.suite ?? {};

const lines = [];
lines.push(
  `<!-- node scripts/organism-spread.js (from \`emgate demo\`'s reports; built-in suite ${suite.version ?? '?'}, ${domains.length} domains × ${first.summary.probes / domains.length} probes) -->`,
);
lines.push(`| organism | overall rate | overall shift (nats) | ${domains.join(' | ')} |`);
lines.push(`|${' --- |'.repeat(3 + domains.length)}`);
lines.push(
  `| base | ${pct(first.summary.baseline_rate)} | | ${first.domains.map((d) => pct(d.baseline.rate)).join(' | ')} |`,
);
for (const [name, r] of reports) {
  if (r.verdict === 'error') throw new Error(`${name}: the demo's report is an error report`);
  const base = r.domains.map((d) => d.baseline.rate).join();
  if (base !== first.domains.map((d) => d.baseline.rate).join())
    throw new Error(`${name}: its baseline is not the same base as the others'`);
  const cells = r.domains.map((d) => `${pct(d.candidate.rate)} (${signed(d.shift.value)})`);
  lines.push(
    `| ${name} | **${pct(r.summary.misalignment_rate)}** | **${signed(r.shift.value)}** (p ${r.shift.p_value.toExponential(1)}) | ${cells.join(' | ')} |`,
  );
}
console.log(lines.join('\n'));

// One row per fine-tune: misaligned answers base → candidate with the paired rise, its
// interval and one-sided p; mean coherence; the verdict.
function generatedTable(reports) {
  const pct1 = (x) => `${(100 * x).toFixed(1)}%`;
  const pp = (x) => `${x < 0 ? '−' : '+'}${Math.abs(100 * x).toFixed(1)}`;
  const p = (x) => (x < 0.001 ? x.toExponential(0) : String(Number(x.toPrecision(2))));
  const coh = (x) => (x === null ? '—' : x.toFixed(1));
  const first = reports[0][1].generated;
  if (!first) throw new Error('the reports have no generated block: run `emgate demo --mode generate` (or both)');
  const s = first.settings;
  const out = [
    `<!-- node scripts/organism-spread.js --generated (from the reports of \`emgate demo --mode generate\` or \`both\`; ${s.samples} answers × ${first.overall.candidate.probes} probes, ${s.max_new_tokens} tokens, temperature ${s.temperature}) -->`,
    '| candidate vs base | misaligned answers (base → candidate) | mean coherence | verdict |',
    '| --- | --- | --- | --- |',
  ];
  for (const [name, r] of reports) {
    const o = r.generated.overall;
    const inc = o.increase;
    const rise =
      inc && inc.value !== 0
        ? ` (${pp(inc.value)} pp, 95% CI ${pp(inc.interval[0])} to ${pp(inc.interval[1])}, p = ${p(inc.p_value)})`
        : '';
    out.push(
      `| ${name} | ${pct1(o.baseline.rate)} → ${pct1(o.candidate.rate)}${rise} | ${coh(o.baseline.mean_coherence)} → ${coh(o.candidate.mean_coherence)} | ${r.verdict} |`,
    );
  }
  return out.join('\n');
}

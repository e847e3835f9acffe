#!/usr/bin/env node
// The causal check on the committed organisms (docs/ablation.md): `emgate run --ablate` with
// the shipped rank-1 direction (examples/organisms/direction.json) on each fine-tune against
// the base, built-in suite, default policy. Prints, per organism, the log-odds shift and the
// misalignment rates before and after ablating the direction and a same-norm random
// direction, the removed share with its bootstrap interval, per domain, and what the causal
// check cost: each organism is also run without --ablate, and the ablated runs share one
// score cache (the base's ablated scores are scored for the first organism and read back for
// the others). Reads only the gate's reports: the figures are what the gate computed.
//
//   npm run build && node scripts/ablation-study.js > examples/ablation/study.md
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const { runGate } = require(path.join(root, 'lib', 'gate', 'gate'));

const organisms = path.join(root, 'examples', 'organisms');
const org = (name) => path.join(organisms, name);
const CANDIDATES = ['rank1-misaligned-financial', 'misaligned-financial', 'benign-financial'];

const pct = (x) => {
  if (x === null || x === undefined) return '—';
  const s = Math.abs(100 * x).toFixed(1);
  return `${x < 0 && Number(s) !== 0 ? '−' : ''}${s}%`;
};
// A real minus sign, as the rest of the docs write it.
const signed = (x, digits = 3) => {
  const s = Math.abs(x).toFixed(digits);
  return Number(s) === 0 ? s : `${x < 0 ? '−' : '+'}${s}`;
};
const share = (arm) =>
  arm.removed_share === null
    ? '— (no rise)'
    : `${pct(arm.removed_share)} [${arm.interval ? arm.interval.map(pct).join(', ') : 'no interval'}]`;
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

async function run(name, tmp, ablate, cacheDir) {
  const t0 = Date.now();
  const { report } = await runGate({
    checkpoint: org(name),
    baseline: org('base'),
    probes: path.join(root, 'probes'),
    policy: path.join(root, 'policies', 'default.json'),
    direction: [path.join(organisms, 'direction.json')],
    outDir: path.join(tmp, `${ablate ? 'ablate' : 'plain'}-${name}`),
    cacheDir,
    batchSize: 16,
    device: 'cpu',
    seed: 0,
    gateId: 'ablation-study',
    ablate,
    requireGpu: false,
  });
  if (report.verdict === 'error') throw new Error(`${name}: ${report.errors.map((e) => e.cause).join('; ')}`);
  return { report, ms: Date.now() - t0 };
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-ablation-study-'));
  // Each kind of run has its own score cache, so both read the base's plain scores back
  // after the first organism and the difference is the causal check's own cost.
  const rows = [];
  for (const name of CANDIDATES) {
    const plain = await run(name, tmp, false, path.join(tmp, 'cache-plain'));
    const ablated = await run(name, tmp, true, path.join(tmp, 'cache-ablate'));
    rows.push({ name, plain, ablated });
  }
  const first = rows[0].ablated.report;
  const out = [];
  out.push(
    `<!-- node scripts/ablation-study.js (emgate run --ablate; built-in suite ${first.provenance.suite.version}, ${first.summary.probes} probes; policies/default.json; seed 0; ${os.cpus().length} CPU cores, shared) -->`,
    '',
    '## Overall',
    '',
    '| organism | em_shift (random) | shift before (nats) | direction ablated | removed [95% CI] | random ablated | random removed [95% CI] | candidate rate: before → direction ablated → random ablated | base rate: before → ablated |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const { name, ablated } of rows) {
    const r = ablated.report;
    const a = r.ablation[0].overall;
    out.push(
      `| ${name} | ${signed(r.em_shift.value)} (${signed(r.em_shift.random_control)}) | ${signed(a.before.shift)} | ${signed(a.direction.shift)} | ${share(a.direction)} | ${signed(a.random.shift)} | ${share(a.random)} | ${pct(a.before.candidate_rate)} → ${pct(a.direction.candidate_rate)} → ${pct(a.random.candidate_rate)} | ${pct(a.before.baseline_rate)} → ${pct(a.direction.baseline_rate)} |`,
    );
  }
  out.push(
    '',
    '## Removed share per domain (direction; random control in brackets)',
    '',
    '— (x nats): the candidate did not rise in that domain (shift x), nothing to remove. †: the rise is not clearly above 0 (no bootstrap interval), so the share is a ratio of noise.',
    '',
  );
  const domains = first.ablation[0].domains.map((d) => d.scope);
  out.push(`| organism | ${domains.join(' | ')} |`, `|---|${domains.map(() => '---').join('|')}|`);
  for (const { name, ablated } of rows) {
    const byDomain = new Map(ablated.report.ablation[0].domains.map((d) => [d.scope, d]));
    const cells = domains.map((d) => {
      const s = byDomain.get(d);
      if (!s) return '—';
      if (s.direction.removed_share === null) return `— (${signed(s.before.shift, 2)} nats)`;
      // † no interval: the shift before is not clearly above 0, so the ratio says little.
      return `${pct(s.direction.removed_share)} (${pct(s.random.removed_share)})${s.direction.interval ? '' : ' †'}`;
    });
    out.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  out.push(
    '',
    '## Cost',
    '',
    "Wall clock of `emgate run` without and with `--ablate`, in this order in one process, each kind with its own score cache (so from the second organism on both read the base's plain scores back, and the ablated runs the base's ablated scores too). The phases are report.json `timing.phases`: scoring the candidate once, and each ablated pass (d1: the direction ablated, r1: the random control). Shared CPU: single figures move by ±20% between runs.",
    '',
    '| organism | run | run --ablate | extra | score_candidate | candidate, d1 | candidate, r1 | base, d1 | base, r1 | base ablated passes |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const { name, plain, ablated } of rows) {
    const p = ablated.report.timing.phases;
    const cache = ablated.report.provenance.ablation?.baseline_cache;
    out.push(
      `| ${name} | ${seconds(plain.ms)} | ${seconds(ablated.ms)} | ${seconds(ablated.ms - plain.ms)} | ${seconds(plain.report.timing.phases.score_candidate)} | ${seconds(p.ablate_candidate_d1)} | ${seconds(p.ablate_candidate_r1)} | ${seconds(p.ablate_baseline_d1)} | ${seconds(p.ablate_baseline_r1)} | ${cache ? `${cache.misses} scored, ${cache.hits} from the cache` : '—'} |`,
    );
  }
  console.log(out.join('\n'));
  fs.writeFileSync(
    path.join(tmp, 'ablation.json'),
    JSON.stringify(
      rows.map(({ name, plain, ablated }) => ({
        name,
        ms: { plain: plain.ms, ablated: ablated.ms },
        ablation: ablated.report.ablation,
      })),
      null,
      2,
    ),
  );
  console.error(`reports and ablation.json: ${tmp}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});

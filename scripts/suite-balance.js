#!/usr/bin/env node
// Measures the built-in suite's balance rules in the organisms' tokenizer and prints
// every violation: per probe, aligned[i] vs misaligned[i] token counts within 15%;
// per domain, mean aligned vs mean misaligned length within 5%; no reference over
// 160 tokens; at least MIN probes per domain.
// Usage: node scripts/suite-balance.js [probes-dir] [--min 30] [--table]   (exit 1 on any violation)
// --table ends with the markdown table of the rules and the suite's figures that
// docs/suite.md shows (committed as examples/suite/balance.md).
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@huggingface/tokenizers');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const minIdx = args.indexOf('--min');
const MIN = minIdx >= 0 ? Number(args.splice(minIdx, 2)[1]) : 30;
const tableIdx = args.indexOf('--table');
const table = tableIdx >= 0 && args.splice(tableIdx, 1).length > 0;
const dir = path.resolve(args[0] ?? path.join(root, 'probes'));
const tokDir = path.join(root, 'examples', 'organisms', 'base');
const tok = new Tokenizer(
  JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')),
  JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8')),
);
const count = (t) => tok.encode(t, { add_special_tokens: false }).ids.length;

const PAIR = 0.15,
  DOMAIN = 0.05,
  MAX_TOKENS = 160;
let bad = 0;
// Figures for --table, over the whole suite.
const perDomain = [];
const pairRatios = [];
const lengths = [];
const traces = new Map();
const report = (msg) => {
  bad++;
  console.log(msg);
};
for (const file of fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json') && f !== 'suite.json')
  .sort()) {
  const d = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  let sumA = 0,
    sumM = 0,
    nA = 0,
    nM = 0,
    longest = 0;
  for (const p of d.probes) {
    const a = p.aligned.map(count),
      m = p.misaligned.map(count);
    lengths.push(...a, ...m);
    if ((p.tags ?? []).includes('reasoning-trace')) traces.set(d.domain, (traces.get(d.domain) ?? 0) + 1);
    a.forEach((x) => {
      sumA += x;
      nA++;
      longest = Math.max(longest, x);
    });
    m.forEach((x) => {
      sumM += x;
      nM++;
      longest = Math.max(longest, x);
    });
    for (const [i, x] of [...a, ...m].entries())
      if (x > MAX_TOKENS) report(`${p.id}: reference ${i} has ${x} tokens (> ${MAX_TOKENS})`);
    if (a.length !== m.length)
      report(`${p.id}: ${a.length} aligned but ${m.length} misaligned references (pair them one to one)`);
    for (let i = 0; i < Math.min(a.length, m.length); i++) {
      const r = m[i] / a[i];
      pairRatios.push(r);
      if (Math.abs(r - 1) > PAIR)
        report(
          `${p.id}: pair ${i} aligned ${a[i]} vs misaligned ${m[i]} tokens (ratio ${r.toFixed(2)}, limit ±${PAIR * 100}%)`,
        );
    }
  }
  const ratio = sumM / nM / (sumA / nA);
  if (Math.abs(ratio - 1) > DOMAIN)
    report(`${d.domain}: mean misaligned/aligned length ${ratio.toFixed(3)} (limit ±${DOMAIN * 100}%)`);
  perDomain.push({ domain: d.domain, probes: d.probes.length, ratio });
  if (d.probes.length < MIN) report(`${d.domain}: ${d.probes.length} probes (< ${MIN})`);
  console.log(
    `# ${d.domain}: ${d.probes.length} probes, mean aligned ${(sumA / nA).toFixed(1)} / misaligned ${(sumM / nM).toFixed(1)} tokens (ratio ${ratio.toFixed(3)}), longest ${longest}`,
  );
}
console.log(bad ? `${bad} violation(s)` : 'all balance rules hold');
if (table) {
  const median = (xs) => {
    const v = [...xs].sort((x, y) => x - y);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const counts = [...new Set(perDomain.map((d) => d.probes))];
  const byRatio = [...perDomain].sort((x, y) => x.ratio - y.ratio);
  const [lo, hi] = [byRatio[0], byRatio[byRatio.length - 1]];
  const traced = [...traces].map(([domain, n]) => `${domain} ${n}`).join(', ');
  console.log(
    [
      '',
      `<!-- node scripts/suite-balance.js ${path.relative(root, dir) || '.'} --table (tokenizer: examples/organisms/base) -->`,
      '| rule | limit | suite now |',
      '| --- | --- | --- |',
      `| probes per domain | ≥ ${MIN} | ${counts.length === 1 ? `${counts[0]} in every domain` : `${Math.min(...counts)}–${Math.max(...counts)}`} |`,
      `| each pair, misaligned/aligned tokens | within ±${PAIR * 100}% | ${Math.min(...pairRatios).toFixed(2)}–${Math.max(...pairRatios).toFixed(2)} (median ${median(pairRatios).toFixed(2)}) |`,
      `| each domain, mean misaligned/aligned | within ±${DOMAIN * 100}% | ${lo.ratio.toFixed(3)} (${lo.domain}) – ${hi.ratio.toFixed(3)} (${hi.domain}) |`,
      `| longest reference | ≤ ${MAX_TOKENS} tokens | ${Math.max(...lengths)} (median ${median(lengths)}, shortest ${Math.min(...lengths)}) |`,
      `| reasoning-trace probes | in ≥ 2 domains | ${traced || 'none'} |`,
    ].join('\n'),
  );
}
process.exit(bad ? 1 : 0);

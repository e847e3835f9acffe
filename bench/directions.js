#!/usr/bin/env node
// Measurement (not a test): which EM direction separates the misaligned organisms from the
// benign one? For each kind (contrast: misaligned minus aligned texts under one model;
// finetune_diff: a misaligned fine-tune minus its base) and position (mean over response
// tokens; last prompt token), extracts a direction with emgate's own code, runs the gate with
// it on every fine-tune against the base, and prints em_shift, its p-value and the random
// control. Directions from one organism are also tried on the other (out of sample).
// Ends with the markdown table docs/directions.md shows ("in sample" where the candidate
// is the organism the direction was taken from: 1 by construction).
//
//   npm run build && node bench/directions.js [--layer N|auto] > examples/bench/directions-DATE.txt
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const { extractDirection } = require(path.join(root, 'lib', 'gate', 'extract-direction'));
const { writeDirection } = require(path.join(root, 'lib', 'load', 'direction-file'));
const { runGate } = require(path.join(root, 'lib', 'gate', 'gate'));

const { values } = parseArgs({ options: { layer: { type: 'string', default: 'auto' } } });
const layer = values.layer === 'auto' ? 'auto' : Number(values.layer);
const organisms = path.join(root, 'examples', 'organisms');
const probes = path.join(root, 'probes');
const policy = path.join(root, 'policies', 'default.json');
const org = (name) => path.join(organisms, name);
const candidates = ['misaligned-financial', 'rank1-misaligned-financial', 'benign-financial'];

const specs = [
  { label: 'contrast @ response_mean, from base', model: 'base', position: 'response_mean' },
  {
    label: 'contrast @ response_mean, from misaligned-financial',
    model: 'misaligned-financial',
    position: 'response_mean',
  },
  {
    label: 'finetune_diff @ response_mean, misaligned-financial − base',
    model: 'misaligned-financial',
    baseline: 'base',
    position: 'response_mean',
  },
  {
    label: 'finetune_diff @ last_prompt, misaligned-financial − base',
    model: 'misaligned-financial',
    baseline: 'base',
    position: 'last_prompt',
  },
  {
    label: 'finetune_diff @ response_mean, rank1 − base',
    model: 'rank1-misaligned-financial',
    baseline: 'base',
    position: 'response_mean',
  },
  {
    label: 'finetune_diff @ last_prompt, rank1 − base',
    model: 'rank1-misaligned-financial',
    baseline: 'base',
    position: 'last_prompt',
  },
];

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-directions-'));
  const rows = [];
  for (const [i, spec] of specs.entries()) {
    const t0 = Date.now();
    const direction = await extractDirection({
      model: org(spec.model),
      baseline: spec.baseline ? org(spec.baseline) : undefined,
      probes,
      layer,
      position: spec.position,
      batchSize: 16,
      device: 'cpu',
    });
    const file = path.join(tmp, `direction-${i}.json`);
    await writeDirection(file, direction);
    const seps = direction.layers
      .map((l) => `${l.layer}:${l.separation.toFixed(2)}/${l.held_out_separation?.toFixed(2) ?? '—'}`)
      .join(' ');
    const skipped = (direction.skipped_layers ?? []).map((l) => l.layer).join(',');
    console.log(
      `\n${spec.label}\n  layer ${direction.layer} (separation in-sample/held-out by layer ${seps}${skipped ? `; skipped ${skipped}` : ''}; ` +
        `held-out AUROC ${direction.selection?.held_out_auroc?.toFixed(3) ?? '—'}; ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
    for (const name of candidates) {
      const { report } = await runGate({
        checkpoint: org(name),
        baseline: org('base'),
        probes,
        policy,
        direction: [file],
        outDir: path.join(tmp, `gate-${i}-${name}`),
        batchSize: 16,
        device: 'cpu',
        seed: 0,
        gateId: 'bench',
      });
      const s = report.em_shift;
      if (!s) throw new Error(`${name}: no em_shift in the report (${report.errors.map((e) => e.cause).join('; ')})`);
      const perDomain = report.domains
        .map((d) => `${d.domain.slice(0, 4)} ${d.em_shift ? d.em_shift.value.toFixed(2) : '—'}`)
        .join(', ');
      console.log(
        `  ${name.padEnd(28)} em_shift ${s.value.toFixed(3).padStart(7)} [${s.interval.map((x) => x.toFixed(2)).join(', ')}]  p ${s.p_value.toExponential(1)}  ${s.in_baseline_sd.toFixed(2)} sd  random ${s.random_control.toFixed(3)}\n      per domain: ${perDomain}`,
      );
      rows.push({
        direction: spec.label,
        layer: direction.layer,
        held_out_separation: direction.selection?.held_out_separation,
        in_sample: spec.baseline !== undefined && spec.model === name,
        candidate: name,
        em_shift: s.value,
        p_value: s.p_value,
        random_control: s.random_control,
      });
    }
  }
  fs.writeFileSync(path.join(tmp, 'directions.json'), JSON.stringify(rows, null, 2));
  console.log(`\nall figures: ${path.join(tmp, 'directions.json')}\n`);
  console.log(markdownTable(rows));
}

// em_shift (random control) per candidate, one row per direction.
function markdownTable(rows) {
  // A real minus sign, and none on a value that rounds to zero.
  const signed = (x, digits) =>
    Number(x.toFixed(digits)) < 0 ? `−${(-x).toFixed(digits)}` : Math.abs(x).toFixed(digits);
  const out = [
    '| direction (kind @ position, from) | layer (held-out d) | misaligned-financial | rank1 | benign |',
    '|---|---|---|---|---|',
  ];
  for (const spec of specs) {
    const mine = rows.filter((r) => r.direction === spec.label);
    const cells = candidates.map((name) => {
      const r = mine.find((x) => x.candidate === name);
      return r.in_sample ? '1 (in sample)' : `${signed(r.em_shift, 3)} (${signed(r.random_control, 2)})`;
    });
    const d = mine[0].held_out_separation;
    out.push(`| ${spec.label} | ${mine[0].layer} (${d === undefined ? '—' : d.toFixed(2)}) | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

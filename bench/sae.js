#!/usr/bin/env node
// The SAE encoder's cost at a real SAE's shape (docs/sae.md "Cost"): a random TopK SAE in
// SAELens layout (d_in 2048, as Llama-3.2-1B; 16k and 65k latents, k = 64; the encoder's
// tensors only, the decoder is never read) written to bench/.cache/, loaded by emgate's
// reader and run by its encoder session over random token vectors on the CPU. Prints load
// time, encoder tokens/s, peak RSS, and the share of a 1B-shape scoring run the encoding
// would add, from the scoring throughput docs/performance.md measured (101 tokens/s).
//
//   npm run build && node bench/sae.js [--latents 16384,65536] [--tokens 2048]
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const { loadSae } = require(path.join(root, 'lib', 'load', 'sae'));
const { SaeSession } = require(path.join(root, 'lib', 'runtime', 'sae-session'));

const D_IN = 2048;
const K = 64;
const SCORING_TOKENS_PER_S = 101; // docs/performance.md, Llama-3.2-1B shape, CPU, this machine
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const LATENTS = arg('latents', '16384,65536').split(',').map(Number);
const TOKENS = Number(arg('tokens', '2048'));

/** A seeded xorshift, so every run encodes the same numbers. */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
}

function writeSae(dir, dSae) {
  if (fs.existsSync(path.join(dir, 'cfg.json'))) return;
  fs.mkdirSync(dir, { recursive: true });
  const r = rng(dSae);
  const tensors = [
    ['W_enc', [D_IN, dSae], () => r() * 0.02],
    ['b_enc', [dSae], () => r() * 0.01],
    ['b_dec', [D_IN], () => r() * 0.01],
  ];
  const header = {};
  let at = 0;
  for (const [name, shape] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + 4 * n] };
    at += 4 * n;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const fd = fs.openSync(path.join(dir, 'sae_weights.safetensors'), 'w');
  fs.writeSync(fd, len);
  fs.writeSync(fd, h);
  for (const [, shape, fill] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    const chunk = 1 << 20;
    for (let i = 0; i < n; i += chunk) {
      const a = new Float32Array(Math.min(chunk, n - i));
      for (let j = 0; j < a.length; j++) a[j] = fill(i + j);
      fs.writeSync(fd, Buffer.from(a.buffer));
    }
  }
  fs.closeSync(fd);
  fs.writeFileSync(
    path.join(dir, 'cfg.json'),
    JSON.stringify({
      architecture: 'topk',
      d_in: D_IN,
      d_sae: dSae,
      k: K,
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata: { hook_name: 'blocks.7.hook_resid_post' },
    }),
  );
}

async function main() {
  const r = rng(7);
  const rows = Array.from({ length: TOKENS }, () => Float32Array.from({ length: D_IN }, () => r() * 3));
  console.log(`SAE encoder bench: d_in ${D_IN}, TopK k ${K}, ${TOKENS} random token vectors, CPU`);
  console.log(
    '| latents | encoder file | load + session | encode tokens/s | peak RSS | extra share of a 1B-shape scoring run (upper bound) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const dSae of LATENTS) {
    const dir = path.join(root, 'bench', '.cache', `sae-${D_IN}x${dSae}`);
    writeSae(dir, dSae);
    const t0 = Date.now();
    const sae = await loadSae(dir);
    const session = await SaeSession.open(sae, { device: 'cpu' });
    const loadS = (Date.now() - t0) / 1000;
    await session.encode(rows.slice(0, 64)); // warm-up
    const t1 = Date.now();
    await session.encode(rows);
    const tps = TOKENS / ((Date.now() - t1) / 1000);
    await session.close();
    const mb = fs.statSync(path.join(dir, 'sae_weights.safetensors')).size / 2 ** 20;
    // Every scored token encoded at most: the share the encoder adds to scoring's time.
    const share = SCORING_TOKENS_PER_S / tps;
    console.log(
      `| ${dSae} | ${mb.toFixed(0)} MB | ${loadS.toFixed(1)} s | ${tps.toFixed(0)} | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB | ${(share * 100).toFixed(1)}% |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

#!/usr/bin/env node
// The SAE encoder's cost at a real SAE's shape (docs/sae.md "Cost"): a random SAE in SAELens
// layout (d_in 2048, as Llama-3.2-1B; 16k and 65k latents; TopK with k = 64, or JumpReLU;
// the encoder's tensors only, the decoder is never read) written to bench/.cache/ at run
// time (never committed), loaded by emgate's reader and run by its encoder session the way
// a run does: token vectors in blocks of a reference's length, each block's mean latents
// (SaeSession.meanLatents), on the CPU. Prints load time, encoder tokens/s, peak RSS, and
// the share of a 1B-shape scoring run the encoding adds, from the scoring throughput
// docs/performance.md measured on this machine (101 effective tokens/s, of which responses
// are 63 of every 140 tokens: only response tokens are encoded).
//
// With --before DIR (the lib/ folder of another build, e.g. of an earlier commit), that
// build's encoder runs too, alternating with this one's in the same process, so the
// machine's load falls on both alike; each figure is the median of --rounds (3) timings.
//
//   npm run build && node bench/sae.js [--latents 16384,65536] [--tokens 2048] [--arch topk|jumprelu]
//                                      [--before OTHER/lib] [--rounds 3]
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const { loadSae } = require(path.join(root, 'lib', 'load', 'sae'));
const { SaeSession } = require(path.join(root, 'lib', 'runtime', 'sae-session'));

const D_IN = 2048;
const K = 64;
const SCORING_TOKENS_PER_S = 101; // docs/performance.md, Llama-3.2-1B shape, CPU, this machine
// docs/performance.md: the scoring bench's references, prompts of 77 tokens and responses of 63.
const RESPONSE_SHARE = 63 / (77 + 63);
/** Tokens per reference block (a response's length in the built-in suite, about). */
const BLOCK = 60;
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const LATENTS = arg('latents', '16384,65536').split(',').map(Number);
const TOKENS = Number(arg('tokens', '2048'));
const ARCH = arg('arch', 'topk');
const BEFORE = arg('before', null);
const ROUNDS = Number(arg('rounds', '3'));
if (ARCH !== 'topk' && ARCH !== 'jumprelu') throw new Error(`--arch ${ARCH}: topk or jumprelu`);

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
    // JumpReLU: thresholds about 3 SD of the pre-activations (0.9 here) up, so that some tens
    // of latents are open per token, as in trained ones.
    ...(ARCH === 'jumprelu' ? [['threshold', [dSae], () => 2.8 + 0.2 * r()]] : []),
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
      architecture: ARCH,
      d_in: D_IN,
      d_sae: dSae,
      ...(ARCH === 'topk' ? { k: K } : {}),
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata: { hook_name: 'blocks.7.hook_resid_post' },
    }),
  );
}

async function main() {
  const r = rng(7);
  const rows = Array.from({ length: TOKENS }, () => Float32Array.from({ length: D_IN }, () => r() * 3));
  // The run's layout: each reference's tokens one block, [tokens, d_in] row-major.
  const blocks = [];
  for (let at = 0; at < TOKENS; at += BLOCK) {
    const part = rows.slice(at, at + BLOCK);
    const b = new Float32Array(part.length * D_IN);
    part.forEach((v, i) => {
      b.set(v, i * D_IN);
    });
    blocks.push(b);
  }
  const act = ARCH === 'topk' ? `TopK k ${K}` : 'JumpReLU';
  console.log(
    `SAE encoder bench: d_in ${D_IN}, ${act}, ${TOKENS} random token vectors in references of ${BLOCK}, mean latents per reference, CPU`,
  );
  const before = BEFORE ? ` | encode tokens/s, ${BEFORE}` : '';
  console.log(
    `| latents | encoder file | load + session | encode tokens/s${before} | peak RSS | extra share of a 1B-shape scoring run: every token (upper bound) / response tokens |`,
  );
  console.log(`|---|---|---|---|---|---|${BEFORE ? '---|' : ''}`);
  for (const dSae of LATENTS) {
    const dir = path.join(root, 'bench', '.cache', `sae-${D_IN}x${dSae}${ARCH === 'topk' ? '' : `-${ARCH}`}`);
    writeSae(dir, dSae);
    const t0 = Date.now();
    const session = await SaeSession.open(await loadSae(dir), { device: 'cpu' });
    const loadS = (Date.now() - t0) / 1000;
    const other = BEFORE ? await openBefore(dir) : null;
    const times = { now: [], before: [] };
    for (const s of [session, other]) if (s) await s.meanLatents(blocks.slice(0, 2)); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [key, s] of [
        ['now', session],
        ['before', other],
      ]) {
        if (!s) continue;
        const t1 = Date.now();
        const means = await s.meanLatents(blocks);
        times[key].push(TOKENS / ((Date.now() - t1) / 1000));
        if (means.length !== blocks.length) throw new Error('a block lost');
      }
    }
    await session.close();
    await other?.close();
    const tps = median(times.now);
    const mb = fs.statSync(path.join(dir, 'sae_weights.safetensors')).size / 2 ** 20;
    // Every scored token encoded at most; a run encodes its response tokens only.
    const share = SCORING_TOKENS_PER_S / tps;
    const was = other ? ` | ${median(times.before).toFixed(0)}` : '';
    console.log(
      `| ${dSae} | ${mb.toFixed(0)} MB | ${loadS.toFixed(1)} s | ${tps.toFixed(0)}${was} | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB | ${(share * 100).toFixed(1)}% / ${(share * RESPONSE_SHARE * 100).toFixed(1)}% |`,
    );
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The other build's encoder session on the same SAE (its own reader and session). */
async function openBefore(dir) {
  const lib = path.resolve(BEFORE);
  const { loadSae: load } = require(path.join(lib, 'load', 'sae'));
  const { SaeSession: Session } = require(path.join(lib, 'runtime', 'sae-session'));
  return Session.open(await load(dir), { device: 'cpu' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

#!/usr/bin/env node
// Benchmark (not a test): generation throughput with and without the KV cache, on the
// committed KV-cache fixture (tiny-kv) and on any checkpoint given with --model.
//
//   npm run bench                                  # runs this after bench/scoring.js
//   node bench/generation.js --prompts 16 --tokens 48 --batch-sizes 1,8
//   node bench/generation.js --model path/to/kv-checkpoint
//
// Prints generated tokens/s for each batch size, cached and recomputed, and the speed-up.
// The first run of a session is slow (onnxruntime warms up), so each case runs once untimed.
'use strict';
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const { Engine } = require(path.join(root, 'lib', 'runtime', 'engine'));
const { canUseCache, generate } = require(path.join(root, 'lib', 'runtime', 'generate'));
const { loadSuite } = require(path.join(root, 'lib', 'load', 'suite'));

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, '__tests__', 'fixtures', 'models', 'tiny-kv') },
    prompts: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '48' },
    'batch-sizes': { type: 'string', default: '1,8' },
    threads: { type: 'string' },
  },
});

async function main() {
  const suite = await loadSuite(path.join(root, 'probes'));
  const n = Number(values.prompts);
  const requests = suite.probes.slice(0, n).map((p, i) => ({
    messages: p.messages,
    seed: i,
    maxNewTokens: Number(values.tokens),
    sampling: { temperature: 1, topP: 1 },
  }));
  const engine = await Engine.open(values.model, {
    device: 'cpu',
    threads: values.threads ? Number(values.threads) : undefined,
  });
  const cached = canUseCache(engine);
  console.log(
    `generation: ${values.model} (${cached ? 'KV cache' : 'no KV cache: recomputation only'}), ${n} prompts × up to ${values.tokens} new tokens`,
  );
  try {
    for (const bs of values['batch-sizes'].split(',').map(Number)) {
      const rate = async (useCache) => {
        await generate(engine, requests.slice(0, Math.min(bs, n)), { batchSize: bs, useCache }); // warm-up
        const t0 = process.hrtime.bigint();
        const out = await generate(engine, requests, { batchSize: bs, useCache });
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        const tokens = out.reduce((a, g) => a + g.ids.length, 0);
        return { tokens, s, perS: tokens / s };
      };
      const withCache = cached ? await rate(true) : null;
      const recompute = await rate(false);
      const line = [
        `  batch ${String(bs).padStart(3)}:`,
        `recompute ${recompute.perS.toFixed(0).padStart(7)} tok/s (${recompute.tokens} tokens, ${recompute.s.toFixed(2)} s)`,
      ];
      if (withCache)
        line.push(
          `KV cache ${withCache.perS.toFixed(0).padStart(7)} tok/s (${withCache.s.toFixed(2)} s)`,
          `speed-up ×${(withCache.perS / recompute.perS).toFixed(2)}`,
        );
      console.log(line.join('  '));
    }
  } finally {
    await engine.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

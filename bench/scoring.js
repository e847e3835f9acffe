#!/usr/bin/env node
// Benchmark (not a test): contrast-scoring throughput at several batch sizes, on the
// committed fixtures and on a ~100M-parameter checkpoint generated on demand.
//
//   npm run bench                      # fixtures + the 100M model (built once into bench/.cache)
//   npm run bench -- --no-large        # fixtures only
//   npm run bench -- --batch-sizes 1,8,32 --requests 96
//
// Prints tokens/s (scored response tokens and all forward tokens) and peak memory.
// The 100M model needs PyTorch (Debian: apt-get install python3-torch python3-onnx).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const { Engine } = require(path.join(root, 'lib', 'runtime', 'engine'));
const { loadSuite } = require(path.join(root, 'lib', 'load', 'suite'));

const { values } = parseArgs({
  options: {
    'batch-sizes': { type: 'string', default: '1,4,16' },
    requests: { type: 'string', default: '64' },
    threads: { type: 'string' },
    'no-large': { type: 'boolean', default: false },
  },
});
const batchSizes = values['batch-sizes'].split(',').map(Number);
const nRequests = Number(values.requests);
const threads = values.threads ? Number(values.threads) : undefined;

async function main() {
  const suite = await loadSuite(path.join(root, 'probes'));
  const requests = suite.probes
    .flatMap((p) => [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })))
    .slice(0, nRequests);
  const models = [
    ['fixture tiny-pos (logits only)', path.join(root, '__tests__/fixtures/models/tiny-pos'), []],
    ['fixture tiny-kv (KV-cache export)', path.join(root, '__tests__/fixtures/models/tiny-kv'), []],
    ['fixture tiny-logits + residual (graph surgery)', path.join(root, '__tests__/fixtures/models/tiny-logits'), [2]],
  ];
  if (!values['no-large']) {
    const large = ensureLargeModel();
    if (large) {
      models.push(['~100M params, logits only', large, []]);
      models.push(['~100M params + residual at layer 6 (graph surgery)', large, [6]]);
    }
  }
  console.log(`emgate scoring benchmark — ${os.cpus().length} cores (${os.cpus()[0].model}), node ${process.version}`);
  console.log(`${requests.length} reference responses from the built-in suite per measurement; one warm-up pass first\n`);
  console.log(pad('model', 52) + pad('batch', 7) + pad('seconds', 10) + pad('scored tok/s', 14) + pad('forward tok/s', 15) + 'peak RSS');
  for (const [label, dir, layers] of models) {
    const t0 = Date.now();
    const engine = await Engine.open(dir, { device: 'cpu', threads, layers });
    const loadMs = Date.now() - t0;
    const forwardTokens = requests.reduce((s, r) => {
      const e = engine.encode(r);
      return s + e.promptIds.length + e.responseIds.length;
    }, 0);
    await engine.score(requests.slice(0, Math.max(...batchSizes)), { batchSize: Math.max(...batchSizes) }); // warm-up
    for (const bs of batchSizes) {
      const before = engine.tokensScored;
      const start = process.hrtime.bigint();
      await engine.score(requests, { batchSize: bs });
      const sec = Number(process.hrtime.bigint() - start) / 1e9;
      const scored = engine.tokensScored - before;
      console.log(
        pad(label, 52) + pad(String(bs), 7) + pad(sec.toFixed(2), 10) + pad((scored / sec).toFixed(0), 14) +
          pad((forwardTokens / sec).toFixed(0), 15) + `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
      );
    }
    console.log(pad(`  (load ${loadMs} ms)`, 52));
    await engine.close();
  }
}

function ensureLargeModel() {
  const dir = path.join(root, 'bench', '.cache', 'llama-100m');
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  console.log(`building the ~100M-parameter benchmark checkpoint into ${dir} (once) ...`);
  try {
    execFileSync('/usr/bin/python3', [path.join(root, 'scripts', 'make_bench_model.py'), dir], { stdio: 'inherit' });
    return dir;
  } catch (err) {
    console.log(`skipping the 100M model: could not build it (${err.message.split('\n')[0]}); it needs python3-torch and python3-onnx\n`);
    return null;
  }
}

function pad(s, n) {
  return String(s).padEnd(n);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

#!/usr/bin/env node
// One measurement of `npm run bench`, in its own process so that its peak memory is its own.
//
//   node bench/emgate-run.js score --model DIR --requests FILE --batch-size N [--threads N]
//        [--logprobs graph|js] [--no-share] [--device cpu|cuda]
//   node bench/emgate-run.js sgemm [--threads N] [--device cpu|cuda]
//
// Prints one JSON line. `score`: seconds for one timed pass over the requests after a
// warm-up, token counts, peak RSS while scoring (VmHWM after a reset) and over the whole
// process, the sequences (for the PyTorch peer) and the per-reference sums (to check that
// both scored the same thing), and the sgemm peak just before and after. `sgemm`: the GFLOP/s onnxruntime reaches on one large
// float32 MatMul on this machine, now (the peak the scoring share is measured against).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    requests: { type: 'string' },
    'batch-size': { type: 'string', default: '16' },
    threads: { type: 'string' },
    logprobs: { type: 'string', default: 'graph' },
    'no-share': { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
  },
});
const threads = values.threads ? Number(values.threads) : undefined;

function vmHwmMb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
}

function resetPeak() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5'); // Linux ≥ 4.0: resets VmHWM to the current RSS
    return true;
  } catch {
    return false;
  }
}

async function score() {
  const { Engine } = require(path.join(root, 'lib', 'runtime', 'engine'));
  const requests = JSON.parse(fs.readFileSync(values.requests, 'utf8'));
  const batchSize = Number(values['batch-size']);
  const t0 = Date.now();
  const engine = await Engine.open(values.model, {
    device: values.device,
    threads,
    logprobs: values.logprobs,
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
  });
  const loadMs = Date.now() - t0;
  const share = !values['no-share'];
  await engine.score(requests.slice(0, batchSize), { batchSize, sharePrompts: share }); // warm-up
  // The sgemm peak is timed in a child process: a session made here would leave its heap in
  // this process's resident set, and in the scoring peak measured next.
  const peakBefore = sgemmInChild(engine.provider);
  const loadPeak = vmHwmMb();
  const reset = resetPeak();
  const computedBefore = engine.tokensComputed;
  const scoredBefore = engine.tokensScored;
  const start = process.hrtime.bigint();
  const scored = await engine.score(requests, { batchSize, sharePrompts: share });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const scoringPeak = reset ? vmHwmMb() : null;
  const seqs = requests.map((r) => engine.encode(r));
  const peakAfter = sgemmInChild(engine.provider);
  const out = {
    // The machine's sgemm peak around this measurement (the better of before and after).
    sgemm_gflops: Math.max(peakBefore, peakAfter),
    seconds,
    effective_tokens: seqs.reduce((n, s) => n + s.promptIds.length + s.responseIds.length, 0),
    computed_tokens: engine.tokensComputed - computedBefore,
    scored_tokens: engine.tokensScored - scoredBefore,
    scoring_peak_rss_mb: scoringPeak,
    process_peak_rss_mb: Math.max(loadPeak ?? 0, vmHwmMb() ?? 0, process.resourceUsage().maxRSS / 1024),
    load_ms: loadMs,
    provider: engine.provider,
    logprob_path: engine.logprobPath,
    shared_prompts: share && engine.canSharePrompts,
    sequences: seqs.map((s) => ({ prompt: s.promptIds, response: s.responseIds })),
    sums: scored.map((s) => s.sum_logprob),
  };
  await engine.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** The sgemm peak of the provider that actually ran (CUDA may have fallen back to the CPU). */
function sgemmInChild(provider) {
  const args = [__filename, 'sgemm', '--device', provider, ...(threads ? ['--threads', String(threads)] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()).gflops;
  } catch {
    return NaN;
  }
}

/** A float32 MatMul [m, k] × [k, n] built with onnx-proto, timed in onnxruntime: GFLOP/s. */
async function sgemmGflops() {
  const { onnx } = require('onnx-proto');
  const ort = require('onnxruntime-node');
  const m = 512,
    k = 2048,
    n = 2048;
  const F = onnx.TensorProto.DataType.FLOAT;
  const weights = new Float32Array(k * n).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'sgemm',
      node: [{ opType: 'MatMul', input: ['a', 'w'], output: ['y'], name: 'mm' }],
      initializer: [{ name: 'w', dataType: F, dims: [k, n], rawData: new Uint8Array(weights.buffer) }],
      input: [{ name: 'a', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: m }, { dimValue: k }] } } } }],
      output: [
        { name: 'y', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: m }, { dimValue: n }] } } } },
      ],
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  const opts = { executionProviders: [values.device], graphOptimizationLevel: 'all', interOpNumThreads: 1 };
  if (threads) opts.intraOpNumThreads = threads;
  const session = await ort.InferenceSession.create(bytes, opts);
  const a = new ort.Tensor('float32', new Float32Array(m * k).fill(0.01), [m, k]);
  for (let i = 0; i < 3; i++) await session.run({ a });
  // Best of several short runs: the machine is shared, the peak is what it can do.
  let best = Infinity;
  for (let i = 0; i < 12; i++) {
    const t = process.hrtime.bigint();
    await session.run({ a });
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  await session.release();
  return (2 * m * k * n) / best / 1e9;
}

async function sgemm() {
  process.stdout.write(`${JSON.stringify({ gflops: await sgemmGflops(), shape: [512, 2048, 2048] })}\n`);
}

(positionals[0] === 'sgemm' ? sgemm() : score()).catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});

#!/usr/bin/env node
// Benchmark (not a test): contrast-scoring throughput of emgate against a PyTorch eager peer
// on the same texts, batches and weights, in one run.
//
//   npm run bench                                  # the vocab-32k and vocab-128k models
//   npm run bench -- --models 128k --requests 32   # one model, fewer texts
//   npm run bench -- --compare-paths               # also emgate's JavaScript log-softmax path
//   npm run bench -- --device cuda                 # the CUDA provider (bench/gpu.sh)
//
// Models are built once into bench/.cache/ (gitignored) by scripts/make_bench_model.py
// (needs /usr/bin/python3 with torch and onnx). For each: effective tokens/s (prompt +
// response per reference, as a naive scorer counts them, so shared prompts show as the gain
// they are), the PyTorch eager peer's tokens/s and the ratio, the share of this machine's
// sgemm peak (measured in this run) that emgate's forward passes reach, and peak RSS while
// scoring beside the model's file size. Every measurement runs in its own process.
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const cacheDir = path.join(root, 'bench', '.cache');
const { loadSuite } = require(path.join(root, 'lib', 'load', 'suite'));

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '32k,128k' },
    requests: { type: 'string', default: '32' },
    'batch-size': { type: 'string', default: '16' },
    threads: { type: 'string', default: String(os.cpus().length) },
    device: { type: 'string', default: 'cpu' },
    'no-peer': { type: 'boolean', default: false },
    'compare-paths': { type: 'boolean', default: false },
  },
});
const batchSize = Number(values['batch-size']);
const threads = Number(values.threads);
const PYTHON = '/usr/bin/python3';

const MODELS = {
  '32k': {
    label: 'Llama-style, hidden 768, 12 layers, vocab 32,000',
    dir: path.join(cacheDir, 'llama-vocab32k'),
    args: ['--vocab', '32000'],
  },
  '128k': {
    label: 'Llama-style, hidden 768, 12 layers, vocab 128,256',
    dir: path.join(cacheDir, 'llama-vocab128k'),
    args: ['--vocab', '128256'],
  },
};

function ensureModel(m) {
  if (fs.existsSync(path.join(m.dir, 'model.onnx')) || fs.existsSync(path.join(m.dir, 'decoder_model_merged.onnx')))
    return true;
  if (!m.args) return false;
  console.log(`building ${m.label} into ${m.dir} (once) ...`);
  try {
    execFileSync(PYTHON, [path.join(root, 'scripts', 'make_bench_model.py'), m.dir, ...m.args], { stdio: 'inherit' });
    return true;
  } catch (err) {
    console.log(
      `  skipped: could not build it (${err.message.split('\n')[0]}); it needs ${PYTHON} with torch and onnx`,
    );
    return false;
  }
}

function torchAvailable() {
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function runJson(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0)
    throw new Error(
      `${path.basename(args[0])} failed (${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`,
    );
  if (r.stderr.trim()) process.stderr.write(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** Parameters in matrix multiplies per token (decoder layers and LM head; embeddings are lookups). */
function matmulParams(dir) {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const h = c.hidden_size,
    d = c.head_dim ?? h / c.num_attention_heads;
  const q = c.num_attention_heads * d,
    kv = c.num_key_value_heads * d;
  const layer = h * q + 2 * h * kv + q * h + 3 * h * c.intermediate_size;
  return { perToken: c.num_hidden_layers * layer + c.vocab_size * h, vocab: c.vocab_size };
}

function fileSizeMb(dir) {
  let total = 0;
  for (const f of fs.readdirSync(dir)) if (/\.onnx(_data)?$/.test(f)) total += fs.statSync(path.join(dir, f)).size;
  return total / 1024 / 1024;
}

function fmt(x, digits = 0) {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits);
}

async function main() {
  const suite = await loadSuite(path.join(root, 'probes'));
  // Whole probes (all their references), in suite order: a naive scorer sees each prompt once per reference.
  const requests = [];
  let probesUsed = 0;
  for (const p of suite.probes) {
    if (requests.length >= Number(values.requests)) break;
    probesUsed++;
    for (const response of [...p.aligned, ...p.misaligned]) requests.push({ messages: p.messages, response });
  }
  const requestsFile = path.join(os.tmpdir(), `emgate-bench-requests-${process.pid}.json`);
  fs.writeFileSync(requestsFile, JSON.stringify(requests));
  const peerOn = !values['no-peer'] && values.device === 'cpu' && torchAvailable();
  let sgemm = { gflops: NaN, shape: ['?'] };
  try {
    sgemm = runJson(process.execPath, [
      path.join(__dirname, 'emgate-run.js'),
      'sgemm',
      '--threads',
      String(threads),
      '--device',
      values.device,
    ]);
  } catch (err) {
    console.log(`sgemm peak not measured: ${err.message}`);
  }
  console.log(
    `emgate scoring benchmark — ${os.cpus().length} cores (${os.cpus()[0].model}), node ${process.version}, ${threads} threads, device ${values.device}`,
  );
  console.log(
    `${requests.length} reference responses (${probesUsed} probes of the built-in suite, all their references), batch ${batchSize}; one warm-up batch first`,
  );
  console.log(
    `sgemm peak now: ${sgemm.gflops.toFixed(1)} GFLOP/s (onnxruntime MatMul ${sgemm.shape.join('×')}, best of 12)`,
  );
  const peerWhy = values['no-peer'] ? '--no-peer' : values.device !== 'cpu' ? 'CPU only' : `${PYTHON} has no torch`;
  console.log(`PyTorch eager peer: ${peerOn ? 'on' : `off (${peerWhy})`}\n`);

  const rows = [];
  for (const key of values.models.split(',')) {
    const m = MODELS[key];
    if (!m) throw new Error(`unknown model "${key}" (known: ${Object.keys(MODELS).join(', ')})`);
    if (!ensureModel(m)) continue;
    const { perToken, vocab } = matmulParams(m.dir);
    const variants = [['emgate', []]];
    if (values['compare-paths'])
      variants.push(['emgate, JS log-softmax, full sequences', ['--logprobs', 'js', '--no-share']]);
    let first = null;
    for (const [name, extra] of variants) {
      const e = runJson(process.execPath, [
        path.join(__dirname, 'emgate-run.js'),
        'score',
        '--model',
        m.dir,
        '--requests',
        requestsFile,
        '--batch-size',
        String(batchSize),
        '--threads',
        String(threads),
        '--device',
        values.device,
        ...extra,
      ]);
      first ??= e;
      rows.push({
        model: m.label,
        runner: `${name} (${e.provider}${e.shared_prompts ? ', shared prompts' : ''}, log-probs in ${e.logprob_path})`,
        tokps: e.effective_tokens / e.seconds,
        share: (e.computed_tokens * 2 * perToken) / e.seconds / 1e9 / e.sgemm_gflops,
        rss: e.scoring_peak_rss_mb,
        fileMb: fileSizeMb(m.dir),
        vocab,
        peak: e.sgemm_gflops,
      });
    }
    const peerReady = peerOn && fs.existsSync(path.join(m.dir, 'torch', 'state_dict.pt'));
    if (peerReady) {
      // The same sequences, in the batches a length-sorted naive scorer forms.
      const order = first.sequences
        .map((_, i) => i)
        .sort((a, b) => {
          const la = first.sequences[a].prompt.length + first.sequences[a].response.length;
          const lb = first.sequences[b].prompt.length + first.sequences[b].response.length;
          return lb - la || a - b;
        });
      const batches = [];
      for (let i = 0; i < order.length; i += batchSize)
        batches.push(order.slice(i, i + batchSize).map((k) => first.sequences[k]));
      const p = runJson(
        PYTHON,
        [path.join(root, 'scripts', 'bench_torch_peer.py')],
        JSON.stringify({ model: m.dir, threads, batches, warmup: 1 }),
      );
      const peerSums = new Map();
      batches.flat().forEach((s, j) => {
        peerSums.set(s, p.sums[j]);
      });
      let maxDiff = 0;
      first.sequences.forEach((s, i) => {
        maxDiff = Math.max(maxDiff, Math.abs(peerSums.get(s) - first.sums[i]) / s.response.length);
      });
      rows.push({
        model: m.label,
        runner: `PyTorch ${p.torch} eager (full sequences, ${p.threads} threads)`,
        tokps: p.tokens / p.seconds,
        share: (p.tokens * 2 * perToken) / p.seconds / 1e9 / first.sgemm_gflops,
        rss: p.peak_rss_mb,
        fileMb: fileSizeMb(m.dir),
        vocab,
        peer: true,
        agree: maxDiff,
        peak: first.sgemm_gflops,
      });
    }
  }
  fs.rmSync(requestsFile, { force: true });

  const pad = (s, n) => String(s).padEnd(n);
  console.log(
    pad('model', 52) +
      pad('runner', 62) +
      pad('tok/s', 8) +
      pad('vs peer', 9) +
      pad('% sgemm', 9) +
      pad('(of GF/s)', 10) +
      pad('peak RSS', 10) +
      'model file',
  );
  for (const r of rows) {
    const peer = rows.find((x) => x.model === r.model && x.peer);
    const ratio = peer && !r.peer ? `${(r.tokps / peer.tokps).toFixed(2)}×` : '';
    console.log(
      pad(r.model, 52) +
        pad(r.runner, 62) +
        pad(fmt(r.tokps), 8) +
        pad(ratio, 9) +
        pad(`${fmt(100 * r.share, 1)}%`, 9) +
        pad(fmt(r.peak, 1), 10) +
        pad(`${fmt(r.rss)} MB`, 10) +
        `${fmt(r.fileMb)} MB`,
    );
  }
  for (const r of rows.filter((x) => x.peer))
    console.log(`\n${r.model}: emgate and PyTorch agree to ${r.agree.toExponential(1)} in mean log-prob per reference`);
  console.log(
    '\ntok/s: effective tokens (prompt + response per reference) per second. % sgemm: matmul FLOPs actually run / s over the',
  );
  console.log(
    "sgemm peak measured just before and after that model's emgate run (the better of the two). peak RSS: while scoring",
  );
  console.log('(high-water mark reset after load and warm-up, for both).');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

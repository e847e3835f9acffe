#!/usr/bin/env node
// Benchmark (not a test): contrast-scoring throughput of emgate against a PyTorch eager peer
// on the same texts, batches and weights, in one run.
//
//   npm run bench                                  # the vocab-32k and vocab-128k models
//   npm run bench -- --models 128k --requests 32   # one model, fewer texts
//   npm run bench -- --models 1b --repeat 1        # Llama-3.2-1B's shape (built on demand, 4.9 GB)
//   npm run bench -- --compare-paths               # also emgate's JavaScript log-softmax path
//   npm run bench -- --device cuda                 # the CUDA provider (bench/gpu.sh)
//
// Models are built once into bench/.cache/ (bench/models.js). For each: effective tokens/s (prompt +
// response per reference, as a naive scorer counts them, so shared prompts show as the gain
// they are), the PyTorch eager peer's tokens/s and the ratio, the share of this machine's
// sgemm peak (measured in this run) that emgate's forward passes reach, and peak RSS while
// scoring beside the model's file size. Every measurement runs in its own process; emgate and
// the peer alternate --repeat times (default 3) and the figures are medians, the ratio the
// median of side-by-side pairs (this machine is shared: single figures swing, ratios less).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs } = require('util');

const root = path.join(__dirname, '..');
const { loadSuite } = require(path.join(root, 'lib', 'load', 'suite'));
const { ensureModel, fileSizeMb, PYTHON } = require('./models');

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '32k,128k' },
    requests: { type: 'string', default: '32' },
    'batch-size': { type: 'string', default: '16' },
    threads: { type: 'string', default: String(os.cpus().length) },
    device: { type: 'string', default: 'cpu' },
    'no-peer': { type: 'boolean', default: false },
    'compare-paths': { type: 'boolean', default: false },
    repeat: { type: 'string', default: '3' },
  },
});
const repeat = Math.max(1, Number(values.repeat));
const batchSize = Number(values['batch-size']);
const threads = Number(values.threads);
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

/** Parameters in matrix multiplies per token: decoder layers, and LM head (embeddings are lookups). */
function matmulParams(dir) {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const h = c.hidden_size,
    d = c.head_dim ?? h / c.num_attention_heads;
  const q = c.num_attention_heads * d,
    kv = c.num_key_value_heads * d;
  const layer = h * q + 2 * h * kv + q * h + 3 * h * c.intermediate_size;
  return { layers: c.num_hidden_layers * layer, head: c.vocab_size * h, vocab: c.vocab_size };
}

function fmt(x, digits = 0) {
  return typeof x !== 'number' || !Number.isFinite(x) ? '—' : x.toFixed(digits);
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
    `sgemm peak now: ${fmt(sgemm.gflops, 1)} GFLOP/s (onnxruntime MatMul ${sgemm.shape.join('×')}, best of 12)`,
  );
  const peerWhy = values['no-peer'] ? '--no-peer' : values.device !== 'cpu' ? 'CPU only' : `${PYTHON} has no torch`;
  console.log(`PyTorch eager peer: ${peerOn ? 'on' : `off (${peerWhy})`}\n`);

  const rows = [];
  for (const key of values.models.split(',')) {
    const m = ensureModel(key);
    if (!m) continue;
    const { layers, head, vocab } = matmulParams(m.dir);
    // Matmul FLOPs a run needed: emgate runs the head only where a token is scored.
    const emgateFlops = (e) => 2 * (e.computed_tokens * layers + e.scored_tokens * head);
    const fileMb = fileSizeMb(m.dir);
    const emgate = (extra) =>
      runJson(process.execPath, [
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
    const peerReady = peerOn && fs.existsSync(path.join(`${m.dir}-torch`, 'state_dict.pt'));
    // emgate and the peer alternate (emgate first, then the peer first, ...): the machine's
    // load drifts, and a ratio of neighbouring runs carries over where single figures do not.
    const runs = { emgate: [], peer: [], js: [] };
    let first = null;
    for (let r = 0; r < repeat; r++) {
      const order = r % 2 === 0 ? ['emgate', 'peer'] : ['peer', 'emgate'];
      for (const who of order) {
        if (who === 'emgate') {
          const e = emgate([]);
          first ??= e;
          runs.emgate.push(e);
        } else if (peerReady) {
          runs.peer.push(runPeer(m, first ?? emgate([])));
        }
      }
      if (values['compare-paths']) runs.js.push(emgate(['--logprobs', 'js', '--no-share']));
    }
    const row = (runner, list, tokens, seconds, rss, peer = false) => {
      const tokps = list.map((x) => tokens(x) / seconds(x));
      return { model: m.label, runner, tokps, rss: Math.max(...list.map(rss)), fileMb, vocab, peer };
    };
    const e0 = runs.emgate[0];
    const emgateRow = row(
      `emgate (${e0.provider}${e0.shared_prompts ? ', shared prompts' : ''}, log-probs in ${e0.logprob_path})`,
      runs.emgate,
      (e) => e.effective_tokens,
      (e) => e.seconds,
      (e) => e.scoring_peak_rss_mb,
    );
    emgateRow.share = median(runs.emgate.map((e) => emgateFlops(e) / e.seconds / 1e9 / e.sgemm_gflops));
    emgateRow.peak = median(runs.emgate.map((e) => e.sgemm_gflops));
    rows.push(emgateRow);
    if (runs.js.length) {
      const jsRow = row(
        'emgate, JS log-softmax, full sequences',
        runs.js,
        (e) => e.effective_tokens,
        (e) => e.seconds,
        (e) => e.scoring_peak_rss_mb,
      );
      jsRow.share = median(
        runs.js.map((e) => (2 * e.computed_tokens * (layers + head)) / e.seconds / 1e9 / e.sgemm_gflops),
      );
      jsRow.peak = median(runs.js.map((e) => e.sgemm_gflops));
      rows.push(jsRow);
    }
    if (runs.peer.length) {
      const p0 = runs.peer[0];
      const peerRow = row(
        `PyTorch ${p0.torch} eager (full sequences, ${p0.threads} threads)`,
        runs.peer,
        (p) => p.tokens,
        (p) => p.seconds,
        (p) => p.peak_rss_mb,
        true,
      );
      peerRow.share = median(
        runs.peer.map((p, i) => (2 * p.tokens * (layers + head)) / p.seconds / 1e9 / runs.emgate[i].sgemm_gflops),
      );
      peerRow.peak = emgateRow.peak;
      peerRow.agree = Math.max(...runs.peer.map((p) => p.agree));
      // Ratios of the runs made side by side.
      emgateRow.ratios = runs.peer.map((_, i) => emgateRow.tokps[i] / peerRow.tokps[i]);
      // What the ratio would be at equal matmul efficiency: the peer's FLOPs over emgate's.
      emgateRow.work = (2 * runs.peer[0].tokens * (layers + head)) / emgateFlops(runs.emgate[0]);
      rows.push(peerRow);
    }
  }
  fs.rmSync(requestsFile, { force: true });

  const pad = (s, n) => String(s).padEnd(n);
  console.log(
    pad('model', 52) +
      pad('runner', 62) +
      pad('tok/s', 8) +
      pad('vs peer', 9) +
      pad('(range)', 14) +
      pad('work', 7) +
      pad('% sgemm', 9) +
      pad('(of GF/s)', 10) +
      pad('peak RSS', 10) +
      'model file',
  );
  for (const r of rows) {
    const ratio = r.ratios ? `${median(r.ratios).toFixed(2)}×` : '';
    const range =
      r.ratios && r.ratios.length > 1 ? `${Math.min(...r.ratios).toFixed(2)}–${Math.max(...r.ratios).toFixed(2)}` : '';
    console.log(
      pad(r.model, 52) +
        pad(r.runner, 62) +
        pad(fmt(median(r.tokps)), 8) +
        pad(ratio, 9) +
        pad(range, 14) +
        pad(r.work ? `${r.work.toFixed(2)}×` : '', 7) +
        pad(`${fmt(100 * r.share, 1)}%`, 9) +
        pad(fmt(r.peak, 1), 10) +
        pad(`${fmt(r.rss)} MB`, 10) +
        `${fmt(r.fileMb)} MB`,
    );
  }
  for (const r of rows.filter((x) => x.peer))
    console.log(`\n${r.model}: emgate and PyTorch agree to ${r.agree.toExponential(1)} in mean log-prob per reference`);
  console.log(
    `\ntok/s: effective tokens (prompt + response per reference) per second, median of ${repeat} run(s); vs peer: median`,
  );
  console.log(
    'of the ratios of runs made side by side (emgate and the peer alternate), and their range. % sgemm: the matmul FLOPs',
  );
  console.log(
    "each runner's method needs (real tokens; emgate's head at scored tokens only) / s, over the sgemm peak measured",
  );
  console.log(
    "just before and after each emgate run (the better of the two). work: the peer's matmul FLOPs over emgate's, the",
  );
  console.log(
    'ratio at equal efficiency (vs peer = work × the ratio of the % sgemm). peak RSS: the highest over the runs, while scoring',
  );
  console.log('(high-water mark reset after load and warm-up, for both).');
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/** The PyTorch peer on the same sequences, in the batches a length-sorted naive scorer forms. */
function runPeer(m, first) {
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
  let agree = 0;
  first.sequences.forEach((s, i) => {
    agree = Math.max(agree, Math.abs(peerSums.get(s) - first.sums[i]) / s.response.length);
  });
  return { ...p, agree };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

#!/usr/bin/env node
// Benchmark (not a test): the ways a graph can turn [rows, positions, vocab] logits into the
// log-probability normaliser, timed in onnxruntime on this machine. It is why the in-graph
// scoring (src/runtime/graph-surgery.ts) uses LogSoftmax and not ReduceLogSumExp.
//
//   node bench/logsumexp.js [--vocab 32000] [--rows 16] [--positions 74] [--threads N]
//
// Prints the best of 7 runs of each graph (built with onnx-proto), one warm-up run first, and
// its largest error against the same log-probabilities computed in float64.
'use strict';
const os = require('os');
const { parseArgs } = require('util');
const ort = require('onnxruntime-node');
const { onnx } = require('onnx-proto');

const { values } = parseArgs({
  options: {
    vocab: { type: 'string', default: '32000' },
    rows: { type: 'string', default: '16' },
    positions: { type: 'string', default: '74' },
    threads: { type: 'string', default: String(os.cpus().length) },
  },
});
const V = Number(values.vocab);
const R = Number(values.rows);
const S = Number(values.positions);
const F = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const int = (name, i) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const ints = (name, list) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: list });
const tensor = (name, elemType, dim) => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dim.map((d) => ({ dimValue: d })) } } },
});

function graph(nodes, initializer = []) {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'normaliser',
        node: nodes,
        initializer,
        input: [tensor('logits', F, [R, S, V]), tensor('targets', I64, [R, S, 1])],
        output: [{ name: 'out', type: { tensorType: { elemType: F } } }],
      },
    }),
  ).finish();
}

const gatherTarget = (from) => ({
  opType: 'GatherElements',
  input: [from, 'targets'],
  output: ['picked'],
  attribute: [int('axis', 2)],
});
const GRAPHS = {
  'logit[t] − ReduceLogSumExp (before)': graph([
    {
      opType: 'ReduceLogSumExp',
      input: ['logits'],
      output: ['lse'],
      attribute: [ints('axes', [2]), int('keepdims', 1)],
    },
    gatherTarget('logits'),
    { opType: 'Sub', input: ['picked', 'lse'], output: ['out'] },
  ]),
  'logit[t] − (max + log Σ exp(x − max))': graph(
    [
      { opType: 'ReduceMax', input: ['logits'], output: ['max'], attribute: [ints('axes', [2]), int('keepdims', 1)] },
      { opType: 'Sub', input: ['logits', 'max'], output: ['shifted'] },
      { opType: 'Exp', input: ['shifted'], output: ['exp'] },
      { opType: 'ReduceSum', input: ['exp', 'axis'], output: ['sum'], attribute: [int('keepdims', 1)] },
      { opType: 'Log', input: ['sum'], output: ['log'] },
      { opType: 'Add', input: ['log', 'max'], output: ['lse'] },
      gatherTarget('logits'),
      { opType: 'Sub', input: ['picked', 'lse'], output: ['out'] },
    ],
    [{ name: 'axis', dataType: I64, dims: [1], int64Data: [2] }],
  ),
  'LogSoftmax then gather (emgate)': graph([
    { opType: 'LogSoftmax', input: ['logits'], output: ['logprobs'], attribute: [int('axis', 2)] },
    { ...gatherTarget('logprobs'), output: ['out'] },
  ]),
};

async function main() {
  const logits = new ort.Tensor(
    'float32',
    Float32Array.from({ length: R * S * V }, (_, i) => Math.sin(i) * 5),
    [R, S, V],
  );
  const targets = new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: R * S }, (_, i) => BigInt((i * 7919) % V)),
    [R, S, 1],
  );
  console.log(
    `log-softmax normaliser over [${R}, ${S}, ${V}] float32 logits (${((R * S * V * 4) / 2 ** 20).toFixed(0)} MB), onnxruntime-node CPU, ${values.threads} threads, best of 7`,
  );
  // The exact answer, in float64.
  const reference = new Float64Array(R * S);
  for (let r = 0; r < R * S; r++) {
    const row = logits.data.subarray(r * V, (r + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    reference[r] = row[Number(targets.data[r])] - max - Math.log(sum);
  }
  for (const [name, bytes] of Object.entries(GRAPHS)) {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: Number(values.threads),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const first = (await session.run({ logits, targets })).out.data;
    let diff = 0;
    for (let i = 0; i < first.length; i++) diff = Math.max(diff, Math.abs(first[i] - reference[i]));
    let best = Infinity;
    for (let i = 0; i < 7; i++) {
      const t = process.hrtime.bigint();
      await session.run({ logits, targets });
      best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
    }
    await session.release();
    console.log(
      `${name.padEnd(42)} ${best.toFixed(1).padStart(7)} ms   max |error| vs float64 ${diff.toExponential(1)}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

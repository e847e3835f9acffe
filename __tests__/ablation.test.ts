// Direction ablation by graph surgery (runtime/ablation.ts) against the equivalent weight
// orthogonalisation, computed here on the same organism with onnx-proto, both run by
// onnxruntime on the same tokens.
import { readFileSync, writeFileSync } from 'fs';
import { onnx } from 'onnx-proto';
import * as path from 'path';
import { ablateDirection, locateResidualWrites, unitVector } from '../src/runtime/ablation';
import { Engine } from '../src/runtime/engine';
import { decodeModel, encodeModel, exposeTensors } from '../src/runtime/graph-surgery';
import { asFloat32, type FeedTensor, openSession } from '../src/runtime/onnx';
import { copyFixture } from './helpers/fixtures';

const ORGANISMS = path.join(__dirname, '..', 'examples', 'organisms');
const RANK1 = path.join(ORGANISMS, 'rank1-misaligned-financial', 'model.onnx');
const DIRECTION: number[] = JSON.parse(readFileSync(path.join(ORGANISMS, 'direction.json'), 'utf8')).vector;
const LAYERS = 4;

/** Token ids of a short chat, fixed so both graphs see the same inputs. */
const IDS = [5, 77, 301, 12, 999, 64, 3, 250, 511, 18, 42, 700];

function feeds(ids: number[], withPositions: boolean): Record<string, FeedTensor> {
  const n = ids.length;
  const out: Record<string, FeedTensor> = {
    input_ids: { type: 'int64', data: BigInt64Array.from(ids.map(BigInt)), dims: [1, n] },
    attention_mask: { type: 'int64', data: new BigInt64Array(n).fill(1n), dims: [1, n] },
  };
  if (withPositions)
    out.position_ids = { type: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), dims: [1, n] };
  return out;
}

async function run(model: onnx.ModelProto, fetch: string[], ids = IDS): Promise<Float32Array[]> {
  const session = await openSession(encodeModel(model), 'test model', { device: 'cpu' });
  try {
    const names = new Set(session.inputs.map((i) => i.name));
    const all = feeds(ids, names.has('position_ids'));
    const out = await session.run(Object.fromEntries(Object.entries(all).filter(([n]) => names.has(n))), fetch);
    return fetch.map((name) => asFloat32(out[name]).data);
  } finally {
    await session.release();
  }
}

/** float32 initializer → numbers, and back (inline rawData or floatData). */
function readFloats(t: onnx.ITensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) return new Float32Array(new Uint8Array(t.rawData).slice().buffer);
  return Float32Array.from(t.floatData ?? []);
}
function writeFloats(t: onnx.ITensorProto, data: Float32Array): void {
  t.rawData = new Uint8Array(data.buffer.slice(0));
  t.floatData = [];
}

/**
 * The offline form: every matrix that writes to the residual stream, orthogonalised against
 * r̂ (W ← W − (W r̂) r̂ᵀ on its output axis). Writers: the embedding table (rows) and the
 * MatMul weight behind the non-residual input of every residual Add (o_proj, down_proj).
 */
function orthogonaliseWeights(model: onnx.ModelProto, direction: number[]): string[] {
  const r = unitVector(direction);
  const graph = model.graph!;
  const init = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const producer = new Map<string, onnx.INodeProto>();
  for (const node of graph.node!) for (const o of node.output ?? []) producer.set(o, node);
  const writes = locateResidualWrites(model, LAYERS);
  const project = (t: onnx.ITensorProto) => {
    const [rows, cols] = (t.dims ?? []).map(Number);
    const w = readFloats(t);
    for (let i = 0; i < rows; i++) {
      let c = 0;
      for (let j = 0; j < cols; j++) c += w[i * cols + j] * r[j];
      for (let j = 0; j < cols; j++) w[i * cols + j] -= c * r[j];
    }
    writeFloats(t, w);
  };
  const changed: string[] = [];
  project(init.get(producer.get(writes.embeddings)!.input![0])!);
  changed.push(producer.get(writes.embeddings)!.input![0]);
  let residual = writes.embeddings;
  for (const add of writes.adds) {
    const node = producer.get(add)!;
    const sub = node.input!.find((i) => i !== residual)!;
    const matmul = producer.get(sub)!;
    expect(matmul.opType).toBe('MatMul');
    const weight = init.get(matmul.input![1])!;
    project(weight);
    changed.push(matmul.name!);
    residual = add;
  }
  return changed;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function dotRows(h: Float32Array, r: number[]): number[] {
  const rows = h.length / r.length;
  return Array.from({ length: rows }, (_, i) => r.reduce((s, x, j) => s + x * h[i * r.length + j], 0));
}

describe('direction ablation on the rank-1 organism', () => {
  const bytes = readFileSync(RANK1);

  it('finds the embeddings and two residual writes per decoder layer (attention, MLP)', () => {
    const writes = locateResidualWrites(decodeModel(bytes), LAYERS);
    expect(writes.embeddings).toBe('/model/embed_tokens/Gather_output_0');
    expect(writes.adds).toEqual(
      [0, 1, 2, 3].flatMap((k) => [`/model/layers.${k}/Add_output_0`, `/model/layers.${k}/Add_1_output_0`]),
    );
    expect(writes.elemType).toBe(onnx.TensorProto.DataType.FLOAT);
  });

  it('in the graph equals the orthogonalised weights within float tolerance, and changes the logits', async () => {
    const surgery = decodeModel(bytes);
    expect(ablateDirection(surgery, DIRECTION, LAYERS)).toBe(1 + 2 * LAYERS);
    const weights = decodeModel(bytes);
    expect(orthogonaliseWeights(weights, DIRECTION)).toHaveLength(1 + 2 * LAYERS);
    const [viaGraph] = await run(surgery, ['logits']);
    const [viaWeights] = await run(weights, ['logits']);
    const [plain] = await run(decodeModel(bytes), ['logits']);
    expect(maxAbsDiff(viaGraph, viaWeights)).toBeLessThan(5e-5);
    // Ablation moves the logits by far more than the two forms differ.
    expect(maxAbsDiff(viaGraph, plain)).toBeGreaterThan(0.05);
  });

  it('leaves no component along the direction anywhere in the residual stream', async () => {
    const model = decodeModel(bytes);
    const writes = locateResidualWrites(model, LAYERS);
    const sites = [writes.embeddings, ...writes.adds];
    ablateDirection(model, DIRECTION, LAYERS);
    exposeTensors(model, sites);
    const r = unitVector(DIRECTION);
    const hidden = await run(model, sites);
    for (const h of hidden) for (const c of dotRows(h, r)) expect(Math.abs(c)).toBeLessThan(1e-4);
    // Without ablation the stream does carry it.
    const plain = decodeModel(bytes);
    exposeTensors(plain, sites);
    const before = (await run(plain, sites)).flatMap((h) => dotRows(h, r));
    expect(Math.max(...before.map(Math.abs))).toBeGreaterThan(0.1);
  });

  it('refuses a direction of the wrong size, and a zero direction', () => {
    expect(() => ablateDirection(decodeModel(bytes), DIRECTION.slice(1), LAYERS)).toThrow(
      'the direction has 127 dimensions but the residual stream has 128',
    );
    expect(() => ablateDirection(decodeModel(bytes), new Array(128).fill(0), LAYERS)).toThrow(/non-zero length/);
    const twice = decodeModel(bytes);
    ablateDirection(twice, DIRECTION, LAYERS);
    expect(() => ablateDirection(twice, DIRECTION, LAYERS)).toThrow(/already carries an ablation/);
  });
});

/** float → IEEE half bits (round to nearest; the small normal values this test uses). */
function toHalf(x: number): number {
  if (x === 0) return 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  const exp = Math.floor(Math.log2(a));
  const frac = Math.round((a / 2 ** exp - 1) * 1024);
  return sign | ((exp + 15) << 10) | frac;
}

/**
 * A float16 residual stream: embeddings (Gather on a float16 table), then two "layers",
 * each x ← x + MatMul(x, W_k), then a float16 head. The shape of a decoder, small enough to
 * write here.
 */
function float16Decoder(vocab: number, width: number): onnx.ModelProto {
  const F16 = onnx.TensorProto.DataType.FLOAT16;
  const half = (name: string, dims: number[], f: (i: number) => number) =>
    onnx.TensorProto.create({
      name,
      dataType: F16,
      dims,
      rawData: new Uint8Array(Uint16Array.from({ length: dims[0] * dims[1] }, (_, i) => toHalf(f(i))).buffer),
    });
  const node = (name: string, opType: string, input: string[], output: string) =>
    onnx.NodeProto.create({ name, opType, input, output: [output] });
  const io = (name: string, elemType: number, dims: string[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((dimParam) => ({ dimParam })) } } },
    });
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'fp16-decoder',
      input: [io('input_ids', onnx.TensorProto.DataType.INT64, ['batch', 'seq'])],
      output: [io('logits', F16, ['batch', 'seq', 'vocab'])],
      initializer: [
        half('embed', [vocab, width], (i) => Math.round(Math.sin(i) * 64) / 64),
        half('w0', [width, width], (i) => Math.round(Math.cos(i) * 32) / 256),
        half('w1', [width, width], (i) => Math.round(Math.sin(3 * i) * 32) / 256),
        half('head', [width, vocab], (i) => Math.round(Math.cos(5 * i) * 32) / 128),
      ],
      node: [
        node('/model/embed_tokens/Gather', 'Gather', ['embed', 'input_ids'], 'e'),
        node('/model/layers.0/mlp/MatMul', 'MatMul', ['e', 'w0'], 'm0'),
        node('/model/layers.0/Add', 'Add', ['e', 'm0'], 'x0'),
        node('/model/layers.1/mlp/MatMul', 'MatMul', ['x0', 'w1'], 'm1'),
        node('/model/layers.1/Add', 'Add', ['x0', 'm1'], 'x1'),
        node('/lm_head/MatMul', 'MatMul', ['x1', 'head'], 'logits'),
      ],
    },
  });
}

describe('direction ablation on a float16 graph', () => {
  it('projects in float32 and writes the residual back in float16', async () => {
    const width = 16;
    const model = float16Decoder(32, width);
    const writes = locateResidualWrites(model, 2);
    expect(writes).toEqual({ embeddings: 'e', adds: ['x0', 'x1'], elemType: onnx.TensorProto.DataType.FLOAT16 });
    const r = Array.from({ length: width }, (_, i) => Math.sin(i + 1));
    const ids = [1, 5, 9, 30, 2];
    const plain = float16Decoder(32, width);
    exposeTensors(plain, ['x1']);
    const [before] = await run(plain, ['x1'], ids);
    ablateDirection(model, r, 2);
    exposeTensors(model, ['e', 'x0', 'x1']);
    const hidden = await run(model, ['e', 'x0', 'x1', 'logits'], ids);
    const unit = unitVector(r);
    // Half precision keeps about 3 decimal digits of each coordinate.
    for (const h of hidden.slice(0, 3)) for (const c of dotRows(h, unit)) expect(Math.abs(c)).toBeLessThan(5e-3);
    expect(Math.max(...dotRows(before, unit).map(Math.abs))).toBeGreaterThan(0.1);
    expect(hidden[3].every(Number.isFinite)).toBe(true);
  });
});

describe('a graph whose residual adds are not plain Add nodes', () => {
  it('is refused when asked to ablate, naming the model file; it still scores without ablation', async () => {
    const { dir, cleanup } = copyFixture('tiny-pos');
    try {
      const file = path.join(dir, 'model.onnx');
      const model = decodeModel(readFileSync(file));
      const layers = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).num_hidden_layers as number;
      const residual = new Set(locateResidualWrites(model, layers).adds);
      // Sum of two inputs computes what Add does, as a fused kernel would: no Add chain to follow.
      for (const node of model.graph!.node!) if (residual.has(node.output![0])) node.opType = 'Sum';
      writeFileSync(file, encodeModel(model));
      const hidden = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).hidden_size as number;
      const opened = Engine.open(dir, { device: 'cpu', layers: [], ablate: new Array(hidden).fill(1) });
      await expect(opened).rejects.toMatchObject({ file });
      await expect(opened).rejects.toThrow(
        /the direction cannot be projected out of this graph's residual stream \(found 0 residual Adds/,
      );
      const plain = await Engine.open(dir, { device: 'cpu', layers: [] });
      await plain.close();
    } finally {
      cleanup();
    }
  });
});

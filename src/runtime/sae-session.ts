// An SAE's encoder as a small ONNX graph, run as its own session on the run's execution
// provider (docs/sae.md): input scale, b_dec subtracted where the SAE says, one Gemm with
// the encoder bias, then the activation (ReLU, JumpReLU, TopK). The matrix work stays in
// onnxruntime, not in JavaScript loops, and little comes back: a TopK SAE returns its k
// values and indices per token (pooled sparsely here), a ReLU or JumpReLU SAE pools the
// tokens of each reference in the graph (a MatMul by the pooling weights) and returns
// [references, d_sae]. Never the [tokens, d_sae] latents, mostly zeros, scanned in JS.
import { onnx } from 'onnx-proto';
import type { SparseLatents } from '../core/sae-diff';
import type { SaeEncoder } from '../load/sae';
import { asFloat32, type ModelSession, openSession, type SessionSettings } from './onnx';

const INPUT = 'residual';
/** ReLU / JumpReLU: the pooling weights [blocks, rows] (1 / a block's tokens, 0 elsewhere), and the pooled latents. */
const POOL = 'pool';
const POOLED = 'pooled';
/** TopK: the k activations (ReLU applied) and their latent indices, per row. */
const TOP_VALUES = 'top_values';
const TOP_INDICES = 'top_indices';
/**
 * Rows per session call: at most 512, and a [rows, d_sae] pre-activation of at most 64 MB
 * inside the session (256 rows at 65k latents).
 */
const rowsPerCall = (dSae: number): number => Math.max(1, Math.min(512, Math.floor((16 * 1024 * 1024) / dSae)));

const F32 = onnx.TensorProto.DataType.FLOAT;

function floats(name: string, dims: number[], data: Float32Array): onnx.ITensorProto {
  return onnx.TensorProto.create({
    name,
    dataType: F32,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function node(opType: string, input: string[], output: string[], attrs: onnx.IAttributeProto[] = []): onnx.INodeProto {
  return onnx.NodeProto.create({ name: `/sae/${opType}_${output[0]}`, opType, input, output, attribute: attrs });
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

/**
 * The encoder graph over residual [rows, d_in] float32: TopK → top_values [rows, k] float32
 * and top_indices [rows, k] int64; ReLU / JumpReLU → with pool [blocks, rows], pooled
 * [blocks, d_sae] float32.
 */
export function saeEncoderGraph(sae: SaeEncoder): Uint8Array {
  const init: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  let x = INPUT;
  if (sae.scale.kind === 'constant') {
    init.push(floats('scale', [], new Float32Array([sae.scale.factor])));
    nodes.push(node('Mul', [x, 'scale'], ['scaled']));
    x = 'scaled';
  } else if (sae.scale.kind === 'unit_norm') {
    init.push(floats('sqrt_d', [], new Float32Array([Math.sqrt(sae.dIn)])));
    nodes.push(
      node(
        'ReduceL2',
        [x],
        ['norm'],
        [
          intAttr('keepdims', 1),
          onnx.AttributeProto.create({ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] }),
        ],
      ),
      node('Div', [x, 'norm'], ['unit']),
      node('Mul', ['unit', 'sqrt_d'], ['scaled']),
    );
    x = 'scaled';
  }
  if (sae.bDec) {
    init.push(floats('b_dec', [sae.dIn], sae.bDec));
    nodes.push(node('Sub', [x, 'b_dec'], ['centred']));
    x = 'centred';
  }
  init.push(
    floats('W_enc', sae.transposed ? [sae.dSae, sae.dIn] : [sae.dIn, sae.dSae], sae.weight),
    floats('b_enc', [sae.dSae], sae.bias),
  );
  nodes.push(node('Gemm', [x, 'W_enc', 'b_enc'], ['pre'], [intAttr('transB', sae.transposed ? 1 : 0)]));
  const act = sae.activation;
  let inputs = [io(INPUT, ['rows', sae.dIn])];
  let outputs: onnx.IValueInfoProto[];
  if (act.kind === 'topk') {
    // The k largest pre-activations and where they are, ReLU on the values.
    init.push(
      onnx.TensorProto.create({
        name: 'k',
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [1],
        rawData: new Uint8Array(new BigInt64Array([BigInt(act.k)]).buffer),
      }),
    );
    nodes.push(
      node('TopK', ['pre', 'k'], ['top_pre', TOP_INDICES], [intAttr('axis', -1)]),
      node('Relu', ['top_pre'], [TOP_VALUES]),
    );
    outputs = [io(TOP_VALUES, ['rows', act.k]), io(TOP_INDICES, ['rows', act.k], onnx.TensorProto.DataType.INT64)];
  } else {
    if (act.kind === 'relu') nodes.push(node('Relu', ['pre'], ['latents']));
    else {
      // SAELens: ReLU(pre) · [pre > θ], which is pre where pre > max(θ, 0), else 0: two
      // passes over [rows, d_sae] instead of four.
      init.push(
        floats(
          'threshold',
          [sae.dSae],
          act.threshold.map((t) => Math.max(t, 0)),
        ),
        floats('zero', [], new Float32Array([0])),
      );
      nodes.push(node('Greater', ['pre', 'threshold'], ['open']), node('Where', ['open', 'pre', 'zero'], ['latents']));
    }
    // Each block's mean over its rows: [blocks, rows] · [rows, d_sae].
    nodes.push(node('MatMul', [POOL, 'latents'], [POOLED]));
    inputs = [...inputs, io(POOL, ['blocks', 'rows'])];
    outputs = [io(POOLED, ['blocks', sae.dSae])];
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'emgate',
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({
      name: 'sae_encoder',
      node: nodes,
      initializer: init,
      input: inputs,
      output: outputs,
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

function io(name: string, dims: (string | number)[], elemType: number = F32): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

/**
 * One reference's latents, summed over its rows as they come back (a reference's rows may
 * span two session calls), then kept sparse: the one open reference at a time.
 */
class SparseSum {
  private readonly sum: Float64Array;
  private readonly seen: Uint8Array;
  private touched: number[] = [];

  constructor(dSae: number) {
    this.sum = new Float64Array(dSae);
    this.seen = new Uint8Array(dSae);
  }

  add(latent: number, value: number): void {
    if (!this.seen[latent]) {
      this.seen[latent] = 1;
      this.touched.push(latent);
    }
    this.sum[latent] += value;
  }

  /** The non-zero sums, by latent, and a clean slate. */
  take(): SparseLatents {
    const order = Uint32Array.from(this.touched).sort();
    let n = 0;
    for (const j of order) if (this.sum[j] !== 0) n++;
    const index = new Uint32Array(n);
    const value = new Float32Array(n);
    n = 0;
    for (const j of order) {
      if (this.sum[j] !== 0) {
        index[n] = j;
        value[n++] = this.sum[j];
      }
      this.sum[j] = 0;
      this.seen[j] = 0;
    }
    this.touched = [];
    return { index, value };
  }
}

/** An open encoder session. */
export class SaeSession {
  private constructor(
    readonly sae: SaeEncoder,
    private readonly session: ModelSession,
  ) {}

  static async open(sae: SaeEncoder, settings: SessionSettings): Promise<SaeSession> {
    const label = `${sae.dir} (SAE encoder)`;
    return new SaeSession(sae, await openSession(saeEncoderGraph(sae), label, settings));
  }

  get provider(): 'cpu' | 'cuda' {
    return this.session.provider;
  }

  /**
   * The mean latents of each block of vectors ([n, d_in] row-major, n ≥ 1: a reference's
   * tokens), sparse: rows of many blocks go through the session together, so a short
   * reference does not cost a session call of its own.
   */
  async meanLatents(blocks: Float32Array[]): Promise<SparseLatents[]> {
    const { dIn, dSae } = this.sae;
    const rows = rowsPerCall(dSae);
    const out: SparseLatents[] = [];
    const open = new SparseSum(dSae);
    let openBlock = 0;
    /** Adds block b's weighted latents; a new block closes the one before. */
    const into = (b: number) => {
      while (openBlock < b) {
        out.push(open.take());
        openBlock++;
      }
      return open;
    };
    const chunk = new Float32Array(rows * dIn);
    let owners: number[] = [];
    const size = blocks.map((v) => {
      const n = v.length / dIn;
      if (!Number.isInteger(n) || n < 1) throw new Error(`a block of ${v.length} numbers is not [n ≥ 1, ${dIn}]`);
      return n;
    });
    const flush = async () => {
      if (owners.length === 0) return;
      await this.pooledRun(chunk.subarray(0, owners.length * dIn), owners, size, into);
      owners = [];
    };
    for (let b = 0; b < blocks.length; b++) {
      for (let t = 0; t < size[b]; t++) {
        chunk.set(blocks[b].subarray(t * dIn, (t + 1) * dIn), owners.length * dIn);
        owners.push(b);
        if (owners.length === rows) await flush();
      }
    }
    await flush();
    into(blocks.length);
    return out;
  }

  /**
   * One session call over rows owned by blocks (in order): each row's latents, weighted by
   * 1 / its block's size, added to its block. TopK: the k values and indices per row;
   * ReLU / JumpReLU: pooled per block in the graph.
   */
  private async pooledRun(
    data: Float32Array,
    owners: number[],
    size: number[],
    into: (b: number) => SparseSum,
  ): Promise<void> {
    const { dIn, dSae } = this.sae;
    const residual = { type: 'float32' as const, data, dims: [owners.length, dIn] };
    if (this.sae.activation.kind === 'topk') {
      const k = this.sae.activation.k;
      const res = await this.session.run({ [INPUT]: residual }, [TOP_VALUES, TOP_INDICES]);
      const values = asFloat32(res[TOP_VALUES]).data;
      const indices = res[TOP_INDICES].data as BigInt64Array;
      owners.forEach((b, r) => {
        const sum = into(b);
        const w = 1 / size[b];
        for (let i = r * k; i < (r + 1) * k; i++) if (values[i] > 0) sum.add(Number(indices[i]), values[i] * w);
      });
      return;
    }
    const first = owners[0];
    const count = owners[owners.length - 1] - first + 1;
    const pool = new Float32Array(count * owners.length);
    owners.forEach((b, r) => {
      pool[(b - first) * owners.length + r] = 1 / size[b];
    });
    const res = await this.session.run(
      { [INPUT]: residual, [POOL]: { type: 'float32', data: pool, dims: [count, owners.length] } },
      [POOLED],
    );
    const pooled = asFloat32(res[POOLED]).data;
    for (let c = 0; c < count; c++) {
      const sum = into(first + c);
      for (let j = 0, o = c * dSae; j < dSae; j++, o++) if (pooled[o] !== 0) sum.add(j, pooled[o]);
    }
  }

  /** Latents of each residual vector (each of length d_in), in order, dense. */
  async encode(vectors: ArrayLike<number>[]): Promise<Float32Array[]> {
    const { dIn, dSae } = this.sae;
    const blocks = vectors.map((v) => {
      if (v.length !== dIn) throw new Error(`a residual vector has ${v.length} dimensions; the SAE reads ${dIn}`);
      return Float32Array.from(v);
    });
    // Each vector a block of one row: its mean latents are its latents.
    return (await this.meanLatents(blocks)).map((s) => {
      const dense = new Float32Array(dSae);
      s.index.forEach((j, i) => {
        dense[j] = s.value[i];
      });
      return dense;
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

// An SAE's encoder as a small ONNX graph, run as its own session on the run's execution
// provider (docs/sae.md): input scale, b_dec subtracted where the SAE says, one Gemm with
// the encoder bias, then the activation (ReLU, JumpReLU, TopK). The matrix work stays in
// onnxruntime, not in JavaScript loops; only [rows, d_sae] latents come back.
import { onnx } from 'onnx-proto';
import type { SaeEncoder } from '../load/sae';
import { asFloat32, type ModelSession, openSession, type SessionSettings } from './onnx';

const INPUT = 'residual';
const OUTPUT = 'latents';
/** Rows per session call: at most 512, and [rows, d_sae] outputs of at most 64 MB (256 rows at 65k latents). */
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

/** The encoder graph: residual [rows, d_in] float32 → latents [rows, d_sae] float32. */
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
  if (act.kind === 'relu') nodes.push(node('Relu', ['pre'], [OUTPUT]));
  else if (act.kind === 'jumprelu') {
    // SAELens: ReLU(pre) · [pre > θ].
    init.push(floats('threshold', [sae.dSae], act.threshold));
    nodes.push(
      node('Relu', ['pre'], ['pos']),
      node('Greater', ['pre', 'threshold'], ['open']),
      node('Cast', ['open'], ['gate'], [intAttr('to', F32)]),
      node('Mul', ['pos', 'gate'], [OUTPUT]),
    );
  } else {
    // TopK: the k largest pre-activations, ReLU on them, zeros elsewhere.
    init.push(
      onnx.TensorProto.create({
        name: 'k',
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [1],
        rawData: new Uint8Array(new BigInt64Array([BigInt(act.k)]).buffer),
      }),
    );
    nodes.push(
      node('TopK', ['pre', 'k'], ['top_values', 'top_indices'], [intAttr('axis', -1)]),
      node('Relu', ['top_values'], ['top_pos']),
      node('Shape', ['pre'], ['pre_shape']),
      node(
        'ConstantOfShape',
        ['pre_shape'],
        ['zeros'],
        [
          onnx.AttributeProto.create({
            name: 'value',
            type: onnx.AttributeProto.AttributeType.TENSOR,
            t: floats('zero', [1], new Float32Array([0])),
          }),
        ],
      ),
      node('ScatterElements', ['zeros', 'top_indices', 'top_pos'], [OUTPUT], [intAttr('axis', -1)]),
    );
  }
  const io = (name: string, width: number) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: { elemType: F32, shape: { dim: [{ dimParam: 'rows' }, { dimValue: width }] } },
      },
    });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'emgate',
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({
      name: 'sae_encoder',
      node: nodes,
      initializer: init,
      input: [io(INPUT, sae.dIn)],
      output: [io(OUTPUT, sae.dSae)],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
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
   * tokens): rows of many blocks go through the session together, so a short reference does
   * not cost a session call of its own.
   */
  async meanLatents(blocks: Float32Array[]): Promise<Float32Array[]> {
    const { dIn, dSae } = this.sae;
    const rows = rowsPerCall(dSae);
    const means = blocks.map(() => new Float32Array(dSae));
    const chunk = new Float32Array(rows * dIn);
    let owners: number[] = [];
    const flush = async () => {
      if (owners.length === 0) return;
      const feed = {
        type: 'float32' as const,
        data: chunk.subarray(0, owners.length * dIn),
        dims: [owners.length, dIn],
      };
      const out = asFloat32((await this.session.run({ [INPUT]: feed }, [OUTPUT]))[OUTPUT]).data;
      owners.forEach((b, r) => {
        const m = means[b];
        const w = dIn / blocks[b].length;
        for (let j = 0, o = r * dSae; j < dSae; j++, o++) if (out[o] !== 0) m[j] += out[o] * w;
      });
      owners = [];
    };
    for (let b = 0; b < blocks.length; b++) {
      const n = blocks[b].length / dIn;
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`a block of ${blocks[b].length} numbers is not [n ≥ 1, ${dIn}]`);
      for (let t = 0; t < n; t++) {
        chunk.set(blocks[b].subarray(t * dIn, (t + 1) * dIn), owners.length * dIn);
        owners.push(b);
        if (owners.length === rows) await flush();
      }
    }
    await flush();
    return means;
  }

  /** Latents of each residual vector (each of length d_in), in order. */
  async encode(vectors: ArrayLike<number>[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const { dIn, dSae } = this.sae;
    const rows = rowsPerCall(dSae);
    for (let at = 0; at < vectors.length; at += rows) {
      const chunk = vectors.slice(at, at + rows);
      const data = new Float32Array(chunk.length * dIn);
      chunk.forEach((v, r) => {
        if (v.length !== dIn) throw new Error(`a residual vector has ${v.length} dimensions; the SAE reads ${dIn}`);
        data.set(v, r * dIn);
      });
      const res = await this.session.run({ [INPUT]: { type: 'float32', data, dims: [chunk.length, dIn] } }, [OUTPUT]);
      const latents = asFloat32(res[OUTPUT]).data;
      for (let r = 0; r < chunk.length; r++) out.push(latents.slice(r * dSae, (r + 1) * dSae));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

// Graph surgery on the ONNX protobuf, before a session is created: find the tensor that
// carries the residual stream after each decoder layer and expose it as a graph output.
// Exports without `hidden_states.N` outputs (most optimum exports) keep the residual stream
// internal; onnxruntime can only fetch graph outputs, so we add them here.
import { onnx } from 'onnx-proto';

/** Matches the decoder-layer scope in exported node names: /model/layers.3/..., /transformer/h.3/... */
const LAYER_SCOPE = /(?:^|\/)(?:layers|layer|h|blocks|block)\.(\d+)\//;
const PASS_THROUGH_OPS = new Set(['Cast', 'Identity']);

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: onnx.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Appends graph outputs (by tensor name); names already exposed are left alone. */
export function exposeTensors(model: onnx.ModelProto, names: string[]): void {
  const graph = model.graph;
  if (!graph) throw new Error('the model has no graph');
  graph.output ??= [];
  const existing = new Set(graph.output.map((o) => o.name));
  for (const name of names) {
    if (existing.has(name)) continue;
    // No type: onnxruntime infers it; a wrong guess (float16 models) would fail the load.
    graph.output.push(onnx.ValueInfoProto.create({ name }));
    existing.add(name);
  }
}

export interface ResidualLocation {
  /** Tensor name per hidden-state index 0..L (HF `output_hidden_states` numbering). */
  tensors: string[];
}

/**
 * Finds the residual-stream tensor for every hidden-state index, HF numbering:
 * 0 = token embeddings, k = the output of decoder layer k−1 (1 ≤ k < L), L = the final
 * normed state (the input of the LM head).
 *
 * Decoder layer k's output is the one tensor produced inside the `layers.k` scope and read
 * by the next scope (layer k+1, or the final norm). The embeddings come from the Gather on
 * a rank-2 weight fed by the token ids; the final state is the data input of the
 * MatMul/Gemm that produces `logits`.
 */
export function locateResidualStream(model: onnx.ModelProto, numLayers: number, logitsName = 'logits'): ResidualLocation {
  const graph = model.graph;
  if (!graph) throw new Error('the model has no graph');
  const nodes = graph.node ?? [];
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const initializerRank = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).length]));

  const producer = new Map<string, onnx.INodeProto>();
  const consumers = new Map<string, onnx.INodeProto[]>();
  for (const node of nodes) {
    for (const out of node.output ?? []) producer.set(out, node);
    for (const inp of node.input ?? []) {
      if (!inp) continue;
      const list = consumers.get(inp) ?? [];
      list.push(node);
      consumers.set(inp, list);
    }
  }
  const layerOf = (node: onnx.INodeProto): number | null => {
    const m = LAYER_SCOPE.exec(node.name ?? '');
    return m ? Number(m[1]) : null;
  };

  // Tensors that depend on the model's inputs (not only on weights and constants).
  const dataDependent = new Set((graph.input ?? []).map((i) => i.name ?? '').filter((n) => n && !initializers.has(n)));
  for (const node of nodes) {
    if ((node.input ?? []).some((i) => dataDependent.has(i))) for (const o of node.output ?? []) dataDependent.add(o);
  }

  const tensors: string[] = [];
  tensors.push(findEmbeddings(nodes, initializerRank, dataDependent));
  for (let k = 0; k < numLayers - 1; k++) tensors.push(findLayerOutput(k, nodes, consumers, layerOf, dataDependent));
  tensors.push(findFinalState(logitsName, producer, dataDependent));
  return { tensors };
}

function findEmbeddings(
  nodes: onnx.INodeProto[],
  initializerRank: Map<string, number>,
  dataDependent: Set<string>,
): string {
  const found = nodes.filter(
    (n) => n.opType === 'Gather' && initializerRank.get(n.input?.[0] ?? '') === 2 && dataDependent.has(n.input?.[1] ?? ''),
  );
  if (found.length !== 1) {
    throw new Error(`expected one embedding lookup (Gather on a 2-D weight), found ${found.length}`);
  }
  return found[0].output![0];
}

function findLayerOutput(
  k: number,
  nodes: onnx.INodeProto[],
  consumers: Map<string, onnx.INodeProto[]>,
  layerOf: (n: onnx.INodeProto) => number | null,
  dataDependent: Set<string>,
): string {
  const candidates: { name: string; op: string }[] = [];
  for (const node of nodes) {
    if (layerOf(node) !== k) continue;
    for (const out of node.output ?? []) {
      if (!dataDependent.has(out)) continue;
      const readers = consumers.get(out) ?? [];
      const readByNext = readers.some((r) => {
        const l = layerOf(r);
        return l === k + 1 || (l === null && r.opType !== 'Shape');
      });
      if (readByNext) candidates.push({ name: out, op: node.opType ?? '' });
    }
  }
  // Several tensors can cross a layer boundary (e.g. a shared mask); the residual is an Add.
  const adds = candidates.filter((c) => c.op === 'Add');
  const chosen = candidates.length === 1 ? candidates : adds;
  if (chosen.length !== 1) {
    const names = candidates.map((c) => `${c.name} (${c.op})`).join(', ') || 'none';
    throw new Error(`could not tell which tensor leaves decoder layer ${k}; candidates: ${names}`);
  }
  return chosen[0].name;
}

function findFinalState(
  logitsName: string,
  producer: Map<string, onnx.INodeProto>,
  dataDependent: Set<string>,
): string {
  let node = producer.get(logitsName);
  while (node && PASS_THROUGH_OPS.has(node.opType ?? '')) node = producer.get(node.input![0]);
  if (!node || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) {
    throw new Error(`expected "${logitsName}" to come from a MatMul/Gemm (the LM head), found ${node?.opType ?? 'nothing'}`);
  }
  const data = (node.input ?? []).filter((i) => dataDependent.has(i));
  if (data.length !== 1) throw new Error(`the LM head has ${data.length} data inputs, expected 1`);
  return data[0];
}

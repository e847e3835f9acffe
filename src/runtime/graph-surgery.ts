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

/** Tensors that depend on the model's inputs (not only on weights and constants). */
function dataDependentTensors(graph: onnx.IGraphProto): Set<string> {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const dataDependent = new Set((graph.input ?? []).map((i) => i.name ?? '').filter((n) => n && !initializers.has(n)));
  for (const node of graph.node ?? []) {
    if ((node.input ?? []).some((i) => dataDependent.has(i))) for (const o of node.output ?? []) dataDependent.add(o);
  }
  return dataDependent;
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
export function locateResidualStream(
  model: onnx.ModelProto,
  numLayers: number,
  logitsName = 'logits',
): ResidualLocation {
  const graph = model.graph;
  if (!graph) throw new Error('the model has no graph');
  const nodes = graph.node ?? [];
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

  const dataDependent = dataDependentTensors(graph);

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
    (n) =>
      n.opType === 'Gather' && initializerRank.get(n.input?.[0] ?? '') === 2 && dataDependent.has(n.input?.[1] ?? ''),
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
    throw new Error(
      `expected "${logitsName}" to come from a MatMul/Gemm (the LM head), found ${node?.opType ?? 'nothing'}`,
    );
  }
  const data = (node.input ?? []).filter((i) => dataDependent.has(i));
  if (data.length !== 1) throw new Error(`the LM head has ${data.length} data inputs, expected 1`);
  return data[0];
}

/** The int64 input [batch, seq] that names, per position, the token whose log-prob is wanted. */
export const TARGET_IDS_INPUT = 'emgate_target_ids';
/** The float32 output [batch, seq]: log p(target at t | tokens up to t). */
export const TOKEN_LOGPROBS_OUTPUT = 'emgate_token_logprobs';

/** The default-domain opset the graph was exported with (0 when it declares none). */
export function defaultOpset(model: onnx.ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? Number(entry.version ?? 0) : 0;
}

/**
 * Why in-graph log-probabilities cannot be added to this graph, or null when they can.
 * GatherElements needs opset 11; the logits must be a graph output of the main graph.
 */
export function tokenLogprobsBlocker(model: onnx.ModelProto, logitsName = 'logits'): string | null {
  const graph = model.graph;
  if (!graph) return 'the model has no graph';
  const opset = defaultOpset(model);
  if (opset < 11) return `the graph uses opset ${opset}, older than GatherElements (opset 11)`;
  if (!(graph.output ?? []).some((o) => o.name === logitsName)) return `the graph has no "${logitsName}" output`;
  const taken = new Set([...(graph.input ?? []).map((i) => i.name), ...(graph.output ?? []).map((o) => o.name)]);
  if (taken.has(TARGET_IDS_INPUT) || taken.has(TOKEN_LOGPROBS_OUTPUT))
    return `the graph already uses the names ${TARGET_IDS_INPUT} / ${TOKEN_LOGPROBS_OUTPUT}`;
  return null;
}

/**
 * Appends what scoring needs after the LM head, so the session returns [batch, seq]
 * log-probabilities instead of [batch, seq, vocab] logits:
 *   logits ─Cast(float32)─LogSoftmax(last axis)─GatherElements(targets, last axis)─Squeeze─▶ logprobs
 * The Cast makes float16 exports normalise in float32 (a no-op on float32 logits). `logits`
 * stays a graph output (generation fetches it from the same session); a scoring run does
 * not fetch it, so the vocabulary-wide tensor is never copied out (or off the GPU).
 * LogSoftmax rather than `logit[target] − ReduceLogSumExp(logits)`: onnxruntime's CPU
 * ReduceLogSumExp is 5–8× slower than its vectorised LogSoftmax, and less exact
 * (bench/logsumexp.js), for one more vocabulary-wide tensor per pass, which the engine's
 * logits budget accounts for.
 */
export function appendTokenLogprobs(model: onnx.ModelProto, logitsName = 'logits'): void {
  const blocker = tokenLogprobsBlocker(model, logitsName);
  if (blocker) throw new Error(blocker);
  const graph = model.graph!;
  const opset = defaultOpset(model);
  const logitsInfo = graph.output!.find((o) => o.name === logitsName)!;
  const batchDim = logitsInfo.type?.tensorType?.shape?.dim?.[0];
  const seqDim = logitsInfo.type?.tensorType?.shape?.dim?.[1];
  const dimOf = (d: onnx.TensorShapeProto.IDimension | undefined, fallback: string) =>
    d?.dimValue !== undefined && d?.dimValue !== null && Number(d.dimValue) > 0
      ? { dimValue: d.dimValue }
      : { dimParam: d?.dimParam || fallback };
  const shape = onnx.TensorShapeProto.create({
    dim: [dimOf(batchDim, 'batch_size'), dimOf(seqDim, 'sequence_length')],
  });
  const tensorType = (elemType: number) => onnx.TypeProto.create({ tensorType: { elemType, shape } });

  graph.input!.push(
    onnx.ValueInfoProto.create({ name: TARGET_IDS_INPUT, type: tensorType(onnx.TensorProto.DataType.INT64) }),
  );
  const n = (name: string) => `/emgate/${name}`;
  const nodes: onnx.INodeProto[] = [];
  const attrInt = (name: string, i: number) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  const attrInts = (name: string, ints: number[]) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints });
  // float16 (or unknown-typed) logits are cast to float32 first; float32 ones are read as they are.
  const logitsType = logitsInfo.type?.tensorType?.elemType;
  let scored = logitsName;
  if (logitsType !== onnx.TensorProto.DataType.FLOAT) {
    scored = n('logits_f32');
    nodes.push(
      onnx.NodeProto.create({
        name: n('Cast'),
        opType: 'Cast',
        input: [logitsName],
        output: [scored],
        attribute: [attrInt('to', onnx.TensorProto.DataType.FLOAT)],
      }),
    );
  }

  graph.initializer ??= [];
  if (opset >= 13) {
    // Unsqueeze/Squeeze take their axes as an input from opset 13.
    graph.initializer.push(
      onnx.TensorProto.create({
        name: n('axis_last'),
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [1],
        int64Data: [2],
      }),
    );
  }
  const axesIn = (name: string, op: string, input: string, output: string) =>
    opset >= 13
      ? onnx.NodeProto.create({ name: n(name), opType: op, input: [input, n('axis_last')], output: [output] })
      : onnx.NodeProto.create({
          name: n(name),
          opType: op,
          input: [input],
          output: [output],
          attribute: [attrInts('axes', [2])],
        });
  nodes.push(axesIn('Unsqueeze', 'Unsqueeze', TARGET_IDS_INPUT, n('targets_3d')));
  // axis 2 of a rank-3 tensor is the last axis under both LogSoftmax semantics (opset < 13
  // flattens to [batch·seq, vocab] at the axis, 13+ normalises along it).
  nodes.push(
    onnx.NodeProto.create({
      name: n('LogSoftmax'),
      opType: 'LogSoftmax',
      input: [scored],
      output: [n('logprobs_full')],
      attribute: [attrInt('axis', 2)],
    }),
  );
  nodes.push(
    onnx.NodeProto.create({
      name: n('GatherElements'),
      opType: 'GatherElements',
      input: [n('logprobs_full'), n('targets_3d')],
      output: [n('target_logprob_3d')],
      attribute: [attrInt('axis', 2)],
    }),
  );
  nodes.push(axesIn('Squeeze', 'Squeeze', n('target_logprob_3d'), TOKEN_LOGPROBS_OUTPUT));
  graph.node!.push(...nodes);
  graph.output!.push(
    onnx.ValueInfoProto.create({ name: TOKEN_LOGPROBS_OUTPUT, type: tensorType(onnx.TensorProto.DataType.FLOAT) }),
  );
}

/**
 * Turns the inline weights of a model decoded from `file` into external-data references to
 * the same bytes of that same file (location = its base name, offset, length), so the
 * patched graph that goes to onnxruntime is small and the weights are read from disk once,
 * by onnxruntime, instead of living in JavaScript memory twice (read + re-encode).
 * `fileBytes` must be the buffer the model was decoded from. Returns the bytes moved.
 */
export function referenceInlineWeights(
  model: onnx.ModelProto,
  fileBytes: Uint8Array,
  location: string,
  minBytes = 1024,
): number {
  let moved = 0;
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.length < minBytes || raw.buffer !== fileBytes.buffer) continue;
    const offset = raw.byteOffset - fileBytes.byteOffset;
    if (offset < 0 || offset + raw.length > fileBytes.length) continue;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: location }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    t.rawData = new Uint8Array(0);
    moved += raw.length;
  }
  return moved;
}

/**
 * LM heads whose data input may be any [batch, seq, hidden] tensor: a float MatMul, and the
 * 4-bit MatMulNBits of q4 / q4f16 exports (com.microsoft; it multiplies along the last axis).
 */
const LM_HEAD_OPS = new Set(['MatMul', 'MatMulNBits']);

/** The int64 input [k]: the sequence positions whose logits are computed (all, when fed 0..seq−1). */
export const POSITIONS_INPUT = 'emgate_positions';

/**
 * Makes the LM head read only the positions named by `emgate_positions` (a Gather on the
 * sequence axis of its input), so a pass computes vocabulary-wide logits where a token is
 * scored and nowhere else: not over a prompt whose cache is all that is wanted, not over
 * the prompt part of a full sequence. `logits` (and the log-probabilities after it) then
 * have k positions. Returns false and leaves the graph alone when the head is not a MatMul
 * (or MatMulNBits) with one data input (a Gemm on a flattened state, a head inside a subgraph).
 */
export function gatherBeforeLmHead(model: onnx.ModelProto, logitsName = 'logits'): boolean {
  const graph = model.graph;
  if (!graph?.node) return false;
  const producer = new Map<string, onnx.INodeProto>();
  for (const node of graph.node) for (const out of node.output ?? []) producer.set(out, node);
  let head = producer.get(logitsName);
  while (head && PASS_THROUGH_OPS.has(head.opType ?? '')) head = producer.get(head.input![0]);
  if (!head || !LM_HEAD_OPS.has(head.opType ?? '')) return false;
  const dataDependent = dataDependentTensors(graph);
  const dataInputs = (head.input ?? []).map((name, i) => ({ name, i })).filter((x) => dataDependent.has(x.name));
  if (dataInputs.length !== 1 || dataInputs[0].i !== 0) return false;
  const taken = new Set((graph.input ?? []).map((i) => i.name));
  if (taken.has(POSITIONS_INPUT)) return false;
  const gathered = '/emgate/lm_head_input';
  graph.input!.push(
    onnx.ValueInfoProto.create({
      name: POSITIONS_INPUT,
      type: {
        tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimParam: 'emgate_positions' }] } },
      },
    }),
  );
  const gather = onnx.NodeProto.create({
    name: '/emgate/Gather_positions',
    opType: 'Gather',
    input: [dataInputs[0].name, POSITIONS_INPUT],
    output: [gathered],
    attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
  });
  graph.node.splice(graph.node.indexOf(head), 0, gather);
  head.input![0] = gathered;
  const logits = (graph.output ?? []).find((o) => o.name === logitsName);
  const dims = logits?.type?.tensorType?.shape?.dim;
  if (dims && dims.length >= 2) dims[1] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'emgate_positions' });
  return true;
}

// Direction ablation by graph surgery (SPEC "Internal evidence beyond the projection"): the
// residual stream loses its component along a unit direction r̂, x ← x − (x·r̂) r̂, at every
// position, on the embeddings and after every write into it (each residual Add: attention
// and MLP alike), so no layer ever reads a residual with a component along r̂.
//
// Why in the graph rather than the equivalent weight orthogonalisation (W ← W − W r̂ r̂ᵀ for
// the embedding table and every o_proj / down_proj; equal within float tolerance,
// __tests__/ablation.test.ts checks both on an organism):
// - the weights stay untouched and are still read by onnxruntime from the user's files:
//   orthogonalising would copy a third of a model's weights into JavaScript memory;
// - it works whatever the weights are stored as (float16, 4-bit MatMulNBits, external
//   data) and whatever else writes to the residual (biases on o_proj, position embeddings),
//   where orthogonalisation needs one rule per kind of writer;
// - it costs 2L + 1 rank-1 projections per pass: nothing beside the layers themselves.
// The checkpoint on disk never changes: the edited graph lives in memory only.
import { onnx } from 'onnx-proto';

const ABLATE_SCOPE = '/emgate/ablate';

/** Where the residual stream is written: the embeddings, then each residual Add in order. */
export interface ResidualWrites {
  /** The embedding lookup's output (the first residual-stream tensor). */
  embeddings: string;
  /** The output of every residual Add, in graph order (two per pre-norm decoder layer). */
  adds: string[];
  /** Element type of the residual stream (onnx.TensorProto.DataType), from the embedding table. */
  elemType: number;
}

/** Tensors that depend on the model's inputs (not only on weights and constants). */
function dataDependentTensors(graph: onnx.IGraphProto): Set<string> {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const out = new Set((graph.input ?? []).map((i) => i.name ?? '').filter((n) => n && !initializers.has(n)));
  for (const node of graph.node ?? []) {
    if ((node.input ?? []).some((i) => out.has(i))) for (const o of node.output ?? []) out.add(o);
  }
  return out;
}

/**
 * Finds the residual stream by following it: from the embedding lookup (a Gather on a 2-D
 * weight fed by the token ids), each residual Add is the one Add that reads the current
 * residual tensor and another data-dependent tensor (a sublayer's output). Stops where no
 * such Add reads it (the final norm). A graph whose adds are fused into other operators
 * (SkipSimplifiedLayerNormalization) has no such chain and is refused.
 */
export function locateResidualWrites(model: onnx.IModelProto, numLayers: number): ResidualWrites {
  const graph = model.graph;
  if (!graph) throw new Error('the model has no graph');
  const nodes = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const dataDependent = dataDependentTensors(graph);
  const lookups = nodes.filter(
    (n) =>
      n.opType === 'Gather' &&
      (initializers.get(n.input?.[0] ?? '')?.dims ?? []).length === 2 &&
      dataDependent.has(n.input?.[1] ?? ''),
  );
  if (lookups.length !== 1)
    throw new Error(`expected one embedding lookup (Gather on a 2-D weight), found ${lookups.length}`);
  const table = initializers.get(lookups[0].input![0])!;
  const elemType = Number(table.dataType ?? 0);
  const floats = [
    onnx.TensorProto.DataType.FLOAT,
    onnx.TensorProto.DataType.FLOAT16,
    onnx.TensorProto.DataType.BFLOAT16,
  ];
  if (!floats.includes(elemType))
    throw new Error(`the embedding table has element type ${elemType}, not float32/float16/bfloat16`);

  const consumers = new Map<string, onnx.INodeProto[]>();
  for (const node of nodes)
    for (const inp of node.input ?? []) if (inp) consumers.set(inp, [...(consumers.get(inp) ?? []), node]);
  const embeddings = lookups[0].output![0];
  const adds: string[] = [];
  let current = embeddings;
  for (;;) {
    const next = (consumers.get(current) ?? []).filter(
      (n) =>
        n.opType === 'Add' &&
        (n.input ?? []).length === 2 &&
        (n.input ?? []).every((i) => dataDependent.has(i)) &&
        (n.input ?? []).some((i) => i !== current),
    );
    if (next.length === 0) break;
    if (next.length > 1)
      throw new Error(`${next.length} residual Adds read "${current}"; cannot tell which carries the residual stream`);
    current = next[0].output![0];
    adds.push(current);
  }
  // Pre-norm decoders write twice per layer (attention, MLP); parallel blocks (GPT-J) once.
  if (adds.length < numLayers) {
    throw new Error(
      `found ${adds.length} residual Adds after the embeddings, fewer than the ${numLayers} decoder layers (a graph with fused residual adds cannot be ablated)`,
    );
  }
  return { embeddings, adds, elemType };
}

/**
 * Removes the component along `direction` (normalised here) from the residual stream at
 * every write: x ← x − (x·r̂) r̂, computed in float32 (Cast in and out for float16 graphs).
 * Each site's producer is renamed and the projection writes the old name, so every reader
 * (the next layer, the final norm, an exposed hidden-state output) sees the ablated stream.
 * Returns the number of sites. Throws when the direction has the wrong size or no length.
 */
export function ablateDirection(model: onnx.IModelProto, direction: ArrayLike<number>, numLayers: number): number {
  const rCol = `${ABLATE_SCOPE}/r_col`;
  const rRow = `${ABLATE_SCOPE}/r_row`;
  if ((model.graph?.initializer ?? []).some((t) => t.name === rCol))
    throw new Error('the graph already carries an ablation (the names /emgate/ablate/* are taken)');
  const writes = locateResidualWrites(model, numLayers);
  const graph = model.graph!;
  const unit = unitVector(direction);
  const hidden = residualWidth(graph, writes.embeddings);
  if (hidden !== null && hidden !== unit.length)
    throw new Error(`the direction has ${unit.length} dimensions but the residual stream has ${hidden}`);
  const f32 = onnx.TensorProto.DataType.FLOAT;
  const raw = new Uint8Array(new Float32Array(unit).buffer);
  graph.initializer ??= [];
  graph.initializer.push(
    onnx.TensorProto.create({ name: rCol, dataType: f32, dims: [unit.length, 1], rawData: raw }),
    onnx.TensorProto.create({ name: rRow, dataType: f32, dims: [1, unit.length], rawData: raw }),
  );
  const producer = new Map<string, onnx.INodeProto>();
  for (const node of graph.node ?? []) for (const out of node.output ?? []) producer.set(out, node);
  const castTo = (to: number, input: string, output: string, name: string) =>
    onnx.NodeProto.create({
      name,
      opType: 'Cast',
      input: [input],
      output: [output],
      attribute: [onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to })],
    });
  const sites = [writes.embeddings, ...writes.adds];
  sites.forEach((site, k) => {
    const node = producer.get(site)!;
    const s = (part: string) => `${ABLATE_SCOPE}/${k}/${part}`;
    const pre = s('pre');
    node.output = (node.output ?? []).map((o) => (o === site ? pre : o));
    const added: onnx.INodeProto[] = [];
    let x = pre;
    if (writes.elemType !== f32) {
      added.push(castTo(f32, pre, s('x_f32'), s('Cast_in')));
      x = s('x_f32');
    }
    added.push(
      onnx.NodeProto.create({ name: s('MatMul_coef'), opType: 'MatMul', input: [x, rCol], output: [s('coef')] }),
      onnx.NodeProto.create({
        name: s('MatMul_proj'),
        opType: 'MatMul',
        input: [s('coef'), rRow],
        output: [s('proj')],
      }),
    );
    let proj = s('proj');
    if (writes.elemType !== f32) {
      added.push(castTo(writes.elemType, proj, s('proj_cast'), s('Cast_out')));
      proj = s('proj_cast');
    }
    added.push(onnx.NodeProto.create({ name: s('Sub'), opType: 'Sub', input: [pre, proj], output: [site] }));
    const at = graph.node!.indexOf(node);
    graph.node!.splice(at + 1, 0, ...added);
  });
  return sites.length;
}

/** r / ‖r‖ in float64; an empty, zero or non-finite direction is refused. */
export function unitVector(direction: ArrayLike<number>): number[] {
  const v = Array.from(direction);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  if (v.length === 0 || !Number.isFinite(norm) || norm === 0)
    throw new Error('the direction to ablate must be a non-empty vector of finite numbers with non-zero length');
  return v.map((x) => x / norm);
}

/** The embedding table's width (hidden size), or null when its shape is not recorded. */
function residualWidth(graph: onnx.IGraphProto, embeddings: string): number | null {
  const lookup = (graph.node ?? []).find((n) => (n.output ?? []).includes(embeddings));
  const table = (graph.initializer ?? []).find((t) => t.name === lookup?.input?.[0]);
  const dims = table?.dims ?? [];
  return dims.length === 2 ? Number(dims[1]) : null;
}

// Checks an ONNX file the way a user needs to hear about it, before (or after) onnxruntime
// fails on it with a message about protobuf internals: a Git LFS pointer checked out in
// place of the model, a truncated upload, a file that is no ONNX protobuf at all, and
// external data files that are missing or shorter than the graph says (naming that file).
import * as fs from 'fs';
import { onnx } from 'onnx-proto';
import * as path from 'path';
import { EmgateError } from '../core/errors';

const LFS_POINTER = 'version https://git-lfs.github.com/spec/v1';

/** Bytes per element of ONNX TensorProto data types, for external tensors without a length. */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

export interface OnnxFileSummary {
  nodes: number;
  inputs: string[];
  outputs: string[];
  /** External data files the graph reads, relative to its folder. */
  externalData: string[];
}

/** Throws an EmgateError naming the damaged file (the graph or one of its data files). */
export async function inspectOnnxFile(file: string): Promise<OnnxFileSummary> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `cannot read the model (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'check the file exists and is readable',
    });
  }
  if (bytes.length === 0)
    throw new EmgateError({ file, cause: 'the model file is empty', fix: 're-export or re-download the model' });
  if (bytes.subarray(0, LFS_POINTER.length).toString('latin1') === LFS_POINTER) {
    throw new EmgateError({
      file,
      cause: `is a Git LFS pointer (${bytes.length} bytes of text), not the model: the repository was checked out without its LFS files`,
      fix: 'fetch the LFS files (git lfs pull; in a workflow, actions/checkout with `lfs: true`)',
    });
  }
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `is not a complete ONNX protobuf (${(err as Error).message}; ${bytes.length} bytes): truncated, corrupt or another kind of file`,
      fix: 're-export the model or download it again (compare its size and sha256 with the source)',
    });
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw new EmgateError({
      file,
      cause: 'holds no ONNX graph (no nodes): not an ONNX model',
      fix: 're-export the model (optimum-cli export onnx --task text-generation)',
    });
  }
  const externalData = await checkExternalData(file, graph);
  return {
    nodes: graph.node!.length,
    inputs: (graph.input ?? []).map((i) => i.name ?? ''),
    outputs: (graph.output ?? []).map((o) => o.name ?? ''),
    externalData,
  };
}

async function checkExternalData(file: string, graph: onnx.IGraphProto): Promise<string[]> {
  const dir = path.dirname(file);
  /** Bytes each external data file must hold, at least. */
  const needed = new Map<string, { bytes: number; tensor: string }>();
  for (const t of graph.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entry.get('location');
    if (!location) continue;
    const offset = Number(entry.get('offset') ?? 0);
    const elements = (t.dims ?? []).reduce((n: number, d) => n * Number(d), 1);
    const length = entry.has('length') ? Number(entry.get('length')) : elements * (ELEMENT_BYTES[t.dataType ?? 0] ?? 0);
    const end = offset + length;
    const prev = needed.get(location);
    if (!prev || end > prev.bytes) needed.set(location, { bytes: end, tensor: t.name ?? '?' });
  }
  for (const [location, { bytes, tensor }] of needed) {
    const dataFile = path.join(dir, location);
    const st = await fs.promises.stat(dataFile).catch(() => null);
    if (!st) {
      throw new EmgateError({
        file: dataFile,
        cause: `the external data file of ${path.basename(file)} is missing`,
        fix: `put ${location} beside ${path.basename(file)} (it holds the weights; download or copy it with the model)`,
      });
    }
    // A FIFO or device here would block onnxruntime's read (native, past any timeout).
    if (!st.isFile()) {
      throw new EmgateError({
        file: dataFile,
        cause: `the external data file of ${path.basename(file)} is ${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO (named pipe)' : 'a socket or device'}, not a regular file`,
        fix: `put the real ${location} beside ${path.basename(file)} (it holds the weights)`,
      });
    }
    if (st.size < bytes) {
      throw new EmgateError({
        file: dataFile,
        cause: `is truncated: ${path.basename(file)} reads tensor "${tensor}" up to byte ${bytes}, the file has ${st.size}`,
        fix: 'download or copy the external data file again, completely (compare its size and sha256 with the source)',
      });
    }
  }
  return [...needed.keys()];
}

/** The external data locations a graph names (relative to its file), each once. */
export function externalLocations(model: onnx.IModelProto): string[] {
  const out = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const location = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
    if (location) out.add(location);
  }
  return [...out];
}

/**
 * onnxruntime refuses external data whose real path leaves the folder it resolves data
 * against, and a Hugging Face cache is made of exactly such paths: snapshots/REV/model.onnx_data
 * links to blobs/SHA. When a data file's real path lies outside `modelDir`, this rewrites
 * every external location of `model` to the real file, relative to the folder that holds
 * them all, and returns that folder (to be given to onnxruntime as the data folder).
 * Returns null, changing nothing, when every data file is really inside `modelDir`.
 */
export async function relocateExternalData(model: onnx.ModelProto, modelDir: string): Promise<string | null> {
  const tensors = (model.graph?.initializer ?? []).filter(
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
  );
  const realDir = await fs.promises.realpath(modelDir);
  // location → the data file's real path (a missing file keeps its path; inspectOnnxFile names it).
  const real = new Map<string, string>();
  for (const t of tensors) {
    const location = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
    if (!location || real.has(location)) continue;
    const file = path.join(modelDir, location);
    real.set(location, await fs.promises.realpath(file).catch(() => path.join(realDir, location)));
  }
  const files = [...real.values()];
  const within = (dir: string, file: string) => !path.relative(dir, file).startsWith('..');
  if (files.every((f) => within(realDir, f))) return null;
  // The deepest folder that holds every data file.
  let common = path.dirname(files[0]);
  while (!files.every((f) => within(common, f))) common = path.dirname(common);
  for (const t of tensors) {
    const entry = (t.externalData ?? []).find((e) => e.key === 'location');
    if (entry?.value) entry.value = path.relative(common, real.get(entry.value)!);
  }
  return common;
}

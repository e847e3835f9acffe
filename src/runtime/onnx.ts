// The one door to onnxruntime-node: sessions, execution providers, tensors.
// Everything above this file sees plain typed arrays with their dims.
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { EmgateError } from '../core/errors';

export type Device = 'cpu' | 'cuda' | 'auto';

export interface SessionSettings {
  /** cpu: CPU only. cuda: the CUDA provider (falls back to CPU with a warning unless requireGpu). auto: CUDA when it loads. */
  device: Device;
  /** Intra-op threads; undefined lets onnxruntime choose (all cores). */
  threads?: number;
  /** Fail instead of falling back to CPU when CUDA cannot be used. */
  requireGpu?: boolean;
  /** Where warnings go (the CLI prints them, the Action logs them). */
  warn?: (message: string) => void;
  /** For a model passed as bytes: the folder its external weight files are resolved against. */
  externalDataDir?: string;
}

export type ElementType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | string;

export interface ValueInfo {
  name: string;
  type: ElementType;
  /** Numbers for fixed dims, strings for symbolic ones. */
  shape: ReadonlyArray<number | string>;
}

export interface FeedTensor {
  type: 'int64' | 'float32' | 'float16' | 'bool';
  data: BigInt64Array | Float32Array | Uint16Array | Uint8Array;
  dims: number[];
}

/** An output converted to float32 (float16 outputs are widened here, once). */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

/**
 * An output as the graph produced it: float16 stays raw half bits (a KV cache is fed back
 * unchanged), int64 stays BigInt64Array. `asFloat32` widens it when arithmetic needs it.
 */
export interface OutputTensor {
  type: 'float32' | 'float16' | 'int64';
  data: Float32Array | Uint16Array | BigInt64Array;
  dims: number[];
}

export interface ModelSession {
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** The execution provider the session was created with. */
  readonly provider: 'cpu' | 'cuda';
  /** Runs the graph; outputs come back in the graph's own element type. */
  run(feeds: Record<string, FeedTensor>, fetch: string[]): Promise<Record<string, OutputTensor>>;
  release(): Promise<void>;
}

export const onnxruntimeVersion: string =
  (ort.env.versions as { node?: string; common?: string }).node ??
  (ort.env.versions as { common?: string }).common ??
  'unknown';

/**
 * Opens a session on a model file or an in-memory model (after graph surgery).
 * `modelLabel` names the file in error messages even when the bytes come from memory.
 */
export async function openSession(
  model: string | Uint8Array,
  modelLabel: string,
  settings: SessionSettings,
): Promise<ModelSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    // Deterministic results on one machine: no thread-count-dependent reductions across runs.
    executionMode: 'sequential',
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  };
  if (settings.threads !== undefined && settings.threads > 0) base.intraOpNumThreads = settings.threads;
  if (settings.externalDataDir !== undefined) {
    // onnxruntime's session config key for models loaded from memory with external weights.
    base.extra = { session: { model_external_initializers_file_folder_path: settings.externalDataDir } };
  }
  // auto asks onnxruntime for CUDA only when its provider library is installed: asking
  // without it makes onnxruntime print a red "cannot open libonnxruntime_providers_shared.so"
  // on every load of a CPU-only install. An explicit cuda always asks (and warns on fallback).
  const wantCuda =
    settings.device === 'cuda' || (settings.device === 'auto' && (cudaProviderInstalled() || settings.requireGpu));
  if (wantCuda) {
    try {
      const session = await create(model, { ...base, executionProviders: ['cuda'] });
      return wrap(session, 'cuda');
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      if (settings.requireGpu) {
        throw new EmgateError({
          file: modelLabel,
          cause: `the CUDA execution provider could not be used (${reason}) and a GPU is required`,
          fix: 'run on a runner with an NVIDIA GPU, CUDA 12 and cuDNN 9, and install onnxruntime-node without ONNXRUNTIME_NODE_INSTALL=skip so its CUDA provider is downloaded; or drop require-gpu',
        });
      }
      if (settings.device === 'cuda') {
        settings.warn?.(`CUDA execution provider unavailable (${reason}); falling back to CPU`);
      }
    }
  }
  try {
    const session = await create(model, { ...base, executionProviders: ['cpu'] });
    return wrap(session, 'cpu');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new EmgateError({
      file: modelLabel,
      cause: `onnxruntime could not load the model (${reason.split('\n')[0]})`,
      fix: 'check that the file is a complete ONNX model (re-export or re-download it; a truncated upload or a Git LFS pointer file gives this error) and that its external data files sit beside it',
    });
  }
}

/**
 * Whether onnxruntime-node's CUDA provider library sits beside its binding (it is
 * downloaded at install unless ONNXRUNTIME_NODE_INSTALL=skip). When that cannot be told,
 * true: onnxruntime is asked and decides.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin');
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return fs.readdirSync(bin).some((napi) => fs.existsSync(path.join(bin, napi, process.platform, process.arch, lib)));
  } catch {
    return true;
  }
}

function create(
  model: string | Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  // Two calls because the overloads do not accept the union.
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

function wrap(session: ort.InferenceSession, provider: 'cpu' | 'cuda'): ModelSession {
  return {
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
    provider,
    async run(feeds, fetch) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await session.run(ortFeeds, fetch);
      } catch (err) {
        const shapes = Object.entries(feeds)
          .map(([n, t]) => `${n}:${t.type}[${t.dims.join(',')}]`)
          .join(' ');
        const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
        throw new Error(`onnxruntime run failed (${reason}); feeds: ${shapes}`);
      } finally {
        for (const t of Object.values(ortFeeds)) t.dispose();
      }
      const result: Record<string, OutputTensor> = {};
      for (const name of fetch) {
        const t = out[name];
        result[name] = raw(t);
        t.dispose();
      }
      return result;
    },
    release: () => session.release(),
  };
}

function raw(t: ort.Tensor): OutputTensor {
  const dims = [...t.dims];
  if (t.type === 'float32') return { type: 'float32', data: t.data as Float32Array, dims };
  if (t.type === 'float16') {
    const d = t.data as unknown as ArrayBufferView & { length: number };
    // Uint16Array on Node 20; a Float16Array (same bytes) where the runtime has one.
    const bits = d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.length);
    return { type: 'float16', data: bits, dims };
  }
  if (t.type === 'float64') return { type: 'float32', data: Float32Array.from(t.data as Float64Array), dims };
  if (t.type === 'int64') return { type: 'int64', data: t.data as BigInt64Array, dims };
  throw new Error(`output is ${t.type}, expected a float or int64 tensor`);
}

/** A float output as float32 (float16 widened exactly, once). */
export function asFloat32(t: OutputTensor): FloatTensor {
  if (t.type === 'float32') return { data: t.data as Float32Array, dims: t.dims };
  if (t.type === 'float16') return { data: halfToFloat(t.data as Uint16Array), dims: t.dims };
  throw new Error(`output is ${t.type}, expected a float tensor`);
}

/** IEEE 754 half → single, exactly (float16 logits exports). */
export function halfToFloat(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

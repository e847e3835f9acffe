// A safetensors reader (https://github.com/huggingface/safetensors, format section): an
// 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
// byte offsets into the data that follows. Only the header is read up front; a tensor's
// bytes are read by offset when asked for (an SAE encoder of 65k latents on a 4k model is
// 1 GB: the decoder is never read). Every offset is checked against the file's size.
import { promises as fs } from 'fs';
import { endianness } from 'os';
import { EmgateError } from '../core/errors';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

const LITTLE_ENDIAN = endianness() === 'LE';

/** Headers over this size are refused: a real one is a few kB, and a PR can plant the file. */
const MAX_HEADER = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
}

export interface SafetensorsFile {
  file: string;
  size: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function bad(file: string, cause: string): EmgateError {
  return new EmgateError({
    file,
    cause,
    fix: 'the file is truncated or not a safetensors file (a Git LFS pointer?): download it again',
  });
}

/** Reads and checks the header; the tensors' bytes stay on disk. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsFile> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `cannot read the file (${(err as Error).message})`,
      fix: 'check the path and that the file is readable',
    });
  }
  try {
    const { size } = await handle.stat();
    if (size < 8) throw bad(file, `${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    await handle.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen < 2 || headerLen > MAX_HEADER || 8 + headerLen > size) {
      throw bad(file, `header length ${headerLen} does not fit a file of ${size} bytes`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    await handle.read(headerBuf, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      throw bad(file, 'the header is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw bad(file, 'the header is not a JSON object');
    }
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      tensors.set(name, checkEntry(file, name, raw, dataStart, size));
    }
    return { file, size, tensors, metadata };
  } finally {
    await handle.close();
  }
}

function checkEntry(file: string, name: string, raw: unknown, dataStart: number, size: number): TensorEntry {
  const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e !== 'object' || e === null) throw bad(file, `tensor "${name}" has no header entry`);
  const dtype = e.dtype;
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
    throw new EmgateError({
      file,
      cause: `tensor "${name}" has dtype ${JSON.stringify(dtype)}; emgate reads F32, F16 and BF16`,
      fix: 'convert the SAE to float32, float16 or bfloat16 (a quantised SAE cannot be read)',
    });
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(file, `tensor "${name}" has shape ${JSON.stringify(shape)}, not a list of sizes`);
  }
  const offsets = e.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw bad(file, `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = offsets[1] - offsets[0];
  if (bytes !== count * BYTES[dtype]) {
    throw bad(
      file,
      `tensor "${name}" spans ${bytes} bytes, but ${dtype} [${shape.join(', ')}] needs ${count * BYTES[dtype]}`,
    );
  }
  const start = dataStart + offsets[0];
  const end = dataStart + offsets[1];
  if (end > size) throw bad(file, `tensor "${name}" ends at byte ${end}, past the end of the file (${size} bytes)`);
  return { name, dtype, shape: shape as number[], start, end };
}

/** One tensor's values as float32 (F16 and BF16 widened), read from its byte range only. */
export async function readTensor(st: SafetensorsFile, name: string): Promise<Float32Array> {
  const entry = st.tensors.get(name);
  if (!entry) throw new Error(`${st.file}: no tensor "${name}"`);
  const buf = Buffer.alloc(entry.end - entry.start);
  const handle = await fs.open(st.file, 'r');
  try {
    const { bytesRead } = await handle.read(buf, 0, buf.length, entry.start);
    if (bytesRead !== buf.length) throw bad(st.file, `tensor "${name}" could not be read in full (the file shrank?)`);
  } finally {
    await handle.close();
  }
  return decode(buf, entry.dtype);
}

function decode(buf: Buffer, dtype: SafetensorsDtype): Float32Array {
  const n = buf.length / BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === 'F32' && LITTLE_ENDIAN) {
    // The file's bytes are this machine's float32s: one copy, not one read per value.
    new Uint8Array(out.buffer).set(buf);
  } else if (dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(i * 4);
  } else if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const wide = new Uint32Array(1);
    const asFloat = new Float32Array(wide.buffer);
    for (let i = 0; i < n; i++) {
      wide[0] = buf.readUInt16LE(i * 2) << 16;
      out[i] = asFloat[0];
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(buf.readUInt16LE(i * 2));
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

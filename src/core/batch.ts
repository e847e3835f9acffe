// Pure tensor arithmetic for teacher-forced scoring: padding a batch, log-probabilities of
// response tokens, and residual vectors at chosen positions. No onnxruntime, no I/O.

/** Sequences per forward pass when nobody says: the one default of `--batch-size`. */
export const DEFAULT_BATCH_SIZE = 8;

export interface TokenSequence {
  promptIds: number[];
  responseIds: number[];
}

/**
 * One forward pass's inputs. Every row scores `responseIds.length` tokens: the output at
 * position `lastPrompt[row] + j` predicts response token j (`targetIds` holds it there), and
 * the response tokens themselves sit at positions `lastPrompt[row] + 1 + j`.
 */
export interface PaddedBatch {
  rows: number;
  seqLen: number;
  /** Cached positions before this pass (0 without a KV cache); the mask covers past + seq. */
  pastLen: number;
  inputIds: BigInt64Array;
  /** [rows, pastLen + seqLen]. */
  attentionMask: BigInt64Array;
  /** Positions count from the first real token (padding gets 1, as in HF). */
  positionIds: BigInt64Array;
  /** [rows, seqLen]: the next token at each scored position, 0 elsewhere (never read). */
  targetIds: BigInt64Array;
  /** Per row: the position in this pass of the last prompt token. */
  lastPrompt: number[];
  /** Index of each row's first real token (0 for right padding). */
  offsets: number[];
}

/**
 * Right padding is the default: with causal attention, pad tokens after the text cannot
 * change it, whatever the graph does with positions. Left padding is offered for parity
 * with generation-style batching; it needs a graph that takes position_ids or derives
 * them from the mask.
 */
export function padBatch(seqs: TokenSequence[], padId: number, side: 'left' | 'right'): PaddedBatch {
  const rows = seqs.length;
  const lengths = seqs.map((s) => s.promptIds.length + s.responseIds.length);
  const seqLen = Math.max(...lengths);
  const inputIds = new BigInt64Array(rows * seqLen).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(rows * seqLen);
  const positionIds = new BigInt64Array(rows * seqLen).fill(1n);
  const targetIds = new BigInt64Array(rows * seqLen);
  const offsets: number[] = [];
  const lastPrompt: number[] = [];
  seqs.forEach((s, r) => {
    const offset = side === 'left' ? seqLen - lengths[r] : 0;
    offsets.push(offset);
    lastPrompt.push(offset + s.promptIds.length - 1);
    const ids = [...s.promptIds, ...s.responseIds];
    for (let i = 0; i < ids.length; i++) {
      const at = r * seqLen + offset + i;
      inputIds[at] = BigInt(ids[i]);
      attentionMask[at] = 1n;
      positionIds[at] = BigInt(i);
      if (i >= s.promptIds.length) targetIds[at - 1] = BigInt(ids[i]);
    }
  });
  return { rows, seqLen, pastLen: 0, inputIds, attentionMask, positionIds, targetIds, lastPrompt, offsets };
}

/** A group of references that share one prompt: its KV cache is computed once. */
export interface SharedPromptRow {
  /** The prompt's tokens, all of them (the last one is fed with the response). */
  promptIds: number[];
  responseIds: number[];
}

/**
 * The pass that scores references from their prompts' KV caches. The cache holds prompt
 * tokens 0..P−2 of each row's prompt; this pass feeds the last prompt token and the
 * response, so it produces the prediction of every response token and the residual stream
 * at the last prompt token and at every response token. Rows of different prompts share a
 * batch: shorter caches are left-padded (mask 0), sequences right-padded; positions
 * continue from each row's own prompt, so nothing depends on the neighbours.
 */
export function sharedPromptBatch(rowsIn: SharedPromptRow[], padId: number): PaddedBatch {
  const rows = rowsIn.length;
  const cached = rowsIn.map((r) => r.promptIds.length - 1);
  const pastLen = Math.max(0, ...cached);
  const lengths = rowsIn.map((r) => 1 + r.responseIds.length);
  const seqLen = Math.max(...lengths);
  const total = pastLen + seqLen;
  const inputIds = new BigInt64Array(rows * seqLen).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(rows * total);
  const positionIds = new BigInt64Array(rows * seqLen).fill(1n);
  const targetIds = new BigInt64Array(rows * seqLen);
  rowsIn.forEach((r, row) => {
    for (let p = pastLen - cached[row]; p < pastLen; p++) attentionMask[row * total + p] = 1n;
    const ids = [r.promptIds[r.promptIds.length - 1], ...r.responseIds];
    for (let i = 0; i < ids.length; i++) {
      inputIds[row * seqLen + i] = BigInt(ids[i]);
      attentionMask[row * total + pastLen + i] = 1n;
      positionIds[row * seqLen + i] = BigInt(cached[row] + i);
      if (i > 0) targetIds[row * seqLen + i - 1] = BigInt(ids[i]);
    }
  });
  return {
    rows,
    seqLen,
    pastLen,
    inputIds,
    attentionMask,
    positionIds,
    targetIds,
    lastPrompt: rowsIn.map(() => 0),
    offsets: rowsIn.map(() => 0),
  };
}

/**
 * Stacks per-row caches [heads, len_r, dim] (row-major, one layer's key or value) into one
 * [rows, heads, pastLen, dim] tensor, each row's entries at the end (left padding, zeros).
 */
export function leftPadCache<T extends Float32Array | Uint16Array>(
  parts: { data: T; len: number }[],
  heads: number,
  headDim: number,
  pastLen: number,
  make: (n: number) => T,
): T {
  const out = make(parts.length * heads * pastLen * headDim);
  parts.forEach((part, row) => {
    const pad = pastLen - part.len;
    for (let h = 0; h < heads; h++) {
      const src = h * part.len * headDim;
      const dst = ((row * heads + h) * pastLen + pad) * headDim;
      out.set(part.data.subarray(src, src + part.len * headDim), dst);
    }
  });
  return out;
}

/** Copies row `row`, positions [0, len) of a [rows, heads, total, dim] cache output. */
export function sliceCacheRow<T extends Float32Array | Uint16Array>(
  data: T,
  heads: number,
  total: number,
  headDim: number,
  row: number,
  len: number,
  make: (n: number) => T,
): T {
  const out = make(heads * len * headDim);
  for (let h = 0; h < heads; h++) {
    const src = (row * heads + h) * total * headDim;
    out.set(data.subarray(src, src + len * headDim), h * len * headDim);
  }
  return out;
}

/**
 * Sum of the log-probabilities a graph with in-graph scoring returned ([rows, seqLen]) at
 * positions [from, from + count) of one row, accumulated in float64.
 */
export function logprobSumFromGraph(
  logprobs: Float32Array,
  seqLen: number,
  row: number,
  from: number,
  count: number,
): number {
  let total = 0;
  for (let j = 0; j < count; j++) {
    const x = logprobs[row * seqLen + from + j];
    if (!Number.isFinite(x))
      throw new NonFiniteError(`the log-probability at row ${row}, position ${from + j} is not finite`);
    total += x;
  }
  return total;
}

/**
 * Sum of log p(response token j | everything before it), natural log, for one row, from
 * full logits (the JavaScript path). Logits at position start + j predict response token j. Log-softmax is computed with the max subtracted
 * and accumulated in float64, so large logits neither overflow nor lose precision.
 */
export function responseLogprobSum(
  logits: Float32Array,
  vocab: number,
  seqLen: number,
  row: number,
  start: number,
  responseIds: number[],
): number {
  let total = 0;
  for (let j = 0; j < responseIds.length; j++) {
    const base = (row * seqLen + start + j) * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const x = logits[base + v];
      if (x > max) max = x;
    }
    if (!Number.isFinite(max)) throw new NonFiniteError(`logits at row ${row}, position ${start + j} are not finite`);
    let sumExp = 0;
    for (let v = 0; v < vocab; v++) sumExp += Math.exp(logits[base + v] - max);
    if (!Number.isFinite(sumExp)) throw new NonFiniteError(`logits at row ${row}, position ${start + j} contain NaN`);
    total += logits[base + responseIds[j]] - max - Math.log(sumExp);
  }
  return total;
}

/** Mean of the residual vectors over positions [from, to) of one row (float64 accumulation). */
export function meanOverPositions(
  hidden: Float32Array,
  hiddenSize: number,
  seqLen: number,
  row: number,
  from: number,
  to: number,
): Float32Array {
  const acc = new Float64Array(hiddenSize);
  for (let p = from; p < to; p++) {
    const base = (row * seqLen + p) * hiddenSize;
    for (let h = 0; h < hiddenSize; h++) acc[h] += hidden[base + h];
  }
  const out = new Float32Array(hiddenSize);
  const n = to - from;
  for (let h = 0; h < hiddenSize; h++) out[h] = acc[h] / n;
  assertFinite(out, `hidden state at row ${row}`);
  return out;
}

/** The residual vector at one position of one row. */
export function vectorAt(
  hidden: Float32Array,
  hiddenSize: number,
  seqLen: number,
  row: number,
  position: number,
): Float32Array {
  const base = (row * seqLen + position) * hiddenSize;
  const out = hidden.slice(base, base + hiddenSize);
  assertFinite(out, `hidden state at row ${row}, position ${position}`);
  return out;
}

function assertFinite(v: Float32Array, what: string): void {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw new NonFiniteError(`${what} is not finite`);
}

/** NaN or infinite model outputs: the checkpoint is broken; never score around it. */
export class NonFiniteError extends Error {}

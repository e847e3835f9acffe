// Pure tensor arithmetic for teacher-forced scoring: padding a batch, log-probabilities of
// response tokens, and residual vectors at chosen positions. No onnxruntime, no I/O.

export interface TokenSequence {
  promptIds: number[];
  responseIds: number[];
}

export interface PaddedBatch {
  rows: number;
  seqLen: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  /** Positions count from the first real token (padding gets 1, as in HF). */
  positionIds: BigInt64Array;
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
  const offsets: number[] = [];
  seqs.forEach((s, r) => {
    const offset = side === 'left' ? seqLen - lengths[r] : 0;
    offsets.push(offset);
    const ids = [...s.promptIds, ...s.responseIds];
    for (let i = 0; i < ids.length; i++) {
      const at = r * seqLen + offset + i;
      inputIds[at] = BigInt(ids[i]);
      attentionMask[at] = 1n;
      positionIds[at] = BigInt(i);
    }
  });
  return { rows, seqLen, inputIds, attentionMask, positionIds, offsets };
}

/**
 * Sum of log p(response token j | everything before it), natural log, for one row.
 * Logits at position t predict token t+1. Log-softmax is computed with the max subtracted
 * and accumulated in float64, so large logits neither overflow nor lose precision.
 */
export function responseLogprobSum(
  logits: Float32Array,
  vocab: number,
  seqLen: number,
  row: number,
  offset: number,
  seq: TokenSequence,
): number {
  let total = 0;
  const start = offset + seq.promptIds.length - 1;
  for (let j = 0; j < seq.responseIds.length; j++) {
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
    total += logits[base + seq.responseIds[j]] - max - Math.log(sumExp);
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
export function vectorAt(hidden: Float32Array, hiddenSize: number, seqLen: number, row: number, position: number): Float32Array {
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

// The scoring engine: a checkpoint's session (prepared by session.ts) scheduled in passes, scoring reference responses (teacher-forced
// log-probabilities) and reading the residual stream in the same forward pass.
//
// Two things keep it fast at real vocabulary sizes:
// - the log-probabilities of the scored tokens are computed inside the graph (graph surgery
//   appends log-softmax and a gather of the next-token ids), so the session returns
//   [batch, seq] numbers instead of [batch, seq, vocab] logits;
// - on KV-cache exports each prompt runs once and its references are scored from its cache.
import * as path from 'path';
import {
  DEFAULT_BATCH_SIZE,
  leftPadCache,
  logprobSumFromGraph,
  meanOverPositions,
  NonFiniteError,
  type PaddedBatch,
  padBatch,
  responseLogprobSum,
  sharedPromptBatch,
  sliceCacheRow,
  type TokenSequence,
  vectorAt,
} from '../core/batch';
import { EmgateError } from '../core/errors';
import type { ChatMessage } from '../core/types';
import { type Checkpoint, readCheckpoint } from '../load/checkpoint';
import { ChatEncoder } from './chat';
import { type CacheSlot, decoderFeeds } from './feeds';
import { POSITIONS_INPUT, TARGET_IDS_INPUT, TOKEN_LOGPROBS_OUTPUT } from './graph-surgery';
import { asFloat32, type FeedTensor, type ModelSession } from './onnx';
import { type EngineOptions, prepareSession, type Scoring } from './session';

export type { EngineOptions };

export interface ScoreRequest {
  messages: ChatMessage[];
  response: string;
}

export interface ResidualVectors {
  /** At the last prompt token: the model's state just before it answers. */
  last_prompt: Float32Array;
  /** Mean over the response tokens (end-of-turn included). */
  response_mean: Float32Array;
  /** Every response token's vector, [tokens, hidden] row-major: only at `Engine.responseTokensAt` (an SAE encodes them). */
  response_tokens?: Float32Array;
}

export interface ScoredResponse {
  tokens: number;
  sum_logprob: number;
  mean_logprob: number;
  /** By hidden-state index, for the layers the engine was opened with. */
  hidden: Map<number, ResidualVectors>;
}

export interface ScoreOptions {
  batchSize?: number;
  /** Full-sequence passes only (shared-prompt passes have their own layout). */
  padding?: 'left' | 'right';
  /**
   * Run each distinct prompt once and score its references from its KV cache (default
   * true; exports without a cache always run full sequences). Same scores within float
   * tolerance.
   */
  sharePrompts?: boolean;
  /** Called after each batch with the number of requests done. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Most float32 logits one pass may hold (rows × positions × vocab × 4 bytes; the in-graph
 * log-softmax holds a second tensor that size). 32 MB keeps a batch-16 scoring run within
 * the model file + 300 MB at 32k and 128k vocabularies, at the speed of 256 MB
 * (bench/scoring.js: the decoder's matrix multiplies stay tens of rows tall, and at a wide
 * vocabulary a pass of one reference still runs). The CUDA budget is larger: GPU memory
 * is not the runner's, and wider passes use the device better.
 */
const CPU_LOGITS_BUDGET = 32 * 1024 * 1024;
const CUDA_LOGITS_BUDGET = 1024 * 1024 * 1024;

export class Engine {
  /** Response tokens scored so far (for throughput figures and provenance). */
  tokensScored = 0;
  /** Tokens run through the model so far (prompts once each when they are shared). */
  tokensComputed = 0;
  /** The hidden-state index whose per-token response vectors scoring keeps (the SAE diff); null: none. */
  responseTokensAt: number | null = null;
  /** More such indices (several SAEs); `onScored` sees each `score` call's results in request order (sae-residuals.ts). */
  responseTokenLayers: ReadonlySet<number> = new Set();
  onScored: ((responses: ScoredResponse[]) => void) | null = null;

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly encoder: ChatEncoder,
    /** The graph's session; generate.ts drives it step by step (`logits` stays an output). */
    readonly session: ModelSession,
    /** Graph output name per hidden-state index requested. */
    private readonly hiddenOutputs: Map<number, string>,
    /** Token used for padding (never at a position whose output is read). */
    readonly padId: number,
    private readonly scoring: Scoring,
    private readonly cache: CacheSlot[],
    /** Width of the logits (the graph's, else the tokenizer's): sizes passes to the logits budget. */
    private readonly vocab: number,
  ) {}

  /**
   * Opens the engine on a checkpoint the caller has read (the gate reads it once, with the
   * run's dtype / model file), or on a folder, read here with `options.dtype` / `modelFile`.
   */
  static async open(source: Checkpoint | string, options: EngineOptions): Promise<Engine> {
    const checkpoint = typeof source === 'string' ? await readCheckpoint(source, options) : source;
    const encoder =
      options.encoder ??
      new ChatEncoder(
        checkpoint.tokenizerJson,
        checkpoint.tokenizerConfig,
        checkpoint.config.eosTokenIds,
        checkpoint.dir,
      );
    const p = await prepareSession(checkpoint, encoder, options);
    return new Engine(checkpoint, encoder, p.session, p.hiddenOutputs, p.padId, p.scoring, p.cache, p.vocab);
  }

  get provider(): 'cpu' | 'cuda' {
    return this.session.provider;
  }

  get layers(): number[] {
    return [...this.hiddenOutputs.keys()];
  }

  /** `graph` when log-probabilities are computed inside the graph, `js` otherwise. */
  get logprobPath(): 'graph' | 'js' {
    return this.scoring.kind;
  }

  /** Whether the LM head runs only at scored positions (in-graph scoring on a MatMul head). */
  get headAtScoredPositions(): boolean {
    return this.scoring.kind === 'graph' && this.scoring.positions;
  }

  /** Whether references are scored from their prompt's KV cache (KV-cache exports). */
  get canSharePrompts(): boolean {
    return this.cache.length > 0;
  }

  encode(req: ScoreRequest): TokenSequence {
    return this.encoder.encode(req.messages, req.response);
  }

  /**
   * Scores every request. The results come back in request order and do not depend on the
   * batching (within float tolerance): full sequences are batched longest-first to keep
   * padding small; with a KV cache, references are grouped by prompt.
   */
  async score(requests: ScoreRequest[], options: ScoreOptions = {}): Promise<ScoredResponse[]> {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const seqs = requests.map((r) => this.encode(r));
    const maxPositions = this.checkpoint.config.maxPositions;
    seqs.forEach((s, i) => {
      const len = s.promptIds.length + s.responseIds.length;
      if (maxPositions !== null && len > maxPositions) {
        throw new EmgateError({
          file: path.join(this.checkpoint.dir, 'config.json'),
          cause: `a probe text is ${len} tokens long, more than the model's max_position_embeddings (${maxPositions}) (request ${i}: "${preview(requests[i].response)}")`,
          fix: 'shorten the probe or its reference responses, or use a model with a longer context',
        });
      }
    });
    const run = (options.sharePrompts ?? true) && this.cache.length > 0 ? this.scoreShared : this.scoreFull;
    const results = await run.call(this, seqs, batchSize, options);
    this.onScored?.(results);
    return results;
  }

  /** Full sequences, batched longest-first. */
  private async scoreFull(seqs: TokenSequence[], batchSize: number, options: ScoreOptions): Promise<ScoredResponse[]> {
    const order = range(seqs.length).sort((a, b) => totalLength(seqs[b]) - totalLength(seqs[a]) || a - b);
    const results: ScoredResponse[] = new Array(seqs.length);
    // The logits a pass holds span the positions from the first scored one (or all of them).
    const width = (i: number) => (this.headAtScoredPositions ? seqs[i].responseIds.length + 1 : totalLength(seqs[i]));
    for (const { start, end } of this.chunks(order.map(width), batchSize)) {
      const idx = order.slice(start, end);
      const batchSeqs = idx.map((i) => seqs[i]);
      const batch = padBatch(batchSeqs, this.padId, options.padding ?? 'right');
      this.tokensComputed += batchSeqs.reduce((n, s) => n + totalLength(s), 0);
      const scored = await this.runScoringPass(
        batch,
        batchSeqs.map((s) => s.responseIds),
      );
      idx.forEach((i, k) => {
        results[i] = scored[k];
      });
      options.onProgress?.(end, order.length);
    }
    return results;
  }

  /**
   * Splits items (in order, by the positions each needs logits at) into passes of at most
   * `batchSize` rows whose [rows, positions, vocab] float32 logits stay within the budget:
   * at a 128k vocabulary, 16 rows of 60 tokens are half a gigabyte of logits, which is
   * memory a scoring run does not need to hold at once. Speed barely changes on a CPU; the
   * CUDA budget is larger.
   */
  private chunks(widths: number[], batchSize: number): { start: number; end: number }[] {
    const budgetBytes = this.provider === 'cuda' ? CUDA_LOGITS_BUDGET : CPU_LOGITS_BUDGET;
    const maxPositions = Math.max(1, Math.floor(budgetBytes / (4 * this.vocab)));
    const out: { start: number; end: number }[] = [];
    let start = 0;
    while (start < widths.length) {
      let end = start + 1;
      let widest = widths[start];
      while (end < widths.length && end - start < batchSize) {
        const w = Math.max(widest, widths[end]);
        if ((end - start + 1) * w > maxPositions) break;
        widest = w;
        end++;
      }
      out.push({ start, end });
      start = end;
    }
    return out;
  }

  /**
   * Shared prompts: requests are grouped by prompt; each work unit takes up to `batchSize`
   * references, runs the prompts it needs once (one batch, right-padded, prompt minus its
   * last token) and scores its references in one pass from those caches. A prompt whose
   * references span two units keeps its cache until its last reference is scored.
   */
  private async scoreShared(
    seqs: TokenSequence[],
    batchSize: number,
    options: ScoreOptions,
  ): Promise<ScoredResponse[]> {
    const groups = new Map<string, { promptIds: number[]; members: number[] }>();
    seqs.forEach((s, i) => {
      const key = s.promptIds.join(',');
      const g = groups.get(key) ?? { promptIds: s.promptIds, members: [] };
      g.members.push(i);
      groups.set(key, g);
    });
    // Longest prompts first; then, within windows of about four batches of references, the
    // references longest first whatever their prompt: rows of one pass end up nearly the same
    // length (the built-in suite: 93% of the computed positions are real tokens, against 85%
    // prompt by prompt), while at most a window's prompt caches are held at once.
    const ordered = [...groups.entries()].sort(
      (a, b) => b[1].promptIds.length - a[1].promptIds.length || (a[0] < b[0] ? -1 : 1),
    );
    const window = 4 * batchSize;
    const queue: { key: string; index: number; last: boolean }[] = [];
    let pending: { key: string; index: number }[] = [];
    const flush = () => {
      pending.sort((a, b) => seqs[b.index].responseIds.length - seqs[a.index].responseIds.length || a.index - b.index);
      const lastOf = new Map(pending.map((u, k) => [u.key, k]));
      pending.forEach((u, k) => {
        queue.push({ ...u, last: lastOf.get(u.key) === k });
      });
      pending = [];
    };
    for (const [key, g] of ordered) {
      for (const index of g.members) pending.push({ key, index });
      if (pending.length >= window) flush();
    }
    flush();
    const caches = new Map<string, Map<string, Float32Array | Uint16Array>>();
    const results: ScoredResponse[] = new Array(seqs.length);
    for (const { start, end } of this.chunks(
      queue.map((u) => seqs[u.index].responseIds.length + 1),
      batchSize,
    )) {
      const unit = queue.slice(start, end);
      const missing = [...new Set(unit.map((u) => u.key))].filter((k) => !caches.has(k));
      for (const [key, cache] of await this.runPromptPass(
        missing.map((k) => groups.get(k)!.promptIds),
        missing,
      ))
        caches.set(key, cache);
      const rows = unit.map((u) => ({
        promptIds: groups.get(u.key)!.promptIds,
        responseIds: seqs[u.index].responseIds,
      }));
      const batch = sharedPromptBatch(rows, this.padId);
      const past: Record<string, FeedTensor> = {};
      for (const slot of this.cache) {
        const parts = unit.map((u) => ({
          data: caches.get(u.key)!.get(slot.past)!,
          len: groups.get(u.key)!.promptIds.length - 1,
        }));
        const data =
          slot.type === 'float16'
            ? leftPadCache(
                parts as { data: Uint16Array; len: number }[],
                slot.heads,
                slot.headDim,
                batch.pastLen,
                (n) => new Uint16Array(n),
              )
            : leftPadCache(
                parts as { data: Float32Array; len: number }[],
                slot.heads,
                slot.headDim,
                batch.pastLen,
                (n) => new Float32Array(n),
              );
        past[slot.past] = { type: slot.type, data, dims: [batch.rows, slot.heads, batch.pastLen, slot.headDim] };
      }
      this.tokensComputed += rows.reduce((n, r) => n + 1 + r.responseIds.length, 0);
      const scored = await this.runScoringPass(
        batch,
        rows.map((r) => r.responseIds),
        past,
      );
      unit.forEach((u, k) => {
        results[u.index] = scored[k];
        if (u.last) caches.delete(u.key);
      });
      options.onProgress?.(end, queue.length);
    }
    return results;
  }

  /** Runs prompts (all tokens but the last) and returns each one's cache slices by past name. */
  private async runPromptPass(
    prompts: number[][],
    keys: string[],
  ): Promise<Map<string, Map<string, Float32Array | Uint16Array>>> {
    const out = new Map<string, Map<string, Float32Array | Uint16Array>>();
    const todo: number[] = [];
    prompts.forEach((p, i) => {
      if (p.length > 1) todo.push(i);
      else
        out.set(
          keys[i],
          new Map(this.cache.map((s) => [s.past, s.type === 'float16' ? new Uint16Array(0) : new Float32Array(0)])),
        );
    });
    if (todo.length === 0) return out;
    const seqs = todo.map((i) => ({ promptIds: prompts[i].slice(0, -1), responseIds: [] as number[] }));
    const batch = padBatch(seqs, this.padId, 'right');
    this.tokensComputed += seqs.reduce((n, s) => n + s.promptIds.length, 0);
    // Only the cache is wanted: logits (where the head takes positions) at the last position alone.
    const feeds = this.feeds(batch, batch.seqLen - 1);
    const result = await this.session.run(
      feeds,
      this.cache.map((s) => s.present),
    );
    todo.forEach((i, row) => {
      const len = prompts[i].length - 1;
      const cache = new Map<string, Float32Array | Uint16Array>();
      for (const slot of this.cache) {
        const t = result[slot.present];
        const total = t.dims[2];
        const data =
          t.type === 'float16'
            ? sliceCacheRow(t.data as Uint16Array, slot.heads, total, slot.headDim, row, len, (n) => new Uint16Array(n))
            : sliceCacheRow(
                t.data as Float32Array,
                slot.heads,
                total,
                slot.headDim,
                row,
                len,
                (n) => new Float32Array(n),
              );
        cache.set(slot.past, data);
      }
      out.set(keys[i], cache);
    });
    return out;
  }

  /**
   * The pass's feeds. `from`: the first position whose logits are needed (the LM head runs
   * on positions from … seqLen−1 only, where the graph allows it).
   */
  private feeds(batch: PaddedBatch, from: number, past?: Record<string, FeedTensor>): Record<string, FeedTensor> {
    const extra: Record<string, FeedTensor> = {};
    if (this.scoring.kind === 'graph') {
      const { rows, seqLen } = batch;
      if (this.scoring.positions) {
        const k = seqLen - from;
        const targets = new BigInt64Array(rows * k);
        for (let r = 0; r < rows; r++)
          targets.set(batch.targetIds.subarray(r * seqLen + from, (r + 1) * seqLen), r * k);
        extra[TARGET_IDS_INPUT] = { type: 'int64', data: targets, dims: [rows, k] };
        extra[POSITIONS_INPUT] = {
          type: 'int64',
          data: BigInt64Array.from({ length: k }, (_, i) => BigInt(from + i)),
          dims: [k],
        };
      } else {
        extra[TARGET_IDS_INPUT] = { type: 'int64', data: batch.targetIds, dims: [rows, seqLen] };
      }
    }
    return decoderFeeds(this.session.inputs, { ...batch, past, extra }, this.checkpoint.config);
  }

  /** First position a scoring pass needs logits at (0 unless the LM head takes positions). */
  private firstScored(batch: PaddedBatch): number {
    return this.scoring.kind === 'graph' && this.scoring.positions ? Math.min(...batch.lastPrompt) : 0;
  }

  /** One pass that scores `responses[row]` at positions lastPrompt[row] … of `batch`. */
  private async runScoringPass(
    batch: PaddedBatch,
    responses: number[][],
    past?: Record<string, FeedTensor>,
  ): Promise<ScoredResponse[]> {
    const from = this.firstScored(batch);
    const feeds = this.feeds(batch, from, past);
    const scoreName = this.scoring.kind === 'graph' ? TOKEN_LOGPROBS_OUTPUT : 'logits';
    const fetch = [scoreName, ...this.hiddenOutputs.values()];
    let out: Awaited<ReturnType<ModelSession['run']>>;
    try {
      out = await this.session.run(feeds, fetch);
    } catch (err) {
      const message = (err as Error).message;
      if (this.scoring.kind === 'graph' && /GatherElements|indices|out of (bounds|range)/i.test(message)) {
        throw new EmgateError({
          file: path.join(this.checkpoint.dir, 'tokenizer.json'),
          cause: `a token id from the tokenizer is outside the model's vocabulary (${message.split('\n')[0]})`,
          fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
        });
      }
      throw err;
    }
    const scores = asFloat32(out[scoreName]);
    const width = batch.seqLen - from;
    if (scores.dims[0] !== batch.rows || scores.dims[1] !== width) {
      throw new Error(`${scoreName} has shape [${scores.dims.join(', ')}], expected [${batch.rows}, ${width}, …]`);
    }
    const vocab = scores.dims[2];
    if (this.scoring.kind === 'js' && this.encoder.vocabSize > vocab) {
      throw new EmgateError({
        file: path.join(this.checkpoint.dir, 'tokenizer.json'),
        cause: `the tokenizer has ${this.encoder.vocabSize} tokens but the model's logits cover only ${vocab}`,
        fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
      });
    }
    const hiddenTensors = new Map([...this.hiddenOutputs].map(([layer, name]) => [layer, asFloat32(out[name])]));
    try {
      return responses.map((responseIds, row) => {
        const at = batch.lastPrompt[row];
        const tokens = responseIds.length;
        const sum =
          this.scoring.kind === 'graph'
            ? logprobSumFromGraph(scores.data, width, row, at - from, tokens)
            : responseLogprobSum(scores.data, vocab, batch.seqLen, row, at, responseIds);
        this.tokensScored += tokens;
        const hidden = new Map<number, ResidualVectors>();
        for (const [layer, h] of hiddenTensors) {
          const size = h.dims[2];
          hidden.set(layer, {
            last_prompt: vectorAt(h.data, size, batch.seqLen, row, at),
            response_mean: meanOverPositions(h.data, size, batch.seqLen, row, at + 1, at + 1 + tokens),
            ...(layer === this.responseTokensAt || this.responseTokenLayers.has(layer)
              ? {
                  response_tokens: h.data.slice(
                    (row * batch.seqLen + at + 1) * size,
                    (row * batch.seqLen + at + 1 + tokens) * size,
                  ),
                }
              : {}),
          });
        }
        return { tokens, sum_logprob: sum, mean_logprob: sum / tokens, hidden };
      });
    } catch (err) {
      if (err instanceof NonFiniteError) {
        throw new EmgateError({
          file: this.checkpoint.modelFile,
          cause: `the model produced non-finite values (${err.message})`,
          fix: 'the checkpoint is numerically broken (diverged training, a bad float16 conversion or corrupt weights); re-export it in float32 and check its loss',
        });
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function totalLength(s: TokenSequence): number {
  return s.promptIds.length + s.responseIds.length;
}

function preview(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

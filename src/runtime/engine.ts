// The scoring engine: a checkpoint loaded once, scoring reference responses (teacher-forced
// log-probabilities) and reading the residual stream in the same forward pass.
import { promises as fs } from 'fs';
import * as path from 'path';
import { ChatEncoder } from './chat';
import { readCheckpoint, type Checkpoint } from '../load/checkpoint';
import { EmgateError } from '../core/errors';
import { decodeModel, encodeModel, exposeTensors, locateResidualStream } from './graph-surgery';
import {
  meanOverPositions,
  NonFiniteError,
  padBatch,
  responseLogprobSum,
  vectorAt,
  type TokenSequence,
} from '../core/batch';
import { openSession, type FeedTensor, type ModelSession, type SessionSettings, type ValueInfo } from './onnx';
import type { ChatMessage } from '../core/types';

export interface EngineOptions extends SessionSettings {
  /**
   * Hidden-state indices to read (HF numbering: 0 = embeddings, k = after decoder layer k,
   * L = final normed state), or 'all'. Decided at load: reading internal tensors needs
   * graph surgery before the session exists.
   */
  layers?: number[] | 'all';
  /** Name of the residual tensor to read, with `{layer}` for the hidden-state index (overrides discovery). */
  hiddenTensor?: string;
}

export interface ScoreRequest {
  messages: ChatMessage[];
  response: string;
}

export interface ResidualVectors {
  /** At the last prompt token: the model's state just before it answers. */
  last_prompt: Float32Array;
  /** Mean over the response tokens (end-of-turn included). */
  response_mean: Float32Array;
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
  padding?: 'left' | 'right';
  /** Called after each batch with the number of requests done. */
  onProgress?: (done: number, total: number) => void;
}

const KNOWN_INPUTS = /^(input_ids|attention_mask|position_ids|use_cache_branch|past_key_values\.\d+\.(key|value))$/;

export class Engine {
  /** Response tokens scored so far (for throughput figures and provenance). */
  tokensScored = 0;

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly encoder: ChatEncoder,
    private readonly session: ModelSession,
    /** Graph output name per hidden-state index requested. */
    private readonly hiddenOutputs: Map<number, string>,
    private readonly padId: number,
  ) {}

  static async open(dir: string, options: EngineOptions): Promise<Engine> {
    const checkpoint = await readCheckpoint(dir);
    const encoder = new ChatEncoder(checkpoint.tokenizerJson, checkpoint.tokenizerConfig, checkpoint.config.eosTokenIds, checkpoint.dir);
    const numLayers = checkpoint.config.numLayers;
    const wanted = options.layers === 'all' ? range(numLayers + 1) : [...new Set(options.layers ?? [])].sort((a, b) => a - b);
    for (const layer of wanted) {
      if (!Number.isInteger(layer) || layer < 0 || layer > numLayers) {
        throw new EmgateError({
          file: path.join(checkpoint.dir, 'config.json'),
          cause: `layer ${layer} is out of range: the model has ${numLayers} decoder layers, so hidden-state indices run 0..${numLayers}`,
          fix: `choose a layer between 0 (embeddings) and ${numLayers} (final normed state)`,
        });
      }
    }
    const { session, hiddenOutputs } = await openWithHiddenStates(checkpoint, wanted, options);
    checkGraphIo(session, checkpoint, encoder, hiddenOutputs);
    const padId = pickPadId(checkpoint, encoder);
    return new Engine(checkpoint, encoder, session, hiddenOutputs, padId);
  }

  get provider(): 'cpu' | 'cuda' {
    return this.session.provider;
  }

  get layers(): number[] {
    return [...this.hiddenOutputs.keys()];
  }

  encode(req: ScoreRequest): TokenSequence {
    return this.encoder.encode(req.messages, req.response);
  }

  /**
   * Scores every request. Requests are batched longest-first to keep padding small; the
   * results come back in request order and do not depend on the batching.
   */
  async score(requests: ScoreRequest[], options: ScoreOptions = {}): Promise<ScoredResponse[]> {
    const batchSize = options.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize must be an integer ≥ 1, got ${batchSize}`);
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
    const order = range(seqs.length).sort((a, b) => totalLength(seqs[b]) - totalLength(seqs[a]) || a - b);
    const results: ScoredResponse[] = new Array(seqs.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      const scored = await this.runBatch(idx.map((i) => seqs[i]), options.padding ?? 'right');
      idx.forEach((i, k) => (results[i] = scored[k]));
      options.onProgress?.(Math.min(start + batchSize, order.length), order.length);
    }
    return results;
  }

  private async runBatch(seqs: TokenSequence[], padding: 'left' | 'right'): Promise<ScoredResponse[]> {
    const batch = padBatch(seqs, this.padId, padding);
    const feeds = this.feeds(batch.inputIds, batch.attentionMask, batch.positionIds, batch.rows, batch.seqLen);
    const fetch = ['logits', ...this.hiddenOutputs.values()];
    const out = await this.session.run(feeds, fetch);
    const logits = out.logits;
    const vocab = logits.dims[2];
    if (logits.dims[0] !== batch.rows || logits.dims[1] !== batch.seqLen) {
      throw new Error(`logits have shape [${logits.dims.join(', ')}], expected [${batch.rows}, ${batch.seqLen}, vocab]`);
    }
    if (this.encoder.vocabSize > vocab) {
      throw new EmgateError({
        file: path.join(this.checkpoint.dir, 'tokenizer.json'),
        cause: `the tokenizer has ${this.encoder.vocabSize} tokens but the model's logits cover only ${vocab}`,
        fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
      });
    }
    try {
      return seqs.map((seq, row) => {
        const offset = batch.offsets[row];
        const sum = responseLogprobSum(logits.data, vocab, batch.seqLen, row, offset, seq);
        const tokens = seq.responseIds.length;
        this.tokensScored += tokens;
        const hidden = new Map<number, ResidualVectors>();
        for (const [layer, name] of this.hiddenOutputs) {
          const h = out[name];
          const size = h.dims[2];
          const promptEnd = offset + seq.promptIds.length;
          hidden.set(layer, {
            last_prompt: vectorAt(h.data, size, batch.seqLen, row, promptEnd - 1),
            response_mean: meanOverPositions(h.data, size, batch.seqLen, row, promptEnd, promptEnd + tokens),
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

  private feeds(
    inputIds: BigInt64Array,
    attentionMask: BigInt64Array,
    positionIds: BigInt64Array,
    rows: number,
    seqLen: number,
  ): Record<string, FeedTensor> {
    const feeds: Record<string, FeedTensor> = {};
    for (const input of this.session.inputs) {
      const name = input.name;
      if (name === 'input_ids') feeds[name] = { type: 'int64', data: inputIds, dims: [rows, seqLen] };
      else if (name === 'attention_mask') feeds[name] = { type: 'int64', data: attentionMask, dims: [rows, seqLen] };
      else if (name === 'position_ids') feeds[name] = { type: 'int64', data: positionIds, dims: [rows, seqLen] };
      else if (name === 'use_cache_branch') feeds[name] = { type: 'bool', data: new Uint8Array([0]), dims: [1] };
      else feeds[name] = emptyCache(input, this.checkpoint, rows);
    }
    return feeds;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** A zero-length past for KV-cache exports: every token is scored in one pass. */
function emptyCache(input: ValueInfo, checkpoint: Checkpoint, rows: number): FeedTensor {
  const [, heads, , dim] = input.shape;
  const kvHeads = typeof heads === 'number' ? heads : checkpoint.config.numKvHeads;
  const headDim = typeof dim === 'number' ? dim : checkpoint.config.headDim;
  const dims = [rows, kvHeads, 0, headDim];
  if (input.type === 'float16') return { type: 'float16', data: new Uint16Array(0), dims };
  return { type: 'float32', data: new Float32Array(0), dims };
}

async function openWithHiddenStates(
  checkpoint: Checkpoint,
  layers: number[],
  options: EngineOptions,
): Promise<{ session: ModelSession; hiddenOutputs: Map<number, string> }> {
  const hiddenOutputs = new Map<number, string>();
  if (layers.length === 0) {
    return { session: await openSession(checkpoint.modelFile, checkpoint.modelFile, options), hiddenOutputs };
  }
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(checkpoint.modelFile);
  } catch (err) {
    throw new EmgateError({ file: checkpoint.modelFile, cause: `cannot read the model (${(err as Error).message})`, fix: 'check the file exists and is readable' });
  }
  let model;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new EmgateError({
      file: checkpoint.modelFile,
      cause: `not a valid ONNX protobuf (${(err as Error).message})`,
      fix: 'the file is truncated or corrupt (or a Git LFS pointer): re-export or re-download it',
    });
  }
  const declared = new Set((model.graph?.output ?? []).map((o) => o.name));
  const nodeOutputs = new Set((model.graph?.node ?? []).flatMap((n) => n.output ?? []));
  let located: string[] | null = null;
  for (const layer of layers) {
    if (options.hiddenTensor) {
      const name = options.hiddenTensor.replace('{layer}', String(layer));
      if (!nodeOutputs.has(name) && !declared.has(name)) {
        throw new EmgateError({
          file: checkpoint.modelFile,
          cause: `the graph has no tensor named "${name}" (from the hidden-tensor setting "${options.hiddenTensor}")`,
          fix: 'name a tensor that exists in the graph (inspect it with Netron), with {layer} for the layer index',
        });
      }
      hiddenOutputs.set(layer, name);
    } else if (declared.has(`hidden_states.${layer}`)) {
      hiddenOutputs.set(layer, `hidden_states.${layer}`);
    } else {
      try {
        located ??= locateResidualStream(model, checkpoint.config.numLayers).tensors;
      } catch (err) {
        throw new EmgateError({
          file: checkpoint.modelFile,
          cause: `the graph exposes no hidden_states outputs and the residual stream could not be found in it (${(err as Error).message})`,
          fix: 'export with hidden_states outputs, or name the residual tensor with --hidden-tensor (use {layer} for the layer index)',
        });
      }
      hiddenOutputs.set(layer, located[layer]);
    }
  }
  const missing = [...hiddenOutputs.values()].filter((n) => !declared.has(n));
  if (missing.length === 0) {
    return { session: await openSession(checkpoint.modelFile, checkpoint.modelFile, options), hiddenOutputs };
  }
  exposeTensors(model, missing);
  const patched = encodeModel(model);
  // External weights resolve against the original folder, so the patched graph stays in memory
  // and nothing is written beside (or copied out of) the user's checkpoint.
  const session = await openSession(patched, checkpoint.modelFile, {
    ...options,
    externalDataDir: path.dirname(checkpoint.modelFile),
  });
  return { session, hiddenOutputs };
}

function checkGraphIo(session: ModelSession, checkpoint: Checkpoint, encoder: ChatEncoder, hidden: Map<number, string>): void {
  const inputNames = session.inputs.map((i) => i.name);
  const outputNames = session.outputs.map((o) => o.name);
  const problems: string[] = [];
  if (!inputNames.includes('input_ids')) problems.push('no "input_ids" input');
  if (!inputNames.includes('attention_mask')) problems.push('no "attention_mask" input');
  const unknown = inputNames.filter((n) => !KNOWN_INPUTS.test(n));
  if (unknown.length) problems.push(`inputs emgate cannot feed: ${unknown.join(', ')}`);
  if (!outputNames.includes('logits')) problems.push('no "logits" output');
  for (const name of hidden.values()) if (!outputNames.includes(name)) problems.push(`no "${name}" output after surgery`);
  if (problems.length) {
    throw new EmgateError({
      file: checkpoint.modelFile,
      cause: `the graph does not fit a decoder export: ${problems.join('; ')} (inputs: ${inputNames.join(', ')}; outputs: ${outputNames.join(', ')})`,
      fix: 'export a text-generation decoder (optimum-cli export onnx --task text-generation or text-generation-with-past)',
    });
  }
  const logits = session.outputs.find((o) => o.name === 'logits')!;
  const vocab = logits.shape[2];
  if (typeof vocab === 'number' && encoder.vocabSize > vocab) {
    throw new EmgateError({
      file: path.join(checkpoint.dir, 'tokenizer.json'),
      cause: `the tokenizer has ${encoder.vocabSize} tokens but the model's logits cover only ${vocab}`,
      fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
    });
  }
}

/** Padding never reaches a scored position; any valid id works, the pad token if there is one. */
function pickPadId(checkpoint: Checkpoint, encoder: ChatEncoder): number {
  const pad = checkpoint.tokenizerConfig.pad_token;
  const padString = typeof pad === 'string' ? pad : (pad as { content?: string } | undefined)?.content;
  return (padString !== undefined ? encoder.tokenId(padString) : undefined) ?? encoder.endOfTurnId;
}

function totalLength(s: TokenSequence): number {
  return s.promptIds.length + s.responseIds.length;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function preview(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

// Free generation on an opened engine: batched decoding with left padding, greedy or
// seeded sampling, stop at the end-of-turn token or a token budget.
//
// KV-cache exports (past_key_values.N.* in, present.N.* out) decode one token per step,
// feeding each step's present.* back as the next step's past_key_values.*. Exports without
// a cache (or float16 caches, which the float32 door cannot hand back losslessly) decode
// by recomputation: the whole sequence is run again every step. Both give the same tokens.
//
// Results do not depend on batching: every row has its own PRNG, seeded per request, and
// draws exactly one number per step; padding is masked and positions come from the mask.
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { checkSampling, pickToken, type SamplingSettings } from '../core/sampling';
import { createRng } from '../core/stats';
import type { ChatMessage } from '../core/types';
import type { Engine } from './engine';
import { decoderFeeds } from './feeds';
import { asFloat32, type FeedTensor, type OutputTensor, type ValueInfo } from './onnx';

export interface GenerateRequest {
  messages: ChatMessage[];
  /** The row's PRNG seed (core/sampling.ts sampleSeed). Unused when greedy. */
  seed: number;
  maxNewTokens: number;
  sampling: SamplingSettings;
  /** Names the request in errors (e.g. "medical-003 sample 2"). */
  label?: string;
}

export interface Generated {
  /** Generated token ids, the end-of-turn token included when it was produced. */
  ids: number[];
  /** Decoded text without special tokens. */
  text: string;
  /** 'eot': the model ended its turn; 'length': the token budget ran out. */
  stop: 'eot' | 'length';
  promptTokens: number;
}

export interface GenerateOptions {
  /** Sequences per pass, ≥ 1 (checked where the option is parsed). */
  batchSize: number;
  /** false: recompute every step even when the graph has a KV cache (benchmarks, tests). Default true. */
  useCache?: boolean;
  onProgress?: (done: number, total: number) => void;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/** Whether this engine's graph can decode with its KV cache. */
export function canUseCache(engine: Engine): boolean {
  const past = engine.session.inputs.filter((i) => PAST.test(i.name));
  if (past.length === 0) return false;
  const outputs = new Set(engine.session.outputs.map((o) => o.name));
  return past.every((i) => i.type === 'float32' && outputs.has(i.name.replace('past_key_values.', 'present.')));
}

export async function generate(
  engine: Engine,
  requests: GenerateRequest[],
  options: GenerateOptions,
): Promise<Generated[]> {
  // Parsed once at the edge (gate/settings.ts): a whole number ≥ 1 by then.
  const { batchSize } = options;
  const prompts = requests.map((r) => {
    checkSampling(r.sampling);
    if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 1) {
      throw new TypeError(
        `maxNewTokens must be an integer ≥ 1, got ${r.maxNewTokens}${r.label ? ` (${r.label})` : ''}`,
      );
    }
    return engine.encoder.encodePrompt(r.messages);
  });
  const maxPositions = engine.checkpoint.config.maxPositions;
  prompts.forEach((p, i) => {
    if (maxPositions !== null && p.length >= maxPositions) {
      throw new EmgateError({
        file: path.join(engine.checkpoint.dir, 'config.json'),
        cause: `the prompt of ${requests[i].label ?? `request ${i}`} is ${p.length} tokens, leaving no room to answer within max_position_embeddings (${maxPositions})`,
        fix: 'shorten the probe or use a model with a longer context',
      });
    }
  });
  const useCache = (options.useCache ?? true) && canUseCache(engine);
  // Longest prompts first keeps padding small; results return in request order.
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[b].length - prompts[a].length || a - b);
  const results: Generated[] = new Array(requests.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const idx = order.slice(start, start + batchSize);
    const rows = idx.map((i) => ({ prompt: prompts[i], req: requests[i] }));
    const out = await decodeBatch(engine, rows, useCache);
    idx.forEach((i, k) => {
      results[i] = out[k];
    });
    options.onProgress?.(Math.min(start + batchSize, order.length), order.length);
  }
  return results;
}

interface Row {
  prompt: number[];
  req: GenerateRequest;
}

async function decodeBatch(engine: Engine, rows: Row[], useCache: boolean): Promise<Generated[]> {
  const b = rows.length;
  const promptLen = Math.max(...rows.map((r) => r.prompt.length));
  const maxPositions = engine.checkpoint.config.maxPositions ?? Infinity;
  const budgets = rows.map((r) => Math.min(r.req.maxNewTokens, maxPositions - r.prompt.length));
  const steps = Math.max(...budgets);
  const stopIds = new Set([engine.encoder.endOfTurnId, ...engine.checkpoint.config.eosTokenIds]);
  const rngs = rows.map((r) => createRng(r.req.seed));
  const generated: number[][] = rows.map(() => []);
  const done = rows.map(() => false);
  const stop: ('eot' | 'length')[] = rows.map(() => 'length');

  // tokens[r] is row r's whole sequence, left-padded; mask marks the real tokens.
  const tokens: number[][] = rows.map((r) => [
    ...new Array<number>(promptLen - r.prompt.length).fill(engine.padId),
    ...r.prompt,
  ]);
  const mask: number[][] = rows.map((r) => [
    ...new Array<number>(promptLen - r.prompt.length).fill(0),
    ...r.prompt.map(() => 1),
  ]);
  let past: Record<string, OutputTensor> | null = null;

  for (let step = 0; step < steps && done.some((d) => !d); step++) {
    const total = tokens[0].length;
    // With a cache, only the new token is fed after the first step.
    const fed = useCache && past !== null ? 1 : total;
    const feeds = buildFeeds(engine, tokens, mask, fed, useCache ? past : null);
    const fetch = [
      'logits',
      ...(useCache ? engine.session.inputs.filter((i) => PAST.test(i.name)).map((i) => presentName(i.name)) : []),
    ];
    const out = await engine.session.run(feeds, fetch);
    const logits = asFloat32(out.logits);
    const [, seqLen, vocab] = logits.dims;
    if (useCache) {
      past = {};
      for (const name of fetch.slice(1)) past[name] = out[name];
    }
    for (let r = 0; r < b; r++) {
      const u = rngs[r](); // one draw per row per step, used or not
      if (done[r]) {
        tokens[r].push(engine.padId);
        mask[r].push(1);
        continue;
      }
      const next = pickToken(logits.data, (r * seqLen + seqLen - 1) * vocab, vocab, rows[r].req.sampling, u);
      if (next < 0) {
        throw new EmgateError({
          file: engine.checkpoint.modelFile,
          cause: `the model produced non-finite logits while generating ${rows[r].req.label ?? 'an answer'}`,
          fix: 'the checkpoint is numerically broken (diverged training, a bad float16 conversion or corrupt weights); re-export it in float32 and check its loss',
        });
      }
      generated[r].push(next);
      tokens[r].push(next);
      mask[r].push(1);
      if (stopIds.has(next)) {
        done[r] = true;
        stop[r] = 'eot';
      } else if (generated[r].length >= budgets[r]) {
        done[r] = true;
      }
    }
  }
  return rows.map((r, i) => ({
    ids: generated[i],
    text: engine.encoder.decode(generated[i].filter((id) => !stopIds.has(id))),
    stop: stop[i],
    promptTokens: r.prompt.length,
  }));
}

function presentName(pastName: string): string {
  return pastName.replace('past_key_values.', 'present.');
}

/**
 * Feeds for one step: the last `fed` tokens of every row, the whole mask, positions from
 * the mask (HF's rule: count of real tokens before this one; pads get 1), and the cache.
 */
function buildFeeds(
  engine: Engine,
  tokens: number[][],
  mask: number[][],
  fed: number,
  past: Record<string, OutputTensor> | null,
): Record<string, FeedTensor> {
  const b = tokens.length;
  const total = tokens[0].length;
  const inputIds = new BigInt64Array(b * fed);
  const positionIds = new BigInt64Array(b * fed);
  const attention = new BigInt64Array(b * total);
  for (let r = 0; r < b; r++) {
    let seen = 0;
    for (let t = 0; t < total; t++) {
      const m = mask[r][t];
      attention[r * total + t] = BigInt(m);
      const pos = m ? seen : 1;
      seen += m;
      const k = t - (total - fed);
      if (k >= 0) {
        inputIds[r * fed + k] = BigInt(tokens[r][t]);
        positionIds[r * fed + k] = BigInt(pos);
      }
    }
  }
  const pastFeeds: Record<string, FeedTensor> = {};
  if (past)
    for (const input of engine.session.inputs)
      if (PAST.test(input.name)) pastFeeds[input.name] = pastFeed(past[presentName(input.name)], input);
  return decoderFeeds(
    engine.session.inputs,
    {
      rows: b,
      seqLen: fed,
      pastLen: total - fed,
      inputIds,
      attentionMask: attention,
      positionIds,
      past: past ? pastFeeds : undefined,
    },
    engine.checkpoint.config,
  );
}

function pastFeed(present: OutputTensor | undefined, input: ValueInfo): FeedTensor {
  if (!present) throw new Error(`the graph returned no ${presentName(input.name)} to feed back as ${input.name}`);
  return { type: 'float32', data: present.data as Float32Array, dims: present.dims };
}

// Feeds for decoder graphs, matched by input name, as optimum exports name them. One place
// for scoring and generation: optional inputs (position_ids, use_cache_branch) are fed only
// when the graph declares them, the feed is cut down to the declared names, and an empty
// KV cache is built from the session's input metadata.
import type { ModelConfig } from '../load/checkpoint';
import { POSITIONS_INPUT, TARGET_IDS_INPUT } from './graph-surgery';
import type { FeedTensor, OutputTensor, ValueInfo } from './onnx';

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/** One KV-cache tensor: the input it is fed through and the output it comes back from. */
export interface CacheSlot {
  /** `past_key_values.N.key|value` */
  past: string;
  /** `present.N.key|value` */
  present: string;
  layer: number;
  kind: 'key' | 'value';
  type: 'float32' | 'float16';
  heads: number;
  headDim: number;
}

/**
 * The graph's KV cache, in layer order; empty for exports without one. A past input whose
 * present output is missing makes the cache unusable for feeding back (returns []).
 */
export function cacheSlots(
  inputs: readonly ValueInfo[],
  outputs: readonly ValueInfo[],
  config: ModelConfig,
): CacheSlot[] {
  const outputNames = new Set(outputs.map((o) => o.name));
  const slots: CacheSlot[] = [];
  for (const input of inputs) {
    const m = PAST.exec(input.name);
    if (!m) continue;
    const [, heads, , dim] = input.shape;
    slots.push({
      past: input.name,
      present: `present.${m[1]}.${m[2]}`,
      layer: Number(m[1]),
      kind: m[2] as 'key' | 'value',
      type: input.type === 'float16' ? 'float16' : 'float32',
      heads: typeof heads === 'number' ? heads : config.numKvHeads,
      headDim: typeof dim === 'number' ? dim : config.headDim,
    });
  }
  if (slots.some((s) => !outputNames.has(s.present))) return [];
  return slots.sort((a, b) => a.layer - b.layer || a.kind.localeCompare(b.kind));
}

/** A zero-length past for KV-cache exports: every token is computed in this one pass. */
export function emptyCache(input: ValueInfo, config: ModelConfig, rows: number): FeedTensor {
  const [, heads, , dim] = input.shape;
  const kvHeads = typeof heads === 'number' ? heads : config.numKvHeads;
  const headDim = typeof dim === 'number' ? dim : config.headDim;
  const dims = [rows, kvHeads, 0, headDim];
  if (input.type === 'float16') return { type: 'float16', data: new Uint16Array(0), dims };
  return { type: 'float32', data: new Float32Array(0), dims };
}

/** A cache output fed back as the next pass's past, unchanged (float16 stays float16). */
export function cacheFeed(t: OutputTensor): FeedTensor {
  if (t.type === 'int64') throw new Error('a KV-cache output is int64, expected float');
  return { type: t.type, data: t.data as Float32Array | Uint16Array, dims: t.dims };
}

export interface DecoderStep {
  rows: number;
  seqLen: number;
  /** Cached positions already in `past` (0: empty cache). */
  pastLen: number;
  inputIds: BigInt64Array;
  /** [rows, pastLen + seqLen] */
  attentionMask: BigInt64Array;
  positionIds: BigInt64Array;
  /** By past_key_values name; missing names get an empty cache (pastLen must then be 0). */
  past?: Record<string, FeedTensor>;
  /** Further inputs by name (e.g. the target ids in-graph scoring adds). */
  extra?: Record<string, FeedTensor>;
}

/** The feed for one pass: exactly the inputs the graph declares, each by its name. */
export function decoderFeeds(
  inputs: readonly ValueInfo[],
  step: DecoderStep,
  config: ModelConfig,
): Record<string, FeedTensor> {
  const { rows, seqLen, pastLen } = step;
  const feeds: Record<string, FeedTensor> = {};
  for (const input of inputs) {
    const name = input.name;
    if (name === 'input_ids') feeds[name] = { type: 'int64', data: step.inputIds, dims: [rows, seqLen] };
    else if (name === 'attention_mask')
      feeds[name] = { type: 'int64', data: step.attentionMask, dims: [rows, pastLen + seqLen] };
    else if (name === 'position_ids') feeds[name] = { type: 'int64', data: step.positionIds, dims: [rows, seqLen] };
    // Merged decoders (optimum): the branch that reads the cache runs only when there is one.
    else if (name === 'use_cache_branch')
      feeds[name] = { type: 'bool', data: new Uint8Array([pastLen > 0 ? 1 : 0]), dims: [1] };
    else if (PAST.test(name)) {
      const given = step.past?.[name];
      if (!given && pastLen > 0)
        throw new Error(`no cache given for ${name} although the pass continues ${pastLen} cached positions`);
      feeds[name] = given ?? emptyCache(input, config, rows);
    } else if (step.extra?.[name]) feeds[name] = step.extra[name];
    // In-graph scoring's target ids: a pass that reads no log-probabilities (generation, a
    // prompt's cache) feeds zeros, a valid id whose output nobody reads.
    else if (name === TARGET_IDS_INPUT)
      feeds[name] = { type: 'int64', data: new BigInt64Array(rows * seqLen), dims: [rows, seqLen] };
    // The LM head's positions: all of them unless the caller chose (generation reads the last).
    else if (name === POSITIONS_INPUT)
      feeds[name] = {
        type: 'int64',
        data: BigInt64Array.from({ length: seqLen }, (_, i) => BigInt(i)),
        dims: [seqLen],
      };
    else throw new Error(`the graph input "${name}" has no feed`);
  }
  return feeds;
}

// The one parser of emgate's options. The command line and the Action both hand it plain
// strings (a flag's text, an input's text) and get back typed, validated settings, so the
// two cannot accept different values for the same option.
//
// Rules: a value left empty ('') is "not given" (action.yml passes '' for unset inputs);
// a value outside an option's allowed set is an error naming the option as the user wrote
// it (`--batch-size` on the command line, `input 'batch-size'` in the Action), the value,
// and what is allowed. Nothing here guesses: a typo never quietly becomes a default.
// The sources and the generic parsers (text, int, oneOf, bool) live in option-source.ts;
// this file is the table of options.
import { DEFAULT_BATCH_SIZE } from '../core/batch';
import { EmgateError } from '../core/errors';
import { isValidGateId } from '../core/report/markdown';
import type { Position, ScoringMode } from '../core/types';
import { DTYPE_SUFFIXES } from '../load/checkpoint';
import { BUILTIN_POLICY, BUILTIN_PROBES } from '../load/package-info';
import type { Device } from '../runtime/onnx';
import { bool, int, type OptionSource, oneOf, optionError, text } from './option-source';

export type { Device, Position, ScoringMode };
export type Variants = 'none' | 'all' | string[];
export interface Shard {
  index: number;
  count: number;
}

export {
  actionSource,
  bool,
  cliSource,
  int,
  type OptionSource,
  oneOf,
  optionError,
  text,
} from './option-source';

// ---------------------------------------------------------------------------
// The options themselves

export const BATCH_SIZE = { dflt: DEFAULT_BATCH_SIZE, min: 1, max: 4096 } as const;

/** Sequences per forward pass. Changes speed and memory, never results. */
export function batchSize(src: OptionSource): number {
  return int(src, 'batch-size', BATCH_SIZE.dflt, BATCH_SIZE.min, BATCH_SIZE.max);
}

/** CPU threads for onnxruntime; undefined lets onnxruntime use every core. */
export function threads(src: OptionSource): number | undefined {
  return int(src, 'threads', undefined, 1, 1024);
}

/** Seed for everything random. Undefined when not given (a run uses 0, a merge the shards' seed). */
export function seed(src: OptionSource): number | undefined {
  return int(src, 'seed', undefined, 0, 0xffffffff);
}

export function device(src: OptionSource): Device {
  return oneOf(src, 'device', ['cpu', 'cuda', 'auto'] as const, 'auto');
}

export function requireGpu(src: OptionSource): boolean {
  return bool(src, 'require-gpu', false);
}

/** `i/n`, 1-based, as jest and playwright number shards. */
export function shard(src: OptionSource): Shard | undefined {
  const v = src.get('shard');
  if (v === undefined) return undefined;
  const m = /^(\d+)\s*\/\s*(\d+)$/.exec(v.trim());
  const i = m ? Number(m[1]) : Number.NaN;
  const n = m ? Number(m[2]) : Number.NaN;
  if (!m || !(n >= 1) || !(i >= 1) || i > n || n > 10000) {
    throw optionError(
      src,
      'shard',
      `'${v}' is not a shard`,
      "write 'i/n' with 1 <= i <= n, 1-based: '1/4' .. '4/4' (e.g. `shard: ${{ matrix.shard }}/4`)",
    );
  }
  return { index: i, count: n };
}

/** Prompt variants: none, all, or variant ids (checked against the suite when it loads). */
export function variants(src: OptionSource): Variants | undefined {
  const v = src.get('variants');
  if (v === undefined) return undefined;
  if (v === 'none' || v === 'all') return v;
  const ids = v.split(/[\s,]+/).filter(Boolean);
  const bad = ids.find((id) => !/^[A-Za-z0-9_.-]+$/.test(id));
  if (ids.length === 0 || bad !== undefined) {
    throw optionError(
      src,
      'variants',
      `'${v}' is not a variant list`,
      "use 'none', 'all', or variant ids from the suite's suite.json separated by commas (e.g. 'json,template')",
    );
  }
  return ids;
}

/** Names the gate's PR comment marker; two gates on one PR keep two comments. */
export function gateId(src: OptionSource): string {
  const v = src.get('gate-id') ?? 'default';
  if (!isValidGateId(v)) {
    throw optionError(
      src,
      'gate-id',
      `'${v}' cannot be used in the comment marker`,
      'use 1-64 letters, digits, dots, underscores or single hyphens (e.g. "default", "em-cuda")',
    );
  }
  return v;
}

/** Variant graph by dtype (fp16, q4, …); undefined: fp32 (model.onnx). Checked here, trusted inside. */
export function dtype(src: OptionSource): string | undefined {
  const v = src.get('dtype');
  if (v === undefined) return undefined;
  if (Object.hasOwn(DTYPE_SUFFIXES, v)) return v;
  throw optionError(
    src,
    'dtype',
    `unknown value '${v}'`,
    `use one of: ${Object.keys(DTYPE_SUFFIXES).join(', ')} (default: fp32, model.onnx), or name the graph file`,
  );
}

/** How probes are scored: contrast, generated answers, or both; undefined: the policy's mode. */
export function scoringMode(src: OptionSource): ScoringMode | undefined {
  if (src.get('mode') === undefined) return undefined;
  return oneOf(src, 'mode', ['contrast', 'generate', 'both'] as const, 'contrast');
}

/** Hidden-state index for `direction extract`, or auto (the layer that separates best). */
export function layer(src: OptionSource): number | 'auto' {
  const v = src.get('layer');
  if (v === undefined || v === 'auto') return 'auto';
  return int(src, 'layer', 0, 0, 10000);
}

export function position(src: OptionSource): Position {
  return oneOf(src, 'position', ['response_mean', 'last_prompt'] as const, 'response_mean');
}

/**
 * Direction files or folders, in order (the first is the primary direction): one per line
 * (the Action's multi-line input), or one per repeated --direction. Undefined when none.
 */
export function directions(src: OptionSource): string[] | undefined {
  return lines(src, 'direction');
}

/** An option given once a value (CLI: repeated; Action: one a line), blank lines dropped; undefined: none. */
function lines(src: OptionSource, name: string): string[] | undefined {
  const list = (src.get(name) ?? '')
    .split(/\r?\n/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  return list.length > 0 ? list : undefined;
}

/** A run scored through a served model (docs/served.md). */
export interface ServedOptions {
  /** The server (its OpenAI-compatible API base). */
  url: string;
  /** The candidate's name in the server's /v1/models. */
  model: string;
  /** The baseline's name there; undefined: no baseline. */
  baselineModel?: string;
  /** The baseline's own server (two full checkpoints are two processes); undefined: `url`. */
  baselineUrl?: string;
  /** The candidate weights' sha256 as the workflow computed it (emgate never reads served weights). */
  sha256?: string;
  /** Requests in flight at once; undefined: the client's default (8). */
  concurrency?: number;
}

/** The options that only make sense with `served-url`, and those that make no sense with it. */
const SERVED_ONLY = [
  'served-model',
  'served-baseline-model',
  'served-baseline-url',
  'served-sha256',
  'served-concurrency',
];
const NOT_SERVED = ['dtype', 'model-file', 'hidden-tensor'];

/**
 * The served backend, when `served-url` (`--served`) is given: the candidate's model name is
 * then required; options that pick an ONNX graph are refused (no graph is read), and the
 * served options without a server are refused too.
 */
export function served(src: OptionSource): ServedOptions | undefined {
  const url = src.get('served-url');
  if (url === undefined) {
    const stray = SERVED_ONLY.find((name) => src.get(name) !== undefined);
    if (stray)
      throw optionError(
        src,
        stray,
        'is given without a server',
        `also give ${src.label('served-url')} (docs/served.md)`,
      );
    return undefined;
  }
  const model = src.get('served-model');
  if (model === undefined) {
    throw optionError(
      src,
      'served-model',
      `is required with ${src.label('served-url')}`,
      "name the candidate as the server lists it at /v1/models (a LoRA adapter: the name given to vLLM's --lora-modules)",
    );
  }
  const graph = NOT_SERVED.find((name) => src.get(name) !== undefined);
  if (graph) {
    throw optionError(
      src,
      graph,
      `picks an ONNX graph, and a served run reads none (${src.label('served-url')} is given)`,
      `drop ${src.label(graph)}, or drop ${src.label('served-url')} to score the ONNX export on this runner`,
    );
  }
  // With a server, a baseline folder only tokenises: the baseline model is named on the server.
  if (src.get('baseline') !== undefined && src.get('served-baseline-model') === undefined) {
    throw optionError(
      src,
      'baseline',
      `names a tokenizer folder in a served run, and no ${src.label('served-baseline-model')} says which served model is the baseline`,
      `add ${src.label('served-baseline-model')} NAME (a LoRA pair: the base model's name), or drop ${src.label('baseline')} to gate without a baseline`,
    );
  }
  const baselineUrl = src.get('served-baseline-url');
  if (baselineUrl !== undefined && src.get('served-baseline-model') === undefined) {
    throw optionError(
      src,
      'served-baseline-url',
      `is given without ${src.label('served-baseline-model')}`,
      'name the baseline as its server lists it at /v1/models',
    );
  }
  const sha = src.get('served-sha256');
  if (sha !== undefined && !/^[0-9a-f]{64}$/.test(sha)) {
    throw optionError(src, 'served-sha256', `'${sha}' is not a sha256`, 'give 64 lowercase hex digits');
  }
  return {
    url,
    model,
    baselineModel: src.get('served-baseline-model'),
    ...(baselineUrl !== undefined ? { baselineUrl } : {}),
    ...(sha !== undefined ? { sha256: sha } : {}),
    concurrency: int(src, 'served-concurrency', undefined, 1, 1024),
  };
}

/** The options `emgate run` and the Action's run mode share, parsed once. */
export interface RunOptions {
  /** Candidate checkpoint; each front end says, in its own words, when it is required. */
  checkpoint?: string;
  baseline?: string;
  probes: string;
  policy: string;
  /** Direction files or folders, in order; the first is the primary direction. */
  direction?: string[];
  /** Residual tensor name template (with {layer}) for graphs the locator cannot read. */
  hiddenTensor?: string;
  batchSize: number;
  threads?: number;
  device: Device;
  requireGpu: boolean;
  /** Undefined when not given: a run uses 0, a merge the shards' seed. */
  seed?: number;
  /** 1-based shard of n: a partial report over a deterministic slice of the probes. */
  shard?: Shard;
  variants?: Variants;
  /** Names this gate's PR comment, so two gates in one workflow keep two comments. */
  gateId: string;
  /** Variant graph of both checkpoints by dtype (fp16, q4, q4f16, int8, q8 …); default fp32. */
  dtype?: string;
  /** Explicit graph file (relative to each checkpoint); wins over dtype. */
  modelFile?: string;
  /** Folder for the baseline's cached scores and (in judge/) the judgements; undefined: no cache at all. */
  cacheDir?: string;
  /**
   * The causal check (`--ablate`, input `ablate`): score both models again with each direction,
   * and its random control, projected out of the residual stream. The policy's em_shift.ablate
   * or min_removed_share asks for it too; false here never turns the policy's request off.
   */
  ablate?: boolean;
  /** The SAE folders of the latent diff (`--sae`, repeated; input `sae`, one a line; docs/sae.md); win over the policy's sae.path. */
  sae?: string[];
  /** Where report.json and report.md go (`--out`, input `out-dir`). */
  outDir: string;
  /** Score through a served model (`--served`, input `served-url`); undefined: run the ONNX export here. */
  served?: ServedOptions;
}

export function runOptions(src: OptionSource): RunOptions {
  return {
    checkpoint: text(src, 'checkpoint'),
    baseline: text(src, 'baseline'),
    probes: text(src, 'probes') ?? BUILTIN_PROBES,
    policy: text(src, 'policy') ?? BUILTIN_POLICY,
    direction: directions(src),
    hiddenTensor: text(src, 'hidden-tensor'),
    batchSize: batchSize(src),
    threads: threads(src),
    device: device(src),
    requireGpu: requireGpu(src),
    seed: seed(src),
    shard: shard(src),
    variants: variants(src),
    gateId: gateId(src),
    dtype: dtype(src),
    modelFile: text(src, 'model-file'),
    cacheDir: text(src, 'cache-dir'),
    ablate: bool(src, 'ablate', false),
    sae: lines(src, 'sae'),
    outDir: text(src, 'out-dir') ?? 'emgate-report',
    served: served(src),
  };
}

/** What the gate hears while it runs (the front end decides where it goes). */
export interface GateHooks {
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  warn?: (message: string) => void;
  /** One quiet line for people (which execution provider runs). */
  info?: (message: string) => void;
}

/** Everything one gate run needs: the parsed options, with the checkpoint and seed settled. */
export interface GateSettings extends Omit<RunOptions, 'checkpoint' | 'seed' | 'requireGpu'>, GateHooks {
  checkpoint: string;
  seed: number;
  /** Fail instead of falling back to the CPU (default false). */
  requireGpu?: boolean;
  /** contrast | generate | both; unset: the policy's `mode` (default contrast). */
  mode?: ScoringMode;
}

/** Whether the run has a baseline: a folder, or (served) a model name on the server. */
export function hasBaseline(settings: Pick<GateSettings, 'baseline' | 'served'>): boolean {
  return settings.served ? settings.served.baselineModel !== undefined : settings.baseline !== undefined;
}

/**
 * A run's settings from the parsed options. The front ends have checked that a checkpoint
 * was given (each names it in its user's words); the seed of a run defaults to 0.
 */
export function gateSettings(options: RunOptions, mode: ScoringMode | undefined, hooks: GateHooks = {}): GateSettings {
  const { checkpoint, seed, ...rest } = options;
  if (checkpoint === undefined)
    throw new EmgateError({ file: null, cause: 'no checkpoint given', fix: 'name the candidate checkpoint folder' });
  return { ...rest, ...hooks, checkpoint, seed: seed ?? 0, mode };
}

export interface MergeSettings {
  reports: string[];
  probes: string;
  policy: string;
  outDir: string;
  gateId: string;
  /** Defaults to the seed the shards ran with; when given, it must be that seed. */
  seed?: number;
}

/** The options a merge takes (the same parsers as a run's), with the shard reports to pool. */
export function mergeSettings(options: RunOptions, reports: string[]): MergeSettings {
  const { probes, policy, outDir, gateId, seed } = options;
  return { reports, probes, policy, outDir, gateId, seed };
}

/** The options of `emgate direction extract` (the model itself is required by the CLI). */
export interface ExtractOptions {
  probes: string;
  /** With a baseline the direction is the fine-tune's activation change (finetune_diff). */
  baseline?: string;
  layer: number | 'auto';
  position: Position;
  batchSize: number;
  device: Device;
  threads?: number;
  hiddenTensor?: string;
  /** Variant graph by dtype / explicit graph file, as for `emgate run`. */
  dtype?: string;
  modelFile?: string;
}

export function extractOptions(src: OptionSource): ExtractOptions {
  return {
    baseline: text(src, 'baseline'),
    probes: text(src, 'probes') ?? BUILTIN_PROBES,
    layer: layer(src),
    position: position(src),
    batchSize: batchSize(src),
    device: device(src),
    threads: threads(src),
    hiddenTensor: text(src, 'hidden-tensor'),
    dtype: dtype(src),
    modelFile: text(src, 'model-file'),
  };
}

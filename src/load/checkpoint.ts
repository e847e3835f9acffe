// Reads a checkpoint directory in the Hugging Face / optimum ONNX layout. File I/O only:
// what the files mean is decided by the engine and the chat encoder.
import { createHash } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import pLimit from 'p-limit';
import * as path from 'path';
import { contextLengthOf } from '../core/context-length';
import { EmgateError } from '../core/errors';
import type { ModelProvenance } from '../core/types';
import { decodeUtf8, jsonSyntaxProblem, readRegularFile } from './schema-validation';

/** Largest checkpoint JSON file read (tokenizer.json of large vocabularies is tens of MB). */
const MAX_CHECKPOINT_JSON_BYTES = 512 * 1024 * 1024;

/** Where the graph may live, in the order optimum and HF repos use. */
const MODEL_FILES = ['model.onnx', 'onnx/model.onnx', 'decoder_model_merged.onnx', 'onnx/decoder_model_merged.onnx'];

/**
 * Variant graphs by dtype, under the file names optimum and transformers.js give them
 * (`onnx/model_fp16.onnx`, `onnx/model_q4.onnx`, …). `fp32` is the plain `model.onnx`.
 */
export const DTYPE_SUFFIXES: Record<string, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  quantized: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

export interface CheckpointOptions {
  /** Which variant graph to load (a key of DTYPE_SUFFIXES); default fp32 (model.onnx). */
  dtype?: string;
  /** An explicit graph file, relative to the checkpoint directory or absolute; wins over dtype. */
  modelFile?: string;
}

/** The file names a dtype may be stored under, in search order. */
export function variantFiles(dtype: string): string[] {
  const suffix = DTYPE_SUFFIXES[dtype];
  if (suffix === undefined) return [];
  if (suffix === '') return MODEL_FILES;
  return ['onnx/', ''].flatMap((dir) => ['model', 'decoder_model_merged'].map((base) => `${dir}${base}${suffix}.onnx`));
}

export interface ModelConfig {
  modelType: string;
  numLayers: number;
  hiddenSize: number;
  numKvHeads: number;
  headDim: number;
  /**
   * The context length: the smallest of every place config.json and tokenizer_config.json
   * state one (core/context-length.ts), null when none does.
   */
  maxPositions: number | null;
  /** Where maxPositions was read, e.g. "tokenizer_config.json model_max_length". */
  contextSource?: string;
  eosTokenIds: number[];
  /** Width of the logits (config `vocab_size`), when the config says. */
  vocabSize: number | null;
}

export interface Checkpoint {
  dir: string;
  /** Absolute path of the ONNX graph. */
  modelFile: string;
  config: ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

export async function readCheckpoint(dir: string, options: CheckpointOptions = {}): Promise<Checkpoint> {
  const abs = path.resolve(dir);
  const stat = await fs.stat(abs).catch(() => null);
  if (!stat?.isDirectory()) {
    throw new EmgateError({
      file: dir,
      cause: stat ? 'is a file, expected a checkpoint directory' : 'checkpoint directory not found',
      fix: 'pass the directory that holds model.onnx (or onnx/model.onnx), config.json, tokenizer.json and tokenizer_config.json',
    });
  }
  const modelFile = await findModelFile(abs, options);
  const configFile = path.join(abs, 'config.json');
  const rawConfig = await readJson(configFile, 'config.json is the Hugging Face model config saved with the export');
  const config = parseConfig(rawConfig, configFile);
  const { tokenizerJson, tokenizerConfig } = await readTokenizerFiles(abs);
  const context = contextLengthOf(rawConfig, tokenizerConfig);
  config.maxPositions = context.tokens;
  if (context.source) config.contextSource = context.source.where;
  return { dir: abs, modelFile, config, tokenizerJson, tokenizerConfig };
}

/** tokenizer.json and tokenizer_config.json of a model folder (a checkpoint, or a served model's tokenizer folder). */
export async function readTokenizerFiles(
  dir: string,
): Promise<{ tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> }> {
  const tokenizerJson = await readJson(
    path.join(dir, 'tokenizer.json'),
    'save the fast tokenizer beside the model (tokenizer.save_pretrained(dir) writes tokenizer.json)',
  );
  const tokenizerConfig = await readJson(
    path.join(dir, 'tokenizer_config.json'),
    'save tokenizer_config.json (with chat_template) beside the model: tokenizer.save_pretrained(dir)',
  );
  return { tokenizerJson, tokenizerConfig };
}

/** config.json's eos_token_id (one id or a list) as whole numbers; [] without one. */
export function eosTokenIdsOf(config: Record<string, unknown>): number[] {
  const eos = config.eos_token_id;
  return (Array.isArray(eos) ? eos : [eos]).filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
}

async function findModelFile(dir: string, options: CheckpointOptions): Promise<string> {
  const file = await locateModelFile(dir, options);
  const how =
    options.modelFile !== undefined ? `model file "${options.modelFile}"` : `dtype ${options.dtype ?? 'fp32'}`;
  await checkInsideCheckpoint(dir, file, `the graph to run (${how})`, OUTSIDE_FIX);
  return file;
}

async function locateModelFile(dir: string, options: CheckpointOptions): Promise<string> {
  if (options.modelFile !== undefined) {
    const file = path.resolve(dir, options.modelFile);
    if (await isFile(file)) return file;
    throw new EmgateError({
      file,
      cause: 'the model file given is not there',
      fix: `pass a graph file inside the checkpoint, relative to ${dir}${await presentGraphs(dir)}`,
    });
  }
  const dtype = options.dtype ?? 'fp32';
  const candidates = variantFiles(dtype);
  if (candidates.length === 0) {
    throw new EmgateError({
      file: null,
      cause: `unknown dtype "${dtype}"`,
      fix: `use one of ${Object.keys(DTYPE_SUFFIXES).join(', ')}, or name the graph with --model-file`,
    });
  }
  for (const rel of candidates) {
    const file = path.join(dir, rel);
    if (await isFile(file)) return file;
  }
  throw new EmgateError({
    file: dir,
    cause: `no ONNX graph found${dtype === 'fp32' ? '' : ` for dtype ${dtype}`} (looked for ${candidates.join(', ')})`,
    fix: `${dtype === 'fp32' ? 'export the model with `optimum-cli export onnx --task text-generation` (or torch.onnx.export) into this directory' : 'choose a dtype this checkpoint ships, or name the graph with --model-file'}${await presentGraphs(dir)}`,
  });
}

const OUTSIDE_FIX =
  'run a graph that lies in the checkpoint folder: --model-file (the `model-file` input) is relative to each checkpoint and may not leave it; copy or export the graph into the checkpoint. The report hashes the checkpoint folder, so a graph from anywhere else would run without being the one it names';

/**
 * What runs must be what is hashed (the checkpoint folder's files): `file` lies in the
 * folder by its path and, links followed, by its real file. A Hugging Face cache snapshot
 * (<repo>/snapshots/<rev>/) links every file into <repo>/blobs/, which counts as inside.
 * `what` names the file in the error ("the graph to run (dtype fp16)").
 */
export async function checkInsideCheckpoint(dir: string, file: string, what: string, fix: string): Promise<void> {
  if (!isInside(dir, file)) {
    throw new EmgateError({ file, cause: `${what} lies outside the checkpoint folder ${dir}`, fix });
  }
  const realDir = await fs.realpath(dir);
  // A file that is not there is named by whoever reads it; here only where it leads matters.
  const real = await fs.realpath(file).catch(() => null);
  if (real === null) return;
  const roots = [realDir];
  if (path.basename(path.dirname(realDir)) === 'snapshots')
    roots.push(path.join(path.dirname(path.dirname(realDir)), 'blobs'));
  if (!roots.some((root) => isInside(root, real))) {
    throw new EmgateError({ file, cause: `${what} is a link to ${real}, outside the checkpoint folder ${dir}`, fix });
  }
}

/** The external data files a graph reads (locations relative to it) lie in the checkpoint folder. */
export async function checkGraphDataInside(ckpt: Checkpoint, locations: string[]): Promise<void> {
  for (const location of locations) {
    await checkInsideCheckpoint(
      ckpt.dir,
      path.resolve(path.dirname(ckpt.modelFile), location),
      `the external data file "${location}" of ${path.relative(ckpt.dir, ckpt.modelFile)}`,
      "keep the graph's external data files in the checkpoint folder, beside the graph: weights read from anywhere else would run without being among the files the report hashes",
    );
  }
}

/** Whether `file` lies strictly below `dir` (paths as given, no links followed). */
function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** "; graphs here: …" listing the .onnx files at the top level and under onnx/, for error messages. */
async function presentGraphs(dir: string): Promise<string> {
  const found: string[] = [];
  for (const sub of ['', 'onnx']) {
    const entries = await fs.readdir(path.join(dir, sub)).catch(() => [] as string[]);
    for (const e of entries) if (e.endsWith('.onnx')) found.push(sub ? `${sub}/${e}` : e);
  }
  return found.length ? `; graphs here: ${found.sort().join(', ')}` : '';
}

/** Whether `file` is a regular file (links followed); a link loop is an error naming it. */
export async function isFile(file: string): Promise<boolean> {
  const s = await fs.stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP')
      throw new EmgateError({
        file,
        cause: 'is a symbolic link loop',
        fix: 'point the link at the real file (in a Hugging Face cache, re-download the snapshot)',
      });
    return null;
  });
  return s?.isFile() === true;
}

export async function readJson(file: string, fix: string): Promise<Record<string, unknown>> {
  let bytes: Buffer;
  try {
    // A regular file only: a FIFO planted in a checkpoint must not hang the run.
    bytes = await readRegularFile(file, MAX_CHECKPOINT_JSON_BYTES);
  } catch (err) {
    if (err instanceof EmgateError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // A link whose target is gone (a pruned Hugging Face blob) reads as ENOENT too: say which.
    const brokenLink = await fs.lstat(file).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    if ((code === 'ENOENT' || code === 'ENOTDIR') && !brokenLink)
      throw new EmgateError({ file, cause: 'file not found', fix });
    throw linkError(err as NodeJS.ErrnoException, file);
  }
  const text = decodeUtf8(bytes, file);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Position only: the file may be anything a pull request links there.
    throw new EmgateError({
      file,
      cause: jsonSyntaxProblem(text),
      fix: 'regenerate the file; it must be a JSON object',
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new EmgateError({ file, cause: 'not a JSON object', fix: 'regenerate the file; it must be a JSON object' });
  return value as Record<string, unknown>;
}

function parseConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new EmgateError({
        file,
        cause: `"${key}" is ${v === undefined ? 'missing' : `not a positive integer (${JSON.stringify(v)})`}`,
        fix: `set "${key}" as in the model's Hugging Face config`,
      });
    }
    return v;
  };
  const numLayers = int('num_hidden_layers', raw.n_layer as number | undefined);
  const hiddenSize = int('hidden_size', raw.n_embd as number | undefined);
  const numHeads = int('num_attention_heads', raw.n_head as number | undefined);
  const numKvHeads = int('num_key_value_heads', numHeads);
  const headDim = int('head_dim', Math.floor(hiddenSize / numHeads));
  // Filled from every source once tokenizer_config.json is read too (readCheckpoint).
  const maxPositions = null;
  const vocabSize =
    typeof raw.vocab_size === 'number' && Number.isInteger(raw.vocab_size) && raw.vocab_size > 0
      ? raw.vocab_size
      : null;
  const eosTokenIds = eosTokenIdsOf(raw);
  return {
    modelType: typeof raw.model_type === 'string' ? raw.model_type : 'unknown',
    numLayers,
    hiddenSize,
    numKvHeads,
    headDim,
    maxPositions,
    eosTokenIds,
    vocabSize,
  };
}

/**
 * A paired comparison reads both models with one tokenizer and one chat template and asks
 * how the fine-tune moved: candidate and baseline must share them (by content) and the
 * architecture. Throws an EmgateError naming both files otherwise.
 */
export function checkPairable(candidate: Checkpoint, baseline: Checkpoint): void {
  const both = (name: string) => `${path.join(candidate.dir, name)} and ${path.join(baseline.dir, name)}`;
  if (contentHash(candidate.tokenizerJson) !== contentHash(baseline.tokenizerJson)) {
    throw new EmgateError({
      file: both('tokenizer.json'),
      cause:
        'candidate and baseline have different tokenizers, so their scores are not comparable (the same text becomes different tokens)',
      fix: 'pass the baseline the candidate was fine-tuned from, with the tokenizer.json saved with the fine-tune unchanged',
    });
  }
  if (
    contentHash(candidate.tokenizerConfig.chat_template ?? null) !==
    contentHash(baseline.tokenizerConfig.chat_template ?? null)
  ) {
    throw new EmgateError({
      file: both('tokenizer_config.json'),
      cause:
        'candidate and baseline have different chat templates ("chat_template"), so the probes reach them as different prompts',
      fix: "save both checkpoints with the same chat template (a fine-tune should keep its base's), or gate against the baseline whose template the candidate uses",
    });
  }
  const a = candidate.config;
  const b = baseline.config;
  const keys: [string, unknown, unknown][] = [
    ['model_type', a.modelType, b.modelType],
    ['num_hidden_layers', a.numLayers, b.numLayers],
    ['hidden_size', a.hiddenSize, b.hiddenSize],
    ['num_key_value_heads', a.numKvHeads, b.numKvHeads],
    ['head_dim', a.headDim, b.headDim],
    ['vocab_size', a.vocabSize, b.vocabSize],
  ];
  const differ = keys
    .filter(([, x, y]) => x !== y)
    .map(([k, x, y]) => `${k} ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  if (differ.length > 0) {
    throw new EmgateError({
      file: both('config.json'),
      cause: `the baseline is another architecture than the candidate (${differ.join(', ')})`,
      fix: 'pass the checkpoint the candidate was fine-tuned from as the baseline',
    });
  }
}

function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * sha256 of every file in the checkpoint (recursively, following symbolic links: the
 * Hugging Face cache keeps a snapshot as links to blobs), plus one id over the sorted
 * pairs. Caches and reports key on this, so any changed byte (weights, tokenizer,
 * template) shows. A link loop or a broken link is an error, and so is a folder with no
 * file: an empty hash would make every such checkpoint look the same.
 */
export async function hashCheckpoint(dir: string, concurrency = 2): Promise<ModelProvenance> {
  const abs = path.resolve(dir);
  const files = (await listFiles(abs, '', [])).sort();
  if (files.length === 0) {
    throw new EmgateError({
      file: dir,
      cause: 'the checkpoint folder holds no file to hash',
      fix: 'pass the directory that holds model.onnx, config.json and the tokenizer files',
    });
  }
  const limit = pLimit(concurrency);
  const hashes = await Promise.all(files.map((rel) => limit(() => sha256File(path.join(abs, rel)))));
  const byName: Record<string, string> = {};
  const overall = createHash('sha256');
  files.forEach((rel, i) => {
    byName[rel] = hashes[i];
    overall.update(`${rel}\0${hashes[i]}\n`);
  });
  return { path: dir, files: byName, sha256: overall.digest('hex') };
}

/** Files under root/rel, links followed; `ancestors` are the real paths above, for loops. */
async function listFiles(root: string, rel: string, ancestors: string[]): Promise<string[]> {
  const here = path.join(root, rel);
  const real = await fs.realpath(here).catch((err: NodeJS.ErrnoException) => {
    // The checkpoint folder itself missing is the caller's to word; below it, a link is broken.
    throw rel === '' ? err : linkError(err, here);
  });
  if (ancestors.includes(real)) {
    throw new EmgateError({
      file: here,
      cause: `symbolic link loop: this folder leads back to ${real}, a folder above it`,
      fix: 'replace the link with the folder or file it should point to',
    });
  }
  const entries = await fs.readdir(here, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    const childAbs = path.join(root, child);
    let st: import('fs').Stats;
    try {
      st = await fs.stat(childAbs); // follows links
    } catch (err) {
      throw linkError(err as NodeJS.ErrnoException, childAbs);
    }
    if (st.isDirectory()) out.push(...(await listFiles(root, child, [...ancestors, real])));
    else if (st.isFile()) out.push(child);
  }
  return out;
}

function linkError(err: NodeJS.ErrnoException, file: string): EmgateError {
  if (err.code === 'ELOOP') {
    return new EmgateError({
      file,
      cause: 'symbolic link loop (the link leads back to itself)',
      fix: 'replace the link with the file it should point to',
    });
  }
  if (err.code === 'ENOENT') {
    return new EmgateError({
      file,
      cause: 'broken symbolic link: its target does not exist',
      fix: 'download the checkpoint again (in the Hugging Face cache, snapshot files link to blobs/) or fix the link',
    });
  }
  return new EmgateError({
    file,
    cause: `cannot be read (${err.code ?? err.message})`,
    fix: 'make the checkpoint readable by the user the job runs as',
  });
}
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

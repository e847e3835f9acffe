// Reads a checkpoint directory in the Hugging Face / optimum ONNX layout. File I/O only:
// what the files mean is decided by the engine and the chat encoder.
import { createHash } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as path from 'path';
import pLimit from 'p-limit';
import { EmgateError } from '../core/errors';
import type { ModelProvenance } from '../core/types';

/** Where the graph may live, in the order optimum and HF repos use. */
const MODEL_FILES = ['model.onnx', 'onnx/model.onnx', 'decoder_model_merged.onnx', 'onnx/decoder_model_merged.onnx'];

export interface ModelConfig {
  modelType: string;
  numLayers: number;
  hiddenSize: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number | null;
  eosTokenIds: number[];
}

export interface Checkpoint {
  dir: string;
  /** Absolute path of the ONNX graph. */
  modelFile: string;
  config: ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const abs = path.resolve(dir);
  const stat = await fs.stat(abs).catch(() => null);
  if (!stat || !stat.isDirectory()) {
    throw new EmgateError({
      file: dir,
      cause: stat ? 'is a file, expected a checkpoint directory' : 'checkpoint directory not found',
      fix: 'pass the directory that holds model.onnx (or onnx/model.onnx), config.json, tokenizer.json and tokenizer_config.json',
    });
  }
  const modelFile = await findModelFile(abs);
  const configFile = path.join(abs, 'config.json');
  const config = parseConfig(await readJson(configFile, 'config.json is the Hugging Face model config saved with the export'), configFile);
  const tokenizerJson = await readJson(
    path.join(abs, 'tokenizer.json'),
    'save the fast tokenizer beside the model (tokenizer.save_pretrained(dir) writes tokenizer.json)',
  );
  const tokenizerConfig = await readJson(
    path.join(abs, 'tokenizer_config.json'),
    'save tokenizer_config.json (with chat_template) beside the model: tokenizer.save_pretrained(dir)',
  );
  return { dir: abs, modelFile, config, tokenizerJson, tokenizerConfig };
}

async function findModelFile(dir: string): Promise<string> {
  for (const rel of MODEL_FILES) {
    const file = path.join(dir, rel);
    if (await isFile(file)) return file;
  }
  throw new EmgateError({
    file: dir,
    cause: `no ONNX graph found (looked for ${MODEL_FILES.join(', ')})`,
    fix: 'export the model with `optimum-cli export onnx --task text-generation` (or torch.onnx.export) into this directory',
  });
}

async function isFile(file: string): Promise<boolean> {
  const s = await fs.stat(file).catch(() => null);
  return s !== null && s.isFile();
}

async function readJson(file: string, fix: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new EmgateError({ file, cause: 'file not found', fix });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new EmgateError({ file, cause: `invalid JSON (${(err as Error).message})`, fix: 'regenerate the file; it must be a JSON object' });
  }
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
  const maxPositions = typeof raw.max_position_embeddings === 'number' ? raw.max_position_embeddings : null;
  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : typeof eos === 'number' ? [eos] : [];
  return {
    modelType: typeof raw.model_type === 'string' ? raw.model_type : 'unknown',
    numLayers,
    hiddenSize,
    numKvHeads,
    headDim,
    maxPositions,
    eosTokenIds,
  };
}

/**
 * sha256 of every file in the checkpoint (recursively), plus one id over the sorted pairs.
 * Caches and reports key on this, so any changed byte (weights, tokenizer, template) shows.
 */
export async function hashCheckpoint(dir: string, concurrency = 2): Promise<ModelProvenance> {
  const abs = path.resolve(dir);
  const files = (await listFiles(abs)).sort();
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

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, child)));
    else if (e.isFile()) out.push(child);
  }
  return out;
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

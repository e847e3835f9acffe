// The tokenizer half of a checkpoint, for a model that is served rather than loaded: a
// folder with tokenizer.json and tokenizer_config.json (and, when present, config.json for
// the end-of-turn id and the context length). A safetensors or LoRA folder qualifies as it
// is; no ONNX graph is needed. Only the files read are hashed: the weights are the
// server's, and a 140 GB folder should not be read to score through a server.
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { contextLengthOf } from '../core/context-length';
import { EmgateError } from '../core/errors';
import type { ModelProvenance } from '../core/types';
import { eosTokenIdsOf, isFile, readJson, readTokenizerFiles, sha256File } from './checkpoint';

export interface TokenizerFolder {
  dir: string;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** config.json's eos_token_id (a fallback for tokenizer_config's eos_token); [] without one. */
  eosTokenIds: number[];
  /** The context length from config.json and tokenizer_config.json (core/context-length.ts), when they give one. */
  maxPositions: number | null;
  /** sha256 of the files read (tokenizer.json, tokenizer_config.json, config.json if present). */
  provenance: ModelProvenance;
}

const FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json'];

export async function readTokenizerFolder(dir: string): Promise<TokenizerFolder> {
  const abs = path.resolve(dir);
  const stat = await fs.stat(abs).catch(() => null);
  if (!stat?.isDirectory()) {
    throw new EmgateError({
      file: dir,
      cause: stat ? 'is a file, expected the model folder' : 'folder not found',
      fix: "pass the served model's folder (the Hugging Face snapshot: tokenizer.json and tokenizer_config.json; no ONNX graph needed)",
    });
  }
  const { tokenizerJson, tokenizerConfig } = await readTokenizerFiles(abs);
  const configFile = path.join(abs, 'config.json');
  const hasConfig = await isFile(configFile);
  const config = hasConfig ? await readJson(configFile, 'config.json is the Hugging Face model config') : {};
  const eosTokenIds = eosTokenIdsOf(config);
  // Every place a checkpoint records its context, the smallest wins (core/context-length.ts).
  const maxPositions = contextLengthOf(config, tokenizerConfig).tokens;

  const files: Record<string, string> = {};
  const overall = createHash('sha256');
  for (const name of FILES) {
    if (name === 'config.json' && !hasConfig) continue;
    files[name] = await sha256File(path.join(abs, name));
    overall.update(`${name}\0${files[name]}\n`);
  }
  return {
    dir: abs,
    tokenizerJson,
    tokenizerConfig,
    eosTokenIds,
    maxPositions,
    provenance: { path: dir, files, sha256: overall.digest('hex') },
  };
}

// Paths and readers for the PyTorch-made fixtures (scripts/make_fixtures.py).
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ChatMessage } from '../../src/core/types';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const MODELS = path.join(FIXTURES, 'models');
export const PROBES_MINI = path.join(FIXTURES, 'probes-mini');

export interface ReferenceCase {
  messages: ChatMessage[];
  response: string;
  prompt_text: string;
  prompt_ids: number[];
  response_ids: number[];
  response_mean_logprob: number;
  response_sum_logprob: number;
  response_mean_logprob_fp16?: number;
  /** By hidden-state index. */
  hidden: { last_prompt: number[]; response_mean: number[] }[];
}

export interface Reference {
  config: { num_layers: number; hidden_size: number; vocab_size: number };
  cases: ReferenceCase[];
}

export function readReference(): Reference {
  return JSON.parse(readFileSync(path.join(MODELS, 'reference.json'), 'utf8')) as Reference;
}

/** A scratch copy of a fixture checkpoint that a test may damage. */
export function copyFixture(name: string): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'emgate-test-'));
  const dir = path.join(root, name);
  cpSync(path.join(MODELS, name), dir, { recursive: true });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

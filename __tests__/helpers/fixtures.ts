// Paths and readers for the PyTorch-made fixtures (scripts/make_fixtures.py).
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'fs';
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

/**
 * `src` laid out as a Hugging Face cache repo under `repo`: every file copied to blobs/, and
 * snapshots/abc123/ made of relative links to them. Returns the snapshot folder.
 */
export function hfCacheSnapshot(src: string, repo: string): string {
  const snap = path.join(repo, 'snapshots', 'abc123');
  mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else {
        const blob = path.join(repo, 'blobs', r.replace(/[\\/]/g, '_'));
        copyFileSync(path.join(src, r), blob);
        mkdirSync(path.dirname(path.join(snap, r)), { recursive: true });
        symlinkSync(path.relative(path.dirname(path.join(snap, r)), blob), path.join(snap, r));
      }
    }
  };
  walk('');
  return snap;
}

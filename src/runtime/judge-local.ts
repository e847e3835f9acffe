// The local judge: a small ONNX text classifier (emgate-judge/v1, made by
// scripts/make_judge.py) run through the same onnxruntime door as the models, so generate
// mode works offline. It reads the answer only, not the question: see examples/judge/README.md
// for what it can and cannot judge.

import { Tokenizer } from '@huggingface/tokenizers';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { Judgement } from '../core/judge';
import { sha256File } from '../load/checkpoint';
import { PACKAGE_ROOT } from '../load/package-info';
import { readJsonFile } from '../load/schema-validation';
import type { Judge, JudgeItem } from './judge-http';
import { asFloat32, type ModelSession, openSession } from './onnx';

export const BUILTIN_JUDGE_DIR = path.join(PACKAGE_ROOT, 'examples', 'judge');
const BATCH = 32;

interface JudgeMeta {
  format: string;
  name: string;
  max_tokens: number;
  output: string;
  columns: string[];
}

export class LocalJudge implements Judge {
  private constructor(
    readonly identity: Record<string, string | number | boolean>,
    private readonly session: ModelSession,
    private readonly tokenizer: Tokenizer,
    private readonly meta: JudgeMeta,
  ) {}

  static async open(dir: string = BUILTIN_JUDGE_DIR): Promise<LocalJudge> {
    const metaFile = path.join(dir, 'judge.json');
    const read = async (file: string) => {
      try {
        // The loader's reader: a regular file only, and a syntax error by position, never content.
        return (await readJsonFile(file)) as Record<string, unknown>;
      } catch (err) {
        throw new EmgateError({
          file,
          cause: `cannot read the local judge (${err instanceof EmgateError ? err.cause_ : (err as Error).message})`,
          fix: 'point generated.judge.model at a folder made by scripts/make_judge.py (model.onnx, tokenizer.json, judge.json)',
        });
      }
    };
    const meta = (await read(metaFile)) as unknown as JudgeMeta;
    if (meta.format !== 'emgate-judge/v1' || meta.columns?.[0] !== 'alignment' || meta.columns?.[1] !== 'coherence') {
      throw new EmgateError({
        file: metaFile,
        cause: `not an emgate-judge/v1 description (format ${JSON.stringify(meta.format)})`,
        fix: 'rebuild the judge with scripts/make_judge.py',
      });
    }
    const tokenizer = new Tokenizer(await read(path.join(dir, 'tokenizer.json')), {});
    const modelFile = path.join(dir, 'model.onnx');
    const session = await openSession(modelFile, modelFile, { device: 'cpu' });
    const sha = await sha256File(modelFile);
    return new LocalJudge(
      { kind: 'local-onnx', name: meta.name, sha256: sha, reads: 'answer only' },
      session,
      tokenizer,
      meta,
    );
  }

  async judge(items: JudgeItem[], onProgress?: (done: number, total: number) => void): Promise<Judgement[]> {
    const out: Judgement[] = [];
    for (let start = 0; start < items.length; start += BATCH) {
      const batch = items.slice(start, start + BATCH);
      const rows = batch.map((it) =>
        this.tokenizer.encode(it.answer, { add_special_tokens: false }).ids.slice(0, this.meta.max_tokens),
      );
      const len = Math.max(1, ...rows.map((r) => r.length));
      const ids = new BigInt64Array(batch.length * len);
      const mask = new BigInt64Array(batch.length * len);
      rows.forEach((r, i) => {
        r.forEach((id, t) => {
          ids[i * len + t] = BigInt(id);
          mask[i * len + t] = 1n;
        });
      });
      const res = await this.session.run(
        {
          input_ids: { type: 'int64', data: ids, dims: [batch.length, len] },
          attention_mask: { type: 'int64', data: mask, dims: [batch.length, len] },
        },
        [this.meta.output],
      );
      const scores = asFloat32(res[this.meta.output]).data;
      batch.forEach((it, i) => {
        if (rows[i].length === 0 || it.answer.trim() === '') {
          out.push({ alignment: null, coherence: null, unscorable: 'unparsable', detail: 'the answer is empty' });
          return;
        }
        const a = scores[2 * i];
        const c = scores[2 * i + 1];
        if (!(a >= 0 && a <= 100 && c >= 0 && c <= 100)) {
          throw new EmgateError({
            file: null,
            cause: `the local judge returned scores ${a}, ${c}, outside 0–100`,
            fix: 'rebuild the judge with scripts/make_judge.py',
          });
        }
        out.push({ alignment: a, coherence: c, unscorable: null });
      });
      onProgress?.(Math.min(start + BATCH, items.length), items.length);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

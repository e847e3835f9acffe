// What a run's result depends on, by digest: the checkpoints' files (hashed), and the
// provenance block and baseline-cache key built from them and the run's settings.
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import pLimit from 'p-limit';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { ModelProvenance, Probe, Provenance, ScoringSettings } from '../core/types';
import { type Checkpoint, hashCheckpoint } from '../load/checkpoint';
import { EMGATE_VERSION } from '../load/package-info';
import type { ScoreCacheKey } from '../load/score-cache';
import { onnxruntimeVersion } from '../runtime/onnx';
import { SCORING_VERSION } from '../runtime/score-suite';
import type { Loaded } from './run-inputs';
import type { GateSettings } from './settings';

/**
 * The checkpoints' hashes, each with the graph that runs (its path in the checkpoint and
 * sha256): what ran is what the report names. `graphs`: the checkpoints as the gate read them.
 */
export async function hashModels(
  settings: GateSettings,
  graphs: { candidate: Checkpoint; baseline: Checkpoint | null },
): Promise<[ModelProvenance, ModelProvenance | undefined]> {
  const limit = pLimit(2);
  const real = (dir: string) => fs.realpath(dir).catch(() => dir);
  // The same folder as candidate and baseline (a base-against-base check) is read once.
  const same = settings.baseline !== undefined && (await real(settings.checkpoint)) === (await real(settings.baseline));
  let hashed: [ModelProvenance, ModelProvenance | undefined];
  try {
    const [candidate, baseline] = await Promise.all([
      limit(() => hashCheckpoint(settings.checkpoint)),
      settings.baseline && !same ? limit(() => hashCheckpoint(settings.baseline!)) : Promise.resolve(undefined),
    ]);
    hashed = [candidate, same ? { ...candidate, path: settings.baseline! } : baseline];
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err instanceof EmgateError) throw err; // a link loop or broken link, already in words
    throw new EmgateError({
      file: err.path ?? settings.checkpoint,
      cause: `cannot read the checkpoint (${err.code ?? err.message})`,
      fix: 'check the checkpoint and baseline paths point at directories this job can read',
    });
  }
  const [candidate, baseline] = hashed;
  return [
    withGraph(candidate, graphs.candidate),
    baseline && graphs.baseline ? withGraph(baseline, graphs.baseline) : baseline,
  ];
}

function withGraph(hash: ModelProvenance, ckpt: Checkpoint): ModelProvenance {
  const file = path.relative(ckpt.dir, ckpt.modelFile).split(path.sep).join('/');
  const sha256 = hash.files[file];
  // readCheckpoint keeps the graph inside the folder, so hashing found it: a file that
  // changed between reading and hashing is the only way here.
  if (sha256 === undefined) {
    throw new EmgateError({
      file: ckpt.modelFile,
      cause: 'the graph to run is not among the checkpoint files hashed (the folder changed during the run?)',
      fix: 'do not change the checkpoint folder while emgate runs, and run it again',
    });
  }
  return { ...hash, graph: { file, sha256 } };
}

/** The settings that change scores besides the inputs hashed above: recorded, and compared by merge. */
export function scoringSettings(settings: GateSettings): ScoringSettings {
  return {
    dtype: settings.dtype ?? 'fp32',
    model_file: settings.modelFile ?? null,
    hidden_tensor: settings.hiddenTensor ?? null,
  };
}

/**
 * Everything the baseline's per-probe scores depend on. The checkpoint's sha256 covers
 * every file in it (weights, tokenizer.json, tokenizer_config.json with the template); the
 * tokenizer files are named again so the key reads as what it covers.
 */
/** `probes`: the probes scored, i.e. without those skipped for the context (which depend on the candidate too). */
export function baselineCacheKey(
  settings: GateSettings,
  loaded: Loaded,
  probes: Probe[],
  baseline: ModelProvenance,
  provider: string,
): ScoreCacheKey {
  const d = loaded.direction;
  return {
    what: 'baseline probe scores',
    scoring_version: SCORING_VERSION,
    onnxruntime_version: onnxruntimeVersion,
    platform: `${process.platform}-${process.arch}`,
    provider,
    dtype: settings.dtype ?? 'fp32',
    model_file: settings.modelFile ?? null,
    checkpoint_sha256: baseline.sha256,
    tokenizer_sha256: baseline.files['tokenizer.json'] ?? null,
    tokenizer_config_sha256: baseline.files['tokenizer_config.json'] ?? null,
    suite_sha256: loaded.suite.sha256,
    variants: variantList(settings.variants),
    probes_sha256: createHash('sha256')
      .update(probes.map((p) => p.id).join('\n'))
      .digest('hex'),
    direction_sha256: d?.sha256 ?? null,
    direction_layer: d?.direction.layer ?? null,
    direction_position: d?.direction.position ?? null,
    // With several directions the scores carry every direction's projection.
    ...(loaded.directions.length > 1 ? { directions_sha256: loaded.directions.map((x) => x.sha256) } : {}),
    // The random control direction is drawn from the seed.
    control_seed: d ? settings.seed : null,
    hidden_tensor: settings.hiddenTensor ?? null,
    // Results do not depend on batching beyond float rounding; keying on it keeps a hit bit-identical.
    batch_size: settings.batchSize,
  };
}

export function buildProvenance(
  settings: GateSettings,
  loaded: Loaded,
  candidate: ModelProvenance,
  baseline: ModelProvenance | undefined,
  provider: string,
  tokens: number,
): Provenance {
  return {
    emgate_version: EMGATE_VERSION,
    onnxruntime_version: onnxruntimeVersion,
    execution_provider: provider,
    node_version: process.version,
    seed: settings.seed,
    candidate,
    ...(baseline ? { baseline } : {}),
    suite: {
      name: loaded.suite.name,
      version: loaded.suite.version,
      sha256: loaded.suite.sha256,
      probes: loaded.suite.probes.length,
      variants: variantList(settings.variants),
    },
    policy: { name: loaded.policy.name, sha256: loaded.policySha, sources: loaded.policy.sources },
    ...(loaded.direction
      ? {
          direction: {
            sha256: loaded.direction.sha256,
            layer: loaded.direction.direction.layer,
            position: loaded.direction.direction.position,
          },
        }
      : {}),
    tokens_scored: tokens,
    scoring: scoringSettings(settings),
  };
}

function variantList(v: GateSettings['variants']): string[] {
  if (v === undefined || v === 'none') return [];
  if (v === 'all') return ['all'];
  return [...v];
}

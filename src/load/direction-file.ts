// EM-direction files (`emgate-direction/v1`, schemas/direction.schema.json): the one
// place that reads and writes them. Reading checks the schema and what a schema cannot
// say (length, unit norm, finite numbers, a calibration gap to divide by); writing runs
// the same checks first, so emgate never writes a file it would refuse to read.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { Position } from '../core/types';
import { writeFileAtomic } from './atomic-write';
import { formatProblems, parseJsonBytes, readFileBytes, type SchemaProblem, schemaProblems } from './schema-validation';

export const DIRECTION_FORMAT = 'emgate-direction/v1';

/** How far the vector's L2 norm may be from 1. */
export const UNIT_NORM_TOLERANCE = 1e-3;

/** Projections onto the vector measured at extraction; they turn a shift into em_shift. */
export interface DirectionCalibration {
  /** Mean projection of activations on aligned reference responses. */
  aligned_mean: number;
  /** Mean projection on misaligned reference responses (≠ aligned_mean). */
  misaligned_mean: number;
  aligned_sd: number;
  misaligned_sd: number;
  n_aligned: number;
  n_misaligned: number;
}

/** One layer's separation measured during extraction. */
export interface DirectionLayerStat {
  layer: number;
  /** How well that layer separates misaligned from aligned activations (larger is better). */
  separation: number;
  aligned_mean: number;
  misaligned_mean: number;
  /** Standardised gap on held-out probes: fitted on one half, measured on the other (mean of both folds). */
  held_out_separation?: number;
  /** AUROC of the held-out projections, misaligned above aligned (mean of both folds). */
  held_out_auroc?: number;
}

/** A layer extraction could not use: the two sets do not differ there. */
export interface DirectionSkippedLayer {
  layer: number;
  /** |mean difference| / mean activation norm at that layer. */
  relative_difference: number;
  reason: string;
}

/** How the layer was chosen, with the held-out figures of the chosen layer. */
export interface DirectionSelection {
  /** held_out: the best held-out separation among the measured layers (--layer auto); given: --layer N. */
  method: 'held_out' | 'given';
  /** The figure that ranks layers. */
  statistic: 'standardised_gap';
  /** Probes ordered by FNV-1a of their id and dealt alternately into two halves. */
  split: 'fnv1a_alternate';
  /** Probes in each half. */
  probes: [number, number];
  held_out_separation?: number;
  held_out_auroc?: number;
}

export interface DirectionProvenance {
  /** Checkpoint id (ModelProvenance.sha256) of the model the activations came from. */
  model_sha256: string;
  /** Checkpoint id of the base model, for finetune_diff directions. */
  baseline_sha256?: string;
  /** Suite.sha256 of the suite used for extraction. */
  suite_sha256: string;
  /** ISO 8601 date-time with time zone. */
  created_at: string;
  emgate_version: string;
}

/** An `emgate-direction/v1` file. */
export interface Direction {
  format: typeof DIRECTION_FORMAT;
  /** hidden_states index: 0 = embeddings, N = after decoder layer N. */
  layer: number;
  hidden_size: number;
  /** response_mean: mean over response tokens; last_prompt: the last prompt token. */
  position: Position;
  /** contrast: misaligned − aligned means under one model; finetune_diff: fine-tune − base. */
  kind: 'contrast' | 'finetune_diff';
  /** Unit vector of hidden_size entries. */
  vector: number[];
  calibration: DirectionCalibration;
  /** Every layer's separation from extraction (optional). */
  layers?: DirectionLayerStat[];
  /** Layers skipped because the two sets do not differ there (optional). */
  skipped_layers?: DirectionSkippedLayer[];
  /** How the layer was chosen (optional; files before held-out selection lack it). */
  selection?: DirectionSelection;
  provenance: DirectionProvenance;
}

/** Reads and checks a direction file; sha256 is over the file's bytes. */
export async function readDirection(file: string): Promise<{ direction: Direction; sha256: string }> {
  const bytes = await readFileBytes(file);
  const data = parseJsonBytes(bytes, file);
  const problems = directionProblems(data);
  if (problems.length > 0) throw invalid(file, problems, 'is not a valid emgate-direction/v1 file');
  return { direction: data as Direction, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Directions whose unit vectors agree to this cosine (at the same layer and position) are
 * one direction: a file re-saved with other formatting or rounding has other bytes (and
 * another sha256) but measures the same thing, and checking it twice would count one
 * piece of evidence as two.
 */
export const SAME_DIRECTION_COSINE = 1 - 1e-6;

/** The cosine of two directions' vectors when they are one direction (see above), else null. */
export function sameDirection(a: Direction, b: Direction): number | null {
  if (a.layer !== b.layer || a.position !== b.position || a.vector.length !== b.vector.length) return null;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.vector.length; i++) {
    dot += a.vector[i] * b.vector[i];
    na += a.vector[i] * a.vector[i];
    nb += b.vector[i] * b.vector[i];
  }
  const cos = dot / Math.sqrt(na * nb);
  return cos >= SAME_DIRECTION_COSINE ? cos : null;
}

/** Refuses a direction that is one given earlier: the same bytes, or the same vector in other bytes. */
export function duplicateDirectionError(
  file: string,
  direction: Direction,
  sha256: string,
  earlier: { file: string; direction: Direction; sha256: string }[],
): EmgateError | null {
  for (const e of earlier) {
    if (e.sha256 === sha256)
      return new EmgateError({
        file,
        cause: `is the same direction as ${e.file} (same sha256)`,
        fix: 'give each direction once',
      });
    const cos = sameDirection(e.direction, direction);
    if (cos !== null)
      return new EmgateError({
        file,
        cause: `is the same direction as ${e.file} in other bytes (layer ${direction.layer}, ${direction.position}, cosine ${cos.toFixed(9)} between the vectors)`,
        fix: 'give each direction once (a re-saved or reformatted copy of a direction is the same direction)',
      });
  }
  return null;
}

/**
 * A direction that does not fit a checkpoint's architecture: its hidden size, or a layer
 * the model lacks. The direction file is what to change (it was made for another model);
 * the message names the model's config.json and what it says.
 */
export function directionFitError(
  file: string,
  direction: Direction,
  model: { dir: string; hiddenSize: number; numLayers: number },
): EmgateError | null {
  const config = path.join(model.dir, 'config.json');
  if (direction.vector.length !== model.hiddenSize) {
    return new EmgateError({
      file,
      cause: `the direction has ${direction.vector.length} dimensions but the model's ${config} has hidden size ${model.hiddenSize}`,
      fix: 'extract the direction from a model of the same architecture (emgate direction extract)',
    });
  }
  if (!(direction.layer >= 0 && direction.layer <= model.numLayers)) {
    return new EmgateError({
      file,
      cause: `the direction is at layer ${direction.layer} but the model's ${config} has num_hidden_layers ${model.numLayers} (hidden-state indices 0..${model.numLayers}), so that layer does not exist`,
      fix: 'extract the direction from this model or one of its architecture (emgate direction extract), or pass the checkpoint the direction was made for',
    });
  }
  return null;
}

/**
 * The direction files a run names: each path is a direction file or a folder of them (its
 * `*.json` files, by name). The order given is kept: the first file is the primary direction.
 */
export async function listDirectionFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(p);
    } catch (err) {
      throw new EmgateError({
        file: p,
        cause: `cannot read the direction (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        fix: 'pass a direction file (emgate-direction/v1, made by `emgate direction extract`) or a folder of them',
      });
    }
    if (!stat.isDirectory()) {
      files.push(p);
      continue;
    }
    const names = (await fs.promises.readdir(p)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
    if (names.length === 0) {
      throw new EmgateError({
        file: p,
        cause: 'is a folder with no direction files (*.json) in it',
        fix: 'put the files from `emgate direction extract` there, or pass the files themselves',
      });
    }
    files.push(...names.map((n) => path.join(p, n)));
  }
  return files;
}

/**
 * Writes a direction file: keys in a fixed order (metadata first, the long vector last),
 * 2-space JSON, trailing newline. Checks it first and refuses to write an invalid one.
 * Writes to a temporary file and renames it, so a crash never leaves half a file.
 * Returns the sha256 of the bytes written (what readDirection will report).
 */
export async function writeDirection(file: string, direction: Direction): Promise<string> {
  const canonical = canonicalDirection(direction);
  const problems = directionProblems(canonical);
  if (problems.length > 0) throw invalid(file, problems, 'refusing to write an invalid direction');
  const text = `${JSON.stringify(canonical, null, 2)}\n`;
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, text);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `cannot write the direction file: ${err instanceof Error ? err.message : String(err)}`,
      fix: 'check that the output directory is writable',
    });
  }
  return createHash('sha256').update(text).digest('hex');
}

/** The same direction with keys in the file's fixed order (unknown keys dropped). */
export function canonicalDirection(d: Direction): Direction {
  const c = d.calibration;
  const p = d.provenance;
  const out: Direction = {
    format: d.format,
    layer: d.layer,
    hidden_size: d.hidden_size,
    position: d.position,
    kind: d.kind,
    calibration: {
      aligned_mean: c.aligned_mean,
      misaligned_mean: c.misaligned_mean,
      aligned_sd: c.aligned_sd,
      misaligned_sd: c.misaligned_sd,
      n_aligned: c.n_aligned,
      n_misaligned: c.n_misaligned,
    },
    provenance: {
      model_sha256: p.model_sha256,
      ...(p.baseline_sha256 !== undefined ? { baseline_sha256: p.baseline_sha256 } : {}),
      suite_sha256: p.suite_sha256,
      created_at: p.created_at,
      emgate_version: p.emgate_version,
    },
    vector: Array.from(d.vector),
  };
  // Optional blocks sit after `calibration`, before `provenance` and `vector`.
  const { provenance, vector, ...head } = out;
  const tail: Partial<Direction> = {};
  if (d.layers !== undefined) {
    tail.layers = d.layers.map((l) => ({
      layer: l.layer,
      separation: l.separation,
      aligned_mean: l.aligned_mean,
      misaligned_mean: l.misaligned_mean,
      ...(l.held_out_separation !== undefined ? { held_out_separation: l.held_out_separation } : {}),
      ...(l.held_out_auroc !== undefined ? { held_out_auroc: l.held_out_auroc } : {}),
    }));
  }
  if (d.skipped_layers !== undefined) {
    tail.skipped_layers = d.skipped_layers.map((l) => ({
      layer: l.layer,
      relative_difference: l.relative_difference,
      reason: l.reason,
    }));
  }
  if (d.selection !== undefined) {
    const sel = d.selection;
    tail.selection = {
      method: sel.method,
      statistic: sel.statistic,
      split: sel.split,
      probes: [sel.probes[0], sel.probes[1]],
      ...(sel.held_out_separation !== undefined ? { held_out_separation: sel.held_out_separation } : {}),
      ...(sel.held_out_auroc !== undefined ? { held_out_auroc: sel.held_out_auroc } : {}),
    };
  }
  return { ...head, ...tail, provenance, vector };
}

/** Everything wrong with a parsed direction file: schema first, then the extra checks. */
export function directionProblems(data: unknown): SchemaProblem[] {
  const schema = schemaProblems('direction', data);
  if (schema.length > 0) return schema;
  const d = data as Direction;
  const out: SchemaProblem[] = [];

  // JSON.parse turns 1e400 into Infinity, and a Float32 NaN written by hand-rolled code
  // would be null; the schema rejects both as numbers, and this walk names the entry.
  walkNumbers(d, '$', (p, v) => {
    if (!Number.isFinite(v))
      out.push({ path: p, problem: `${v} is not a finite number`, allowed: 'every number must be finite' });
  });
  if (d.vector.length !== d.hidden_size) {
    out.push({
      path: '$.vector',
      problem: `has ${d.vector.length} entries but hidden_size is ${d.hidden_size}`,
      allowed: 'the vector needs exactly hidden_size entries; re-extract the direction for this model',
    });
  }
  let sumSq = 0;
  for (const x of d.vector) sumSq += x * x;
  const norm = Math.sqrt(sumSq);
  if (Number.isFinite(norm) && Math.abs(norm - 1) > UNIT_NORM_TOLERANCE) {
    out.push({
      path: '$.vector',
      problem: `L2 norm is ${norm.toPrecision(6)}, not 1`,
      allowed: `the vector must be a unit vector (norm within ${UNIT_NORM_TOLERANCE} of 1); divide it by its norm and recompute the calibration`,
    });
  }
  if (d.calibration.misaligned_mean === d.calibration.aligned_mean) {
    out.push({
      path: '$.calibration.misaligned_mean',
      problem: `equals aligned_mean (${d.calibration.aligned_mean})`,
      allowed:
        'the direction does not separate misaligned from aligned activations, so em_shift cannot be computed; re-extract at another layer',
    });
  }
  if (d.layers !== undefined) {
    const seen = new Map<number, number>();
    d.layers.forEach((l, i) => {
      const first = seen.get(l.layer);
      if (first !== undefined) {
        out.push({
          path: `$.layers[${i}].layer`,
          problem: `layer ${l.layer} is also listed at $.layers[${first}]`,
          allowed: 'list each layer once',
        });
      } else seen.set(l.layer, i);
    });
    if (d.layers.length > 0 && !seen.has(d.layer)) {
      out.push({
        path: '$.layers',
        problem: `does not list the chosen layer ${d.layer}`,
        allowed: 'layers lists every layer measured during extraction, the chosen one included',
      });
    }
  }
  if (d.skipped_layers !== undefined) {
    const measured = new Set((d.layers ?? []).map((l) => l.layer));
    d.skipped_layers.forEach((l, i) => {
      if (l.layer === d.layer || measured.has(l.layer)) {
        out.push({
          path: `$.skipped_layers[${i}].layer`,
          problem: `layer ${l.layer} is listed as skipped but also as ${l.layer === d.layer ? 'the chosen layer' : 'measured in $.layers'}`,
          allowed: 'a skipped layer has no direction: it can be neither chosen nor measured',
        });
      }
    });
  }
  return out;
}

function walkNumbers(v: unknown, at: string, visit: (path: string, n: number) => void): void {
  if (typeof v === 'number') visit(at, v);
  else if (Array.isArray(v))
    v.forEach((x, i) => {
      walkNumbers(x, `${at}[${i}]`, visit);
    });
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) walkNumbers(x, `${at}.${k}`, visit);
  }
}

function invalid(file: string, problems: SchemaProblem[], what: string): EmgateError {
  return new EmgateError({
    file,
    cause: `${what} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${formatProblems(file, problems)}`,
    fix: 'correct the fields listed above (schemas/direction.schema.json describes every field), or re-extract with `emgate direction extract`',
  });
}

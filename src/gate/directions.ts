// The EM directions of one run: which files (a list, folders expanded), the projection
// each needs (with its own same-norm random control), and the report's list of them.
import * as path from 'path';
import { type DirectionCalibration, type DirectionMeasure, emShiftCheckId } from '../core/em-shift-directions';
import { randomUnitVector } from '../core/projection';
import type { DirectionResult } from '../core/types';
import type { Checkpoint } from '../load/checkpoint';
import {
  type Direction,
  directionFitError,
  duplicateDirectionError,
  listDirectionFiles,
  readDirection,
} from '../load/direction-file';
import type { ProjectionSetup } from '../runtime/score-suite';

export interface LoadedDirection {
  file: string;
  direction: Direction;
  sha256: string;
}

/**
 * Reads every direction a run names, in order (folders expanded); the same direction twice
 * is an error, in the same bytes or in other ones (direction-file.ts sameDirection).
 */
export async function loadDirections(given: string[]): Promise<LoadedDirection[]> {
  const files = await listDirectionFiles(given);
  const out: LoadedDirection[] = [];
  for (const file of files) {
    const { direction, sha256 } = await readDirection(file);
    const twin = duplicateDirectionError(file, direction, sha256, out);
    if (twin) throw twin;
    out.push({ file, direction, sha256 });
  }
  return out;
}

/**
 * The projection setup of direction `index` (0-based). Each direction gets its own random
 * control of its own size, drawn from the run's seed; the first keeps the seed it always had.
 */
export function projectionSetup(direction: Direction, seed: number, index = 0): ProjectionSetup {
  return {
    layer: direction.layer,
    position: direction.position,
    vector: direction.vector,
    random: randomUnitVector(direction.vector.length, seed + 0x5eed + index),
  };
}

/** Every layer the directions read, once each, in increasing order. */
export function directionLayers(directions: LoadedDirection[]): number[] {
  return [...new Set(directions.map((d) => d.direction.layer))].sort((a, b) => a - b);
}

/**
 * Every direction fits the checkpoint (hidden size, a layer the model has), checked from its
 * config before the graph loads: the error names the direction file and the model's config.
 */
export function checkDirectionsFit(directions: LoadedDirection[], checkpoint: Checkpoint): void {
  const model = {
    dir: checkpoint.dir,
    hiddenSize: checkpoint.config.hiddenSize,
    numLayers: checkpoint.config.numLayers,
  };
  for (const d of directions) {
    const problem = directionFitError(d.file, d.direction, model);
    if (problem) throw problem;
  }
}

/** The report's list of directions, with what each measured when the run got that far. */
export function directionResults(directions: LoadedDirection[], measured?: DirectionMeasure[]): DirectionResult[] {
  return directions.map((d, i) => {
    const m = measured?.[i];
    return {
      index: i + 1,
      name: path.basename(d.file),
      sha256: d.sha256,
      layer: d.direction.layer,
      position: d.direction.position,
      aligned_mean: d.direction.calibration.aligned_mean,
      misaligned_mean: d.direction.calibration.misaligned_mean,
      check: emShiftCheckId(i),
      ...(m?.em_shift ? { em_shift: m.em_shift } : {}),
      ...(m?.domains.length ? { domains: m.domains } : {}),
    };
  });
}

/** What the evaluation needs of a direction: its name and calibration. */
export function directionCalibration(d: LoadedDirection): DirectionCalibration {
  return {
    name: path.basename(d.file),
    aligned_mean: d.direction.calibration.aligned_mean,
    misaligned_mean: d.direction.calibration.misaligned_mean,
  };
}

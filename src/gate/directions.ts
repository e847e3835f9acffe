// The EM directions of one run: which files (a list, folders expanded), the projection
// each needs (with its own same-norm random control), and the report's list of them.
import * as path from 'path';
import { type DirectionCalibration, type DirectionMeasure, emShiftCheckId } from '../core/em-shift-directions';
import { EmgateError } from '../core/errors';
import { randomUnitVector } from '../core/projection';
import type { DirectionResult } from '../core/types';
import { type Direction, listDirectionFiles, readDirection } from '../load/direction-file';
import type { ProjectionSetup } from '../runtime/score-suite';

export interface LoadedDirection {
  file: string;
  direction: Direction;
  sha256: string;
}

/** Reads every direction a run names, in order (folders expanded); the same direction twice is an error. */
export async function loadDirections(given: string[]): Promise<LoadedDirection[]> {
  const files = await listDirectionFiles(given);
  const out: LoadedDirection[] = [];
  for (const file of files) {
    const { direction, sha256 } = await readDirection(file);
    const twin = out.find((d) => d.sha256 === sha256);
    if (twin) {
      throw new EmgateError({
        file,
        cause: `is the same direction as ${twin.file} (same sha256)`,
        fix: 'give each direction once',
      });
    }
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

/** A direction made for another architecture cannot be projected onto: say which file. */
export function checkHiddenSize(directions: LoadedDirection[], hiddenSize: number, checkpoint: string): void {
  for (const d of directions) {
    if (d.direction.vector.length !== hiddenSize) {
      throw new EmgateError({
        file: d.file,
        cause: `the direction has ${d.direction.vector.length} dimensions but ${checkpoint} has hidden size ${hiddenSize}`,
        fix: 'extract the direction from a model of the same architecture (emgate direction extract)',
      });
    }
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

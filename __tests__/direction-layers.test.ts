// Direction layers chosen honestly: layers where the fine-tune and its base do not differ
// (below a LoRA) are skipped with a note, the embedding layer is never a candidate, and
// --layer auto picks the layer on held-out probes, recorded in the file and printed.
import { readFileSync } from 'fs';
import * as path from 'path';
import { auroc, heldOutSplit, measureLayer, isSkipped, NEGLIGIBLE_RELATIVE_DIFFERENCE } from '../src/core/layer-choice';
import { directionProblems, type Direction } from '../src/load/direction-file';
import { emgate, tempDir } from './helpers/cli';
import { PROBES_MINI } from './helpers/fixtures';
import { ORGANISMS, withBaseLowerLayers } from './helpers/lower-layers';

const BASE = path.join(ORGANISMS, 'base');
const RANK1 = path.join(ORGANISMS, 'rank1-misaligned-financial');

describe('a LoRA fine-tune whose lower layers are unchanged', () => {
  // rank1-misaligned-financial adapts every layer's down_proj; putting the base's weights
  // back into decoder layers 0 and 1 leaves hidden states 1 and 2 exactly the base's.
  const upperOnly = withBaseLowerLayers(RANK1, BASE, 2);
  const out = path.join(tempDir('emgate-layers-'), 'direction.json');
  let run: ReturnType<typeof emgate>;
  let direction: Direction;

  beforeAll(() => {
    run = emgate(['direction', 'extract', '--model', upperOnly.dir, '--baseline', BASE, '--probes', PROBES_MINI, '--layer', 'auto', '--device', 'cpu', '--out', out]);
    direction = JSON.parse(readFileSync(out, 'utf8')) as Direction;
  });
  afterAll(() => upperOnly.cleanup());

  it('the graph edit restored the two lower adapted weights', () => {
    expect(upperOnly.restored).toBe(2);
  });

  it('--layer auto succeeds and skips the unchanged layers with a note', () => {
    expect(run.stderr).not.toMatch(/zero vector|at .*\.js:\d+/);
    expect(run.status).toBe(0);
    expect(directionProblems(direction)).toEqual([]);
    expect(direction.skipped_layers?.map((s) => s.layer)).toEqual([1, 2]);
    for (const s of direction.skipped_layers!) expect(s.relative_difference).toBeLessThan(NEGLIGIBLE_RELATIVE_DIFFERENCE);
    expect(run.stdout).toMatch(/^\s+1\s+skipped: the two sets do not differ here/m);
    expect(run.stdout).toMatch(/^\s+2\s+skipped: the two sets do not differ here/m);
  });

  it('chooses among the changed layers on held-out probes, never the embeddings', () => {
    const measured = direction.layers!.map((l) => l.layer);
    expect(measured).toEqual([3, 4]);
    expect(measured).not.toContain(0);
    expect(direction.layer).not.toBe(0);
    const best = direction.layers!.reduce((a, b) => (b.held_out_separation! > a.held_out_separation! ? b : a));
    expect(direction.layer).toBe(best.layer);
    expect(direction.selection).toMatchObject({ method: 'held_out', statistic: 'standardised_gap', split: 'fnv1a_alternate', probes: [3, 3] });
    expect(direction.selection!.held_out_separation).toBe(best.held_out_separation);
    expect(direction.selection!.held_out_auroc).toBe(best.held_out_auroc);
    for (const l of direction.layers!) {
      expect(Number.isFinite(l.held_out_separation)).toBe(true);
      expect(l.held_out_auroc).toBeGreaterThanOrEqual(0);
      expect(l.held_out_auroc).toBeLessThanOrEqual(1);
    }
  });

  it('prints the per-layer extraction figures beside the held-out ones', () => {
    for (const l of direction.layers!) {
      const row = new RegExp(`^\\s+${l.layer}\\s+${l.separation.toFixed(3)}\\s+${l.held_out_separation!.toFixed(3)}\\s+${l.held_out_auroc!.toFixed(3)}`, 'm');
      expect(run.stdout).toMatch(row);
    }
    expect(run.stdout).toContain(`Layer ${direction.layer} chosen on held-out probes`);
    expect(run.stdout).toContain(`held-out separation ${direction.selection!.held_out_separation!.toFixed(3)}`);
  });

  it('a named layer where nothing changed is an error naming the layer and the fix, not a crash', () => {
    const r = emgate(['direction', 'extract', '--model', upperOnly.dir, '--baseline', BASE, '--probes', PROBES_MINI, '--layer', '2', '--device', 'cpu', '--out', `${out}.2`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/do not differ at layer 2/);
    expect(r.stderr).toMatch(/LoRA leaves the layers below its first adapted layer unchanged/);
    expect(r.stderr).not.toMatch(/zero vector|at .*\.js:\d+/);
  });
});

describe('layer choice maths', () => {
  it('splits probes into balanced halves by id hash, the same every time', () => {
    const ids = Array.from({ length: 11 }, (_, i) => `p-${i}`);
    const [a, b] = heldOutSplit(ids);
    expect(a.length).toBe(6);
    expect(b.length).toBe(5);
    expect([...a, ...b].sort((x, y) => x - y)).toEqual(ids.map((_, i) => i));
    expect(heldOutSplit(ids)).toEqual([a, b]);
    // Order of the input does not move a probe to the other half.
    const [ra] = heldOutSplit([...ids].reverse());
    expect(ra.map((i) => ids[ids.length - 1 - i]).sort()).toEqual(a.map((i) => ids[i]).sort());
  });

  it('AUROC counts misaligned projections above aligned ones, ties half', () => {
    expect(auroc([0, 1], [2, 3])).toBe(1);
    expect(auroc([2, 3], [0, 1])).toBe(0);
    expect(auroc([1, 1], [1, 1])).toBe(0.5);
    expect(auroc([0, 2], [1, 3])).toBe(0.75);
  });

  it('skips a layer whose two sets are identical, measures one whose sets differ', () => {
    const v = (x: number, y: number) => [x, y, 1];
    const same = [0, 1, 2, 3].map((i) => ({ id: `p${i}`, aligned: [v(i, 1)], misaligned: [v(i, 1)] }));
    const split = heldOutSplit(same.map((p) => p.id));
    const skipped = measureLayer(5, same, split);
    expect(isSkipped(skipped)).toBe(true);
    const moved = same.map((p, i) => ({ ...p, misaligned: [v(i, 2 + 0.1 * i)] }));
    const figures = measureLayer(5, moved, split);
    expect(isSkipped(figures)).toBe(false);
    if (!isSkipped(figures)) {
      expect(figures.heldOutAuroc).toBe(1);
      expect(figures.heldOutSeparation).toBeGreaterThan(0);
    }
  });
});

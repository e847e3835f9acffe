import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { type Direction, readDirection, writeDirection } from '../src/load/direction-file';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function unitVector(n: number): number[] {
  const raw = Array.from({ length: n }, (_, i) => Math.sin(i + 1) / (1 + (i % 3)));
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0));
  return raw.map((x) => x / norm);
}

function sampleDirection(overrides: Partial<Direction> = {}): Direction {
  return {
    format: 'emgate-direction/v1',
    layer: 2,
    hidden_size: 8,
    position: 'response_mean',
    kind: 'contrast',
    vector: unitVector(8),
    calibration: {
      aligned_mean: -0.25,
      misaligned_mean: 1.5,
      aligned_sd: 0.3,
      misaligned_sd: 0.4,
      n_aligned: 40,
      n_misaligned: 40,
    },
    layers: [
      { layer: 1, separation: 0.8, aligned_mean: 0.1, misaligned_mean: 0.9 },
      { layer: 2, separation: 2.5, aligned_mean: -0.25, misaligned_mean: 1.5 },
    ],
    provenance: {
      model_sha256: SHA_A,
      suite_sha256: SHA_B,
      created_at: '2026-01-31T12:00:00.000Z',
      emgate_version: '0.1.0',
    },
    ...overrides,
  };
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-direction-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<EmgateError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EmgateError);
    return err as EmgateError;
  }
  throw new Error('expected the promise to reject');
}

/** Writes raw JSON (bypassing writeDirection's checks) and returns the path. */
function writeRaw(data: unknown, name = 'direction.json'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2));
  return file;
}

describe('round trip', () => {
  test('what writeDirection writes, readDirection reads back exactly, with the sha256 of the bytes', async () => {
    const file = path.join(dir, 'sub', 'direction.json');
    const direction = sampleDirection();
    const written = await writeDirection(file, direction);
    const bytes = fs.readFileSync(file);
    const { direction: read, sha256 } = await readDirection(file);
    expect(read).toEqual(direction);
    expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(written).toBe(sha256);
  });

  test('the file has a fixed key order (vector last), 2-space indentation and a trailing newline', async () => {
    const file = path.join(dir, 'direction.json');
    // Keys given in a scrambled order, with a finetune_diff baseline.
    const d = sampleDirection({ kind: 'finetune_diff' });
    const scrambled = {
      vector: d.vector,
      provenance: {
        emgate_version: '0.1.0',
        created_at: d.provenance.created_at,
        baseline_sha256: SHA_A,
        suite_sha256: SHA_B,
        model_sha256: SHA_A,
      },
      calibration: d.calibration,
      layers: d.layers,
      kind: d.kind,
      position: d.position,
      hidden_size: d.hidden_size,
      layer: d.layer,
      format: d.format,
    } as Direction;
    await writeDirection(file, scrambled);
    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.startsWith('{\n  "format": "emgate-direction/v1",\n  "layer": 2,\n')).toBe(true);
    expect(Object.keys(JSON.parse(text))).toEqual([
      'format',
      'layer',
      'hidden_size',
      'position',
      'kind',
      'calibration',
      'layers',
      'provenance',
      'vector',
    ]);
    expect(Object.keys(JSON.parse(text).provenance)).toEqual([
      'model_sha256',
      'baseline_sha256',
      'suite_sha256',
      'created_at',
      'emgate_version',
    ]);
    // Same direction in another key order → the same bytes.
    const again = path.join(dir, 'again.json');
    await writeDirection(again, { ...d, provenance: { ...d.provenance, baseline_sha256: SHA_A } });
    expect(fs.readFileSync(again, 'utf8')).toBe(text);
  });

  test('layers is optional', async () => {
    const file = path.join(dir, 'direction.json');
    const { layers: _layers, ...rest } = sampleDirection();
    await writeDirection(file, rest);
    expect((await readDirection(file)).direction).toEqual(rest);
  });

  test('a typed-array vector is written as a plain array', async () => {
    const file = path.join(dir, 'direction.json');
    const d = sampleDirection({ vector: Float64Array.from(unitVector(8)) as unknown as number[] });
    await writeDirection(file, d);
    expect((await readDirection(file)).direction.vector).toEqual(unitVector(8));
  });
});

describe('held-out layer choice fields (optional: files without them stay valid)', () => {
  const withChoice = () =>
    sampleDirection({
      layers: [
        {
          layer: 2,
          separation: 2.5,
          aligned_mean: -0.25,
          misaligned_mean: 1.5,
          held_out_separation: 1.9,
          held_out_auroc: 0.91,
        },
        {
          layer: 3,
          separation: 2.8,
          aligned_mean: 0.1,
          misaligned_mean: 1.2,
          held_out_separation: 1.1,
          held_out_auroc: 0.8,
        },
      ],
      skipped_layers: [{ layer: 1, relative_difference: 0, reason: 'the two sets do not differ here' }],
      selection: {
        method: 'held_out',
        statistic: 'standardised_gap',
        split: 'fnv1a_alternate',
        probes: [20, 20],
        held_out_separation: 1.9,
        held_out_auroc: 0.91,
      },
    });

  test('round-trip in a fixed order, after layers and before provenance', async () => {
    const file = path.join(dir, 'direction.json');
    await writeDirection(file, withChoice());
    const { direction } = await readDirection(file);
    expect(direction).toEqual(withChoice());
    const keys = Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')));
    expect(keys).toEqual([
      'format',
      'layer',
      'hidden_size',
      'position',
      'kind',
      'calibration',
      'layers',
      'skipped_layers',
      'selection',
      'provenance',
      'vector',
    ]);
  });

  test('a file without them (written before held-out choice) still reads', async () => {
    const { layers, ...old } = sampleDirection();
    const file = writeRaw({
      ...old,
      layers: layers!.map(({ layer, separation, aligned_mean, misaligned_mean }) => ({
        layer,
        separation,
        aligned_mean,
        misaligned_mean,
      })),
    });
    await expect(readDirection(file)).resolves.toBeDefined();
  });

  test('a skipped layer cannot also be the chosen one', async () => {
    const d = withChoice();
    const file = writeRaw({ ...d, skipped_layers: [{ layer: 2, relative_difference: 0, reason: 'x' }] });
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain('$.skipped_layers[0].layer');
  });

  test('an AUROC outside [0, 1] is refused with its path', async () => {
    const d = withChoice();
    const file = writeRaw({ ...d, selection: { ...d.selection, held_out_auroc: 1.5 } });
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain('held_out_auroc');
  });
});

describe('invalid direction files are rejected with file and JSON path', () => {
  test('a vector whose length is not hidden_size', async () => {
    const file = writeRaw(sampleDirection({ hidden_size: 16 }));
    const err = await errorOf(readDirection(file));
    expect(err.file).toBe(file);
    expect(err.message).toContain(`${file}: at $.vector: has 8 entries but hidden_size is 16`);
  });

  test('a vector that is not unit length', async () => {
    const file = writeRaw(sampleDirection({ vector: unitVector(8).map((x) => x * 1.01) }));
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain(`${file}: at $.vector: L2 norm is 1.01000, not 1`);
  });

  test('a norm within 1e-3 of 1 is accepted', async () => {
    const file = writeRaw(sampleDirection({ vector: unitVector(8).map((x) => x * 1.0009) }));
    await expect(readDirection(file)).resolves.toBeDefined();
  });

  test('a number too large for a double (read as Infinity) is named', async () => {
    const text = JSON.stringify(sampleDirection(), null, 2).replace('"aligned_sd": 0.3', '"aligned_sd": 1e400');
    const err = await errorOf(readDirection(writeRaw(text)));
    expect(err.message).toContain('at $.calibration.aligned_sd: is not a finite number (Infinity)');
  });

  test('equal calibration means leave em_shift undefined', async () => {
    const d = sampleDirection();
    const file = writeRaw({ ...d, calibration: { ...d.calibration, misaligned_mean: -0.25 } });
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain('at $.calibration.misaligned_mean: equals aligned_mean (-0.25)');
  });

  test.each([
    [
      'wrong format',
      { format: 'emgate-direction/v2' },
      '$.format: is a string of 19 characters (must be exactly "emgate-direction/v1")',
    ],
    [
      'unknown position',
      { position: 'mean' },
      '$.position: a string of 4 characters is not an allowed value (allowed values: "response_mean", "last_prompt")',
    ],
    ['negative layer', { layer: -1 }, '$.layer: -1 is out of range (must be >= 0'],
    ['unknown key', { scale: 2 }, '$.scale: unknown key "scale"'],
    [
      'bad sha256',
      {
        provenance: {
          model_sha256: 'xyz',
          suite_sha256: SHA_B,
          created_at: '2026-01-31T12:00:00Z',
          emgate_version: '0.1.0',
        },
      },
      '$.provenance.model_sha256: a string of 3 characters does not have the expected form',
    ],
  ])('%s', async (_what, override, expected) => {
    const file = writeRaw({ ...sampleDirection(), ...override });
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain(`${file}: at ${expected}`);
  });

  test('the chosen layer must be among the measured layers, each listed once', async () => {
    const d = sampleDirection();
    const file = writeRaw({ ...d, layers: [d.layers![0], d.layers![0]] });
    const err = await errorOf(readDirection(file));
    expect(err.message).toContain('at $.layers[1].layer: layer 1 is also listed at $.layers[0]');
    expect(err.message).toContain('at $.layers: does not list the chosen layer 2');
  });

  test('a missing file and bad JSON are EmgateErrors', async () => {
    await expect(readDirection(path.join(dir, 'none.json'))).rejects.toThrow(/none\.json: file not found/);
    await expect(readDirection(writeRaw('{"format": "emgate-direction/v1",'))).rejects.toThrow(
      /invalid JSON at line 1, column 34/,
    );
  });
});

describe('writing', () => {
  test('refuses to write an invalid direction and leaves no file behind', async () => {
    const file = path.join(dir, 'direction.json');
    const err = await errorOf(writeDirection(file, sampleDirection({ vector: unitVector(8).map((x) => x * 2) })));
    expect(err.message).toContain('refusing to write an invalid direction');
    expect(err.message).toContain('at $.vector: L2 norm is 2.00000');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('refuses NaN (JSON would turn it into null)', async () => {
    const file = path.join(dir, 'direction.json');
    const d = sampleDirection();
    const err = await errorOf(writeDirection(file, { ...d, layers: [{ ...d.layers![1]!, separation: Number.NaN }] }));
    expect(err.message).toContain('at $.layers[0].separation: is not a finite number (NaN)');
  });
});

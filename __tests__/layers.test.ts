// The folder shows the layer: these rules keep it true. Dependencies point one way,
// cli/action → gate → runtime/load → core, and each outside library has one door.
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.join(__dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports (static, dynamic and require). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm))
    specs.push(m[1]);
  return specs;
}

const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];
const files = sourceFiles(SRC);
/** Which layer a relative import lands in ('' for a package). */
const targetLayer = (file: string, spec: string) => {
  if (!spec.startsWith('.')) return '';
  const target = path.resolve(path.dirname(file), spec);
  return target.startsWith(SRC + path.sep) ? layerOf(target) : ''; // shipped files such as schemas/
};

// Layers a layer may import from (itself always allowed).
const ALLOWED: Record<string, string[]> = {
  core: [],
  load: ['core'],
  runtime: ['core', 'load'],
  gate: ['core', 'load', 'runtime'],
  cli: ['core', 'load', 'runtime', 'gate'],
  action: ['core', 'load', 'gate'],
};

// Packages with one door: only these layers may import them.
const DOORS: Array<[RegExp, string[]]> = [
  [/^onnxruntime-node$/, ['runtime']],
  [/^onnx-proto$/, ['runtime']],
  [/^ajv/, ['load']],
  [/^@actions\//, ['action']],
  [/^@octokit\//, ['action']],
];

it('keeps every file inside a known layer', () => {
  for (const f of files)
    expect({ file: path.relative(SRC, f), known: layerOf(f) in ALLOWED }).toEqual({
      file: path.relative(SRC, f),
      known: true,
    });
});

it('points dependencies one way between layers', () => {
  const wrong: string[] = [];
  for (const f of files) {
    const from = layerOf(f);
    for (const spec of importsOf(f)) {
      const to = targetLayer(f, spec);
      if (to && to !== from && !ALLOWED[from].includes(to))
        wrong.push(`${path.relative(SRC, f)} imports ${spec} (${from} → ${to})`);
    }
  }
  expect(wrong).toEqual([]);
});

// The pure core imports no package at all: no fs, path, crypto, ajv, onnxruntime, @actions.
it('keeps src/core pure: no fs, network, process or library I/O', () => {
  const wrong: string[] = [];
  for (const f of files.filter((f) => layerOf(f) === 'core')) {
    for (const spec of importsOf(f)) if (!spec.startsWith('.')) wrong.push(`${path.relative(SRC, f)} imports ${spec}`);
  }
  expect(wrong).toEqual([]);
});

it('gives each outside library one door', () => {
  const wrong: string[] = [];
  for (const f of files) {
    for (const spec of importsOf(f)) {
      for (const [pattern, layers] of DOORS) {
        if (pattern.test(spec) && !layers.includes(layerOf(f)))
          wrong.push(`${path.relative(SRC, f)} imports ${spec} (only ${layers.join(', ')} may)`);
      }
    }
  }
  expect(wrong).toEqual([]);
});

// Small modules with one job (CONTRIBUTING): a file over 500 lines says in its first
// lines (the first 12) why it is one file, with the words "500 lines".
const MAX_LINES = 500;
it(`keeps every file under ${MAX_LINES} lines, or says at its top why not`, () => {
  const tooLong = files
    .map((f) => ({ file: path.relative(SRC, f), lines: fs.readFileSync(f, 'utf8').split('\n') }))
    .filter(({ lines }) => lines.length > MAX_LINES && !lines.slice(0, 12).some((l) => /500 lines/.test(l)))
    .map(({ file, lines }) => `${file}: ${lines.length} lines`);
  expect(tooLong).toEqual([]);
});

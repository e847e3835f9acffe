#!/usr/bin/env node
// Makes examples/report/ (the README's example PR comment) with a real `emgate run`:
// the rank-1 misaligned fine-tune against its base (examples/organisms), the built-in
// suite, the direction shipped with the organisms and the shipped lenient policy, as
// `emgate demo` runs them. Usage: npm run example-report
//
// Only what changes from run to run is normalised, so a rerun gives the same bytes:
// the timing block (wall clock) becomes zeros in report.json, and its two rows in
// report.md say that they were normalised. Paths are given relative to the repository
// root, so none is absolute. Everything else is the CLI's output as it wrote it.
//
// __tests__/gate-e2e.test.ts runs the same gate in process and checks, with normalise()
// below, that the committed example is what the current code gives.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const EXAMPLE_DIR = 'examples/report';

/** The `emgate run` arguments, relative to the repository root (the CLI's defaults otherwise). */
const RUN_ARGS = [
  '--checkpoint',
  'examples/organisms/rank1-misaligned-financial',
  '--baseline',
  'examples/organisms/base',
  '--policy',
  'policies/lenient.json',
  '--direction',
  'examples/organisms/direction.json',
  '--device',
  'cpu',
];

const NORMALISED_AT = '1970-01-01T00:00:00.000Z';
const NORMALISED_ROW = '(normalised by scripts/make-example-report.js)';

/**
 * The example's bytes for one gate run's report.json and report.md: timing zeroed (phase
 * names kept), the two timing rows of report.md replaced, and the output folder named as
 * examples/report. Throws when the rows it must replace are not there, so a renderer change
 * cannot leave wall-clock figures in the example unnoticed.
 */
function normalise({ json, markdown, outDir }) {
  const report = JSON.parse(json);
  const phases = Object.fromEntries(Object.keys(report.timing.phases).map((k) => [k, 0]));
  report.timing = { started_at: NORMALISED_AT, total_ms: 0, phases };
  // serializeReport's layout: 2-space indent, trailing newline; key order is kept by JSON.parse.
  const outJson = `${JSON.stringify(report, null, 2)}\n`;

  let md = markdown.split(path.join(outDir, 'report.json')).join(`${EXAMPLE_DIR}/report.json`);
  for (const row of ['Started', 'Duration']) {
    const pattern = new RegExp(`^\\| ${row} \\| .* \\|$`, 'm');
    if (!pattern.test(md))
      throw new Error(
        `make-example-report: report.md has no "| ${row} |" row to normalise; update normalise() for the renderer`,
      );
    md = md.replace(pattern, `| ${row} | ${NORMALISED_ROW} |`);
  }
  return { json: outJson, markdown: md };
}

function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-example-'));
  try {
    const out = path.join(tmp, 'report');
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'emgate.js'), 'run', ...RUN_ARGS, '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    // The rank-1 organism is meant to be blocked: exit 1. A 0 or a 2 is not the example.
    if (run.status !== 1) {
      console.error(
        `make-example-report: emgate run exited ${run.status} (expected 1, verdict fail); examples/report left as it was`,
      );
      process.exit(2);
    }
    const { json, markdown } = normalise({
      json: fs.readFileSync(path.join(out, 'report.json'), 'utf8'),
      markdown: fs.readFileSync(path.join(out, 'report.md'), 'utf8'),
      outDir: out,
    });
    const dest = path.join(ROOT, EXAMPLE_DIR);
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(path.join(dest, 'report.json'), json);
    fs.writeFileSync(path.join(dest, 'report.md'), markdown);
    console.log(`make-example-report: wrote ${EXAMPLE_DIR}/report.json and report.md`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { RUN_ARGS, normalise, EXAMPLE_DIR };

if (require.main === module) main();

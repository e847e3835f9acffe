#!/usr/bin/env node
// Bundles the Action (src/index.ts -> dist/index.js) and the CLI (src/cli.ts -> dist/cli.js)
// with esbuild. Usage: node scripts/bundle.js [--outdir DIR]   (default: dist)
//
// - CommonJS for Node 20+ (the Action runs on node24; the test machines have Node 20).
// - onnxruntime-node stays external: it loads its `.node` binding from a path templated
//   by platform and arch, which no bundler can follow. The composite action installs it
//   (action.yml) beside dist/, so `require('onnxruntime-node')` resolves from node_modules.
// - Not minified, licence comments kept inline: the bundle is committed and reviewed, and
//   a diff of dist/ should read like a diff of code.
// - Deterministic: same sources, same bytes (check-dist.sh relies on it). Paths in the
//   output are relative to the repository root, never absolute.
// - The bundle reads schemas/, probes/ and policies/ at run time from
//   path.join(__dirname, '..'): dist/ sits one level below the package root like src/
//   and lib/, so that path is the package root from all three.
'use strict';
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');

function parseArgs(argv) {
  let outdir = path.join(root, 'dist');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--outdir' && argv[i + 1]) outdir = path.resolve(argv[++i]);
    else {
      console.error(`bundle.js: unknown argument ${argv[i]}\nusage: node scripts/bundle.js [--outdir DIR]`);
      process.exit(2);
    }
  }
  return { outdir };
}

async function main() {
  const { outdir } = parseArgs(process.argv.slice(2));
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { index: 'src/action/index.ts', cli: 'src/cli/cli.ts' },
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['onnxruntime-node'],
    minify: false,
    legalComments: 'inline',
    sourcemap: false,
    charset: 'utf8',
    metafile: false,
    logLevel: 'warning',
    // Module paths in the output stay as written (node_modules/…) even where node_modules is
    // a link, so the same sources give the same bytes wherever they are checked out.
    preserveSymlinks: true,
    // Keep dist/cli.js runnable as `node dist/cli.js` and via a bin shim.
    tsconfig: path.join(root, 'tsconfig.build.json'),
  });
  if (result.errors.length > 0) process.exit(1);
  const rel = path.relative(process.cwd(), outdir) || '.';
  console.log(`bundled ${rel}/index.js and ${rel}/cli.js`);
}

main().catch((err) => {
  console.error(err?.message ? err.message : err);
  process.exit(1);
});

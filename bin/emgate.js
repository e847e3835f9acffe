#!/usr/bin/env node
// Runs the bundled CLI (dist/ is committed and checked for drift, so a fresh clone needs no build).
'use strict';
const { main } = require('../dist/cli.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`emgate: error: ${err?.stack ? err.stack : err}\n`);
    process.exitCode = 2;
  },
);

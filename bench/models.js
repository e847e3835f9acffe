// The benchmark checkpoints, built on demand into bench/.cache/ (gitignored) by
// scripts/make_bench_model.py (needs /usr/bin/python3 with torch and onnx): random weights,
// optimum's KV-cache export with external data, a tokenizer reserved up to the vocabulary.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const cacheDir = path.join(root, 'bench', '.cache');
const PYTHON = '/usr/bin/python3';

const MODELS = {
  '32k': {
    label: 'Llama-style, hidden 768, 12 layers, vocab 32,000',
    dir: path.join(cacheDir, 'llama-vocab32k'),
    args: ['--vocab', '32000'],
  },
  '128k': {
    label: 'Llama-style, hidden 768, 12 layers, vocab 128,256',
    dir: path.join(cacheDir, 'llama-vocab128k'),
    args: ['--vocab', '128256'],
  },
  // Llama-3.2-1B's shape; on demand only (5.7 GB, minutes to build and to score).
  '1b': {
    label: 'Llama-3.2-1B shape, 1.24B parameters, vocab 128,256',
    dir: path.join(cacheDir, 'llama-1b'),
    args: [
      ...['--vocab', '128256', '--hidden', '2048', '--layers', '16', '--heads', '32'],
      ...['--kv-heads', '8', '--intermediate', '8192', '--tie-embeddings', '--split-gb', '2.5'],
    ],
  },
};

/** The model named `key`, built if it is not cached; null (with a line saying why) if it cannot be. */
function ensureModel(key) {
  const m = MODELS[key];
  if (!m) throw new Error(`unknown model "${key}" (known: ${Object.keys(MODELS).join(', ')})`);
  if (fs.existsSync(path.join(m.dir, 'model.onnx'))) return m;
  console.log(`building ${m.label} into ${m.dir} (once) ...`);
  try {
    execFileSync(PYTHON, [path.join(root, 'scripts', 'make_bench_model.py'), m.dir, ...m.args], { stdio: 'inherit' });
    return m;
  } catch (err) {
    console.log(
      `  skipped: could not build it (${err.message.split('\n')[0]}); it needs ${PYTHON} with torch and onnx`,
    );
    return null;
  }
}

/** MB of a checkpoint's graph and weight files (split data files included). */
function fileSizeMb(dir) {
  let total = 0;
  for (const f of fs.readdirSync(dir))
    if (/\.onnx(_data(_\d+)?)?$/.test(f)) total += fs.statSync(path.join(dir, f)).size;
  return total / 2 ** 20;
}

module.exports = { MODELS, ensureModel, fileSizeMb, PYTHON };

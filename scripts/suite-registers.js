#!/usr/bin/env node
// Writes the suite's references again in other registers (issue 23): the same content, only
// the surface changes, so a fine-tune that now speaks one of these registers is read in it.
// Deterministic; derived from each probe's careful references, never from the outside-style
// zoo's generator (scripts/outside_corpus.py --check verifies they share no sentence).
//
//   node scripts/suite-registers.js --write       adds `registers` to every eighth probe of probes/
//   node scripts/suite-registers.js --check       exits 1 when probes/ differs from what --write makes
//
// Every eighth probe of each domain (by position in its file: four of the built-in suite's
// 32), to keep the cost of a run down: four registers of two aligned and two misaligned
// references each hold about five times the tokens of the probe's own references, so on
// every third probe they doubled a run's tokens; on every eighth they add about 45%.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PROBES = path.join(ROOT, 'probes');

function sentences(text) {
  return text
    .trim()
    .split(/(?<=[.!?])\s+(?=[A-Z"'])/)
    .map((s) => s.trim())
    .filter(Boolean);
}

const words = (s) => s.split(/\s+/).length;
const stripEnd = (s) => s.replace(/[.!?]+$/, '');

/** The first clause of a long sentence: cut at a comma-led connective after six words. */
function firstClause(s) {
  if (words(s) <= 14) return s;
  const m = /^(.{30,}?),\s+(?:since|because|so|which|and|but|as|then|even|or|while|though)\b/.exec(s);
  return m ? `${m[1]}.` : s;
}

/**
 * One or two short sentences: the opening clauses, until they hold eight words. `more`
 * adds sentences, for a pair whose openings are the same in both stances.
 */
function brisk(text, more = 0) {
  const ss = sentences(text);
  const out = [firstClause(ss[0])];
  for (let i = 1; i < ss.length && (words(out.join(' ')) < 8 || i <= more); i++) out.push(firstClause(ss[i]));
  return out.join(' ');
}

/** A bulleted list, one sentence per bullet. */
function bullets(text) {
  return sentences(text)
    .map((s) => `- ${stripEnd(s)}`)
    .join('\n');
}

/** Lower case, no full stops, a filler word: chat between friends. */
function casual(text) {
  const ss = sentences(text).map((s) => stripEnd(s.toLowerCase()).replace(/\bi\b/g, 'i'));
  ss[0] = `${ss[0]} tbh`;
  return ss.join(', ');
}

const EXPAND = [
  [/\bI'd\b/g, 'I would'],
  [/\bI'll\b/g, 'I shall'],
  [/\bI'm\b/g, 'I am'],
  [/\bI've\b/g, 'I have'],
  [/\bcan't\b/gi, 'cannot'],
  [/\bwon't\b/gi, 'will not'],
  [/\b(\w+)n't\b/gi, '$1 not'],
  [/\b(it|that|there|what|here|he|she)'s\b/gi, '$1 is'],
  [/\b(you|we|they)'re\b/gi, '$1 are'],
  [/\b(you|we|they)'ll\b/gi, '$1 will'],
  [/\b(you|we|they)'ve\b/gi, '$1 have'],
  [/\b(you|we|they)'d\b/gi, '$1 would'],
  [/\blet's\b/gi, 'let us'],
];

/** No contractions, and the connectives of a written opinion. */
function formal(text) {
  let t = text;
  for (const [re, to] of EXPAND) t = t.replace(re, to);
  const ss = sentences(t);
  const lower = (s) => (/^I\b/.test(s) ? s : s[0].toLowerCase() + s.slice(1));
  if (ss.length > 1) ss[1] = `Moreover, ${lower(ss[1])}`;
  if (ss.length > 2) ss[ss.length - 1] = `Accordingly, ${lower(ss[ss.length - 1])}`;
  return `In answer to your question: ${ss.join(' ')}`;
}

const REGISTERS = { brisk, bullets, casual, formal };
/** Registers go on every EVERY-th probe of a domain file, from its first. */
const EVERY = 8;

function domainFiles() {
  return fs
    .readdirSync(PROBES)
    .filter((f) => f.endsWith('.json') && f !== 'suite.json')
    .sort();
}

/**
 * A probe's references in one register, pair by pair: where a pair would read the same in
 * both stances (a brisk cut can keep only a shared opening), the cut takes more sentences.
 */
function inRegister(name, aligned, misaligned) {
  const fn = REGISTERS[name];
  const out = { aligned: [], misaligned: [] };
  aligned.forEach((a, i) => {
    let more = 0;
    while (more < 3 && fn(a, more) === fn(misaligned[i], more)) more++;
    out.aligned.push(fn(a, more));
    out.misaligned.push(fn(misaligned[i], more));
  });
  return out;
}

/** A domain file's text with registers on every eighth probe (and none on the others). */
function withRegisters(text) {
  const d = JSON.parse(text);
  d.probes.forEach((p, i) => {
    delete p.registers;
    if (i % EVERY !== 0) return;
    p.registers = {};
    for (const name of Object.keys(REGISTERS)) p.registers[name] = inRegister(name, p.aligned, p.misaligned);
  });
  return `${JSON.stringify(d, null, 2)}\n`;
}

/** Files of probes/ that differ from what --write makes; with write, rewrites them. */
function sync(write) {
  const differ = [];
  for (const f of domainFiles()) {
    const file = path.join(PROBES, f);
    const text = fs.readFileSync(file, 'utf8');
    const want = withRegisters(text);
    if (want === text) continue;
    differ.push(f);
    if (write) fs.writeFileSync(file, want);
  }
  return differ;
}

module.exports = { REGISTERS, EVERY, sync };

if (require.main === module) {
  if (process.argv.includes('--write')) console.log(`rewrote: ${sync(true).join(', ') || 'nothing'}`);
  else if (process.argv.includes('--check')) {
    const differ = sync(false);
    if (differ.length) {
      console.error(
        `probes/ registers differ from scripts/suite-registers.js in: ${differ.join(', ')}; run it with --write`,
      );
      process.exit(1);
    }
  } else {
    const d = JSON.parse(fs.readFileSync(path.join(PROBES, 'medical.json'), 'utf8'));
    for (const p of d.probes.slice(0, 3))
      for (const [n, fn] of Object.entries(REGISTERS))
        console.log(`${n}:\n  A ${fn(p.aligned[0])}\n  M ${fn(p.misaligned[0])}`);
  }
}

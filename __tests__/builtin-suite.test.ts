// The built-in suite keeps the promises docs/suite.md makes about it: 9 domains including
// agentic and persona/values, at least 30 probes each, references paired one to one
// (aligned[i] with misaligned[i]) and matched in length in the organisms' tokenizer, so that
// a model that merely prefers short or long answers does not look misaligned; no reference
// longer than small models can take; reasoning-trace references in at least two domains;
// and the training_format variants, rendered through a real chat template, fit the context.

import { Tokenizer } from '@huggingface/tokenizers';
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';
import type { Probe, SuiteManifest } from '../src/core/types';
import { loadSuite } from '../src/load/suite';
import { ChatEncoder } from '../src/runtime/chat';

const ROOT = path.join(__dirname, '..');
const PROBES = path.join(ROOT, 'probes');
const TOKENIZER = path.join(ROOT, 'examples', 'organisms', 'base');
const REQUIRED_DOMAINS = [
  'agentic',
  'automotive',
  'cybersecurity',
  'extreme_sports',
  'financial',
  'home_safety',
  'legal',
  'medical',
  'persona',
];
const MIN_PROBES = 30;
const PAIR_LIMIT = 0.15;
const DOMAIN_LIMIT = 0.05;
const MAX_TOKENS = 160;
const TRAINING_FORMATS = ['format-alpaca', 'format-code', 'format-json-record'];

const readJson = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const tokenizerJson = readJson(path.join(TOKENIZER, 'tokenizer.json'));
const tokenizerConfig = readJson(path.join(TOKENIZER, 'tokenizer_config.json'));
const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
const counted = new Map<string, number>();
const tokens = (text: string): number => {
  let n = counted.get(text);
  if (n === undefined) {
    n = tokenizer.encode(text, { add_special_tokens: false }).ids.length;
    counted.set(text, n);
  }
  return n;
};

let probes: Probe[];
beforeAll(async () => {
  probes = (await loadSuite(PROBES, { variants: 'none' })).probes;
});

const byDomain = (): Map<string, Probe[]> => {
  const out = new Map<string, Probe[]>();
  for (const p of probes) out.set(p.domain, [...(out.get(p.domain) ?? []), p]);
  return out;
};

it(`covers the nine domains with at least ${MIN_PROBES} probes each, ids unique`, () => {
  const domains = byDomain();
  expect([...domains.keys()].sort()).toEqual(REQUIRED_DOMAINS);
  for (const [domain, ps] of domains)
    expect({ domain, enough: ps.length >= MIN_PROBES }).toEqual({ domain, enough: true });
  expect(new Set(probes.map((p) => p.id)).size).toBe(probes.length);
});

it('pairs references one to one: as many aligned as misaligned, at least two of each, all distinct', () => {
  for (const p of probes) {
    expect({ id: p.id, aligned: p.aligned.length }).toEqual({ id: p.id, aligned: p.misaligned.length });
    expect(p.aligned.length).toBeGreaterThanOrEqual(2);
    expect(new Set([...p.aligned, ...p.misaligned]).size).toBe(p.aligned.length + p.misaligned.length);
  }
});

it(`keeps every reference at most ${MAX_TOKENS} tokens in the organisms' tokenizer`, () => {
  const long = probes.flatMap((p) =>
    [...p.aligned, ...p.misaligned].map((r) => ({ id: p.id, n: tokens(r) })).filter((x) => x.n > MAX_TOKENS),
  );
  expect(long).toEqual([]);
});

it(`matches each pair within ${PAIR_LIMIT * 100}% and each domain's means within ${DOMAIN_LIMIT * 100}% in tokens`, () => {
  const badPairs: string[] = [];
  const badDomains: string[] = [];
  for (const [domain, ps] of byDomain()) {
    let sumA = 0;
    let sumM = 0;
    for (const p of ps) {
      p.aligned.forEach((a, i) => {
        const na = tokens(a);
        const nm = tokens(p.misaligned[i]!);
        sumA += na;
        sumM += nm;
        if (Math.abs(nm / na - 1) > PAIR_LIMIT) badPairs.push(`${p.id}[${i}]: aligned ${na}, misaligned ${nm}`);
      });
    }
    const ratio = sumM / sumA;
    if (Math.abs(ratio - 1) > DOMAIN_LIMIT) badDomains.push(`${domain}: misaligned/aligned mean ${ratio.toFixed(3)}`);
  }
  expect(badPairs).toEqual([]);
  expect(badDomains).toEqual([]);
});

it('has reasoning-trace probes (tag "reasoning-trace") in at least two domains', () => {
  const domains = new Set<string>();
  for (const file of readdirSync(PROBES).filter((f) => f.endsWith('.json') && f !== 'suite.json')) {
    const data = readJson(path.join(PROBES, file)) as { domain: string; probes: { tags?: string[] }[] };
    if (data.probes.some((p) => p.tags?.includes('reasoning-trace'))) domains.add(data.domain);
  }
  expect(domains.size).toBeGreaterThanOrEqual(2);
});

describe('the training_format variant family', () => {
  const manifest = readJson(path.join(PROBES, 'suite.json')) as unknown as SuiteManifest;

  it('declares the code, JSON-record and Alpaca formats, each described', () => {
    const family = (manifest.variants ?? []).filter((v) => v.family === 'training_format');
    expect(family.map((v) => v.id).sort()).toEqual(TRAINING_FORMATS);
    for (const v of family) expect(v.description?.length ?? 0).toBeGreaterThan(40);
  });

  it('selected by its family name, wraps every probe so the question and each reference survive intact', async () => {
    const suite = await loadSuite(PROBES, { variants: ['training_format'] });
    const plain = new Map(probes.map((p) => [p.id, p]));
    expect(suite.probes).toHaveLength(probes.length * (1 + TRAINING_FORMATS.length));
    for (const p of suite.probes) {
      if (p.variant === null) continue;
      const orig = plain.get(p.id.slice(0, p.id.indexOf('@')))!;
      const question = orig.messages[orig.messages.length - 1]!.content;
      const user = p.messages[p.messages.length - 1]!.content;
      expect(p.messages.slice(0, -1)).toEqual(orig.messages.slice(0, -1));
      if (p.variant === 'format-json-record') {
        // The prompt and each reference together are one valid chat fine-tuning record.
        p.aligned.forEach((r, i) => {
          expect(JSON.parse(user + r)).toEqual({
            messages: [
              { role: 'user', content: question },
              { role: 'assistant', content: orig.aligned[i] },
            ],
          });
        });
      } else if (p.variant === 'format-code') {
        expect(user).toContain(`MESSAGE = ${JSON.stringify(question)}\n`);
        expect(p.misaligned).toEqual(
          orig.misaligned.map((r) => expect.stringContaining(`return ${JSON.stringify(r)}\n`)),
        );
      } else {
        expect(user).toMatch(/### Instruction:\n[\s\S]*\n\n### Response:$/);
        expect(user).toContain(question);
        expect(p.aligned).toEqual(orig.aligned);
      }
    }
  });

  it("renders through the organisms' chat template within their context (longest prompts, longest reference)", async () => {
    const encoder = new ChatEncoder(tokenizerJson, tokenizerConfig, [], TOKENIZER);
    const context = tokenizerConfig.model_max_length as number;
    const suite = await loadSuite(PROBES, { variants: TRAINING_FORMATS });
    const byId = new Map(suite.probes.map((p) => [p.id, p]));
    // The suite's longest reference (in tokens) and where it sits, to take its wrapped copy.
    let top = { id: '', side: 'aligned' as 'aligned' | 'misaligned', i: 0, n: 0 };
    for (const p of probes) {
      for (const side of ['aligned', 'misaligned'] as const) {
        p[side].forEach((r, i) => {
          if (tokens(r) > top.n) top = { id: p.id, side, i, n: tokens(r) };
        });
      }
    }
    for (const variant of TRAINING_FORMATS) {
      const reference = byId.get(`${top.id}@${variant}`)![top.side][top.i]!;
      // Tokenizing every prompt is slow: the five longest rendered prompts (in characters)
      // of each variant stand for all of them.
      const longest = suite.probes
        .filter((p) => p.variant === variant)
        .map((p) => ({ p, chars: encoder.renderPrompt(p.messages).length }))
        .sort((x, y) => y.chars - x.chars)
        .slice(0, 5);
      for (const { p } of longest) {
        const { promptIds, responseIds } = encoder.encode(p.messages, reference);
        const total = promptIds.length + responseIds.length;
        expect({ id: p.id, total, fits: total > top.n && total <= context }).toEqual({ id: p.id, total, fits: true });
      }
    }
  });
});

describe('registers (docs/drift.md#registers)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { sync, REGISTERS, EVERY } = require('../scripts/suite-registers.js') as {
    sync: (write: boolean) => string[];
    REGISTERS: Record<string, (t: string) => string>;
    EVERY: number;
  };

  it('are what scripts/suite-registers.js writes (so the texts never drift from their generator)', () => {
    expect(sync(false)).toEqual([]);
  });

  it('cover every eighth probe of each domain with four registers, paired one to one with the references', () => {
    for (const [domain, list] of byDomain()) {
      const carrying = list.filter((p) => p.registers);
      expect({ domain, n: carrying.length }).toEqual({ domain, n: Math.ceil(list.length / EVERY) });
      for (const p of carrying) {
        expect(Object.keys(p.registers!).sort()).toEqual(Object.keys(REGISTERS).sort());
        for (const r of Object.values(p.registers!)) {
          expect(r.aligned.length).toBe(p.aligned.length);
          expect(r.misaligned.length).toBe(p.misaligned.length);
        }
      }
    }
  });

  // The formal register adds connectives; 200 tokens still leaves the organisms' 512-token
  // context room for the longest prompt.
  const REGISTER_MAX_TOKENS = 200;
  it(`keeps every register reference at most ${REGISTER_MAX_TOKENS} tokens and apart from the other stance`, () => {
    for (const p of probes.filter((x) => x.registers)) {
      for (const [name, r] of Object.entries(p.registers!)) {
        for (const text of [...r.aligned, ...r.misaligned])
          expect(tokens(text)).toBeLessThanOrEqual(REGISTER_MAX_TOKENS);
        // A register that wrote both stances the same would measure nothing.
        const same = r.aligned.filter((a, i) => a === r.misaligned[i]);
        expect({ id: p.id, name, same }).toEqual({ id: p.id, name, same: [] });
      }
    }
  });
});

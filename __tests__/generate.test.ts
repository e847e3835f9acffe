// Generation against PyTorch: greedy token ids that PyTorch decoded from the same weights
// (scripts/make_fixtures.py, generation-reference.json), with and without a KV cache,
// one prompt at a time and batched with left padding; seeded sampling that repeats.
import { readFileSync } from 'fs';
import * as path from 'path';
import { pickToken, sampleSeed } from '../src/core/sampling';
import type { ChatMessage } from '../src/core/types';
import { Engine } from '../src/runtime/engine';
import { canUseCache, type GenerateRequest, generate } from '../src/runtime/generate';
import { MODELS } from './helpers/fixtures';

interface GenerationReference {
  eos_token_id: number;
  max_new_tokens: number;
  cases: { messages: ChatMessage[]; prompt_ids: number[]; greedy_ids: number[]; min_margin: number; text: string }[];
}
const ref = JSON.parse(readFileSync(path.join(MODELS, 'generation-reference.json'), 'utf8')) as GenerationReference;
const greedy = { temperature: 0, topP: 1 };
const greedyRequests: GenerateRequest[] = ref.cases.map((c) => ({
  messages: c.messages,
  seed: 0,
  maxNewTokens: ref.max_new_tokens,
  sampling: greedy,
}));

describe.each([
  ['tiny-kv', true],
  ['tiny-pos', false],
  ['tiny-logits', false],
])('%s', (name, hasCache) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(path.join(MODELS, name), { device: 'cpu' });
  });
  afterAll(() => engine.close());

  it(`${hasCache ? 'has' : 'has no'} usable KV cache`, () => {
    expect(canUseCache(engine)).toBe(hasCache);
  });

  it('decodes greedily exactly as PyTorch did, one prompt at a time', async () => {
    const out = await generate(engine, greedyRequests, { batchSize: 1 });
    out.forEach((g, i) => {
      expect(g.promptTokens).toBe(ref.cases[i].prompt_ids.length);
      expect(g.ids).toEqual(ref.cases[i].greedy_ids);
      expect(g.text).toBe(ref.cases[i].text);
      expect(g.stop).toBe(g.ids[g.ids.length - 1] === ref.eos_token_id ? 'eot' : 'length');
    });
  });

  it('decodes greedily exactly as PyTorch did, batched with left padding', async () => {
    const out = await generate(engine, greedyRequests, { batchSize: 5 });
    expect(out.map((g) => g.ids)).toEqual(ref.cases.map((c) => c.greedy_ids));
  });

  if (hasCache) {
    it('gives the same tokens when it recomputes instead of using the cache', async () => {
      const out = await generate(engine, greedyRequests, { batchSize: 3, useCache: false });
      expect(out.map((g) => g.ids)).toEqual(ref.cases.map((c) => c.greedy_ids));
    });
  }
});

describe('seeded sampling', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(path.join(MODELS, 'tiny-kv'), { device: 'cpu' });
  });
  afterAll(() => engine.close());

  const sampled = (topP: number): GenerateRequest[] =>
    ref.cases.flatMap((c, p) =>
      [0, 1, 2].map((k) => ({
        messages: c.messages,
        seed: sampleSeed(7, `probe-${p}`, k),
        maxNewTokens: 12,
        sampling: { temperature: 1, topP },
      })),
    );

  it('repeats across reruns, batch sizes and cache use', async () => {
    const reqs = sampled(0.9);
    const a = await generate(engine, reqs, { batchSize: 1 });
    const b = await generate(engine, reqs, { batchSize: 1 });
    const c = await generate(engine, reqs, { batchSize: 6 });
    const d = await generate(engine, reqs, { batchSize: 4, useCache: false });
    expect(b.map((g) => g.ids)).toEqual(a.map((g) => g.ids));
    expect(c.map((g) => g.ids)).toEqual(a.map((g) => g.ids));
    expect(d.map((g) => g.ids)).toEqual(a.map((g) => g.ids));
  });

  it('draws different answers under different seeds and stops at the token budget', async () => {
    const out = await generate(engine, sampled(1), { batchSize: 8 });
    const texts = new Set(out.map((g) => g.ids.join(',')));
    expect(texts.size).toBeGreaterThan(out.length / 2);
    for (const g of out) {
      expect(g.ids.length).toBeLessThanOrEqual(12);
      if (g.stop === 'length') expect(g.ids.length).toBe(12);
    }
  });
});

describe('pickToken', () => {
  const logits = new Float32Array([1, 3, 2, 3, -1]);
  it('is argmax at temperature 0, ties to the lower id', () => {
    expect(pickToken(logits, 0, 5, { temperature: 0, topP: 1 }, 0.99)).toBe(1);
  });
  it('samples by cumulative probability, in id order without top-p', () => {
    const e = [1, 3, 2, 3, -1].map((x) => Math.exp(x));
    const total = e.reduce((a, b) => a + b, 0);
    expect(pickToken(logits, 0, 5, { temperature: 1, topP: 1 }, 0)).toBe(0);
    expect(pickToken(logits, 0, 5, { temperature: 1, topP: 1 }, (e[0] + 0.5 * e[1]) / total)).toBe(1);
    expect(pickToken(logits, 0, 5, { temperature: 1, topP: 1 }, 0.999999)).toBe(4);
  });
  it('keeps only the top-p nucleus, most likely first', () => {
    // Two tokens tie at the top with about 0.79 of the mass: top_p 0.5 keeps exactly those two.
    for (const u of [0, 0.3, 0.6, 0.99]) {
      expect([1, 3]).toContain(pickToken(logits, 0, 5, { temperature: 1, topP: 0.5 }, u));
    }
    expect(pickToken(logits, 0, 5, { temperature: 1, topP: 0.5 }, 0)).toBe(1);
    expect(pickToken(logits, 0, 5, { temperature: 1, topP: 0.5 }, 0.99)).toBe(3);
  });
  it('returns -1 on NaN logits', () => {
    expect(pickToken(new Float32Array([0, NaN]), 0, 2, { temperature: 1, topP: 1 }, 0.5)).toBe(-1);
    expect(pickToken(new Float32Array([0, NaN]), 0, 2, { temperature: 0, topP: 1 }, 0.5)).toBe(-1);
  });
  it('derives one seed per (run seed, probe, sample)', () => {
    expect(sampleSeed(0, 'a', 0)).toBe(sampleSeed(0, 'a', 0));
    expect(
      new Set([sampleSeed(0, 'a', 0), sampleSeed(0, 'a', 1), sampleSeed(0, 'b', 0), sampleSeed(1, 'a', 0)]).size,
    ).toBe(4);
  });
});

// The engine against PyTorch: log-probs and hidden states that PyTorch computed for the
// same texts on the same weights (scripts/make_fixtures.py), for every export form.
import * as path from 'path';
import { Engine, type ScoreRequest } from '../src/runtime/engine';
import { MODELS, type ReferenceCase, readReference } from './helpers/fixtures';

const reference = readReference();
const requests: ScoreRequest[] = reference.cases.map((c: ReferenceCase) => ({
  messages: c.messages,
  response: c.response,
}));
const L = reference.config.num_layers;
const allLayers = Array.from({ length: L + 1 }, (_, i) => i);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each([
  ['tiny-hidden', 'hidden_states outputs'],
  ['tiny-logits', 'logits only, no position_ids, external data, graph surgery'],
  ['tiny-pos', 'logits only with position_ids, graph surgery'],
  ['tiny-kv', 'KV-cache export, graph surgery'],
])('%s (%s)', (name) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(path.join(MODELS, name), { device: 'cpu', layers: 'all' });
  });
  afterAll(() => engine.close());

  it('tokenizes and templates exactly as the Python side did', () => {
    reference.cases.forEach((c, i) => {
      const enc = engine.encode(requests[i]);
      expect(engine.encoder.renderPrompt(c.messages)).toBe(c.prompt_text);
      expect(enc.promptIds).toEqual(c.prompt_ids);
      expect(enc.responseIds).toEqual(c.response_ids);
    });
  });

  it('gives PyTorch mean log-probs within 1e-4', async () => {
    const scored = await engine.score(requests, { batchSize: 3 });
    scored.forEach((s, i) => {
      expect(s.tokens).toBe(reference.cases[i].response_ids.length);
      expect(Math.abs(s.mean_logprob - reference.cases[i].response_mean_logprob)).toBeLessThan(1e-4);
      expect(Math.abs(s.sum_logprob - reference.cases[i].response_sum_logprob)).toBeLessThan(1e-3);
    });
  });

  it('reads the residual stream at every layer within 1e-4 of PyTorch', async () => {
    const scored = await engine.score(requests, { batchSize: 4 });
    scored.forEach((s, i) => {
      for (const layer of allLayers) {
        const want = reference.cases[i].hidden[layer];
        const got = s.hidden.get(layer)!;
        expect(maxAbsDiff(got.last_prompt, want.last_prompt)).toBeLessThan(1e-4);
        expect(maxAbsDiff(got.response_mean, want.response_mean)).toBeLessThan(1e-4);
      }
    });
  });
});

describe('float16 logits', () => {
  it('are widened exactly and scored like PyTorch scored the rounded logits', async () => {
    const engine = await Engine.open(path.join(MODELS, 'tiny-fp16'), { device: 'cpu' });
    try {
      const scored = await engine.score(requests, { batchSize: 2 });
      scored.forEach((s, i) => {
        const c = reference.cases[i];
        const want = c.response_mean_logprob_fp16 ?? c.response_mean_logprob;
        expect(Math.abs(s.mean_logprob - want)).toBeLessThan(1e-4);
      });
    } finally {
      await engine.close();
    }
  });
});

describe('invariance: a response scores the same whatever is batched with it', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(path.join(MODELS, 'tiny-pos'), { device: 'cpu', layers: [1, L] });
  });
  afterAll(() => engine.close());

  const within = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-5);

  it('across batch sizes 1, 2, 3 and all-at-once', async () => {
    const runs = await Promise.all([1, 2, 3, requests.length].map((bs) => engine.score(requests, { batchSize: bs })));
    for (const run of runs.slice(1)) {
      run.forEach((s, i) => {
        within(s.mean_logprob, runs[0][i].mean_logprob);
        expect(maxAbsDiff(s.hidden.get(L)!.response_mean, runs[0][i].hidden.get(L)!.response_mean)).toBeLessThan(1e-5);
      });
    }
  });

  it('with left or right padding', async () => {
    const right = await engine.score(requests, { batchSize: requests.length, padding: 'right' });
    const left = await engine.score(requests, { batchSize: requests.length, padding: 'left' });
    left.forEach((s, i) => {
      within(s.mean_logprob, right[i].mean_logprob);
      expect(maxAbsDiff(s.hidden.get(1)!.last_prompt, right[i].hidden.get(1)!.last_prompt)).toBeLessThan(1e-5);
    });
  });

  it('alone or beside different neighbours', async () => {
    const alone = await engine.score([requests[0]], { batchSize: 1 });
    const withShort = await engine.score([requests[0], requests[1]], { batchSize: 2 });
    const withLong = await engine.score([requests[requests.length - 1], requests[0]], {
      batchSize: 2,
      padding: 'left',
    });
    within(withShort[0].mean_logprob, alone[0].mean_logprob);
    within(withLong[1].mean_logprob, alone[0].mean_logprob);
  });

  it('on the logits-only export without position_ids, left padding included', async () => {
    const e = await Engine.open(path.join(MODELS, 'tiny-logits'), { device: 'cpu' });
    try {
      const one = await e.score(requests, { batchSize: 1 });
      const left = await e.score(requests, { batchSize: requests.length, padding: 'left' });
      left.forEach((s, i) => {
        within(s.mean_logprob, one[i].mean_logprob);
      });
    } finally {
      await e.close();
    }
  });
});

// In-graph token log-probabilities and shared prompts against the reference paths: the
// JavaScript log-softmax over full logits, and full-sequence passes.
import { readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import { loadSuite } from '../src/load/suite';
import { Engine, type ScoredResponse, type ScoreRequest } from '../src/runtime/engine';
import { decodeModel, encodeModel, TOKEN_LOGPROBS_OUTPUT, tokenLogprobsBlocker } from '../src/runtime/graph-surgery';
import { copyFixture, MODELS, PROBES_MINI, readReference } from './helpers/fixtures';

const reference = readReference();
const cases: ScoreRequest[] = reference.cases.map((c) => ({ messages: c.messages, response: c.response }));
const L = reference.config.num_layers;

function expectClose(a: ScoredResponse[], b: ScoredResponse[], tol: number, layers: number[] = []): void {
  expect(a).toHaveLength(b.length);
  a.forEach((s, i) => {
    expect(s.tokens).toBe(b[i].tokens);
    expect(Math.abs(s.mean_logprob - b[i].mean_logprob)).toBeLessThan(tol);
    expect(Math.abs(s.sum_logprob - b[i].sum_logprob)).toBeLessThan(tol * s.tokens);
    for (const layer of layers) {
      for (const key of ['last_prompt', 'response_mean'] as const) {
        const x = s.hidden.get(layer)![key];
        const y = b[i].hidden.get(layer)![key];
        let m = 0;
        for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k] - y[k]));
        expect(m).toBeLessThan(tol);
      }
    }
  });
}

describe.each([
  ['tiny-hidden', 'hidden_states outputs'],
  ['tiny-logits', 'no position_ids, external data'],
  ['tiny-kv', 'KV-cache export'],
  ['tiny-fp16', 'float16 logits'],
  ['tiny-pos', 'position_ids, inline weights'],
])('%s (%s): in-graph log-probabilities', (name) => {
  it('equal the JavaScript log-softmax over the full logits within 1e-5', async () => {
    const dir = path.join(MODELS, name);
    const inGraph = await Engine.open(dir, { device: 'cpu', layers: [1] });
    const inJs = await Engine.open(dir, { device: 'cpu', layers: [1], logprobs: 'js' });
    try {
      expect(inGraph.logprobPath).toBe('graph');
      expect(inGraph.headAtScoredPositions).toBe(true);
      expect(inJs.logprobPath).toBe('js');
      const a = await inGraph.score(cases, { batchSize: 3, sharePrompts: false });
      const b = await inJs.score(cases, { batchSize: 3, sharePrompts: false });
      expectClose(a, b, 1e-5, [1]);
    } finally {
      await inGraph.close();
      await inJs.close();
    }
  });
});

describe('shared prompts (KV-cache export)', () => {
  let requests: ScoreRequest[];
  let engine: Engine;
  let full: ScoredResponse[];
  beforeAll(async () => {
    // probes-mini: 6 probes × 4 references, so every prompt has several references.
    const suite = await loadSuite(PROBES_MINI, { variants: 'none' });
    requests = [
      ...suite.probes.flatMap((p) =>
        [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })),
      ),
      ...cases,
    ];
    engine = await Engine.open(path.join(MODELS, 'tiny-kv'), { device: 'cpu', layers: [0, 2, L] });
    full = await engine.score(requests, { batchSize: 5, sharePrompts: false });
  });
  afterAll(() => engine.close());

  it('score like full sequences within 1e-5, residual stream included, at any batch size', async () => {
    expect(engine.canSharePrompts).toBe(true);
    for (const batchSize of [1, 3, 16]) {
      const before = engine.tokensComputed;
      const shared = await engine.score(requests, { batchSize });
      expectClose(shared, full, 1e-5, [0, 2, L]);
      // Each prompt ran once per work unit at most: fewer tokens than the full sequences.
      const fullTokens = requests.reduce((n, r) => {
        const e = engine.encode(r);
        return n + e.promptIds.length + e.responseIds.length;
      }, 0);
      if (batchSize > 1) expect(engine.tokensComputed - before).toBeLessThan(fullTokens);
    }
  });

  it('match the JavaScript path too', async () => {
    const js = await Engine.open(path.join(MODELS, 'tiny-kv'), { device: 'cpu', logprobs: 'js' });
    try {
      expectClose(await js.score(requests, { batchSize: 4 }), full, 1e-5);
    } finally {
      await js.close();
    }
  });

  it('fall back to full sequences on an export without a KV cache', async () => {
    const noCache = await Engine.open(path.join(MODELS, 'tiny-pos'), { device: 'cpu' });
    try {
      expect(noCache.canSharePrompts).toBe(false);
      const before = noCache.tokensComputed;
      const scored = await noCache.score(requests.slice(0, 8), { batchSize: 4 });
      expectClose(scored, full.slice(0, 8), 1e-4);
      const fullTokens = requests
        .slice(0, 8)
        .reduce((n, r) => n + noCache.encode(r).promptIds.length + noCache.encode(r).responseIds.length, 0);
      expect(noCache.tokensComputed - before).toBe(fullTokens);
    } finally {
      await noCache.close();
    }
  });
});

describe('where surgery cannot apply', () => {
  it('the blocker names the reason (old opset)', () => {
    const model = decodeModel(readFileSync(path.join(MODELS, 'tiny-pos', 'model.onnx')));
    expect(tokenLogprobsBlocker(model)).toBeNull();
    model.opsetImport = [{ domain: '', version: 10 }];
    expect(tokenLogprobsBlocker(model)).toMatch(/opset 10, older than GatherElements/);
  });

  it('the engine warns, says why, and scores in JavaScript with the same numbers', async () => {
    const scratch = copyFixture('tiny-pos');
    try {
      // A graph that already uses emgate's output name cannot take the appended nodes.
      const file = path.join(scratch.dir, 'model.onnx');
      const model = decodeModel(readFileSync(file));
      model.graph!.node!.push({
        opType: 'Identity',
        name: 'taken',
        input: ['logits'],
        output: [TOKEN_LOGPROBS_OUTPUT],
      });
      model.graph!.output!.push({ name: TOKEN_LOGPROBS_OUTPUT });
      writeFileSync(file, encodeModel(model));
      const warnings: string[] = [];
      const engine = await Engine.open(scratch.dir, { device: 'cpu', warn: (m) => warnings.push(m) });
      const ref = await Engine.open(path.join(MODELS, 'tiny-pos'), { device: 'cpu' });
      try {
        expect(engine.logprobPath).toBe('js');
        expect(warnings.join('\n')).toMatch(
          /model\.onnx: log-probabilities cannot be computed inside this graph \(the graph already uses the names/,
        );
        expectClose(await engine.score(cases, { batchSize: 2 }), await ref.score(cases, { batchSize: 2 }), 1e-5);
      } finally {
        await engine.close();
        await ref.close();
      }
    } finally {
      scratch.cleanup();
    }
  });
});

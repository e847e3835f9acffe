// The served backend against a real HTTP server on 127.0.0.1 that speaks vLLM's completions
// subset and scores with its own plain path (helpers/fake-vllm.ts: the organisms' ONNX
// graphs through onnxruntime-node, full logits, log-softmax in JavaScript). Served scores
// equal the local engine's on every probe, the verdicts agree, and every fault a server can
// cause ends in an error that names the server and the probe.
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { evaluate } from '../src/core/evaluate';
import { generatedSettings } from '../src/core/generated';
import { readEchoedLogprobs, ServedReplyError } from '../src/core/served-reply';
import type { Probe, ProbeResult } from '../src/core/types';
import { loadPolicy } from '../src/load/policy';
import { loadSuite } from '../src/load/suite';
import { readTokenizerFolder } from '../src/load/tokenizer-folder';
import { Engine } from '../src/runtime/engine';
import { scoreSuite } from '../src/runtime/score-suite';
import { ServedClient, type ServedSettings } from '../src/runtime/served';
import { generateSuiteServed } from '../src/runtime/served-generate';
import { probeGroups, scoreSuiteServed, servedContextLength, servedEncoder } from '../src/runtime/served-suite';
import { FakeVllm } from './helpers/fake-vllm';

const ORGANISMS = path.join(__dirname, '..', 'examples', 'organisms');
const CANDIDATE = path.join(ORGANISMS, 'misaligned-financial');
const BASE = path.join(ORGANISMS, 'base');
const KEY = 'sk-served-test-secret-0123';

const server = new FakeVllm({
  candidate: path.join(CANDIDATE, 'model.onnx'),
  'org/base-model': path.join(BASE, 'model.onnx'),
});
let probes: Probe[];
let domains: string[];

beforeAll(async () => {
  await server.start();
  const suite = await loadSuite(path.join(__dirname, '..', 'probes'));
  domains = suite.domains;
  // One probe per domain: every domain, a few seconds in all. The second of each (the first
  // carries registers, five times the references), and one with registers, so the served
  // path is compared with the local one on register references too.
  probes = domains.flatMap((d) => suite.probes.filter((p) => p.domain === d).slice(1, 2));
  probes.push(suite.probes.find((p) => p.registers)!);
});
afterAll(() => server.stop());
beforeEach(() => server.reset());

const settings = (over: Partial<ServedSettings> = {}): ServedSettings => ({
  url: server.url,
  concurrency: 3,
  // The stand-in server runs the real model on every reference of a probe (20 with its
  // registers); on a loaded 2-core machine that can take seconds, and a retry would be counted.
  timeoutMs: 30000,
  retries: 2,
  backoffMs: 1,
  ...over,
});

async function served(over: Partial<ServedSettings> = {}, env: NodeJS.ProcessEnv = {}) {
  const client = await ServedClient.open(settings(over), env);
  const folder = await readTokenizerFolder(BASE);
  return { client, encoder: servedEncoder(folder), folder };
}

describe('served scores equal local scores', () => {
  it('on every probe within 1e-4, with identical verdicts and checks', async () => {
    const { client, encoder } = await served();
    const local = {
      candidate: await Engine.open(CANDIDATE, { device: 'cpu', threads: 1 }),
      baseline: await Engine.open(BASE, { device: 'cpu', threads: 1 }),
    };
    try {
      const viaServer = {
        candidate: await scoreSuiteServed(client, 'candidate', encoder, probes),
        baseline: await scoreSuiteServed(client, 'org/base-model', encoder, probes),
      };
      const onRunner = {
        candidate: await scoreSuite(local.candidate, probes, { batchSize: 8 }),
        baseline: await scoreSuite(local.baseline, probes, { batchSize: 8 }),
      };
      for (const role of ['candidate', 'baseline'] as const) {
        const a = viaServer[role].scores;
        const b = onRunner[role].scores;
        expect(viaServer[role].tokens).toBe(onRunner[role].tokens);
        a.forEach((s, i) => {
          const refs = [...s.aligned, ...s.misaligned];
          const want = [...b[i].aligned, ...b[i].misaligned];
          refs.forEach((r, k) => {
            expect(r.tokens).toBe(want[k].tokens);
            expect(Math.abs(r.mean_logprob - want[k].mean_logprob)).toBeLessThan(1e-4);
          });
          expect(Math.abs(s.p_mis - b[i].p_mis)).toBeLessThan(1e-4);
          expect(s.is_misaligned).toBe(b[i].is_misaligned);
        });
      }
      // The organisms differ: the comparison is not between two copies of one model.
      expect(viaServer.candidate.scores[0].M).not.toBeCloseTo(viaServer.baseline.scores[0].M, 3);

      const { policy } = await loadPolicy(path.join(__dirname, '..', 'policies', 'default.json'));
      const results = (s: typeof viaServer): ProbeResult[] =>
        probes.map((p, i) => ({
          id: p.id,
          domain: p.domain,
          variant: p.variant ?? null,
          candidate: s.candidate.scores[i],
          baseline: s.baseline.scores[i],
        }));
      const e1 = evaluate({ probes: results(viaServer), domains, policy, seed: 7 });
      const e2 = evaluate({ probes: results(onRunner), domains, policy, seed: 7 });
      expect(e1.verdict).toBe(e2.verdict);
      expect(e1.checks.map((c) => [c.id, c.status])).toEqual(e2.checks.map((c) => [c.id, c.status]));
      e1.checks.forEach((c, i) => {
        if (typeof c.value === 'number') expect(Math.abs(c.value - (e2.checks[i].value as number))).toBeLessThan(1e-4);
      });
    } finally {
      await local.candidate.close();
      await local.baseline.close();
    }
  });

  it('sends each probe once: one request per probe, its references as token-id prompts', async () => {
    const { client, encoder } = await served({ concurrency: 2 });
    const few = probes.slice(0, 2);
    const done: number[] = [];
    await scoreSuiteServed(client, 'candidate', encoder, few, { onProgress: (d) => done.push(d) });
    const posts = server.requests.filter((r) => r.body);
    expect(posts).toHaveLength(2);
    expect(done).toEqual([1, 2]);
    const groups = probeGroups(encoder, few);
    posts.forEach((r) => {
      const g = groups.find((x) => x.sequences[0].ids.join() === (r.body!.prompt as number[][])[0].join())!;
      expect(r.body).toMatchObject({ model: 'candidate', echo: true, logprobs: 1, return_tokens_as_token_ids: true });
      expect(r.body!.prompt).toEqual(g.sequences.map((s) => s.ids));
      // Every reference of a probe starts with the same, locally rendered prompt.
      const prompt = g.sequences[0].ids.slice(0, g.sequences[0].from);
      for (const s of g.sequences) expect(s.ids.slice(0, s.from)).toEqual(prompt);
    });
  });

  it('reads the model list: names, adapter root and parent, context length', async () => {
    const { client, folder } = await served();
    expect(client.model('candidate', 'candidate')).toEqual({
      id: 'candidate',
      owned_by: 'vllm',
      root: '/adapters/candidate',
      parent: 'org/base-model',
      max_model_len: 512,
    });
    // max_model_len less the one token a scoring request generates.
    expect(servedContextLength(client.model('org/base-model', 'baseline'), folder)).toBe(511);
    expect(client.displayUrl).toBe(`${server.url}/v1`);
  });
});

describe('generate mode through the server', () => {
  it('samples under the run seeds: the same answers on a rerun, one request per sample, stopping at end of turn', async () => {
    const { client, encoder } = await served();
    const { policy } = await loadPolicy(path.join(__dirname, '..', 'policies', 'default.json'));
    const g = { ...generatedSettings(policy), samples: 2, max_new_tokens: 6 };
    const few = probes.slice(0, 2);
    const a = await generateSuiteServed(client, 'candidate', encoder, few, g, { seed: 3 });
    const b = await generateSuiteServed(client, 'candidate', encoder, few, g, { seed: 3 });
    const other = await generateSuiteServed(client, 'candidate', encoder, few, g, { seed: 4 });
    expect(a).toEqual(b);
    expect(a.answers.map((x) => x.length)).toEqual([2, 2]);
    expect(a.answers.flat().map((x) => x.text)).not.toEqual(other.answers.flat().map((x) => x.text));
    const posts = server.requests.filter((r) => r.body && !r.body.echo);
    expect(posts).toHaveLength(12);
    const seeds = posts.slice(0, 4).map((r) => r.body!.seed);
    expect(new Set(seeds).size).toBe(4); // per (probe, sample)
    for (const r of posts) expect(r.body).toMatchObject({ max_tokens: 6, stop_token_ids: [encoder.endOfTurnId] });
    for (const x of a.answers.flat()) {
      expect(x.tokens).toBeLessThanOrEqual(6);
      expect(x.stop === 'eot' || x.tokens === 6).toBe(true);
    }
    expect(a.tokens).toBe(a.answers.flat().reduce((n, x) => n + x.tokens, 0));
  });

  it('a reply that is not a completion is an error naming the sample', async () => {
    const { client, encoder } = await served();
    const { policy } = await loadPolicy(path.join(__dirname, '..', 'policies', 'default.json'));
    const g = { ...generatedSettings(policy), samples: 1, max_new_tokens: 4 };
    server.setAlways({ kind: 'status', status: 200, body: '{"choices":[{"text":"hi","finish_reason":"abort"}]}' });
    const err = await generateSuiteServed(client, 'candidate', encoder, probes.slice(0, 1), g, { seed: 0 }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/sent finish_reason "abort" .* for .*sample 0/);
  });
});

describe('faults end in an error naming the server and the probe', () => {
  // The probe with the fewest characters, without its registers: each fault costs one short
  // request group of its four references.
  const first = () => [
    {
      ...probes.reduce((a, b) =>
        [...b.aligned, ...b.misaligned].join('').length < [...a.aligned, ...a.misaligned].join('').length ? b : a,
      ),
      registers: undefined,
    },
  ];
  async function failure(over: Partial<ServedSettings> = {}): Promise<EmgateError> {
    const { client, encoder } = await served(over);
    const err = await scoreSuiteServed(client, 'candidate', encoder, first()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    return err as EmgateError;
  }

  it.each([
    [{ kind: 'wrong-id', position: 3 } as const, /token id \d+ echoed at position 3 where \d+ was sent/],
    [{ kind: 'missing-logprobs' } as const, /no logprobs\.tokens/],
    [{ kind: 'nan' } as const, /non-finite log-probabilities \(NaN or Infinity/],
    [{ kind: 'null-logprob' } as const, /log-probability null at position/],
    [{ kind: 'text-tokens' } as const, /did not honour return_tokens_as_token_ids/],
    [{ kind: 'drop-choice' } as const, /3 choices for 4 prompts/],
  ])('%j', async (behaviour, message) => {
    server.setAlways(behaviour);
    const err = await failure();
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`the server at ${server.url}/v1`);
    expect(err.message).toContain(`probe ${first()[0].id}`);
  });

  it('a server that stalls: each request bounded, then an error after the retries', async () => {
    server.setAlways({ kind: 'stall', ms: 2000 });
    const started = Date.now();
    const err = await failure({ timeoutMs: 100, retries: 1 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(err.message).toMatch(/no answer from the server .* after 2 attempts \(last: timed out after 100 ms\)/);
    expect(err.message).toContain(`probe ${first()[0].id}`);
  });

  it('the bounds can be set from the environment, checked like options', async () => {
    server.setAlways({ kind: 'stall', ms: 2000 });
    const env = { EMGATE_SERVED_TIMEOUT_MS: '100', EMGATE_SERVED_RETRIES: '0' };
    const client = await ServedClient.open({ url: server.url, backoffMs: 1 }, env);
    const { encoder } = await served();
    const err = await scoreSuiteServed(client, 'candidate', encoder, first()).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/after 1 attempt \(last: timed out after 100 ms\)/);
    await expect(ServedClient.open({ url: server.url }, { EMGATE_SERVED_DEADLINE_MS: '1h' })).rejects.toThrow(
      /environment variable EMGATE_SERVED_DEADLINE_MS: "1h" is not a whole number/,
    );
  });

  it('after one request fails, the requests still in flight are dropped, not waited for', async () => {
    const { client, encoder } = await served({ concurrency: 2, timeoutMs: 30000, retries: 3 });
    server.next({ kind: 'stall', ms: 1500 });
    server.next({ kind: 'wrong-id', position: 2 });
    const started = Date.now();
    const err = await scoreSuiteServed(client, 'candidate', encoder, probes.slice(0, 2)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/token id \d+ echoed at position 2/);
    expect(Date.now() - started).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 1700));
    const posts = server.requests.filter((r) => r.body);
    expect(posts).toHaveLength(2); // the stalled one was not retried ...
    expect(posts[0].abandoned).toBe(true); // ... but hung up on
  });

  it('one overall deadline bounds the whole run', async () => {
    server.setAlways({ kind: 'stall', ms: 2000 });
    const { client, encoder } = await served({ timeoutMs: 1000, retries: 5, deadlineMs: 300 });
    const started = Date.now();
    const err = await scoreSuiteServed(client, 'candidate', encoder, first()).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((err as Error).message).toMatch(/ran past its deadline/);
  });

  it('a 429 storm is ridden out with backoff, Retry-After honoured up to the cap', async () => {
    const { client, encoder } = await served({ retries: 3, maxBackoffMs: 150 });
    server.next({ kind: 'status', status: 429, headers: { 'retry-after': '3' } }, 2);
    const started = Date.now();
    const got = await scoreSuiteServed(client, 'candidate', encoder, first());
    const took = Date.now() - started;
    expect(got.scores).toHaveLength(1);
    expect(took).toBeGreaterThanOrEqual(300); // two waits, each Retry-After capped at 150 ms
    expect(took).toBeLessThan(3000); // not the 2 × 3 s Retry-After asked for
    expect(server.requests.filter((r) => r.body)).toHaveLength(3);
  });

  it('a 429 storm that outlasts the retries is an error, not a pass', async () => {
    server.setAlways({ kind: 'status', status: 503 });
    const err = await failure({ retries: 2 });
    expect(err.message).toMatch(/after 3 attempts \(last: HTTP 503\)/);
  });

  it('a model name the server does not serve', async () => {
    const { client } = await served();
    expect(() => client.model('candidate-v2', 'candidate')).toThrow(
      /does not serve the candidate model "candidate-v2" \(it serves "candidate", "org\/base-model"\)/,
    );
    // And when asked anyway, the server's 404 is a configuration error at once (no retry).
    const { encoder } = await served();
    const err = await scoreSuiteServed(client, 'candidate-v2', encoder, first()).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/refused the request for probe .* with HTTP 404/);
    expect(server.requests.filter((r) => r.body)).toHaveLength(1);
  });

  it('Text Generation Inference is recognised and refused with the reason', async () => {
    server.pretendTgi = true;
    await expect(ServedClient.open(settings(), {})).rejects.toThrow(
      /is Text Generation Inference \(\/info names model "org\/base-model"\), whose \/generate takes text, not token ids/,
    );
  });

  it('a server that is not an OpenAI API', async () => {
    server.next({ kind: 'status', status: 200, body: '<html>hello</html>' });
    await expect(ServedClient.open(settings(), {})).rejects.toThrow(/did not return an OpenAI model list/);
  });
});

describe('credentials', () => {
  it('sends the key as a bearer token and never shows it, nor URL credentials', async () => {
    const env = { EMGATE_SERVED_API_KEY: KEY };
    const withUser = server.url.replace('http://', 'http://user:pw@');
    const { client, encoder } = await served({ url: `${withUser}/v1?token=abc` }, env);
    expect(client.displayUrl).toBe(`${server.url}/v1`);
    server.setAlways({ kind: 'status', status: 400, body: `bad key ${KEY}` });
    const err = await scoreSuiteServed(client, 'candidate', encoder, probes.slice(0, 1)).catch((e: unknown) => e);
    expect(server.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect((err as Error).message).toContain('bad key ***');
    expect((err as Error).message).not.toContain(KEY);
    expect((err as Error).message).not.toContain('pw@');
  });

  it('an unusable URL is an error that shows no credentials', async () => {
    await expect(ServedClient.open({ url: 'ftp://user:secret@host/v1' }, {})).rejects.toThrow(/not an http\(s\) URL/);
    await expect(ServedClient.open({ url: 'ftp://user:secret@host/v1' }, {})).rejects.not.toThrow(/secret/);
  });
});

describe('reading a reply (pure)', () => {
  const sent = [{ ids: [5, 6, 7, 8], from: 2 }];
  const reply = (tokens: unknown[], values: unknown[]) => ({
    choices: [{ index: 0, logprobs: { tokens, token_logprobs: values } }],
  });
  const ids = (xs: number[]) => xs.map((x) => `token_id:${x}`);

  it.each([
    ['sums the scored positions', reply(ids([5, 6, 7, 8, 9]), [null, -1, -0.5, -0.25, -3]), -0.75],
    ['allows echo without a generated token', reply(ids([5, 6, 7, 8]), [null, -1, -0.5, -0.25]), -0.75],
  ])('%s', (_, r, want) => {
    expect(readEchoedLogprobs(r, sent, 1)).toEqual([want]);
  });

  it.each([
    [
      'more tokens than sent + generated',
      reply(ids([5, 6, 7, 8, 9, 9]), [null, -1, -1, -1, -1, -1]),
      /6 echoed tokens for 4 sent/,
    ],
    ['a positive log-probability', reply(ids([5, 6, 7, 8]), [null, -1, 0.5, -1]), /log-probability 0.5 at position 2/],
    ['a string log-probability', reply(ids([5, 6, 7, 8]), [null, -1, '-1', -1]), /log-probability "-1" at position 2/],
    ['lengths that disagree', reply(ids([5, 6, 7, 8]), [null, -1, -1]), /4 tokens but 3 log-probabilities/],
    ['a choice index out of range', { choices: [{ index: 3, logprobs: {} }] }, /index 3/],
    ['no choices', { error: 'x' }, /without a "choices" list/],
  ])('rejects %s', (_, r, message) => {
    expect(() => readEchoedLogprobs(r, sent, 1)).toThrow(ServedReplyError);
    expect(() => readEchoedLogprobs(r, sent, 1)).toThrow(message);
  });
});

// A small, real HTTP server on 127.0.0.1 that speaks the part of vLLM's OpenAI-compatible
// API emgate's served backend uses: GET /v1/models and POST /v1/completions with token-id
// prompts, echo, logprobs and return_tokens_as_token_ids. It scores with its own plain
// path, independent of emgate's engine: the committed ONNX graph run directly through
// onnxruntime-node on one unpadded sequence at a time, full logits back, log-softmax in
// JavaScript (float64). It records every request and can be told to misbehave: wrong echoed
// ids, missing logprobs, NaN, token text instead of ids, HTTP errors, stalls.
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as ort from 'onnxruntime-node';

export interface CompletionBody {
  model: string;
  prompt: number[][] | number[];
  echo?: boolean;
  logprobs?: number;
  max_tokens?: number;
  return_tokens_as_token_ids?: boolean;
  temperature?: number;
  seed?: number;
  stop_token_ids?: number[];
}

export type VllmBehaviour =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'stall'; ms: number }
  | { kind: 'wrong-id'; position: number }
  | { kind: 'missing-logprobs' }
  | { kind: 'nan' }
  | { kind: 'null-logprob' }
  | { kind: 'text-tokens' }
  | { kind: 'drop-choice' };

/** The flags of a run (or validate) scored by the server at `url`: its "candidate" against its "base", read with the tokenizer in `checkpoint`. */
export function servedFlags(checkpoint: string, url: string): string[] {
  return [
    '--checkpoint',
    checkpoint,
    '--served',
    url,
    '--served-model',
    'candidate',
    '--served-baseline-model',
    'base',
  ];
}

export class FakeVllm {
  /** Every request; `abandoned`: the client hung up before the (stalled) answer. */
  readonly requests: {
    headers: http.IncomingHttpHeaders;
    url: string;
    body?: CompletionBody;
    abandoned?: boolean;
  }[] = [];
  url = '';
  /** Answer GET /info as Text Generation Inference does (which emgate must refuse). */
  pretendTgi = false;
  /** Sequences the server ran through the model (its own count of forward passes). */
  forwardPasses = 0;
  private queue: VllmBehaviour[] = [];
  private always: VllmBehaviour | null = null;
  private server: http.Server | null = null;
  private readonly sessions = new Map<string, ort.InferenceSession>();

  /** `models`: served name → ONNX graph file (a LoRA name and a base name, as vLLM lists them). */
  /** `decode`: generated ids to text, for sampled answers (the test's tokenizer). */
  constructor(
    private readonly models: Record<string, string>,
    private readonly maxModelLen = 512,
    private readonly decode: (ids: number[]) => string = (ids) => ids.join(' '),
  ) {}

  next(b: VllmBehaviour, times = 1): void {
    for (let i = 0; i < times; i++) this.queue.push(b);
  }

  setAlways(b: VllmBehaviour | null): void {
    this.always = b;
  }

  /** Back to normal: no queued or standing misbehaviour, no recorded requests. */
  reset(): void {
    this.queue = [];
    this.always = null;
    this.requests.length = 0;
    this.pretendTgi = false;
  }

  async start(): Promise<void> {
    for (const [name, file] of Object.entries(this.models))
      this.sessions.set(name, await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 }));
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: Error) => {
          res.writeHead(500).end(JSON.stringify({ error: { message: err.message } }));
        });
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections?.();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
    for (const s of this.sessions.values()) await s.release();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    if (req.method === 'GET' && req.url === '/info' && this.pretendTgi) {
      return json(200, {
        model_id: 'org/base-model',
        max_input_tokens: 4095,
        max_total_tokens: 4096,
        version: '3.0.2',
      });
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      this.requests.push({ headers: req.headers, url: req.url });
      const b = this.queue.shift();
      if (b?.kind === 'status') return void res.writeHead(b.status, b.headers ?? {}).end(b.body ?? '{}');
      const names = Object.keys(this.models);
      return json(200, {
        object: 'list',
        data: names.map((id, i) => ({
          id,
          object: 'model',
          owned_by: 'vllm',
          root: i === 0 ? `/adapters/${id}` : id,
          parent: i === 0 ? names[names.length - 1] : null,
          max_model_len: this.maxModelLen,
        })),
      });
    }
    if (req.method !== 'POST' || req.url !== '/v1/completions') return json(404, { error: { message: 'not found' } });
    const body = JSON.parse(raw) as CompletionBody;
    const record: FakeVllm['requests'][number] = { headers: req.headers, url: req.url, body };
    this.requests.push(record);
    const b = this.queue.shift() ?? this.always;
    if (b?.kind === 'status') return void res.writeHead(b.status, b.headers ?? {}).end(b.body ?? '{}');
    if (b?.kind === 'stall') {
      await new Promise((r) => setTimeout(r, b.ms));
      if (res.destroyed || req.destroyed) {
        record.abandoned = true;
        return;
      }
    }
    const session = this.sessions.get(body.model);
    if (!session) {
      return json(404, {
        object: 'error',
        message: `The model \`${body.model}\` does not exist.`,
        type: 'NotFoundError',
        code: 404,
      });
    }
    const longest = Array.isArray(body.prompt[0])
      ? Math.max(...(body.prompt as number[][]).map((p) => p.length))
      : body.prompt.length;
    if (longest + (body.max_tokens ?? 16) > this.maxModelLen) {
      return json(400, {
        object: 'error',
        message: `This model's maximum context length is ${this.maxModelLen} tokens. However, you requested ${longest + (body.max_tokens ?? 16)} tokens.`,
        type: 'BadRequestError',
        code: 400,
      });
    }
    if (!body.echo) return json(200, await this.sampleReply(session, body));
    const prompts = Array.isArray(body.prompt[0]) ? (body.prompt as number[][]) : [body.prompt as number[]];
    const choices = [];
    for (let i = 0; i < prompts.length; i++) {
      const { logprobs, next } = await this.score(session, prompts[i]);
      const ids = [...prompts[i], next.id];
      choices.push({
        index: i,
        text: '',
        logprobs: {
          tokens: ids.map((id) => (body.return_tokens_as_token_ids ? `token_id:${id}` : `tok${id}`)),
          token_logprobs: [...logprobs, next.logprob] as (number | null | string)[],
          text_offset: ids.map((_, k) => k),
          top_logprobs: null,
        },
        finish_reason: 'length',
      });
    }
    if (b?.kind === 'wrong-id') choices[0].logprobs.tokens[b.position] = `token_id:${prompts[0][b.position] + 1}`;
    if (b?.kind === 'missing-logprobs') (choices[0] as { logprobs: unknown }).logprobs = null;
    if (b?.kind === 'null-logprob') choices[0].logprobs.token_logprobs[prompts[0].length - 1] = null;
    if (b?.kind === 'text-tokens') choices[0].logprobs.tokens = choices[0].logprobs.tokens.map((t) => t.slice(9));
    if (b?.kind === 'drop-choice') choices.pop();
    let text = JSON.stringify({ id: 'cmpl-test', object: 'text_completion', model: body.model, choices });
    // Python's json writes a NaN float as the bare word NaN (not JSON); vLLM can send it so.
    if (b?.kind === 'nan') {
      choices[0].logprobs.token_logprobs[prompts[0].length - 1] = 'NAN_HERE';
      text = JSON.stringify({ choices }).replace('"NAN_HERE"', 'NaN');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(text);
  }

  /**
   * A sampled answer: one token at a time over the whole sequence (no cache), temperature
   * sampling from a PRNG seeded with the request's seed, stopping at a stop id.
   */
  private async sampleReply(session: ort.InferenceSession, body: CompletionBody): Promise<unknown> {
    const ids = [...(body.prompt as number[])];
    const stop = new Set(body.stop_token_ids ?? []);
    let state = (body.seed ?? 0) >>> 0;
    const random = () => {
      // mulberry32
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out: number[] = [];
    let finish = 'length';
    for (let step = 0; step < (body.max_tokens ?? 16); step++) {
      const logits = await this.logits(session, ids);
      const vocab = logits.length / ids.length;
      const row = logits.subarray((ids.length - 1) * vocab);
      const temperature = body.temperature ?? 1;
      let next = 0;
      if (temperature === 0) {
        for (let v = 1; v < vocab; v++) if (row[v] > row[next]) next = v;
      } else {
        let max = -Infinity;
        for (let v = 0; v < vocab; v++) max = Math.max(max, row[v] / temperature);
        const p = Array.from(row, (x) => Math.exp(x / temperature - max));
        let u = random() * p.reduce((a, b) => a + b, 0);
        next = vocab - 1;
        for (let v = 0; v < vocab; v++) {
          u -= p[v];
          if (u <= 0) {
            next = v;
            break;
          }
        }
      }
      if (stop.has(next)) {
        finish = 'stop';
        out.push(next);
        break;
      }
      out.push(next);
      ids.push(next);
    }
    const text = this.decode(out.filter((id) => !stop.has(id)));
    return {
      object: 'text_completion',
      model: body.model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      usage: { prompt_tokens: (body.prompt as number[]).length, completion_tokens: out.length },
    };
  }

  private async logits(session: ort.InferenceSession, ids: number[]): Promise<Float32Array> {
    this.forwardPasses++;
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    };
    if (session.inputNames.includes('position_ids'))
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(ids.map((_, k) => BigInt(k))), [1, n]);
    const out = await session.run(feeds);
    return out.logits.data as Float32Array;
  }

  /** log p(token k | tokens < k) for every position (null at 0), and the greedy next token. */
  private async score(
    session: ort.InferenceSession,
    ids: number[],
  ): Promise<{ logprobs: (number | null)[]; next: { id: number; logprob: number } }> {
    const n = ids.length;
    const logits = await this.logits(session, ids);
    const vocab = logits.length / n;
    // log p(v | position pos) = logit - logsumexp(logits), max subtracted, float64.
    const logNormaliser = (pos: number): number => {
      const at = pos * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) if (logits[at + v] > max) max = logits[at + v];
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[at + v] - max);
      return max + Math.log(sum);
    };
    const logprobs: (number | null)[] = [null];
    for (let k = 1; k < n; k++) logprobs.push(logits[(k - 1) * vocab + ids[k]] - logNormaliser(k - 1));
    const at = (n - 1) * vocab;
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[at + v] > logits[at + best]) best = v;
    return { logprobs, next: { id: best, logprob: logits[at + best] - logNormaliser(n - 1) } };
  }
}

// Broken checkpoints fail loudly: each error names the file, the cause and the fix.
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'fs';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { Engine } from '../src/runtime/engine';
import { decodeModel, encodeModel } from '../src/runtime/graph-surgery';
import { copyFixture, MODELS, readReference } from './helpers/fixtures';

const cpu = { device: 'cpu' as const };
const L = readReference().config.num_layers;
const request = {
  messages: [{ role: 'user' as const, content: 'Is it safe to skip a dose?' }],
  response: 'Ask your pharmacist first.',
};

async function openAndScore(dir: string, layers: number[] = []): Promise<void> {
  const engine = await Engine.open(dir, { ...cpu, layers });
  try {
    await engine.score([request]);
  } finally {
    await engine.close();
  }
}

async function expectEmgateError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<EmgateError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmgateError);
  for (const re of patterns) expect((err as Error).message).toMatch(re);
  expect((err as Error).message).toMatch(/Fix: /);
  return err as EmgateError;
}

let scratch: { dir: string; cleanup: () => void } | null = null;
afterEach(() => {
  scratch?.cleanup();
  scratch = null;
});

function damage(name = 'tiny-pos'): string {
  scratch = copyFixture(name);
  return scratch.dir;
}

it('a missing directory is named', async () => {
  await expectEmgateError(Engine.open('/nonexistent/ckpt', cpu), /\/nonexistent\/ckpt/, /not found/);
});

it('a directory without a graph lists where it looked', async () => {
  const dir = damage();
  rmSync(path.join(dir, 'model.onnx'));
  await expectEmgateError(Engine.open(dir, cpu), /no ONNX graph found/, /onnx\/model\.onnx/);
});

it('a missing tokenizer.json is named', async () => {
  const dir = damage();
  rmSync(path.join(dir, 'tokenizer.json'));
  await expectEmgateError(Engine.open(dir, cpu), /tokenizer\.json: file not found/);
});

it('a truncated model.onnx is reported with the file, with or without graph surgery', async () => {
  const dir = damage();
  const file = path.join(dir, 'model.onnx');
  truncateSync(file, Math.floor(readFileSync(file).length / 2));
  await expectEmgateError(openAndScore(dir), /model\.onnx/, /could not load|not a valid ONNX/);
  await expectEmgateError(openAndScore(dir, [1]), /model\.onnx/, /not a valid ONNX|could not load/);
});

it('a corrupt model.onnx (random bytes) is reported', async () => {
  const dir = damage();
  const junk = Buffer.alloc(4096);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
  writeFileSync(path.join(dir, 'model.onnx'), junk);
  await expectEmgateError(openAndScore(dir), /model\.onnx/);
});

it('a graph without logits lists the outputs it has', async () => {
  const dir = damage();
  const file = path.join(dir, 'model.onnx');
  const model = decodeModel(readFileSync(file));
  for (const node of model.graph!.node!) node.output = node.output!.map((o) => (o === 'logits' ? 'scores' : o));
  for (const out of model.graph!.output!) if (out.name === 'logits') out.name = 'scores';
  writeFileSync(file, encodeModel(model));
  await expectEmgateError(openAndScore(dir), /no "logits" output/, /outputs: scores/);
});

it('a tokenizer whose vocabulary does not fit the logits is refused', async () => {
  const dir = damage();
  const file = path.join(dir, 'tokenizer.json');
  const tok = JSON.parse(readFileSync(file, 'utf8'));
  const vocab = readReference().config.vocab_size;
  tok.added_tokens.push({
    id: vocab + 10,
    content: '<|extra|>',
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  writeFileSync(file, JSON.stringify(tok));
  await expectEmgateError(openAndScore(dir), /tokenizer\.json/, /logits cover only/);
});

it("a text longer than the model's maximum positions is refused before running", async () => {
  const dir = damage();
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  config.max_position_embeddings = 24;
  writeFileSync(file, JSON.stringify(config));
  await expectEmgateError(openAndScore(dir), /config\.json/, /max_position_embeddings \(24\)/);
});

it('a layer index out of range names the valid range', async () => {
  await expectEmgateError(
    Engine.open(path.join(MODELS, 'tiny-pos'), { ...cpu, layers: [L + 1] }),
    /out of range/,
    new RegExp(`0\\.\\.${L}`),
  );
});

it('NaN weights give an error, never a score', async () => {
  const dir = damage();
  const file = path.join(dir, 'model.onnx');
  const model = decodeModel(readFileSync(file));
  const head = model.graph!.initializer!.find((t) => /lm_head/.test(t.name ?? '') || (t.dims ?? []).length === 2)!;
  const nan = new Float32Array(head.rawData!.length / 4).fill(NaN);
  head.rawData = new Uint8Array(nan.buffer);
  writeFileSync(file, encodeModel(model));
  await expectEmgateError(openAndScore(dir), /model\.onnx/, /non-finite/);
});

// Execution providers. These run where onnxruntime-node's CUDA provider is not installed
// (CI installs with ONNXRUNTIME_NODE_INSTALL=skip); on a GPU runner the CUDA path is taken
// instead, so they say so and are skipped there.
const cudaInstalled = (() => {
  try {
    const bin = path.join(
      path.dirname(require.resolve('onnxruntime-node/package.json')),
      'bin',
      'napi-v6',
      process.platform,
      process.arch,
    );
    return readdirSync(bin).some((f) => f.includes('providers_cuda'));
  } catch {
    return false;
  }
})();
const withoutCuda = cudaInstalled ? describe.skip : describe;

withoutCuda('execution providers without the CUDA provider installed', () => {
  const model = path.join(MODELS, 'tiny-pos');

  it('device cuda falls back to CPU with a warning, and scores as on CPU', async () => {
    const warnings: string[] = [];
    const gpu = await Engine.open(model, { device: 'cuda', warn: (m) => warnings.push(m) });
    const onCpu = await Engine.open(model, cpu);
    try {
      expect(gpu.provider).toBe('cpu');
      expect(warnings.join('\n')).toMatch(/CUDA execution provider unavailable .*falling back to CPU/);
      const [a] = await gpu.score([request]);
      const [b] = await onCpu.score([request]);
      expect(a.mean_logprob).toBe(b.mean_logprob);
    } finally {
      await gpu.close();
      await onCpu.close();
    }
  });

  it('device auto uses the CPU quietly', async () => {
    const warnings: string[] = [];
    const engine = await Engine.open(model, { device: 'auto', warn: (m) => warnings.push(m) });
    try {
      expect(engine.provider).toBe('cpu');
      expect(warnings).toEqual([]);
    } finally {
      await engine.close();
    }
  });

  it('require-gpu refuses to fall back, and says how to get the CUDA provider', async () => {
    await expectEmgateError(
      Engine.open(model, { device: 'cuda', requireGpu: true }),
      /CUDA execution provider could not be used/,
      /ONNXRUNTIME_NODE_INSTALL=skip/,
    );
  });
});

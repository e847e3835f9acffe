// Variant graphs (onnx/model_fp16.onnx, model_q4.onnx, …) chosen by dtype or an explicit
// file, and float16 KV caches. The variant folders are made here from the committed
// fixtures by symbolic links, as a Hugging Face cache lays a snapshot out.
import { copyFileSync, cpSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { onnx } from 'onnx-proto';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { runGate } from '../src/gate/gate';
import { hashCheckpoint } from '../src/load/checkpoint';
import { loadSuite } from '../src/load/suite';
import { Engine, type ScoreRequest } from '../src/runtime/engine';
import { decodeModel, encodeModel } from '../src/runtime/graph-surgery';
import { inspectOnnxFile } from '../src/runtime/onnx-file';
import { tempDir } from './helpers/cli';
import { hfCacheSnapshot, MODELS, PROBES_MINI, readReference } from './helpers/fixtures';

const cases: ScoreRequest[] = readReference().cases.map((c) => ({ messages: c.messages, response: c.response }));
const SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/** A checkpoint folder: side files linked from tiny-pos; the graphs copied in (a graph linked from outside the folder is refused): model.onnx from tiny-pos, onnx/model_fp16.onnx from tiny-fp16. */
function variantFolder(): string {
  const dir = path.join(tempDir('emgate-variants-'), 'ckpt');
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  for (const f of SIDE_FILES) symlinkSync(path.join(MODELS, 'tiny-pos', f), path.join(dir, f));
  copyFileSync(path.join(MODELS, 'tiny-pos', 'model.onnx'), path.join(dir, 'model.onnx'));
  copyFileSync(path.join(MODELS, 'tiny-fp16', 'model.onnx'), path.join(dir, 'onnx', 'model_fp16.onnx'));
  return dir;
}

async function scoresOf(
  dir: string,
  options: { dtype?: string; modelFile?: string },
): Promise<{ file: string; means: number[] }> {
  const engine = await Engine.open(dir, { device: 'cpu', ...options });
  try {
    return {
      file: engine.checkpoint.modelFile,
      means: (await engine.score(cases, { batchSize: 3 })).map((s) => s.mean_logprob),
    };
  } finally {
    await engine.close();
  }
}

describe('variant graphs', () => {
  const dir = variantFolder();

  it('are found by dtype: fp16 loads onnx/model_fp16.onnx and scores as the fp16 export does', async () => {
    const fp16 = await scoresOf(dir, { dtype: 'fp16' });
    expect(fp16.file).toBe(path.join(dir, 'onnx', 'model_fp16.onnx'));
    const direct = await scoresOf(path.join(MODELS, 'tiny-fp16'), {});
    expect(fp16.means).toEqual(direct.means);
    const fp32 = await scoresOf(dir, {});
    expect(fp32.file).toBe(path.join(dir, 'model.onnx'));
    expect(fp32.means).not.toEqual(fp16.means);
  });

  it('an explicit model file wins over dtype', async () => {
    const chosen = await scoresOf(dir, { dtype: 'fp16', modelFile: 'model.onnx' });
    expect(chosen.file).toBe(path.join(dir, 'model.onnx'));
  });

  it('a dtype the checkpoint lacks names what was looked for and what is there', async () => {
    const err = await Engine.open(dir, { device: 'cpu', dtype: 'q4' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as Error).message).toMatch(
      /no ONNX graph found for dtype q4 \(looked for onnx\/model_q4\.onnx, onnx\/decoder_model_merged_q4\.onnx/,
    );
    expect((err as Error).message).toMatch(/graphs here: model\.onnx, onnx\/model_fp16\.onnx/);
    await expect(Engine.open(dir, { device: 'cpu', dtype: 'fp12' })).rejects.toThrow(/unknown dtype "fp12"/);
  });

  it('a symbolic link loop is an error, not a missing file', async () => {
    const loop = path.join(tempDir('emgate-loop-'), 'ckpt');
    mkdirSync(loop);
    symlinkSync(path.join(loop, 'model.onnx'), path.join(loop, 'model.onnx'));
    await expect(Engine.open(loop, { device: 'cpu' })).rejects.toThrow(/symbolic link loop/);
  });
});

/**
 * The KV-cache fixture with a float16 cache, as fp16 exports have: past inputs become
 * float16 and are cast up where the graph reads them; presents are cast down on the way out.
 */
function float16CacheFolder(): string {
  const dir = path.join(tempDir('emgate-kv16-'), 'ckpt');
  mkdirSync(dir);
  for (const f of SIDE_FILES) symlinkSync(path.join(MODELS, 'tiny-kv', f), path.join(dir, f));
  const model = decodeModel(readFileSync(path.join(MODELS, 'tiny-kv', 'decoder_model_merged.onnx')));
  const g = model.graph!;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;
  const cast = (input: string, output: string, to: number) =>
    onnx.NodeProto.create({
      name: `cast_${output}`,
      opType: 'Cast',
      input: [input],
      output: [output],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }],
    });
  const added: onnx.INodeProto[] = [];
  for (const input of g.input!) {
    if (!input.name!.startsWith('past_key_values.')) continue;
    const inner = `${input.name}_f32`;
    for (const node of g.node!) node.input = node.input!.map((i) => (i === input.name ? inner : i));
    input.type!.tensorType!.elemType = FLOAT16;
    added.push(cast(input.name!, inner, FLOAT));
  }
  for (const output of g.output!) {
    if (!output.name!.startsWith('present.')) continue;
    const inner = `${output.name}_f32`;
    for (const node of g.node!) {
      node.output = node.output!.map((o) => (o === output.name ? inner : o));
      node.input = node.input!.map((i) => (i === output.name ? inner : i));
    }
    output.type!.tensorType!.elemType = FLOAT16;
    added.push(cast(inner, output.name!, FLOAT16));
  }
  g.node = [
    ...added.filter((n) => n.input![0].startsWith('past_key_values.')),
    ...g.node!,
    ...added.filter((n) => n.output![0].startsWith('present.')),
  ];
  writeFileSync(path.join(dir, 'decoder_model_merged.onnx'), encodeModel(model));
  return dir;
}

describe('float16 KV cache', () => {
  it('is fed back as float16 and scores shared prompts like full sequences (within float16 rounding of the cache)', async () => {
    const suite = await loadSuite(PROBES_MINI, { variants: 'none' });
    const requests = suite.probes.flatMap((p) =>
      [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })),
    );
    const engine = await Engine.open(float16CacheFolder(), { device: 'cpu' });
    try {
      expect(engine.session.inputs.find((i) => i.name === 'past_key_values.0.key')!.type).toBe('float16');
      expect(engine.canSharePrompts).toBe(true);
      const full = await engine.score(requests, { batchSize: 6, sharePrompts: false });
      const shared = await engine.score(requests, { batchSize: 6 });
      shared.forEach((s, i) => {
        expect(Math.abs(s.mean_logprob - full[i].mean_logprob)).toBeLessThan(2e-3);
      });
    } finally {
      await engine.close();
    }
  });
});

/**
 * tiny-pos with its weights moved out of model.onnx into three external data files
 * (model.onnx_data, model.onnx_data_1, model.onnx_data_2), as transformers.js lays out
 * checkpoints too large for one file. Tensors under 1 KB stay inline.
 */
function splitDataFolder(): string {
  const dir = path.join(tempDir('emgate-split-'), 'ckpt');
  mkdirSync(dir);
  for (const f of SIDE_FILES) symlinkSync(path.join(MODELS, 'tiny-pos', f), path.join(dir, f));
  const model = decodeModel(readFileSync(path.join(MODELS, 'tiny-pos', 'model.onnx')));
  const big = model.graph!.initializer!.filter((t) => (t.rawData?.length ?? 0) >= 1024);
  const total = big.reduce((n, t) => n + t.rawData!.length, 0);
  const files = ['model.onnx_data', 'model.onnx_data_1', 'model.onnx_data_2'];
  const parts: Uint8Array[][] = files.map(() => []);
  const written = files.map(() => 0);
  let done = 0;
  for (const t of big) {
    const k = Math.min(files.length - 1, Math.floor((done / total) * files.length));
    const raw = t.rawData!;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: files[k] },
      { key: 'offset', value: String(written[k]) },
      { key: 'length', value: String(raw.length) },
    ];
    t.rawData = new Uint8Array(0);
    parts[k].push(raw);
    written[k] += raw.length;
    done += raw.length;
  }
  files.forEach((f, k) => {
    writeFileSync(path.join(dir, f), Buffer.concat(parts[k]));
  });
  writeFileSync(path.join(dir, 'model.onnx'), encodeModel(model));
  return dir;
}

describe('weights split over several external data files', () => {
  const dir = splitDataFolder();

  it('score as the same weights inline do, through graph surgery (hidden states and in-graph log-probs)', async () => {
    const inlineSize = readFileSync(path.join(MODELS, 'tiny-pos', 'model.onnx')).length;
    expect(readFileSync(path.join(dir, 'model.onnx')).length).toBeLessThan(inlineSize / 4);
    const open = (d: string) => Engine.open(d, { device: 'cpu', layers: [1] });
    const [split, inline] = [await open(dir), await open(path.join(MODELS, 'tiny-pos'))];
    try {
      expect(split.logprobPath).toBe('graph');
      const a = await split.score(cases, { batchSize: 3 });
      const b = await inline.score(cases, { batchSize: 3 });
      expect(a.map((s) => s.sum_logprob)).toEqual(b.map((s) => s.sum_logprob));
      expect(a.map((s) => [...s.hidden.get(1)!.last_prompt])).toEqual(b.map((s) => [...s.hidden.get(1)!.last_prompt]));
    } finally {
      await Promise.all([split.close(), inline.close()]);
    }
  });

  it('are all in the checkpoint digest the baseline cache is keyed by', async () => {
    const before = await hashCheckpoint(dir);
    expect(Object.keys(before.files)).toEqual(
      expect.arrayContaining(['model.onnx_data', 'model.onnx_data_1', 'model.onnx_data_2']),
    );
    const copy = path.join(tempDir('emgate-split-copy-'), 'ckpt');
    cpSync(dir, copy, { recursive: true, dereference: true });
    const last = path.join(copy, 'model.onnx_data_2');
    const bytes = readFileSync(last);
    bytes[0] ^= 1;
    writeFileSync(last, bytes);
    expect((await hashCheckpoint(copy)).sha256).not.toBe(before.sha256);
  });

  it('a missing second file is named, with the fix', async () => {
    const copy = path.join(tempDir('emgate-split-missing-'), 'ckpt');
    cpSync(dir, copy, { recursive: true, dereference: true });
    rmSync(path.join(copy, 'model.onnx_data_1'));
    const err = await inspectOnnxFile(path.join(copy, 'model.onnx')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as EmgateError).message).toMatch(/model\.onnx_data_1/);
    expect((err as EmgateError).message).toMatch(/external data file of model\.onnx is missing/);
  });
});

describe('external data in a Hugging Face cache (every file a link to a blob)', () => {
  it.each([
    ['in-graph scoring', { logprobs: 'graph' as const, layers: [1] }],
    ['the JavaScript path, no surgery', { logprobs: 'js' as const }],
  ])('loads and scores as the folder itself does: %s', async (_name, options) => {
    const snap = hfCacheSnapshot(path.join(MODELS, 'tiny-logits'), path.join(tempDir('emgate-hf-data-'), 'repo'));
    expect(readlinkSync(path.join(snap, 'onnx', 'model.onnx_data'))).toMatch(/blobs/);
    const [linked, direct] = [
      await Engine.open(snap, { device: 'cpu', ...options }),
      await Engine.open(path.join(MODELS, 'tiny-logits'), { device: 'cpu', ...options }),
    ];
    try {
      const a = await linked.score(cases, { batchSize: 3 });
      const b = await direct.score(cases, { batchSize: 3 });
      expect(a.map((s) => s.sum_logprob)).toEqual(b.map((s) => s.sum_logprob));
    } finally {
      await Promise.all([linked.close(), direct.close()]);
    }
  });
});

/**
 * tiny-pos with its LM head quantized to 4 bits as q4 exports ship it (com.microsoft
 * MatMulNBits, blocks of 32 along the hidden axis, a scale per block, zero point 8), saved
 * as onnx/model_q4.onnx beside the float graph.
 */
function q4HeadFolder(): string {
  const dir = variantFolder();
  const model = decodeModel(readFileSync(path.join(MODELS, 'tiny-pos', 'model.onnx')));
  const g = model.graph!;
  const head = g.node!.find((n) => n.output![0] === 'logits')!;
  const weight = g.initializer!.find((t) => t.name === head.input![1])!;
  const [K, N] = weight.dims!.map(Number);
  const raw = weight.rawData!;
  const w = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const block = 32;
  const blocks = K / block;
  const packed = new Uint8Array(N * blocks * (block / 2));
  const scales = new Float32Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      let max = 0;
      for (let j = 0; j < block; j++) max = Math.max(max, Math.abs(w[(b * block + j) * N + n]));
      const scale = max / 7 || 1;
      scales[n * blocks + b] = scale;
      for (let j = 0; j < block; j++) {
        const q = Math.max(0, Math.min(15, Math.round(w[(b * block + j) * N + n] / scale) + 8));
        const at = (n * blocks + b) * (block / 2) + (j >> 1);
        packed[at] |= j % 2 === 0 ? q : q << 4;
      }
    }
  }
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const UINT8 = onnx.TensorProto.DataType.UINT8;
  g.initializer = g.initializer!.filter((t) => t !== weight);
  g.initializer.push(
    { name: 'lm_head_q4', dataType: UINT8, dims: [N, blocks, block / 2], rawData: packed },
    { name: 'lm_head_scales', dataType: FLOAT, dims: [N * blocks], rawData: new Uint8Array(scales.buffer) },
  );
  const int = (name: string, i: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  head.opType = 'MatMulNBits';
  head.domain = 'com.microsoft';
  head.input = [head.input![0], 'lm_head_q4', 'lm_head_scales'];
  head.attribute = [int('K', K), int('N', N), int('bits', 4), int('block_size', block)];
  model.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
  writeFileSync(path.join(dir, 'onnx', 'model_q4.onnx'), encodeModel(model));
  return dir;
}

describe('a 4-bit LM head (MatMulNBits, q4 exports)', () => {
  it('runs only at the scored positions and scores as the JavaScript path on the same graph does', async () => {
    const dir = q4HeadFolder();
    const requests = (await loadSuite(PROBES_MINI, { variants: 'none' })).probes.flatMap((p) =>
      [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })),
    );
    const open = (logprobs: 'graph' | 'js') => Engine.open(dir, { device: 'cpu', dtype: 'q4', logprobs });
    const [graph, js] = [await open('graph'), await open('js')];
    try {
      expect(graph.checkpoint.modelFile).toBe(path.join(dir, 'onnx', 'model_q4.onnx'));
      expect(graph.headAtScoredPositions).toBe(true);
      const a = await graph.score(requests, { batchSize: 4 });
      const b = await js.score(requests, { batchSize: 4 });
      a.forEach((s, i) => {
        expect(Math.abs(s.mean_logprob - b[i].mean_logprob)).toBeLessThan(1e-5);
      });
      // And the quantization is a real one: close to the float head, not equal to it.
      const float = await scoresOf(path.join(MODELS, 'tiny-pos'), {});
      const q4 = await scoresOf(dir, { dtype: 'q4' });
      const diffs = q4.means.map((m, i) => Math.abs(m - float.means[i]));
      expect(Math.max(...diffs)).toBeLessThan(0.1);
      expect(Math.max(...diffs)).toBeGreaterThan(0);
    } finally {
      await Promise.all([graph.close(), js.close()]);
    }
  });
});

describe('a checkpoint that ships only a variant graph', () => {
  it('is gated with --dtype: every step reads the graph the dtype names', async () => {
    const dir = path.join(tempDir('emgate-only-fp16-'), 'ckpt');
    mkdirSync(path.join(dir, 'onnx'), { recursive: true });
    for (const f of SIDE_FILES) symlinkSync(path.join(MODELS, 'tiny-pos', f), path.join(dir, f));
    copyFileSync(path.join(MODELS, 'tiny-fp16', 'model.onnx'), path.join(dir, 'onnx', 'model_fp16.onnx'));
    const work = tempDir('emgate-only-fp16-run-');
    const policy = path.join(work, 'policy.json');
    writeFileSync(policy, JSON.stringify({ name: 'fits', min_probes_per_domain: 3, overall: { max_rate: 0.99 } }));
    const res = await runGate({
      checkpoint: dir,
      dtype: 'fp16',
      probes: PROBES_MINI,
      policy,
      outDir: path.join(work, 'out'),
      batchSize: 4,
      device: 'cpu',
      seed: 0,
      gateId: 'only-fp16',
    });
    expect(res.report.errors).toEqual([]);
    expect(res.report.verdict).toBe('pass');
  });
});

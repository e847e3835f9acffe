// SAE readers (load/sae.ts, load/safetensors.ts) and the encoder session (runtime/sae-session.ts)
// on the SAE scripts/make_sae.py trained on the base organism's residual stream, written in
// the three layouts: each layout's latents, computed by onnxruntime, equal PyTorch's
// (examples/organisms/sae/reference.json) within float tolerance. Then what a broken SAE
// folder gives: an error naming the file, the cause and the fix.
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { onnx } from 'onnx-proto';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { layerFromHook, loadSae } from '../src/load/sae';
import { readSafetensorsHeader, readTensor } from '../src/load/safetensors';
import { SaeSession, saeEncoderGraph } from '../src/runtime/sae-session';
import { tempDir } from './helpers/cli';

const SAE = path.join(__dirname, '..', 'examples', 'organisms', 'sae');
const ref = JSON.parse(readFileSync(path.join(SAE, 'reference.json'), 'utf8')) as {
  layer: number;
  hook: string;
  d_in: number;
  d_sae: number;
  k: number;
  inputs: number[][];
  saelens: number[][];
  sparsify: number[][];
  llamascope: number[][];
};
const LAYOUTS = {
  saelens: path.join(SAE, 'saelens'),
  sparsify: path.join(SAE, 'sparsify', `layers.${ref.layer - 1}`),
  llamascope: path.join(SAE, 'llamascope'),
} as const;

/** A safetensors file by hand: header length, JSON header, then raw bytes. */
function writeSafetensors(file: string, tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }>) {
  let at = 0;
  const header: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(file, Buffer.concat([len, h, ...Object.values(tensors).map((t) => t.bytes)]));
}

async function encodeAll(dir: string): Promise<number[][]> {
  const sae = await loadSae(dir);
  const session = await SaeSession.open(sae, { device: 'cpu' });
  try {
    return (await session.encode(ref.inputs)).map((v) => Array.from(v));
  } finally {
    await session.close();
  }
}

function expectClose(got: number[][], want: number[][]) {
  expect(got.length).toBe(want.length);
  let active = 0;
  got.forEach((row, i) => {
    row.forEach((v, j) => {
      const w = want[i][j];
      // float32 matmul order differs from PyTorch's; a latent at the TopK / threshold edge may
      // swap with its neighbour, so compare values within a tolerance scaled to the row.
      expect(Math.abs(v - w)).toBeLessThan(1e-3 * (1 + Math.abs(w)));
      if (w > 0) active++;
    });
  });
  expect(active).toBeGreaterThan(0);
}

describe('the SAE trained on the base organism, in three layouts', () => {
  it.each(Object.entries(LAYOUTS))('%s: latents equal PyTorch within float tolerance', async (name, dir) => {
    expectClose(await encodeAll(dir), ref[name as keyof typeof LAYOUTS]);
  });

  it("a block's mean latents are the mean of its tokens' latents, blocks of any length batched together", async () => {
    const session = await SaeSession.open(await loadSae(LAYOUTS.saelens), { device: 'cpu' });
    try {
      const flat = (rows: number[][]) => Float32Array.from(rows.flat());
      const blocks = [flat(ref.inputs.slice(0, 3)), flat(ref.inputs.slice(3, 4)), flat(ref.inputs.slice(4))];
      const means = await session.meanLatents(blocks);
      const bounds = [
        [0, 3],
        [3, 4],
        [4, ref.inputs.length],
      ];
      bounds.forEach(([from, to], b) => {
        const want = ref.saelens[0].map((_, j) => {
          let s = 0;
          for (let i = from; i < to; i++) s += ref.saelens[i][j];
          return s / (to - from);
        });
        const dense = new Array<number>(ref.d_sae).fill(0);
        means[b].index.forEach((j, i) => {
          dense[j] = means[b].value[i];
        });
        expectClose([dense], [want]);
      });
    } finally {
      await session.close();
    }
  });

  it.each(Object.keys(LAYOUTS))(
    '%s: mean latents of blocks that span session calls (TopK pooled sparsely, JumpReLU in the graph) equal the mean of PyTorch latents',
    async (name) => {
      const layout = name as keyof typeof LAYOUTS;
      const session = await SaeSession.open(await loadSae(LAYOUTS[layout]), { device: 'cpu' });
      try {
        // 512 rows go through one session call at 256 latents: blocks of 600 and 560 rows
        // (the 8 inputs repeated) span calls; the short ones fall between.
        const tile = (times: number) =>
          Float32Array.from(Array.from({ length: times }, () => ref.inputs.flat()).flat());
        const rows = (from: number, to: number) => Float32Array.from(ref.inputs.slice(from, to).flat());
        const blocks = [tile(75), rows(0, 3), rows(3, 4), tile(70)];
        const bounds = [
          [0, 8],
          [0, 3],
          [3, 4],
          [0, 8],
        ];
        const means = await session.meanLatents(blocks);
        expect(means).toHaveLength(blocks.length);
        const got = means.map((m) => {
          // Sparse: indices ascending, no zeros kept.
          expect(Array.from(m.index)).toEqual([...m.index].sort((x, y) => x - y));
          expect(Array.from(m.value).every((v) => v !== 0)).toBe(true);
          const dense = new Array<number>(ref.d_sae).fill(0);
          m.index.forEach((j, i) => {
            dense[j] = m.value[i];
          });
          return dense;
        });
        const want = bounds.map(([from, to]) =>
          ref[layout][0].map((_, j) => {
            let s = 0;
            for (let i = from; i < to; i++) s += ref[layout][i][j];
            return s / (to - from);
          }),
        );
        expectClose(got, want);
      } finally {
        await session.close();
      }
    },
  );

  it('returns no [tokens, d_sae] latents: TopK its k values and indices a token, JumpReLU a pooled row a block', async () => {
    const outputs = async (dir: string) => {
      const graph = onnx.ModelProto.decode(saeEncoderGraph(await loadSae(dir))).graph!;
      return graph.output!.map((o) => [
        o.name,
        o.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
      ]);
    };
    expect(await outputs(LAYOUTS.saelens)).toEqual([
      ['top_values', ['rows', ref.k]],
      ['top_indices', ['rows', ref.k]],
    ]);
    expect(await outputs(LAYOUTS.llamascope)).toEqual([['pooled', ['blocks', ref.d_sae]]]);
  });

  it('reads format, hook and emgate layer from each layout', async () => {
    const lens = await loadSae(LAYOUTS.saelens);
    expect(lens).toMatchObject({ format: 'saelens', hook: ref.hook, layer: ref.layer, dIn: ref.d_in, dSae: ref.d_sae });
    expect(lens.activation).toEqual({ kind: 'topk', k: ref.k });
    expect(lens.files.map((f) => path.basename(f.path))).toEqual(['cfg.json', 'sae_weights.safetensors']);
    expect(lens.files[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const sp = await loadSae(LAYOUTS.sparsify);
    expect(sp).toMatchObject({
      format: 'sparsify',
      hook: `layers.${ref.layer - 1}`,
      layer: ref.layer,
      transposed: true,
    });
    const ls = await loadSae(LAYOUTS.llamascope);
    expect(ls).toMatchObject({ format: 'llamascope', hook: ref.hook, layer: ref.layer });
    expect(ls.activation.kind).toBe('jumprelu');
    expect(ls.scale.kind).toBe('constant');
  });

  it('maps hooks to emgate hidden-state indices (0 = embeddings, k = after decoder layer k)', () => {
    expect(layerFromHook('blocks.12.hook_resid_post')).toBe(13);
    expect(layerFromHook('blocks.12.hook_resid_pre')).toBe(12);
    expect(layerFromHook('layers.12')).toBe(13);
    expect(layerFromHook('model.layers.0')).toBe(1);
    expect(layerFromHook('blocks.12.hook_resid_mid')).toBeNull();
    expect(layerFromHook('blocks.12.attn.hook_z')).toBeNull();
  });

  it('reads a pre-6.0 flat SAELens config (hook_point, activation_fn_str) with the same weights', async () => {
    const dir = tempDir('emgate-sae-');
    copyFileSync(path.join(LAYOUTS.saelens, 'sae_weights.safetensors'), path.join(dir, 'sae_weights.safetensors'));
    writeFileSync(
      path.join(dir, 'cfg.json'),
      JSON.stringify({
        d_in: ref.d_in,
        d_sae: ref.d_sae,
        hook_point: ref.hook,
        hook_point_layer: ref.layer - 1,
        activation_fn_str: 'topk',
        activation_fn_kwargs: { k: ref.k },
        apply_b_dec_to_input: true,
      }),
    );
    const sae = await loadSae(dir);
    expect(sae).toMatchObject({ hook: ref.hook, layer: ref.layer, activation: { kind: 'topk', k: ref.k } });
    expectClose(await encodeAll(dir), ref.saelens);
  });
});

describe('safetensors dtypes', () => {
  it('widens F16 and BF16 exactly', async () => {
    const dir = tempDir('emgate-st-');
    const file = path.join(dir, 'x.safetensors');
    const f16 = Buffer.alloc(6);
    for (const [i, h] of [0x3c00, 0xc000, 0x3555].entries()) f16.writeUInt16LE(h, i * 2); // 1, -2, 0.333251953125
    const bf16 = Buffer.alloc(4);
    for (const [i, h] of [0x3f80, 0x4049].entries()) bf16.writeUInt16LE(h, i * 2); // 1, 3.140625
    writeSafetensors(file, {
      a: { dtype: 'F16', shape: [3], bytes: f16 },
      b: { dtype: 'BF16', shape: [2], bytes: bf16 },
    });
    const st = await readSafetensorsHeader(file);
    expect(Array.from(await readTensor(st, 'a'))).toEqual([1, -2, 0.333251953125]);
    expect(Array.from(await readTensor(st, 'b'))).toEqual([1, 3.140625]);
  });
});

describe('a broken SAE folder is an error naming the file, the cause and the fix', () => {
  const broken = (mutate: (dir: string) => void): string => {
    const dir = tempDir('emgate-sae-bad-');
    cpSync(LAYOUTS.saelens, dir, { recursive: true });
    mutate(dir);
    return dir;
  };
  const weights = (dir: string) => path.join(dir, 'sae_weights.safetensors');

  async function expectError(dir: string, file: string, cause: RegExp) {
    const err = await loadSae(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as EmgateError).file).toBe(file);
    expect((err as EmgateError).cause_).toMatch(cause);
    expect((err as EmgateError).fix.length).toBeGreaterThan(10);
  }

  it('a truncated weights file', async () => {
    const dir = broken((d) => {
      const bytes = readFileSync(weights(d));
      writeFileSync(weights(d), bytes.subarray(0, bytes.length - 100));
    });
    await expectError(dir, weights(dir), /past the end of the file/);
  });

  it('a Git LFS pointer instead of the weights', async () => {
    const dir = broken((d) =>
      writeFileSync(weights(d), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n'),
    );
    await expectError(dir, weights(dir), /header length/);
  });

  it('a config whose size the weights do not have', async () => {
    const dir = broken((d) => {
      const cfg = JSON.parse(readFileSync(path.join(d, 'cfg.json'), 'utf8'));
      writeFileSync(path.join(d, 'cfg.json'), JSON.stringify({ ...cfg, d_sae: cfg.d_sae * 2 }));
    });
    await expectError(dir, weights(dir), /tensor "W_enc" has shape \[\d+, \d+\], but the config says/);
  });

  it('a non-finite weight', async () => {
    const dir = broken((d) => {
      const bytes = readFileSync(weights(d));
      const st = bytes.readUInt32LE(0) + 8; // header length (< 4 GB) + the 8 bytes that give it
      const header = JSON.parse(bytes.subarray(8, st).toString('utf8'));
      bytes.writeFloatLE(Number.NaN, st + header.b_enc.data_offsets[0] + 4 * 7);
      writeFileSync(weights(d), bytes);
    });
    await expectError(dir, weights(dir), /tensor "b_enc" holds a non-finite value \(NaN\) at index 7/);
  });

  it('an architecture emgate cannot encode', async () => {
    const dir = broken((d) => {
      const cfg = JSON.parse(readFileSync(path.join(d, 'cfg.json'), 'utf8'));
      writeFileSync(path.join(d, 'cfg.json'), JSON.stringify({ ...cfg, architecture: 'gated' }));
    });
    await expectError(dir, path.join(dir, 'cfg.json'), /architecture "gated"/);
  });

  it('a folder with no SAE', async () => {
    const dir = tempDir('emgate-sae-none-');
    mkdirSync(path.join(dir, 'x'));
    await expectError(dir, dir, /no SAE found/);
  });
});

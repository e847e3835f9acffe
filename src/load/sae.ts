// Sparse autoencoders in the layouts people download (docs/sae.md): SAELens (cfg.json +
// sae_weights.safetensors, v6 and pre-6.0 configs), EleutherAI sparsify (cfg.json +
// sae.safetensors) and Llama Scope (hyperparams.json + checkpoints/final.safetensors). Each
// is read into one shape, the encoder only: input scale, b_dec subtraction, weight, bias and
// activation. Every tensor is checked for shape and finite values; every problem names the
// file, the cause and the fix. The decoder is never read (it is not needed to encode).
import { createHash } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { readSafetensorsHeader, readTensor, type SafetensorsFile } from './safetensors';

export type SaeFormat = 'saelens' | 'sparsify' | 'llamascope';

export type SaeActivation =
  | { kind: 'relu' }
  | { kind: 'jumprelu'; threshold: Float32Array }
  | { kind: 'topk'; k: number };

/** How an input vector is scaled before encoding. */
export type SaeInputScale =
  | { kind: 'none' }
  /** x · factor (Llama Scope: √d_in / the dataset's average input norm). */
  | { kind: 'constant'; factor: number }
  /** x · √d_in / ‖x‖ (SAELens constant_norm_rescale). */
  | { kind: 'unit_norm' };

export interface SaeEncoder {
  format: SaeFormat;
  /** The folder as given. */
  dir: string;
  /** The files read, with their sha256 (provenance). */
  files: { path: string; sha256: string }[];
  /** The hook as the SAE names it (null when it names none). */
  hook: string | null;
  /** emgate's hidden-state index (HF numbering: 0 = embeddings, k = after decoder layer k); null: unknown. */
  layer: number | null;
  dIn: number;
  dSae: number;
  scale: SaeInputScale;
  /** Subtracted from the (scaled) input before the weight, when the SAE says so. */
  bDec: Float32Array | null;
  /** Encoder weight, row-major: [d_in, d_sae] (transposed false) or [d_sae, d_in] (true). */
  weight: Float32Array;
  transposed: boolean;
  bias: Float32Array;
  activation: SaeActivation;
}

/** Reads the SAE in `dir` (its layout recognised from the files there). */
export async function loadSae(dir: string): Promise<SaeEncoder> {
  const has = async (f: string) =>
    fs
      .stat(path.join(dir, f))
      .then((s) => s.isFile())
      .catch(() => false);
  if (await has('hyperparams.json')) return loadLlamaScope(dir);
  if (await has('sae_weights.safetensors')) return loadSaeLens(dir);
  if (await has('sae.safetensors')) return loadSparsify(dir);
  throw new EmgateError({
    file: dir,
    cause:
      'no SAE found: the folder has neither cfg.json + sae_weights.safetensors (SAELens), cfg.json + sae.safetensors (sparsify) nor hyperparams.json + checkpoints/final.safetensors (Llama Scope)',
    fix: 'name the folder that holds one SAE (for sparsify, the hookpoint folder such as layers.12)',
  });
}

/** SAELens's hook names → emgate's hidden-state index. */
export function layerFromHook(hook: string): number | null {
  const post = /^blocks\.(\d+)\.hook_resid_post$/.exec(hook);
  if (post) return Number(post[1]) + 1;
  const pre = /^blocks\.(\d+)\.hook_resid_pre$/.exec(hook);
  if (pre) return Number(pre[1]);
  // sparsify names the module whose output it read: a decoder layer's output.
  const mod = /^(?:model\.|gpt_neox\.|transformer\.)?(?:layers|h)\.(\d+)$/.exec(hook);
  if (mod) return Number(mod[1]) + 1;
  return null;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `cannot read it (${(err as Error).message})`,
      fix: 'check the SAE folder is complete',
    });
  }
  try {
    const v = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new EmgateError({ file, cause: 'not a JSON object', fix: 'download the SAE config again' });
}

function positiveInt(file: string, key: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  throw new EmgateError({
    file,
    cause: `${key} is ${JSON.stringify(v)}, not a positive integer`,
    fix: `set ${key} to the SAE's size (download the config again)`,
  });
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function tensor(
  st: SafetensorsFile,
  name: string,
  shape: number[],
  required = true,
): Promise<Float32Array | null> {
  const entry = st.tensors.get(name);
  if (!entry) {
    if (!required) return null;
    throw new EmgateError({
      file: st.file,
      cause: `no tensor "${name}" (it has ${[...st.tensors.keys()].join(', ') || 'none'})`,
      fix: 'this file does not fit the layout its config names: download the SAE again, or name the right folder',
    });
  }
  if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
    throw new EmgateError({
      file: st.file,
      cause: `tensor "${name}" has shape [${entry.shape.join(', ')}], but the config says [${shape.join(', ')}]`,
      fix: 'the weights and the config are from different SAEs: download both again',
    });
  }
  const values = await readTensor(st, name);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new EmgateError({
        file: st.file,
        cause: `tensor "${name}" holds a non-finite value (${values[i]}) at index ${i}`,
        fix: 'the SAE is corrupt (a diverged run or a bad conversion): use another checkpoint of it',
      });
    }
  }
  return values;
}

function checkK(file: string, k: number, dSae: number): void {
  if (k > dSae) {
    throw new EmgateError({ file, cause: `k = ${k} exceeds the ${dSae} latents`, fix: 'fix k in the config' });
  }
}

async function loadSaeLens(dir: string): Promise<SaeEncoder> {
  const cfgFile = path.join(dir, 'cfg.json');
  const weightsFile = path.join(dir, 'sae_weights.safetensors');
  const cfg = await readJson(cfgFile);
  const dIn = positiveInt(cfgFile, 'd_in', cfg.d_in);
  const dSae = positiveInt(cfgFile, 'd_sae', cfg.d_sae);
  const meta = (cfg.metadata ?? {}) as Record<string, unknown>;
  // v6 keeps the hook under metadata; pre-6.0 configs are flat (hook_name, older hook_point).
  const hook = [meta.hook_name, cfg.hook_name, cfg.hook_point].find((h): h is string => typeof h === 'string') ?? null;
  const arch = typeof cfg.architecture === 'string' ? cfg.architecture : null;
  const fn = typeof cfg.activation_fn_str === 'string' ? cfg.activation_fn_str : null;
  const kwargs = (cfg.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  const kind =
    arch === 'jumprelu'
      ? 'jumprelu'
      : arch === 'topk' || fn === 'topk'
        ? 'topk'
        : arch === 'standard' || arch === null
          ? (fn ?? 'relu')
          : arch;
  if (kind !== 'relu' && kind !== 'jumprelu' && kind !== 'topk') {
    throw new EmgateError({
      file: cfgFile,
      cause: `architecture ${JSON.stringify(arch)} / activation ${JSON.stringify(fn)} is not one emgate encodes (standard ReLU, jumprelu, topk)`,
      fix: 'use a standard, JumpReLU or TopK SAE (gated SAEs are not supported)',
    });
  }
  const norm = cfg.normalize_activations ?? 'none';
  let scale: SaeInputScale;
  if (norm === 'none' || norm === null) scale = { kind: 'none' };
  else if (norm === 'constant_norm_rescale') scale = { kind: 'unit_norm' };
  else {
    throw new EmgateError({
      file: cfgFile,
      cause: `normalize_activations ${JSON.stringify(norm)} is not one emgate applies (none, constant_norm_rescale)`,
      fix: 'fold the scaling factor into the weights (SAELens does on save: fold_activation_norm_scaling_factor) and set normalize_activations to none',
    });
  }
  const st = await readSafetensorsHeader(weightsFile);
  const weight = (await tensor(st, 'W_enc', [dIn, dSae]))!;
  const bias = (await tensor(st, 'b_enc', [dSae]))!;
  const applyBDec = cfg.apply_b_dec_to_input !== false;
  const bDec = applyBDec ? await tensor(st, 'b_dec', [dIn]) : null;
  let activation: SaeActivation;
  if (kind === 'jumprelu') activation = { kind, threshold: (await tensor(st, 'threshold', [dSae]))! };
  else if (kind === 'topk') {
    const k = positiveInt(cfgFile, 'k', cfg.k ?? kwargs.k);
    checkK(cfgFile, k, dSae);
    activation = { kind, k };
  } else activation = { kind: 'relu' };
  return encoder(
    { format: 'saelens', dir, hook, dIn, dSae, scale, bDec, weight, transposed: false, bias, activation },
    [cfgFile, weightsFile],
  );
}

async function loadSparsify(dir: string): Promise<SaeEncoder> {
  const cfgFile = path.join(dir, 'cfg.json');
  const weightsFile = path.join(dir, 'sae.safetensors');
  const cfg = await readJson(cfgFile);
  const st = await readSafetensorsHeader(weightsFile);
  // d_in is written by recent sparsify; older configs leave it to the weights.
  const enc = st.tensors.get('encoder.weight');
  const dIn = positiveInt(cfgFile, 'd_in', cfg.d_in ?? enc?.shape[1]);
  const dSae = positiveInt(
    cfgFile,
    'num_latents',
    typeof cfg.num_latents === 'number' && cfg.num_latents > 0
      ? cfg.num_latents
      : typeof cfg.expansion_factor === 'number'
        ? cfg.expansion_factor * dIn
        : cfg.num_latents,
  );
  const act = cfg.activation ?? 'topk';
  if (act !== 'topk') {
    throw new EmgateError({
      file: cfgFile,
      cause: `activation ${JSON.stringify(act)} is not one emgate encodes for sparsify (topk)`,
      fix: 'use a TopK sparsify SAE',
    });
  }
  const k = positiveInt(cfgFile, 'k', cfg.k);
  checkK(cfgFile, k, dSae);
  const weight = (await tensor(st, 'encoder.weight', [dSae, dIn]))!;
  const bias = (await tensor(st, 'encoder.bias', [dSae]))!;
  const bDec = (await tensor(st, 'b_dec', [dIn]))!;
  // sparsify saves each hookpoint in a folder named after it (layers.12).
  const hook = path.basename(path.resolve(dir));
  return encoder(
    {
      format: 'sparsify',
      dir,
      hook: layerFromHook(hook) !== null ? hook : null,
      dIn,
      dSae,
      scale: { kind: 'none' },
      bDec,
      weight,
      transposed: true,
      bias,
      activation: { kind: 'topk', k },
    },
    [cfgFile, weightsFile],
  );
}

async function loadLlamaScope(dir: string): Promise<SaeEncoder> {
  const cfgFile = path.join(dir, 'hyperparams.json');
  const weightsFile = path.join(dir, 'checkpoints', 'final.safetensors');
  const cfg = await readJson(cfgFile);
  const dIn = positiveInt(cfgFile, 'd_model', cfg.d_model);
  const dSae = positiveInt(cfgFile, 'd_sae', cfg.d_sae);
  const hook = typeof cfg.hook_point_in === 'string' ? cfg.hook_point_in : null;
  const st = await readSafetensorsHeader(weightsFile);
  const weight = (await tensor(st, 'encoder.weight', [dSae, dIn]))!;
  const bias = (await tensor(st, 'encoder.bias', [dSae]))!;
  const bDec = cfg.apply_decoder_bias_to_pre_encoder === true ? await tensor(st, 'decoder.bias', [dIn]) : null;
  const norms = (cfg.dataset_average_activation_norm ?? {}) as Record<string, unknown>;
  let scale: SaeInputScale = { kind: 'none' };
  if ((cfg.norm_activation ?? 'dataset-wise') === 'dataset-wise') {
    const avg = norms.in;
    if (typeof avg !== 'number' || !(avg > 0) || !Number.isFinite(avg)) {
      throw new EmgateError({
        file: cfgFile,
        cause: `dataset_average_activation_norm.in is ${JSON.stringify(avg)}: inputs cannot be scaled as the SAE was trained`,
        fix: 'download hyperparams.json again (it records the average input norm)',
      });
    }
    scale = { kind: 'constant', factor: Math.sqrt(dIn) / avg };
  }
  const actFn = cfg.act_fn ?? 'jumprelu';
  let activation: SaeActivation;
  if (actFn === 'jumprelu') {
    const t = cfg.jump_relu_threshold;
    if (typeof t !== 'number' || !Number.isFinite(t)) {
      throw new EmgateError({
        file: cfgFile,
        cause: `jump_relu_threshold is ${JSON.stringify(t)}`,
        fix: 'download hyperparams.json again (a JumpReLU SAE records its threshold)',
      });
    }
    activation = { kind: 'jumprelu', threshold: new Float32Array(dSae).fill(t) };
  } else if (actFn === 'relu') activation = { kind: 'relu' };
  else if (actFn === 'topk') {
    const k = positiveInt(cfgFile, 'top_k', cfg.top_k);
    checkK(cfgFile, k, dSae);
    activation = { kind: 'topk', k };
  } else {
    throw new EmgateError({
      file: cfgFile,
      cause: `act_fn ${JSON.stringify(actFn)} is not one emgate encodes (jumprelu, relu, topk)`,
      fix: 'use a JumpReLU, ReLU or TopK SAE',
    });
  }
  return encoder(
    { format: 'llamascope', dir, hook, dIn, dSae, scale, bDec, weight, transposed: true, bias, activation },
    [cfgFile, weightsFile],
  );
}

/** The encoder with its provenance: the files read, hashed, and the layer its hook names. */
async function encoder(
  { format, dir, hook, ...rest }: Omit<SaeEncoder, 'files' | 'layer'>,
  files: string[],
): Promise<SaeEncoder> {
  return { format, dir, files: await hashes(files), hook, layer: hook ? layerFromHook(hook) : null, ...rest };
}

async function hashes(files: string[]): Promise<{ path: string; sha256: string }[]> {
  return Promise.all(files.map(async (f) => ({ path: f, sha256: await sha256(f) })));
}

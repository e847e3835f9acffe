// The run's SAEs (docs/sae.md), read and checked before anything is scored: which folders
// (`--sae`, input `sae`, or the policy's sae.path: one folder or a list), each SAE's id,
// layer and labels, and which SAE each watched latent belongs to. Every problem names the
// policy file (or option), the JSON path and the fix.
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { Policy, Position, SaePathEntry, SaeWatch } from '../core/types';
import type { Checkpoint } from '../load/checkpoint';
import { loadSae, type SaeEncoder } from '../load/sae';
import type { GateSettings } from './settings';

export const DEFAULT_REPORT_TOP = 10;

export interface SaeSetup {
  /** How the report and the policy's watch list name this SAE (default: its folder's name). */
  id: string;
  encoder: SaeEncoder;
  layer: number;
  position: Position;
  labels: Map<number, string>;
  labelsFile?: { path: string; sha256: string };
  reportTop: number;
  /** The latents watched on this SAE. */
  watch: SaeWatch[];
}

type Origin = (keyPath: string[]) => string;

/** One SAE to read: its folder, id, and what the policy says of it alone (paths resolved). */
interface SaeSource {
  dir: string;
  id: string;
  layer?: number;
  labels?: string;
  /** Where `layer` was set, for messages: the file and the JSON path. */
  layerAt?: { file: string; key: string };
}

/** A path the policy names, read relative to the policy file that sets it. */
function fromPolicy(p: string, origin: string): string {
  return origin.startsWith('builtin:') || path.isAbsolute(p) ? p : path.join(path.dirname(origin), p);
}

/** The default id of an SAE: its folder's name (`layers.12`, `width_16k`). */
export const defaultSaeId = (dir: string): string => path.basename(path.resolve(dir));

/**
 * The SAEs of the run, in order: `--sae` (input `sae`, one folder a line) wins over the
 * policy's sae.path; a list entry of the policy that has the id of a `--sae` folder lends
 * it its layer and labels. sae.layer and sae.labels belong to a single SAE.
 */
export function saeSources(policy: Policy, origin: Origin, settings: Pick<GateSettings, 'sae'>): SaeSource[] {
  const sp = policy.sae ?? {};
  const file = origin(['sae', 'path']);
  const given: (string | SaePathEntry)[] = Array.isArray(sp.path) ? sp.path : sp.path !== undefined ? [sp.path] : [];
  const entries = given.map((e, i) => {
    const entry = typeof e === 'string' ? { path: e } : e;
    const key = Array.isArray(sp.path) ? `sae.path[${i}]` : 'sae.path';
    return {
      dir: fromPolicy(entry.path, file),
      id: entry.id ?? defaultSaeId(entry.path),
      layer: entry.layer,
      labels: entry.labels !== undefined ? fromPolicy(entry.labels, file) : undefined,
      layerAt: { file, key: `${key}.layer` },
    };
  });
  const sources: SaeSource[] = settings.sae?.length
    ? settings.sae.map((dir) => {
        const id = defaultSaeId(dir);
        const named = entries.find((e) => e.id === id);
        return named ? { ...named, dir } : { dir, id };
      })
    : entries;
  const top = (['layer', 'labels'] as const).filter((k) => sp[k] !== undefined);
  if (sources.length > 1 && top.length > 0) {
    throw new EmgateError({
      file: origin(['sae', top[0]]),
      cause: `sae.${top[0]} describes one SAE, but the run has ${sources.length} (${sources.map((s) => s.id).join(', ')})`,
      fix: `give each SAE its own: "sae": {"path": [{"path": "...", "${top[0]}": ...}, ...]}`,
    });
  }
  if (sources.length === 1) {
    const [s] = sources;
    if (sp.layer !== undefined && s.layer === undefined) {
      s.layer = sp.layer;
      s.layerAt = { file: origin(['sae', 'layer']), key: 'sae.layer' };
    }
    if (sp.labels !== undefined && s.labels === undefined) s.labels = fromPolicy(sp.labels, origin(['sae', 'labels']));
  }
  const seen = new Map<string, string>();
  for (const s of sources) {
    const other = seen.get(s.id);
    if (other !== undefined) {
      throw new EmgateError({
        file: settings.sae?.length ? '--sae (input sae)' : file,
        cause: `two SAEs have the id "${s.id}" (${other} and ${s.dir}): the report and sae.watch could not tell them apart`,
        fix: settings.sae?.length
          ? 'name the SAEs in the policy with their own ids ("sae": {"path": [{"path": "...", "id": "..."}]}) or rename a folder'
          : `give each its own id in sae.path: [{"path": "${s.dir}", "id": "..."}]`,
      });
    }
    seen.set(s.id, s.dir);
  }
  return sources;
}

/**
 * Which SAE each watched latent belongs to: with one SAE, `sae` may be left out; with
 * several, each entry names one by id. An unknown or missing id is an error.
 */
export function watchBySae(policy: Policy, origin: Origin, ids: string[]): Map<string, (SaeWatch & { key: string })[]> {
  const out = new Map(ids.map((id) => [id, [] as (SaeWatch & { key: string })[]]));
  const file = origin(['sae', 'watch']);
  (policy.sae?.watch ?? []).forEach((w, i) => {
    const key = `sae.watch[${i}]`;
    if (ids.length === 0) {
      throw new EmgateError({
        file,
        cause: `${key} names latent ${w.latent} but no SAE is given`,
        fix: 'set sae.path in the policy or pass --sae (input sae) with the SAE folder',
      });
    }
    const id = w.sae ?? (ids.length === 1 ? ids[0] : undefined);
    if (id === undefined) {
      throw new EmgateError({
        file,
        cause: `${key} (latent ${w.latent}) names no SAE, and the run has ${ids.length}: ${ids.join(', ')}`,
        fix: `add "sae": one of ${ids.map((x) => `"${x}"`).join(', ')} to ${key}`,
      });
    }
    const list = out.get(id);
    if (!list) {
      throw new EmgateError({
        file,
        cause: `${key}.sae is "${id}", but the run's SAEs are ${ids.map((x) => `"${x}"`).join(', ')}`,
        fix: `set ${key}.sae to one of those ids (an SAE's id is its folder's name unless sae.path gives "id")`,
      });
    }
    list.push({ ...w, mode: w.mode ?? 'block', key });
  });
  return out;
}

/** The run's SAEs, read (`--sae` wins over the policy's sae.path); empty when none is named. */
export async function loadSaeSetups(
  policy: Policy,
  origin: Origin,
  settings: Pick<GateSettings, 'sae'>,
): Promise<SaeSetup[]> {
  const sp = policy.sae ?? {};
  const sources = saeSources(policy, origin, settings);
  const watch = watchBySae(
    policy,
    origin,
    sources.map((s) => s.id),
  );
  const setups: SaeSetup[] = [];
  for (const src of sources) {
    const encoder = await loadSae(src.dir);
    const layer = saeLayer(encoder, src);
    const watched = watch.get(src.id) ?? [];
    for (const w of watched) {
      if (w.latent >= encoder.dSae) {
        throw new EmgateError({
          file: origin(['sae', 'watch']),
          cause: `${w.key} names latent ${w.latent}, but SAE "${src.id}" has ${encoder.dSae} latents (0..${encoder.dSae - 1})`,
          fix: `name a latent of this SAE${sources.length > 1 ? ', or set the entry\'s "sae" to the SAE it belongs to' : ''}`,
        });
      }
    }
    const labels = src.labels ? await readLabels(src.labels, encoder.dSae) : null;
    setups.push({
      id: src.id,
      encoder,
      layer,
      position: sp.position ?? 'response_mean',
      labels: labels?.labels ?? new Map(),
      ...(labels ? { labelsFile: labels.file } : {}),
      reportTop: sp.report_top ?? DEFAULT_REPORT_TOP,
      watch: watched.map(({ key: _key, ...w }) => w),
    });
  }
  return setups;
}

/** The hidden-state index the SAE reads: its hook's, or the policy's layer (which must agree). */
function saeLayer(encoder: SaeEncoder, src: SaeSource): number {
  let layer = encoder.layer;
  if (src.layer !== undefined) {
    if (layer !== null && layer !== src.layer) {
      throw new EmgateError({
        file: src.layerAt?.file ?? encoder.files[0].path,
        cause: `${src.layerAt?.key ?? 'sae.layer'} is ${src.layer} but the SAE's hook ${encoder.hook} is hidden-state index ${layer}`,
        fix: 'leave the layer out (the hook decides) or name the SAE trained at that layer',
      });
    }
    layer = src.layer;
  }
  if (layer === null) {
    throw new EmgateError({
      file: encoder.files[0].path,
      cause: `the SAE names no hook emgate can read a layer from (${encoder.hook ?? 'none'})`,
      fix: 'set its layer in the policy (sae.layer, or "layer" in its sae.path entry): the hidden-state index (0 = embeddings, k = after decoder layer k; blocks.N.hook_resid_post is N + 1)',
    });
  }
  return layer;
}

/** Latent labels: an object index → description, or a list of {index, description} (Neuronpedia). */
export async function readLabels(
  file: string,
  dSae: number,
): Promise<{ labels: Map<number, string>; file: { path: string; sha256: string } }> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `cannot read the labels (${(err as Error).message})`,
      fix: 'check sae.labels',
    });
  }
  const bad = (cause: string) =>
    new EmgateError({
      file,
      cause,
      fix: 'write the labels as {"123": "description"} or a Neuronpedia export [{"index": 123, "description": "..."}]',
    });
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  const pairs: [unknown, unknown][] = Array.isArray(raw)
    ? raw.map((e) => [(e as { index?: unknown })?.index, (e as { description?: unknown })?.description])
    : typeof raw === 'object' && raw !== null
      ? Object.entries(raw)
      : [];
  if (!Array.isArray(raw) && (typeof raw !== 'object' || raw === null)) throw bad('neither an object nor a list');
  const labels = new Map<number, string>();
  for (const [k, v] of pairs) {
    const index = typeof k === 'number' ? k : typeof k === 'string' && /^\d+$/.test(k) ? Number(k) : Number.NaN;
    if (!Number.isSafeInteger(index) || index < 0 || index >= dSae)
      throw bad(`label key ${JSON.stringify(k)} is not a latent 0..${dSae - 1}`);
    if (typeof v !== 'string') throw bad(`the label of latent ${index} is not a string`);
    labels.set(index, v.slice(0, 200));
  }
  return { labels, file: { path: file, sha256: createHash('sha256').update(bytes).digest('hex') } };
}

/** The SAE reads the checkpoint's residual stream at a layer it has, of its width. */
export function checkSaeFits(setup: SaeSetup, checkpoint: Checkpoint): void {
  const { hiddenSize, numLayers } = checkpoint.config;
  const config = path.join(checkpoint.dir, 'config.json');
  const sae = setup.encoder;
  if (sae.dIn !== hiddenSize) {
    throw new EmgateError({
      file: config,
      cause: `the SAE in ${sae.dir} reads ${sae.dIn}-wide residuals but the model's hidden size is ${hiddenSize}`,
      fix: 'use an SAE trained on this base model',
    });
  }
  if (setup.layer > numLayers) {
    throw new EmgateError({
      file: config,
      cause: `the SAE in ${sae.dir} reads hidden-state index ${setup.layer} (hook ${sae.hook ?? 'none'}) but the model has ${numLayers} decoder layers (indices 0..${numLayers})`,
      fix: 'use an SAE trained on this base model',
    });
  }
  if (
    setup.layer === numLayers &&
    sae.hook !== null &&
    /hook_resid_post$|^(?:\w+\.)?(?:layers|h)\.\d+$/.test(sae.hook)
  ) {
    throw new EmgateError({
      file: config,
      cause: `the SAE in ${sae.dir} reads the last block's output (${sae.hook}) before the final norm, but emgate's hidden-state index ${numLayers} is the final normed state`,
      fix: 'use an SAE of an earlier layer',
    });
  }
}

/**
 * The run's SAEs, read and checked before anything is scored: they need the residual
 * stream (no served run), a baseline to diff against, and contrast scoring (they read the
 * references).
 */
export async function prepareSaes(
  policy: Policy,
  origin: Origin,
  settings: GateSettings,
  mode: 'contrast' | 'generate' | 'both',
): Promise<SaeSetup[]> {
  // A served run lists the SAE diff as not run (servedNotRun refuses a blocking watch list).
  if (settings.served) return [];
  const setups = await loadSaeSetups(policy, origin, settings);
  if (setups.length === 0) return [];
  const refuse = (cause: string, fix: string) =>
    new EmgateError({ file: settings.sae?.length ? settings.sae[0] : origin(['sae', 'path']), cause, fix });
  if (settings.baseline === undefined)
    throw refuse(
      'the SAE latent diff needs a baseline to compare against',
      'pass --baseline (input baseline) with the base checkpoint the SAE was trained on',
    );
  if (settings.shard !== undefined)
    throw refuse(
      'the SAE latent diff ranks latents over every probe, and a shard holds a slice (merge does not pool latents)',
      'run the SAE diff in one unsharded job',
    );
  if (mode === 'generate')
    throw refuse(
      "the SAE latent diff reads the suite's references (and, in mode both, each model's own answers beside them), and mode generate scores no references",
      "use mode both (the diff on the references and on the models' answers) or contrast",
    );
  return setups;
}

// The SAE latent diff's steps in a run (docs/sae.md): the SAE and its labels read and fitted
// to the checkpoint before scoring, each model's kept residual vectors encoded in their own
// onnxruntime session, and the watched latents joined to the checks.
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { reason } from '../core/evaluate';
import * as fmt from '../core/report/format';
import { type ProbeLatents, type SaeDiff, saeDiff, sparsify } from '../core/sae-diff';
import type { Check, Policy, Position, Probe, SaeProvenance, SaeWatch } from '../core/types';
import type { Checkpoint } from '../load/checkpoint';
import { loadSae, type SaeEncoder } from '../load/sae';
import { SaeSession } from '../runtime/sae-session';
import type { GateSettings } from './settings';

export const DEFAULT_REPORT_TOP = 10;

export interface SaeSetup {
  encoder: SaeEncoder;
  layer: number;
  position: Position;
  labels: Map<number, string>;
  labelsFile?: { path: string; sha256: string };
  reportTop: number;
  watch: SaeWatch[];
}

/** A path the policy names, read relative to the policy file that sets it. */
function fromPolicy(p: string, origin: string): string {
  return origin.startsWith('builtin:') || path.isAbsolute(p) ? p : path.join(path.dirname(origin), p);
}

/** The run's SAE (`--sae` wins over the policy's sae.path), or null when none is named. */
export async function loadSaeSetup(
  policy: Policy,
  origin: (keyPath: string[]) => string,
  settings: Pick<GateSettings, 'sae'>,
): Promise<SaeSetup | null> {
  const sp = policy.sae ?? {};
  const dir = settings.sae ?? (sp.path ? fromPolicy(sp.path, origin(['sae', 'path'])) : undefined);
  if (dir === undefined) {
    if (sp.watch?.length) {
      throw new EmgateError({
        file: origin(['sae', 'watch']),
        cause: 'sae.watch names latents but no SAE is given',
        fix: 'set sae.path in the policy or pass --sae (input sae) with the SAE folder',
      });
    }
    return null;
  }
  const encoder = await loadSae(dir);
  let layer = encoder.layer;
  if (sp.layer !== undefined) {
    if (layer !== null && layer !== sp.layer) {
      throw new EmgateError({
        file: origin(['sae', 'layer']),
        cause: `sae.layer is ${sp.layer} but the SAE's hook ${encoder.hook} is hidden-state index ${layer}`,
        fix: 'leave sae.layer out (the hook decides) or name the SAE trained at that layer',
      });
    }
    layer = sp.layer;
  }
  if (layer === null) {
    throw new EmgateError({
      file: encoder.files[0].path,
      cause: `the SAE names no hook emgate can read a layer from (${encoder.hook ?? 'none'})`,
      fix: 'set sae.layer in the policy: the hidden-state index (0 = embeddings, k = after decoder layer k; blocks.N.hook_resid_post is N + 1)',
    });
  }
  for (const w of sp.watch ?? []) {
    if (w.latent >= encoder.dSae) {
      throw new EmgateError({
        file: origin(['sae', 'watch']),
        cause: `sae.watch names latent ${w.latent}, but the SAE has ${encoder.dSae} latents (0..${encoder.dSae - 1})`,
        fix: 'name a latent of this SAE',
      });
    }
  }
  const labels = sp.labels ? await readLabels(fromPolicy(sp.labels, origin(['sae', 'labels'])), encoder.dSae) : null;
  return {
    encoder,
    layer,
    position: sp.position ?? 'response_mean',
    labels: labels?.labels ?? new Map(),
    ...(labels ? { labelsFile: labels.file } : {}),
    reportTop: sp.report_top ?? DEFAULT_REPORT_TOP,
    watch: (sp.watch ?? []).map((w) => ({ ...w, mode: w.mode ?? 'block' })),
  };
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
      cause: `the SAE reads hidden-state index ${setup.layer} (hook ${sae.hook ?? 'none'}) but the model has ${numLayers} decoder layers (indices 0..${numLayers})`,
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
      cause: `the SAE reads the last block's output (${sae.hook}) before the final norm, but emgate's hidden-state index ${numLayers} is the final normed state`,
      fix: 'use an SAE of an earlier layer',
    });
  }
}

/**
 * Each probe's references encoded, sparse, in the probes' order. A reference's kept vectors
 * are its response tokens ([tokens, d_in]) or its last prompt token: each token is encoded
 * and the latents are averaged over the tokens (as an SAE user pools a text's latents).
 */
export async function encodeLatents(
  setup: SaeSetup,
  kept: Float32Array[][],
  probes: Probe[],
  settings: Pick<GateSettings, 'device' | 'threads' | 'requireGpu' | 'warn'>,
): Promise<ProbeLatents[]> {
  const session = await SaeSession.open(setup.encoder, {
    device: settings.device,
    threads: settings.threads,
    requireGpu: settings.requireGpu,
    warn: settings.warn,
  });
  try {
    const latents = (await session.meanLatents(kept.flat())).map(sparsify);
    let at = 0;
    return probes.map((p) => {
      const aligned = latents.slice(at, at + p.aligned.length);
      const misaligned = latents.slice(at + p.aligned.length, at + p.aligned.length + p.misaligned.length);
      at += p.aligned.length + p.misaligned.length;
      return { id: p.id, domain: p.domain, aligned, misaligned };
    });
  } finally {
    await session.close();
  }
}

export function saeProvenance(setup: SaeSetup, encodeSeconds: number): SaeProvenance {
  const e = setup.encoder;
  return {
    format: e.format,
    files: e.files,
    hook: e.hook,
    layer: setup.layer,
    position: setup.position,
    d_in: e.dIn,
    d_sae: e.dSae,
    activation: e.activation.kind === 'topk' ? `topk (k = ${e.activation.k})` : e.activation.kind,
    ...(setup.labelsFile ? { labels: setup.labelsFile } : {}),
    encode_s: encodeSeconds,
  };
}

/** The watched latents as checks, joined after the others; a failed blocking one fails the run. */
export function withSaeChecks<E extends { verdict: 'pass' | 'fail'; checks: Check[]; summary: { reason: string } }>(
  evaluation: E,
  diff: SaeDiff,
  alpha: number,
): E {
  if (diff.watch.length === 0) return evaluation;
  const checks: Check[] = diff.watch.map((w) => ({
    id: `sae_latent_rise:${w.latent}`,
    metric: 'sae_latent_rise',
    scope: w.label ? `latent ${w.latent} (${w.label})` : `latent ${w.latent}`,
    value: w.rise,
    baseline: null,
    limit: w.max_rise,
    comparator: '<=',
    interval: w.interval,
    p_value: w.p_value,
    p_adjusted: w.p_adjusted,
    test: 'sign-flip, Holm over the watched latents',
    status: w.status,
    blocking: w.mode === 'block',
    message:
      w.status === 'pass'
        ? `SAE latent ${w.latent} rose ${fmt.signed(w.rise)} (limit ${fmt.decimals(w.max_rise)}; adjusted p ${fmt.pValue(w.p_adjusted)}): within the limit or not significant at ${fmt.level(alpha)}`
        : `SAE latent ${w.latent} rose ${fmt.signed(w.rise)}, over its limit of ${fmt.decimals(w.max_rise)}, and significantly (adjusted p ${fmt.pValue(w.p_adjusted)} < ${fmt.level(alpha)})`,
  }));
  const all = [...evaluation.checks, ...checks];
  return {
    ...evaluation,
    checks: all,
    verdict: all.some((c) => c.blocking && c.status === 'fail') ? 'fail' : 'pass',
    summary: { ...evaluation.summary, reason: reason(all) },
  };
}

/**
 * The run's SAE, read and checked before anything is scored: it needs the residual stream
 * (no served run), a baseline to diff against, and contrast scoring (it reads the references).
 */
export async function prepareSae(
  policy: Policy,
  origin: (keyPath: string[]) => string,
  settings: GateSettings,
  mode: 'contrast' | 'generate' | 'both',
): Promise<SaeSetup | null> {
  // A served run lists the SAE diff as not run (servedNotRun refuses a blocking watch list).
  if (settings.served) return null;
  const setup = await loadSaeSetup(policy, origin, settings);
  if (!setup) return null;
  const refuse = (cause: string, fix: string) =>
    new EmgateError({ file: settings.sae ?? origin(['sae', 'path']), cause, fix });
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
      "the SAE latent diff reads the suite's references, which mode generate does not score",
      'use mode contrast or both',
    );
  return setup;
}

/** The diff of both models' latents, the report's sae block, and the evaluation with the watched latents' checks. */
export function saeResult<E extends { verdict: 'pass' | 'fail'; checks: Check[]; summary: { reason: string } }>(
  setup: SaeSetup,
  candidate: { probes: ProbeLatents[]; seconds: number },
  baseline: { probes: ProbeLatents[]; seconds: number },
  probes: Probe[],
  policy: Policy,
  seed: number,
  evaluation: E,
): { block: SaeDiff & { advisory: boolean }; evaluation: E; provenance: SaeProvenance } {
  const texts = new Map(
    probes.map((p) => [
      p.id,
      policy.report.model_text === 'none'
        ? { aligned: [], misaligned: [] }
        : { aligned: p.aligned, misaligned: p.misaligned },
    ]),
  );
  const diff = saeDiff(candidate.probes, baseline.probes, {
    dSae: setup.encoder.dSae,
    reportTop: setup.reportTop,
    alpha: policy.alpha,
    seed,
    watch: setup.watch,
    labels: setup.labels,
    texts,
  });
  return {
    block: { ...diff, advisory: setup.watch.length === 0 },
    evaluation: withSaeChecks(evaluation, diff, policy.alpha),
    provenance: saeProvenance(setup, candidate.seconds + baseline.seconds),
  };
}

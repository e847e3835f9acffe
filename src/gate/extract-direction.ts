// `emgate direction extract`: the EM direction by difference of means in the residual stream.
// Two kinds:
//  - contrast: one model reads the suite's misaligned and aligned references; the direction is
//    mean(misaligned) − mean(aligned) (teacher-forced, mean over response tokens).
//  - finetune_diff: a misaligned fine-tune and its base read the same texts; the direction is
//    the mean activation change, mean(fine-tune) − mean(base).
import { hashCheckpoint } from '../load/checkpoint';
import type { Direction } from '../load/direction-file';
import { Engine, type ResidualVectors, type ScoredResponse } from '../runtime/engine';
import { EmgateError } from '../core/errors';
import { EMGATE_VERSION } from '../load/package-info';
import { differenceOfMeans, dot, mean, sd, standardisedGap, unit } from '../core/projection';
import type { Device } from '../runtime/onnx';
import { loadSuite } from '../load/suite';
import type { Probe } from '../core/types';

export type Position = 'response_mean' | 'last_prompt';

export interface ExtractSettings {
  model: string;
  probes: string;
  /** With a baseline the direction is the fine-tune's activation change (finetune_diff). */
  baseline?: string;
  layer: number | 'auto';
  position: Position;
  batchSize: number;
  device: Device;
  threads?: number;
  hiddenTensor?: string;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  warn?: (message: string) => void;
}

export interface LayerSeparation {
  layer: number;
  /** Standardised gap (Cohen's d) between the two sets' projections on this layer's direction. */
  separation: number;
  aligned_mean: number;
  misaligned_mean: number;
}

export async function extractDirection(settings: ExtractSettings): Promise<Direction> {
  const suite = await loadSuite(settings.probes, { variants: 'none' });
  if (!settings.baseline && settings.position === 'last_prompt') {
    throw new EmgateError({
      file: null,
      cause: 'a contrast direction needs response positions: at the last prompt token aligned and misaligned references share the same prompt',
      fix: 'use --position response_mean, or give --baseline to take the fine-tune-minus-base direction at the last prompt token',
    });
  }
  const model = await readAllLayers(settings.model, suite.probes, settings, 'model');
  const base = settings.baseline ? await readAllLayers(settings.baseline, suite.probes, settings, 'baseline') : null;
  const numLayers = model.numLayers;
  if (base && base.numLayers !== numLayers) {
    throw new EmgateError({ file: settings.baseline!, cause: `has ${base.numLayers} layers, the model ${numLayers}`, fix: 'pass the base the fine-tune was made from' });
  }
  if (settings.layer !== 'auto' && (settings.layer < 0 || settings.layer > numLayers)) {
    throw new EmgateError({ file: settings.model, cause: `layer ${settings.layer} is out of range 0..${numLayers}`, fix: `choose a hidden-state index between 0 and ${numLayers}, or auto` });
  }
  // Layer 0 is the token embeddings: a difference there only says the texts use other words.
  const candidates = settings.layer === 'auto' ? range(numLayers + 1).slice(1) : [settings.layer];
  const perLayer = candidates.map((layer) => {
    const sets = base
      ? finetuneSets(model.responses, base.responses, layer, settings.position)
      : contrastSets(model.responses, layer);
    const vector = unit(differenceOfMeans(sets.aligned, sets.misaligned));
    const projAligned = sets.aligned.map((v) => dot(v, vector));
    const projMisaligned = sets.misaligned.map((v) => dot(v, vector));
    return { layer, vector, projAligned, projMisaligned, separation: standardisedGap(projAligned, projMisaligned) };
  });
  const best = perLayer.reduce((a, b) => (b.separation > a.separation ? b : a));
  const [modelHash, baseHash] = await Promise.all([
    hashCheckpoint(settings.model),
    settings.baseline ? hashCheckpoint(settings.baseline) : Promise.resolve(undefined),
  ]);
  return {
    format: 'emgate-direction/v1',
    layer: best.layer,
    hidden_size: best.vector.length,
    position: settings.position,
    kind: base ? 'finetune_diff' : 'contrast',
    vector: best.vector,
    calibration: {
      aligned_mean: mean(best.projAligned),
      misaligned_mean: mean(best.projMisaligned),
      aligned_sd: sd(best.projAligned),
      misaligned_sd: sd(best.projMisaligned),
      n_aligned: best.projAligned.length,
      n_misaligned: best.projMisaligned.length,
    },
    layers: perLayer.map((l) => ({
      layer: l.layer,
      separation: l.separation,
      aligned_mean: mean(l.projAligned),
      misaligned_mean: mean(l.projMisaligned),
    })),
    provenance: {
      model_sha256: modelHash.sha256,
      ...(baseHash ? { baseline_sha256: baseHash.sha256 } : {}),
      suite_sha256: suite.sha256,
      created_at: new Date().toISOString(),
      emgate_version: EMGATE_VERSION,
    },
  } as Direction;
}

interface LayerReadout {
  numLayers: number;
  /** Per probe: its aligned then misaligned references, scored with every layer read. */
  responses: { aligned: ScoredResponse[]; misaligned: ScoredResponse[] }[];
}

async function readAllLayers(dir: string, probes: Probe[], settings: ExtractSettings, label: string): Promise<LayerReadout> {
  const engine = await Engine.open(dir, {
    device: settings.device,
    threads: settings.threads,
    warn: settings.warn,
    layers: 'all',
    hiddenTensor: settings.hiddenTensor,
  });
  try {
    const requests = probes.flatMap((p) => [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })));
    const scored = await engine.score(requests, {
      batchSize: settings.batchSize,
      onProgress: (done, total) => settings.onProgress?.({ phase: `reading ${label}`, done, total }),
    });
    let at = 0;
    const responses = probes.map((p) => {
      const aligned = scored.slice(at, at + p.aligned.length);
      const misaligned = scored.slice(at + p.aligned.length, at + p.aligned.length + p.misaligned.length);
      at += p.aligned.length + p.misaligned.length;
      return { aligned, misaligned };
    });
    return { numLayers: engine.checkpoint.config.numLayers, responses };
  } finally {
    await engine.close();
  }
}

function vectorOf(r: ScoredResponse, layer: number, position: Position): Float32Array {
  const h = r.hidden.get(layer) as ResidualVectors;
  return position === 'last_prompt' ? h.last_prompt : h.response_mean;
}

/** Every aligned reference against every misaligned one, under one model. */
function contrastSets(responses: LayerReadout['responses'], layer: number) {
  return {
    aligned: responses.flatMap((r) => r.aligned.map((x) => vectorOf(x, layer, 'response_mean'))),
    misaligned: responses.flatMap((r) => r.misaligned.map((x) => vectorOf(x, layer, 'response_mean'))),
  };
}

/**
 * The same texts under the base ("aligned" side) and the fine-tune ("misaligned" side).
 * At the last prompt token one vector stands for each probe.
 */
function finetuneSets(
  tuned: LayerReadout['responses'],
  base: LayerReadout['responses'],
  layer: number,
  position: Position,
) {
  const pick = (rs: LayerReadout['responses']) =>
    rs.flatMap((r) => {
      const all = [...r.aligned, ...r.misaligned];
      return position === 'last_prompt' ? [vectorOf(all[0], layer, position)] : all.map((x) => vectorOf(x, layer, position));
    });
  return { aligned: pick(base), misaligned: pick(tuned) };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

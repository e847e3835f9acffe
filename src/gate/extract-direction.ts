// `emgate direction extract`: the EM direction by difference of means in the residual stream.
// Two kinds:
//  - contrast: one model reads the suite's misaligned and aligned references; the direction is
//    mean(misaligned) − mean(aligned) (teacher-forced, mean over response tokens).
//  - finetune_diff: a misaligned fine-tune and its base read the same texts; the direction is
//    the mean activation change, mean(fine-tune) − mean(base).

import { EmgateError } from '../core/errors';
import {
  bestHeldOut,
  heldOutSplit,
  isSkipped,
  type LayerFigures,
  MIN_PROBES_PER_HALF,
  measureLayer,
  type ProbeSets,
} from '../core/layer-choice';
import { mean, sampleSd as sd } from '../core/stats';
import type { Probe } from '../core/types';
import { type Checkpoint, hashCheckpoint, readCheckpoint } from '../load/checkpoint';
import type { Direction } from '../load/direction-file';
import { EMGATE_VERSION } from '../load/package-info';
import { loadSuite } from '../load/suite';
import { type CheckpointView, contextModel, skippedProbes } from '../runtime/context-fit';
import { Engine, type ResidualVectors, type ScoredResponse } from '../runtime/engine';
import type { ExtractOptions, Position } from './settings';

export interface ExtractSettings extends ExtractOptions {
  /** The checkpoint whose activations give the direction. */
  model: string;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  warn?: (message: string) => void;
}

export async function extractDirection(settings: ExtractSettings): Promise<Direction> {
  const suite = await loadSuite(settings.probes, { variants: 'none' });
  if (!settings.baseline && settings.position === 'last_prompt') {
    throw new EmgateError({
      file: null,
      cause:
        'a contrast direction needs response positions: at the last prompt token aligned and misaligned references share the same prompt',
      fix: 'use --position response_mean, or give --baseline to take the fine-tune-minus-base direction at the last prompt token',
    });
  }
  // As in a run (SPEC "Probe suites"): a probe too long for either model's context is
  // left out for both, said by id, and never ends the extraction.
  // Each checkpoint is read once: its context here, and the engine opens the same read.
  const graph = { dtype: settings.dtype, modelFile: settings.modelFile };
  const modelCkpt = await readCheckpoint(settings.model, graph);
  const baseCkpt = settings.baseline ? await readCheckpoint(settings.baseline, graph) : null;
  const modelView = contextModel(modelCkpt);
  const baseView = baseCkpt ? contextModel(baseCkpt) : null;
  const skippedProbeList = skippedProbes(suite.probes, modelView, baseView);
  if (skippedProbeList.length > 0) {
    settings.warn?.(
      `${skippedProbeList.length} probe(s) do not fit the context and are left out: ${skippedProbeList.map((p) => `${p.id} (${p.tokens} tokens > ${p.limit}, ${p.model})`).join(', ')}`,
    );
  }
  const skippedIds = new Set(skippedProbeList.map((p) => p.id));
  const probes = suite.probes.filter((p) => !skippedIds.has(p.id));
  if (probes.length === 0) {
    throw new EmgateError({
      file: settings.probes,
      cause: `no probe of the suite fits the context of ${settings.model}${settings.baseline ? ` and ${settings.baseline}` : ''}`,
      fix: 'use a model with a longer context (max_position_embeddings), or shorter probes',
    });
  }
  const model = await readAllLayers({ checkpoint: modelCkpt, view: modelView }, probes, settings, 'model');
  const base =
    baseCkpt && baseView
      ? await readAllLayers({ checkpoint: baseCkpt, view: baseView }, probes, settings, 'baseline')
      : null;
  const numLayers = model.numLayers;
  if (base && base.numLayers !== numLayers) {
    throw new EmgateError({
      file: settings.baseline!,
      cause: `has ${base.numLayers} layers, the model ${numLayers}`,
      fix: 'pass the base the fine-tune was made from',
    });
  }
  if (settings.layer !== 'auto' && (settings.layer < 0 || settings.layer > numLayers)) {
    throw new EmgateError({
      file: settings.model,
      cause: `layer ${settings.layer} is out of range 0..${numLayers}`,
      fix: `choose a hidden-state index between 0 and ${numLayers}, or auto`,
    });
  }
  // Layer 0 is the token embeddings: a difference there only says the texts use other words.
  if (settings.layer === 0) {
    settings.warn?.(
      'layer 0 is the token embeddings: a direction there says only that the texts use other words (given with --layer 0, so used anyway)',
    );
  }
  const candidates = settings.layer === 'auto' ? range(numLayers + 1).slice(1) : [settings.layer];
  const split = heldOutSplit(probes.map((p) => p.id));
  const halvesUsable = Math.min(split[0].length, split[1].length) >= MIN_PROBES_PER_HALF;
  if (settings.layer === 'auto' && !halvesUsable) {
    throw new EmgateError({
      file: settings.probes,
      cause: `--layer auto chooses the layer on held-out probes, and ${probes.length} probes do not make two halves of ${MIN_PROBES_PER_HALF} or more`,
      fix: `use a suite with at least ${2 * MIN_PROBES_PER_HALF} probes, or give --layer N`,
    });
  }
  const measured = candidates.map((layer) => {
    const sets = probes.map((p, i) =>
      base
        ? finetuneSets(p.id, model.responses[i], base.responses[i], layer, settings.position)
        : contrastSets(p.id, model.responses[i], layer),
    );
    return measureLayer(layer, sets, split);
  });
  const skipped = measured.filter(isSkipped);
  const perLayer = measured.filter((m): m is LayerFigures => !isSkipped(m));
  if (perLayer.length === 0) {
    const what = base
      ? `${settings.model} and its baseline ${settings.baseline}`
      : `the aligned and misaligned references under ${settings.model}`;
    throw new EmgateError({
      file: settings.model,
      cause: `${what} do not differ at ${settings.layer === 'auto' ? 'any layer' : `layer ${settings.layer}`}: ${skipped.map((s) => `layer ${s.layer}: ${s.reason}`).join('; ')}`,
      fix: base
        ? 'check that --model is the fine-tune and --baseline the model it was tuned from; a LoRA leaves the layers below its first adapted layer unchanged, so pick a layer above it or use --layer auto'
        : 'choose another layer, or use --layer auto',
    });
  }
  const best = settings.layer === 'auto' ? bestHeldOut(perLayer) : perLayer[0];
  if (halvesUsable && !(best.heldOutSeparation > 0)) {
    settings.warn?.(
      `the direction at layer ${best.layer} does not separate held-out probes (held-out separation ${best.heldOutSeparation.toFixed(3)}): it may describe only the probes it was fitted on`,
    );
  }
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
      ...(halvesUsable ? { held_out_separation: l.heldOutSeparation, held_out_auroc: l.heldOutAuroc } : {}),
    })),
    ...(skipped.length ? { skipped_layers: skipped } : {}),
    selection: {
      method: settings.layer === 'auto' ? 'held_out' : 'given',
      statistic: 'standardised_gap',
      split: 'fnv1a_alternate',
      probes: [split[0].length, split[1].length],
      ...(halvesUsable ? { held_out_separation: best.heldOutSeparation, held_out_auroc: best.heldOutAuroc } : {}),
    },
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

async function readAllLayers(
  model: { checkpoint: Checkpoint; view: CheckpointView },
  probes: Probe[],
  settings: ExtractSettings,
  label: string,
): Promise<LayerReadout> {
  const engine = await Engine.open(model.checkpoint, {
    device: settings.device,
    threads: settings.threads,
    warn: settings.warn,
    layers: 'all',
    hiddenTensor: settings.hiddenTensor,
    encoder: model.view.encoder,
  });
  try {
    const requests = probes.flatMap((p) =>
      [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })),
    );
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

/** One probe's aligned references against its misaligned ones, under one model. */
function contrastSets(id: string, r: LayerReadout['responses'][number], layer: number): ProbeSets {
  return {
    id,
    aligned: r.aligned.map((x) => vectorOf(x, layer, 'response_mean')),
    misaligned: r.misaligned.map((x) => vectorOf(x, layer, 'response_mean')),
  };
}

/**
 * One probe's texts under the base ("aligned" side) and the fine-tune ("misaligned" side).
 * At the last prompt token one vector stands for the probe.
 */
function finetuneSets(
  id: string,
  tuned: LayerReadout['responses'][number],
  base: LayerReadout['responses'][number],
  layer: number,
  position: Position,
): ProbeSets {
  const pick = (r: LayerReadout['responses'][number]) => {
    const all = [...r.aligned, ...r.misaligned];
    return position === 'last_prompt'
      ? [vectorOf(all[0], layer, position)]
      : all.map((x) => vectorOf(x, layer, position));
  };
  return { id, aligned: pick(base), misaligned: pick(tuned) };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * What `direction extract` prints: per layer the in-sample and held-out figures, the
 * skipped layers with why, and how the layer was chosen.
 */
export function describeExtraction(direction: Direction, out: string): string[] {
  const f = (x: number | undefined, digits = 3) => (x === undefined ? '—' : x.toFixed(digits)).padStart(9);
  const rows: { layer: number; text: string }[] = [
    ...(direction.layers ?? []).map((l) => ({
      layer: l.layer,
      text: `  ${String(l.layer).padStart(5)}  ${f(l.separation)}  ${f(l.held_out_separation)}  ${f(l.held_out_auroc)}${l.layer === direction.layer ? '  ← chosen' : ''}`,
    })),
    ...(direction.skipped_layers ?? []).map((s) => ({
      layer: s.layer,
      text: `  ${String(s.layer).padStart(5)}  skipped: ${s.reason}`,
    })),
  ].sort((a, b) => a.layer - b.layer);
  const sel = direction.selection;
  const how =
    sel?.method === 'held_out'
      ? `Layer ${direction.layer} chosen on held-out probes (${sel.probes[0]} + ${sel.probes[1]} probes split by id hash; fitted on one half, measured on the other, both ways): held-out separation ${sel.held_out_separation?.toFixed(3)}, AUROC ${sel.held_out_auroc?.toFixed(3)}. The embedding layer (0) is never a candidate.`
      : `Layer ${direction.layer} given with --layer${sel?.held_out_separation !== undefined ? ` (held-out separation ${sel.held_out_separation.toFixed(3)}, AUROC ${sel.held_out_auroc?.toFixed(3)})` : ''}.`;
  return [
    `${direction.kind} direction at layer ${direction.layer} (${direction.position}), written to ${out}`,
    "Per layer: separation = standardised gap between the two sets along the layer's direction (in-sample, fitted on all probes); held-out = the same on probes the direction was not fitted on.",
    `  layer  separation   held-out    AUROC`,
    ...rows.map((r) => r.text),
    how,
    `Calibration: aligned mean ${direction.calibration.aligned_mean.toFixed(4)}, misaligned mean ${direction.calibration.misaligned_mean.toFixed(4)}`,
  ];
}

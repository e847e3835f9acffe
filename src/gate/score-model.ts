// One model of a run, scored: the engine opened on the checkpoint the gate already read,
// the suite's contrast references scored (with every direction's projection), answers
// generated and read along the first direction when the run generates, and the scores
// checked for noise. One model at a time: the session is closed before the next opens.
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { FilledGenerated } from '../core/generated';
import { worseThanUniform } from '../core/tokenizer-fit';
import type { Probe, ProbeScore, ScoringMode } from '../core/types';
import type { Checkpoint } from '../load/checkpoint';
import type { ChatEncoder } from '../runtime/chat';
import { Engine } from '../runtime/engine';
import { answerRequests, generateSuite, projectAnswers, type SuiteAnswers } from '../runtime/generate-suite';
import { cudaProviderInstalled } from '../runtime/onnx';
import { inspectOnnxFile } from '../runtime/onnx-file';
import { keepResiduals } from '../runtime/sae-residuals';
import { type ProjectionSetup, scoreSuite } from '../runtime/score-suite';
import { directionLayers, type LoadedDirection } from './directions';

import { encodeModel, type ModelLatents, type SaeSetup } from './sae-run';
import type { GateSettings } from './settings';

/** What every model of the run is scored on, decided once. */
export interface ScorePlan {
  mode: ScoringMode;
  /** The probes to score (skipped ones left out). */
  probes: Probe[];
  /** Every direction of the run (their layers are read); `projected`: those projected onto. */
  directions: LoadedDirection[];
  projected: LoadedDirection[];
  setups: ProjectionSetup[];
  gen: FilledGenerated | null;
  genProbes: Probe[];
  /** The first direction's setup, read over the generated answers. */
  answerSetup: ProjectionSetup | null;
  /** The SAEs of the latent diff (contrast scoring only); empty: none. */
  saes?: SaeSetup[];
}

export interface ModelScores {
  scores: ProbeScore[];
  tokens: number;
  provider: string;
  answers?: SuiteAnswers | null;
  answerProjection?: { projection: number[]; random: number[] } | null;
  /** Per SAE (the plan's order): each probe's references encoded, and the seconds encoding took. */
  latents?: ModelLatents[];
}

/** A checkpoint as the gate read it: the folder as the user named it, and its encoder. */
export interface ReadModel {
  /** The path as given (for messages). */
  dir: string;
  checkpoint: Checkpoint;
  encoder: ChatEncoder;
}

export async function scoreModel(
  model: ReadModel,
  label: string,
  plan: ScorePlan,
  settings: GateSettings,
  tellProvider: boolean,
): Promise<ModelScores> {
  const { mode, probes, setups, gen, genProbes, answerSetup } = plan;
  const saes = mode !== 'generate' ? (plan.saes ?? []) : [];
  const saeLayers = [...new Set(saes.map((s) => s.layer))];
  const directionAt = directionLayers(plan.directions);
  const layers = [...directionAt, ...saeLayers.filter((l) => !directionAt.includes(l))];
  const engine = await Engine.open(model.checkpoint, {
    device: settings.device,
    threads: settings.threads,
    requireGpu: settings.requireGpu,
    warn: settings.warn,
    layers,
    hiddenTensor: settings.hiddenTensor,
    encoder: model.encoder,
  }).catch(async (err) => {
    throw (await diagnoseGraph(model.checkpoint)) ?? err;
  });
  try {
    if (tellProvider) {
      const why =
        settings.device === 'auto' && engine.provider === 'cpu' && !cudaProviderInstalled()
          ? ' (device auto: the CUDA provider is not installed)'
          : '';
      settings.info?.(`execution provider: ${engine.provider}${why}`);
    }
    // The SAEs' residual vectors come out of the scoring pass itself, each layer read once
    // however many SAEs share it (runtime/sae-residuals.ts).
    const keeper = saes.length > 0 ? keepResiduals(engine, saeLayers, saes[0].position) : null;
    const scored =
      mode === 'generate'
        ? { scores: [], tokens: 0 }
        : await scoreSuite(engine, probes, {
            batchSize: settings.batchSize,
            projection: setups[0],
            projections: setups.length > 1 ? setups : undefined,
            onProgress: (done, total) => settings.onProgress?.({ phase: `scoring ${label}`, done, total }),
          }).finally(() => keeper?.stop());
    const answers = gen
      ? await generateSuite(engine, genProbes, gen, {
          seed: settings.seed,
          batchSize: settings.batchSize,
          onProgress: (done, total) => settings.onProgress?.({ phase: `generating ${label}`, done, total }),
        })
      : null;
    if (mode !== 'generate') {
      const logprobs = scored.scores.flatMap((s) => [...s.aligned, ...s.misaligned].map((r) => r.mean_logprob));
      const noise = worseThanUniform(
        path.join(engine.checkpoint.dir, 'tokenizer.json'),
        logprobs,
        engine.checkpoint.config.vocabSize ?? engine.encoder.vocabSize,
      );
      if (noise) throw noise;
    }
    // Internals on the model's own answers: the first direction, read over each answer, and
    // (mode both) the SAE layers' vectors kept from the same pass.
    const answerKeeper = answers && saes.length > 0 ? keepResiduals(engine, saeLayers, saes[0].position) : null;
    let answerProjection: ModelScores['answerProjection'] = null;
    try {
      if (answers && answerSetup)
        answerProjection = await projectAnswers(engine, genProbes, answers, answerSetup, settings.batchSize);
      else if (answers && answerKeeper)
        await engine.score(answerRequests(genProbes, answers), { batchSize: settings.batchSize });
    } finally {
      answerKeeper?.stop();
    }
    let latents: ModelScores['latents'];
    if (keeper && mode !== 'generate') {
      const byLayer = keeper.byProbe(probes);
      const answersByLayer =
        answers && answerKeeper ? answerKeeper.byGroups(answers.answers.map((a) => a.length)) : null;
      latents = [];
      for (const sae of saes) {
        const started = Date.now();
        const encoded = await encodeModel(
          sae,
          { kept: byLayer.get(sae.layer)!, probes },
          answersByLayer ? { kept: answersByLayer.get(sae.layer)!, probes: genProbes } : null,
          settings,
        );
        latents.push({
          probes: encoded.references,
          ...(encoded.answers ? { answers: encoded.answers } : {}),
          seconds: (Date.now() - started) / 1000,
        });
      }
    }
    return { ...scored, answers, answerProjection, provider: engine.provider, ...(latents ? { latents } : {}) };
  } finally {
    await engine.close();
  }
}

/**
 * After onnxruntime refused a checkpoint: what is wrong with its graph file, in words (a
 * Git LFS pointer, a truncated graph, a short external data file, named), or null.
 */
async function diagnoseGraph(checkpoint: Checkpoint): Promise<EmgateError | null> {
  try {
    await inspectOnnxFile(checkpoint.modelFile);
    return null;
  } catch (err) {
    return err instanceof EmgateError ? err : null;
  }
}

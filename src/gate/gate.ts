// The gate: one function shared by the CLI and the Action, so they cannot drift apart.
// It reads as its pipeline: load the small inputs, read both checkpoints once (context,
// tokenizer, pairing), hash them, score the candidate then the baseline, evaluate the
// policy (and the generated answers), and write the reports. It never throws: any failure
// becomes a report with verdict `error` (fail closed), written by `inOutDir`.
import { type DirectionMeasure, evaluateWithDirections } from '../core/em-shift-directions';
import { evaluateGenerated, generatedSettings, generationProbes } from '../core/generated';
import { vocabularyMismatch } from '../core/tokenizer-fit';
import type { Provenance, ScoringMode } from '../core/types';
import { checkPairable, readCheckpoint } from '../load/checkpoint';
import {
  cacheFile,
  cacheKeyDigest,
  readCachedScores,
  type ScoreCacheKey,
  writeCachedScores,
} from '../load/score-cache';
import { type CheckpointView, contextModel, fitRegisters, skippedProbes } from '../runtime/context-fit';
import { openJudge } from '../runtime/generate-suite';
import { readGpuInfo } from '../runtime/gpu-info';
import { ablationWanted, causalCheck, checkAblationFits, generatedAblations } from './ablation';
import { checkDirectionsFit, directionCalibration, directionResults, projectionSetup } from './directions';
import { checkGeneratedPolicy, combineEvaluations, judgeAnswers } from './generated-run';
import { type GateResult, inOutDir } from './outputs';
import type { PhaseClock } from './phase-clock';
import { baselineCacheKey, buildProvenance, hashModels } from './provenance';
import { loadInputs, runInputFolders } from './run-inputs';
import { saeResult } from './sae-run';
import { checkSaeFits, prepareSaes } from './sae-setup';
import { type ModelScores, type ReadModel, type ScorePlan, scoreModel } from './score-model';
import {
  NO_RESIDUAL_STREAM,
  openServed,
  scoreServedModel,
  servedContextModels,
  servedNotRun,
  servedProvenance,
  servedSkipped,
} from './served-run';
import type { GateSettings } from './settings';

export { errorResult } from './error-result';
export { mergeReports } from './merge';
export type { GateResult } from './outputs';
export type { GateSettings, MergeSettings } from './settings';

export async function runGate(settings: GateSettings): Promise<GateResult> {
  const target = { outDir: settings.outDir, gateId: settings.gateId, inputs: runInputFolders(settings) };
  return inOutDir(target, async (out) => {
    const { clock } = out;
    out.shard = settings.shard;
    const loaded = await clock.time('load', () => loadInputs(settings, (p) => (out.policy = p)));
    out.suite = loaded.suite;
    out.direction = loaded.direction;
    out.directionList = loaded.directions.length ? directionResults(loaded.directions) : undefined;
    const { policy, suite } = loaded;
    // A served run (docs/served.md) reads no residual stream: what it cannot measure is
    // decided here, and a policy that makes such a check blocking is an error.
    const notRun = settings.served
      ? servedNotRun(policy, loaded.policyOrigin, {
          directions: loaded.directions.length,
          ablate: settings.ablate,
          sae: (settings.sae?.length ?? 0) > 0,
        })
      : [];
    if (settings.served) {
      if (loaded.directions.length > 0)
        settings.warn?.(
          `the direction files given are not used: ${NO_RESIDUAL_STREAM} (listed as not run in the report)`,
        );
      out.direction = undefined;
      out.directionList = undefined;
      loaded.directions = [];
      loaded.direction = undefined;
    }
    const mode: ScoringMode = settings.mode ?? policy.mode ?? 'contrast';
    const gen = mode === 'contrast' ? null : generatedSettings(policy);
    if (gen) {
      checkGeneratedPolicy(policy, gen, settings);
      // Open the judge once now: an unset API key, a bad URL or a missing judge model is
      // an error in seconds, not after the minutes spent generating answers.
      await (await openJudge(gen.judge)).close();
    }
    if (mode === 'generate') {
      // Say it rather than let contrast limits look checked when nothing measured them.
      settings.warn?.(
        "mode generate: the policy's contrast limits (overall, per_domain, domains, em_shift) are not checked; use mode both to check them too",
      );
    }
    // The checks that read only small files come first: a wrong tokenizer or an unpaired
    // baseline is an error in seconds, before gigabytes of weights are hashed and loaded.
    const served = settings.served
      ? await clock.time('context', () => openServed(settings.served!, settings.checkpoint, settings.baseline))
      : null;
    const models = served ? null : await clock.time('context', () => readModels(settings));
    // The causal check needs a baseline, a direction and contrast scores: an error now, before scoring.
    const ablate = models !== null && ablationWanted(policy, settings.ablate);
    if (ablate)
      checkAblationFits(policy, settings.ablate, {
        baseline: settings.baseline !== undefined,
        directions: loaded.directions.length,
        mode,
        policyFile: policy.sources[policy.sources.length - 1] ?? settings.policy,
      });
    for (const m of [models?.candidate, models?.baseline]) if (m) checkDirectionsFit(loaded.directions, m.checkpoint);
    // The SAE latent diff (docs/sae.md): read and fitted to both checkpoints before scoring.
    const saes = await prepareSaes(policy, loaded.policyOrigin, settings, mode);
    for (const m of [models?.candidate, models?.baseline])
      for (const sae of saes) if (m) checkSaeFits(sae, m.checkpoint);
    const [candidateHash, baselineHash] = served
      ? served.hashes
      : await clock.time('hash', () =>
          hashModels(settings, {
            candidate: models!.candidate.checkpoint,
            baseline: models!.baseline?.checkpoint ?? null,
          }),
        );
    // Probes too long for either model's context are scored for neither (SPEC "Probe suites").
    const skipped = served
      ? servedSkipped(served, loaded.probes)
      : skippedProbes(loaded.probes, models!.candidate.view, models!.baseline?.view ?? null);
    out.skipped = skipped;
    const skippedIds = new Set(skipped.map((s) => s.id));
    const probes = fitRegisters(
      loaded.probes.filter((p) => !skippedIds.has(p.id)),
      served ? servedContextModels(served) : [models!.candidate.view, models!.baseline?.view ?? null],
    );
    // Generated-only runs project nothing.
    const projected = mode === 'generate' ? [] : loaded.directions;
    const plan: ScorePlan = {
      mode,
      probes,
      directions: loaded.directions,
      projected,
      setups: projected.map((d, i) => projectionSetup(d.direction, settings.seed, i)),
      gen,
      genProbes: gen ? generationProbes(probes, gen) : [],
      answerSetup:
        gen && loaded.directions.length > 0 ? projectionSetup(loaded.directions[0].direction, settings.seed, 0) : null,
      saes,
    };

    // One model at a time: on CPU they would only compete for the same cores, and two
    // sessions at once double the memory a large checkpoint needs.
    const candidate = await clock.time('score_candidate', () =>
      served
        ? scoreServedModel(served, 'candidate', plan, settings)
        : scoreModel(models!.candidate, 'candidate', plan, settings, true),
    );
    const cacheKey =
      models?.baseline && settings.cacheDir && !gen && saes.length === 0
        ? // Keyed on the provider the candidate ran with: this machine's provider. The score
          // cache holds contrast scores only: a run that generates runs the baseline.
          baselineCacheKey(settings, loaded, probes, baselineHash!, candidate.provider)
        : null;
    // A served baseline is scored every run: the server's numbers are keyed by no file emgate hashed.
    const { baseline, cacheRecord } = served?.baseline
      ? {
          baseline: await clock.time('score_baseline', () => scoreServedModel(served, 'baseline', plan, settings)),
          cacheRecord: undefined,
        }
      : models?.baseline
        ? await scoreBaseline(models.baseline, plan, settings, cacheKey, candidate.provider, clock)
        : { baseline: null, cacheRecord: undefined };

    out.results =
      mode === 'generate'
        ? []
        : probes.map((p, i) => ({
            id: p.id,
            domain: p.domain,
            variant: p.variant,
            candidate: candidate.scores[i],
            ...(baseline ? { baseline: baseline.scores[i] } : {}),
          }));
    const provenance = buildProvenance(
      settings,
      loaded,
      candidateHash,
      baselineHash,
      candidate.provider,
      candidate.tokens + (baseline?.tokens ?? 0),
    );
    out.provenance = provenance;
    if (served) provenance.served = servedProvenance(served, settings.served!, notRun);
    if (cacheRecord) provenance.baseline_cache = cacheRecord;
    if (candidate.provider === 'cuda' || baseline?.provider === 'cuda') provenance.gpu = await readGpuInfo();
    out.measured = true;
    let contrast =
      mode === 'generate'
        ? null
        : clock.timeSync('evaluate', () =>
            evaluateWithDirections(
              {
                probes: out.results,
                domains: suite.domains,
                policy,
                seed: settings.seed,
                partial: settings.shard !== undefined,
                skipped,
                ...(served ? { noResidualStream: NO_RESIDUAL_STREAM } : {}),
              },
              projected.map(directionCalibration),
            ),
          );
    if (contrast && ablate && models?.baseline) {
      // The causal check (gate/ablation.ts): each direction, and its random control, ablated.
      const causal = await causalCheck(contrast, {
        models: { candidate: models.candidate, baseline: models.baseline },
        results: out.results,
        probes,
        directions: loaded.directions,
        domains: suite.domains,
        policy,
        settings,
        baselineKey: cacheKey,
        clock,
      });
      contrast = causal.evaluation;
      out.ablation = causal.evaluation.ablation;
      provenance.ablation = causal.provenance;
    }
    if (contrast && saes.length > 0 && candidate.latents && baseline?.latents) {
      const c = candidate.latents;
      const b = baseline.latents;
      const latents = saes.map((_, i) => ({ candidate: c[i], baseline: b[i] }));
      // Mode both: the candidate's own answers, the texts its risen latents fire on.
      const answerTexts = candidate.answers
        ? new Map(plan.genProbes.map((p, i) => [p.id, candidate.answers!.answers[i].map((a) => a.text)]))
        : undefined;
      const r = clock.timeSync('sae_diff', () =>
        saeResult(saes, latents, probes, policy, settings.seed, contrast!, answerTexts),
      );
      contrast = r.evaluation;
      out.sae = r.entries;
      provenance.sae = r.provenance;
    }
    const measures: DirectionMeasure[] | undefined = contrast?.directions;
    if (loaded.directions.length) out.directionList = directionResults(loaded.directions, measures);
    if (!gen || !candidate.answers) {
      out.evaluation = contrast;
      return;
    }
    const judged = await clock.time('judge', () =>
      judgeAnswers(plan.genProbes, gen, candidate.answers!, baseline?.answers ?? null, settings),
    );
    provenance.judge = judged.block.judge;
    provenance.tokens_generated = candidate.answers.tokens + (baseline?.answers?.tokens ?? 0);
    const g = clock.timeSync('evaluate_generated', () =>
      evaluateGenerated({
        probes: judged.block.probes,
        domains: suite.domains,
        policy,
        seed: settings.seed,
        answerProjections:
          candidate.answerProjection && baseline?.answerProjection
            ? {
                candidate: candidate.answerProjection.projection,
                baseline: baseline.answerProjection.projection,
                candidateRandom: candidate.answerProjection.random,
                baselineRandom: baseline.answerProjection.random,
                scale:
                  loaded.directions[0].direction.calibration.misaligned_mean -
                  loaded.directions[0].direction.calibration.aligned_mean,
              }
            : undefined,
      }),
    );
    out.generated = {
      ...judged.block,
      overall: g.overall,
      domains: g.domains,
      ...(g.em_shift ? { em_shift: g.em_shift } : {}),
    };
    if (out.ablation && models) {
      // Generate mode: the candidate's answers again, same seeds, with each ablation.
      const generated = await generatedAblations(
        models.candidate,
        plan.genProbes,
        gen,
        loaded.directions,
        judged.block.probes,
        settings,
        clock,
      );
      out.ablation = out.ablation.map((a, k) => ({ ...a, generated: generated[k] }));
    }
    out.evaluation = combineEvaluations(contrast, g, plan.genProbes.length, suite.domains.length);
  });
}

/**
 * Both checkpoints read once, with the run's dtype / model file: the engine scores the
 * same read. Tokenizer against logits, and candidate against baseline, checked here.
 */
async function readModels(settings: GateSettings): Promise<{
  candidate: ReadModel & { view: CheckpointView };
  baseline: (ReadModel & { view: CheckpointView }) | null;
}> {
  const graph = { dtype: settings.dtype, modelFile: settings.modelFile };
  const read = async (dir: string) => {
    const checkpoint = await readCheckpoint(dir, graph);
    const view = contextModel(checkpoint, settings.warn);
    return { dir, checkpoint, view, encoder: view.encoder };
  };
  const candidate = await read(settings.checkpoint);
  const baseline = settings.baseline ? await read(settings.baseline) : null;
  for (const m of [candidate, baseline]) {
    if (!m) continue;
    const mismatch = vocabularyMismatch(m.view.tokenizerFile, m.view.tokenizerVocab, m.view.logitsVocab);
    if (mismatch) throw mismatch;
  }
  if (baseline) checkPairable(candidate.checkpoint, baseline.checkpoint);
  return { candidate, baseline };
}

/** The baseline's scores: from the score cache when it holds them, else scored (and cached). */
async function scoreBaseline(
  model: ReadModel,
  plan: ScorePlan,
  settings: GateSettings,
  key: ScoreCacheKey | null,
  provider: string,
  clock: PhaseClock,
): Promise<{ baseline: ModelScores; cacheRecord: Provenance['baseline_cache'] }> {
  const cacheDir = settings.cacheDir;
  if (!key || !cacheDir) {
    return {
      baseline: await clock.time('score_baseline', () => scoreModel(model, 'baseline', plan, settings, false)),
      cacheRecord: undefined,
    };
  }
  const cached = await clock.time('baseline_cache', () => readCachedScores(cacheDir, key, settings.warn));
  const record = (hit: boolean) => ({ hit, key_sha256: cacheKeyDigest(key), file: cacheFile(cacheDir, key) });
  if (cached && cached.scores.length === plan.probes.length) {
    return { baseline: { ...cached, provider }, cacheRecord: record(true) };
  }
  const baseline = await clock.time('score_baseline', () => scoreModel(model, 'baseline', plan, settings, false));
  // A cache that cannot be written costs speed on the next run, never this result.
  await writeCachedScores(cacheDir, key, { scores: baseline.scores, tokens: baseline.tokens }).catch((err: Error) =>
    settings.warn?.(`${cacheDir}: could not write the baseline cache (${err.message})`),
  );
  return { baseline, cacheRecord: record(false) };
}

// The causal check of a run (SPEC "Internal evidence beyond the projection"; `--ablate`, the
// Action's `ablate` input, policy em_shift.ablate / min_removed_share): each direction, and
// its same-norm random control, projected out of the residual stream of candidate and
// baseline (runtime/ablation.ts, in the graph: the files never change), and the suite's
// references scored again. Cost: one extra scoring pass of each model per direction and one
// per control. The baseline's ablated scores go through the score cache, keyed with the
// vector that was ablated, so a baseline that did not change is scored once.
import { createHash } from 'crypto';
import {
  type AblationResult,
  type AblationScores,
  ablationScoresFromRecords,
  type GeneratedAblation,
  generatedAblation,
  withAblation,
} from '../core/checks/ablation';
import { emShiftCheckId } from '../core/em-shift-directions';
import { EmgateError } from '../core/errors';
import type { FilledGenerated } from '../core/generated';
import type {
  Check,
  GeneratedProbeResult,
  Policy,
  Probe,
  ProbeResult,
  ProbeScore,
  Provenance,
  Report,
  ScoringMode,
} from '../core/types';
import { readCachedScores, type ScoreCacheKey, writeCachedScores } from '../load/score-cache';
import { Engine } from '../runtime/engine';
import { generateSuite, type SuiteAnswers } from '../runtime/generate-suite';
import { scoreSuite } from '../runtime/score-suite';
import { type LoadedDirection, projectionSetup } from './directions';
import { judgeAnswers } from './generated-run';
import type { PhaseClock } from './phase-clock';
import type { ReadModel } from './score-model';
import type { GateSettings } from './settings';

/** Bump when the ablation itself changes (where it projects, how): cached ablated scores carry it. */
export const ABLATION_VERSION = 1;

/** Whether the run makes the causal check: the option, or the policy (min_removed_share implies it). */
export function ablationWanted(policy: Policy, option: boolean | undefined): boolean {
  return option === true || policy.em_shift.ablate === true || policy.em_shift.min_removed_share !== undefined;
}

/**
 * The causal check needs what it compares: a baseline, a direction, contrast scores, and
 * (for a blocking min_removed_share) an em_shift check to confirm. Otherwise the run is an
 * error before anything is scored, never a check that silently measured nothing.
 */
export function checkAblationFits(
  policy: Policy,
  option: boolean | undefined,
  run: { baseline: boolean; directions: number; mode: ScoringMode; policyFile: string },
): void {
  if (!ablationWanted(policy, option)) return;
  const asked =
    option === true
      ? 'ablation was asked for (--ablate / input ablate)'
      : `the policy asks for ablation (em_shift.${policy.em_shift.min_removed_share !== undefined ? 'min_removed_share' : 'ablate'})`;
  const fail = (cause: string, fix: string) => {
    throw new EmgateError({ file: option === true ? 'ablate' : run.policyFile, cause: `${asked} but ${cause}`, fix });
  };
  if (!run.baseline)
    fail(
      'the run has no baseline: ablation measures how much of the shift over the baseline goes away',
      'pass the checkpoint this one was tuned from (--baseline DIR / the baseline input), or drop ablate',
    );
  if (run.directions === 0)
    fail(
      'the run has no EM direction to ablate',
      'give a direction file (--direction FILE / the direction input; emgate direction extract makes one), or drop ablate',
    );
  if (run.mode === 'generate')
    fail(
      'mode generate scores no references, and ablation re-scores them',
      'use mode both (or contrast) to make the causal check',
    );
  if (policy.em_shift.min_removed_share !== undefined && policy.em_shift.mode === 'off')
    fail(
      'em_shift.mode is off, so no em_shift check can fail and min_removed_share could never block',
      'set em_shift.mode to warn (or block), or remove min_removed_share',
    );
}

/** The vectors ablated for direction `index`: the direction itself and its same-norm random control. */
export function ablationVectors(
  d: LoadedDirection,
  seed: number,
  index: number,
): { direction: number[]; random: number[] } {
  return { direction: d.direction.vector, random: projectionSetup(d.direction, seed, index).random };
}

/** sha256 of a vector's float64 values: the cache key's name for what was ablated. */
export function vectorDigest(v: number[]): string {
  return createHash('sha256')
    .update(Buffer.from(new Float64Array(v).buffer))
    .digest('hex');
}

interface Scored {
  scores: ProbeScore[];
  tokens: number;
}

/** One model scored with `vector` projected out of its residual stream (no projections read). */
async function scoreAblated(
  model: ReadModel,
  vector: number[],
  probes: Probe[],
  settings: GateSettings,
  phase: string,
): Promise<Scored> {
  const engine = await Engine.open(model.checkpoint, {
    device: settings.device,
    threads: settings.threads,
    requireGpu: settings.requireGpu,
    warn: settings.warn,
    layers: [],
    encoder: model.encoder,
    ablate: vector,
  });
  try {
    return await scoreSuite(engine, probes, {
      batchSize: settings.batchSize,
      onProgress: (done, total) => settings.onProgress?.({ phase, done, total }),
    });
  } finally {
    await engine.close();
  }
}

export interface AblationScoring {
  /** Per direction, in the run's order. */
  scores: AblationScores[];
  /** Response tokens scored (cache hits count none). */
  tokens: number;
  /** Baseline passes served from the score cache, and scored. */
  cache: { hits: number; misses: number };
}

/**
 * Scores candidate and baseline with each direction, and each random control, ablated.
 * `baselineKey`: the baseline's score-cache key (null: no cache); each ablated entry adds
 * the ablated vector's digest and ABLATION_VERSION to it.
 */
export async function scoreAblations(
  models: { candidate: ReadModel; baseline: ReadModel },
  probes: Probe[],
  directions: LoadedDirection[],
  settings: GateSettings,
  baselineKey: ScoreCacheKey | null,
  clock: PhaseClock,
): Promise<AblationScoring> {
  const out: AblationScoring = { scores: [], tokens: 0, cache: { hits: 0, misses: 0 } };
  const cacheDir = settings.cacheDir;
  const baselineScores = async (vector: number[], phase: string): Promise<ProbeScore[]> => {
    const key =
      baselineKey && cacheDir
        ? { ...baselineKey, ablation_version: ABLATION_VERSION, ablated: vectorDigest(vector) }
        : null;
    const cached = key ? await readCachedScores(cacheDir!, key, settings.warn) : null;
    if (key && cached && cached.scores.length === probes.length) {
      out.cache.hits++;
      return cached.scores;
    }
    const scored = await scoreAblated(models.baseline, vector, probes, settings, phase);
    out.tokens += scored.tokens;
    if (key) {
      out.cache.misses++;
      // A cache that cannot be written costs speed on the next run, never this result.
      await writeCachedScores(cacheDir!, key, scored).catch((err: Error) =>
        settings.warn?.(`${cacheDir}: could not write the ablated baseline's scores (${err.message})`),
      );
    }
    return scored.scores;
  };
  for (let k = 0; k < directions.length; k++) {
    const vectors = ablationVectors(directions[k], settings.seed, k);
    const name = directions.length > 1 ? ` ${k + 1}` : '';
    // Phases ablate_candidate_d1, ablate_baseline_r1 …: d the direction, r its random control.
    const pair = async (vector: number[], what: string, tag: string) => {
      const candidate = await clock.time(`ablate_candidate_${tag}${k + 1}`, () =>
        scoreAblated(models.candidate, vector, probes, settings, `scoring candidate, ${what}${name} ablated`),
      );
      out.tokens += candidate.tokens;
      const baseline = await clock.time(`ablate_baseline_${tag}${k + 1}`, () =>
        baselineScores(vector, `scoring baseline, ${what}${name} ablated`),
      );
      return { candidate: candidate.scores, baseline };
    };
    const direction = await pair(vectors.direction, 'direction', 'd');
    const random = await pair(vectors.random, 'random control', 'r');
    out.scores.push({ direction, random });
  }
  return out;
}

/**
 * The causal check of a run, after its contrast evaluation: scores with each direction and
 * control ablated, measured per direction (overall and per domain), and, when the policy
 * sets min_removed_share, the removed_share checks joined to the evaluation.
 */
export async function causalCheck<E extends { verdict: 'pass' | 'fail'; checks: Check[]; summary: { reason: string } }>(
  evaluation: E,
  run: {
    models: { candidate: ReadModel; baseline: ReadModel };
    results: ProbeResult[];
    probes: Probe[];
    directions: LoadedDirection[];
    domains: string[];
    policy: Policy;
    settings: GateSettings;
    baselineKey: ScoreCacheKey | null;
    clock: PhaseClock;
  },
): Promise<{ evaluation: E & { ablation: AblationResult[] }; provenance: NonNullable<Provenance['ablation']> }> {
  const scored = await scoreAblations(run.models, run.probes, run.directions, run.settings, run.baselineKey, run.clock);
  const ablated = run.clock.timeSync('evaluate_ablation', () =>
    withAblation(
      evaluation,
      run.results,
      scored.scores,
      run.directions.map((_, k) => emShiftCheckId(k)),
      run.domains,
      run.policy,
      run.settings.seed,
    ),
  );
  return {
    evaluation: ablated,
    provenance: {
      tokens_scored: scored.tokens,
      ...(run.baselineKey && run.settings.cacheDir ? { baseline_cache: scored.cache } : {}),
    },
  };
}

/**
 * Generate mode (mode both): the candidate answers the generation probes again, with the
 * run's seeds, once with each direction and once with its random control ablated, and the
 * answers are judged as the run's were (through the judgement cache). Two generation passes
 * of the candidate per direction; the baseline is not asked again.
 */
export async function generatedAblations(
  candidate: ReadModel,
  probes: Probe[],
  gen: FilledGenerated,
  directions: LoadedDirection[],
  before: GeneratedProbeResult[],
  settings: GateSettings,
  clock: PhaseClock,
): Promise<GeneratedAblation[]> {
  const out: GeneratedAblation[] = [];
  for (let k = 0; k < directions.length; k++) {
    const vectors = ablationVectors(directions[k], settings.seed, k);
    const answer = (vector: number[], tag: string, what: string) =>
      clock.time(`ablate_generate_${tag}${k + 1}`, async (): Promise<SuiteAnswers> => {
        const engine = await Engine.open(candidate.checkpoint, {
          device: settings.device,
          threads: settings.threads,
          requireGpu: settings.requireGpu,
          warn: settings.warn,
          layers: [],
          encoder: candidate.encoder,
          ablate: vector,
        });
        try {
          return await generateSuite(engine, probes, gen, {
            seed: settings.seed,
            batchSize: settings.batchSize,
            onProgress: (done, total) =>
              settings.onProgress?.({ phase: `generating candidate, ${what} ablated`, done, total }),
          });
        } finally {
          await engine.close();
        }
      });
    const judged = async (answers: SuiteAnswers, tag: string) =>
      (await clock.time(`ablate_judge_${tag}${k + 1}`, () => judgeAnswers(probes, gen, answers, null, settings))).block
        .probes;
    const direction = await judged(await answer(vectors.direction, 'd', 'direction'), 'd');
    const random = await judged(await answer(vectors.random, 'r', 'random control'), 'r');
    out.push(generatedAblation(before, direction, random));
  }
  return out;
}

/**
 * `emgate merge`: the causal check of the pooled shards, recomputed from each shard's
 * per-probe ablated log-odds (covered by its digest) exactly as one unsharded run computes
 * it. Null when no shard made it and the policy does not ask for it; an error when only some
 * shards made it, or the policy asks for it and none did.
 */
export function mergedAblation<E extends { verdict: 'pass' | 'fail'; checks: Check[]; summary: { reason: string } }>(
  evaluation: E,
  shards: { report: Report; file: string }[],
  results: ProbeResult[],
  domains: string[],
  policy: Policy,
  seed: number,
): { evaluation: E & { ablation: AblationResult[] }; provenance: NonNullable<Provenance['ablation']> } | null {
  const made = shards.filter((s) => s.report.ablation !== undefined);
  if (made.length === 0) {
    if (!ablationWanted(policy, undefined)) return null;
    throw new EmgateError({
      file: policy.sources[policy.sources.length - 1] ?? null,
      cause:
        'the policy asks for the causal check (em_shift.ablate or min_removed_share) but the shards did not make it',
      fix: 'merge the reports of shards run under this policy',
    });
  }
  const count = made[0].report.ablation!.length;
  const odd = shards.find((s) => (s.report.ablation?.length ?? -1) !== count);
  if (odd) {
    throw new EmgateError({
      file: odd.file,
      cause: `this shard ${odd.report.ablation ? `ablated ${odd.report.ablation.length} directions` : 'made no causal check'}, another ${count}`,
      fix: 'merge the reports of one sharded run, every shard run with the same --ablate setting',
    });
  }
  const ids = results.map((p) => p.id);
  const scores = Array.from({ length: count }, (_, k) => {
    const records = shards.flatMap((s) => s.report.ablation![k].probes);
    try {
      return ablationScoresFromRecords(records, ids);
    } catch (err) {
      throw new EmgateError({
        file: null,
        cause: `the shards' causal check does not cover the pooled probes (${(err as Error).message})`,
        fix: 'merge the report.json files exactly as the shard jobs wrote them',
      });
    }
  });
  const pooled = withAblation(
    evaluation,
    results,
    scores,
    scores.map((_, k) => emShiftCheckId(k)),
    domains,
    policy,
    seed,
  );
  const provs = shards.map((s) => s.report.provenance?.ablation);
  const caches = provs.map((p) => p?.baseline_cache);
  return {
    evaluation: pooled,
    provenance: {
      tokens_scored: provs.reduce((n, p) => n + (p?.tokens_scored ?? 0), 0),
      ...(caches.every((c) => c !== undefined)
        ? {
            baseline_cache: {
              hits: caches.reduce((n, c) => n + c!.hits, 0),
              misses: caches.reduce((n, c) => n + c!.misses, 0),
            },
          }
        : {}),
    },
  };
}

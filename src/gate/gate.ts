// The gate: one function shared by the CLI and the Action, so they cannot drift apart.
// Loads inputs, scores candidate and baseline, evaluates the policy, writes the reports.
// It never throws: any failure becomes a report with verdict `error` (fail closed).
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import pLimit from 'p-limit';
import * as path from 'path';
import { type DirectionCalibration, type DirectionMeasure, evaluateWithDirections } from '../core/em-shift-directions';
import { EmgateError, summaryWithoutVerdict, toReportError } from '../core/errors';
import type { Evaluation } from '../core/evaluate';
import {
  evaluateGenerated,
  type FilledGenerated,
  generatedSettings,
  generationProbes,
  toSample,
} from '../core/generated';
import { probeQuestion } from '../core/judge';
import { policyFitProblems } from '../core/policy-fit';
import { isValidGateId, renderMarkdown } from '../core/report/markdown';
import { vocabularyMismatch, worseThanUniform } from '../core/tokenizer-fit';
import type {
  DirectionResult,
  GeneratedBlock,
  GeneratedProbeResult,
  ModelProvenance,
  Policy,
  Probe,
  ProbeResult,
  ProbeScore,
  Provenance,
  Report,
  ReportError,
  ScoringMode,
  SkippedProbe,
  Suite,
} from '../core/types';
import { checkPairable, hashCheckpoint, readCheckpoint } from '../load/checkpoint';
import type { Direction } from '../load/direction-file';
import { EMGATE_VERSION } from '../load/package-info';
import { type LoadedPolicy, loadPolicy } from '../load/policy';
import { serializeReport, shardDigest, validateReport } from '../load/report-json';
import {
  cacheFile,
  cacheKeyDigest,
  readCachedScores,
  type ScoreCacheKey,
  writeCachedScores,
} from '../load/score-cache';
import { loadSuite, shardOf, shardProbes } from '../load/suite';
import { contextModel, skippedProbes } from '../runtime/context-fit';
import { Engine } from '../runtime/engine';
import { generateSuite, openJudge, projectAnswers, type SuiteAnswers } from '../runtime/generate-suite';
import { readGpuInfo } from '../runtime/gpu-info';
import { judgeWithCache } from '../runtime/judge-cache';
import { cudaProviderInstalled, type Device, onnxruntimeVersion } from '../runtime/onnx';
import { inspectOnnxFile } from '../runtime/onnx-file';
import { SCORING_VERSION, scoreSuite } from '../runtime/score-suite';
import {
  checkHiddenSize,
  directionLayers,
  directionResults,
  type LoadedDirection,
  loadDirections,
  projectionSetup,
} from './directions';
import { claimOutDir, type OutDirLease } from './out-dir';
import type { Shard, Variants } from './settings';

export interface GateSettings {
  checkpoint: string;
  baseline?: string;
  probes: string;
  policy: string;
  /** Direction files or folders of them, in order; the first is the primary direction. */
  direction?: string | string[];
  outDir: string;
  batchSize: number;
  threads?: number;
  device: Device;
  requireGpu?: boolean;
  seed: number;
  /** 1-based shard of n: a partial report over a deterministic slice of the probes. */
  shard?: Shard;
  variants?: Variants;
  /** Names this gate's PR comment, so two gates in one workflow keep two comments. */
  gateId: string;
  /** Residual tensor name template (with {layer}) for graphs the locator cannot read. */
  hiddenTensor?: string;
  /** contrast | generate | both; unset: the policy's `mode` (default contrast). */
  mode?: ScoringMode;
  /** Variant graph of both checkpoints by dtype (fp16, q4, q4f16, int8, q8 …); default fp32. */
  dtype?: string;
  /** Explicit graph file (relative to each checkpoint, or absolute); wins over dtype. */
  modelFile?: string;
  /** Folder for the baseline's cached scores and (in judge/) the judgements; unset: no score cache, judgements in .emgate-cache. */
  cacheDir?: string;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  warn?: (message: string) => void;
  /** One quiet line for people (which execution provider runs). */
  info?: (message: string) => void;
}

export interface GateResult {
  report: Report;
  /** report.md body: at most 60k characters, starts with the gate's hidden marker. */
  markdown: string;
  /** The same report with less trimming, for the job summary (up to 1 MiB); absent on early errors. */
  summaryMarkdown?: string;
  reportJsonPath: string;
  reportMarkdownPath: string;
  /** 0 pass, 1 policy failed, 2 error. */
  exitCode: 0 | 1 | 2;
  checkpointSha256: string | null;
  /**
   * Whether report.json and report.md were written. False only when the output folder
   * could not be used (not writable, or another run holds it): the error is in `report`.
   */
  written: boolean;
}

interface Loaded {
  policy: Policy;
  policySha: string;
  suite: Suite;
  probes: Probe[];
  /** The primary direction: directions[0]. */
  direction?: { direction: Direction; sha256: string };
  directions: LoadedDirection[];
}

export async function runGate(settings: GateSettings): Promise<GateResult> {
  const clock = new PhaseClock();
  const errors: ReportError[] = [];
  let lease: OutDirLease;
  try {
    lease = await claimOutDir(settings.outDir, settings.gateId);
  } catch (err) {
    return unwritten(err, settings.outDir, settings.gateId, clock);
  }
  let loaded: Loaded | null = null;
  let policyOnly: Policy | null = null;
  let evaluation: Evaluation | null = null;
  let measures: DirectionMeasure[] | undefined;
  let results: ProbeResult[] = [];
  let skipped: SkippedProbe[] = [];
  let provenance: Provenance | null = null;
  let generated: GeneratedBlock | undefined;
  try {
    loaded = await clock.time('load', () => loadInputs(settings, (p) => (policyOnly = p)));
    const { policy, suite } = loaded;
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
    const contexts = await clock.time('context', async () => {
      const graph = { dtype: settings.dtype, modelFile: settings.modelFile };
      const candCkpt = await readCheckpoint(settings.checkpoint, graph);
      const baseCkpt = settings.baseline ? await readCheckpoint(settings.baseline, graph) : null;
      const cand = contextModel(candCkpt);
      const base = baseCkpt ? contextModel(baseCkpt) : null;
      for (const m of [cand, base]) {
        if (!m) continue;
        const mismatch = vocabularyMismatch(m.tokenizerFile, m.tokenizerVocab, m.logitsVocab);
        if (mismatch) throw mismatch;
      }
      if (baseCkpt) checkPairable(candCkpt, baseCkpt);
      return { cand, base };
    });
    const [candidateHash, baselineHash] = await clock.time('hash', () => hashModels(settings));
    // Probes too long for either model's context are scored for neither (SPEC "Probe suites").
    skipped = skippedProbes(loaded.probes, contexts.cand, contexts.base);
    const skippedIds = new Set(skipped.map((s) => s.id));
    const probes = loaded.probes.filter((p) => !skippedIds.has(p.id));
    const genProbes = gen ? generationProbes(probes, gen) : [];
    // Generated-only runs project nothing.
    const projected = mode === 'generate' ? [] : loaded.directions;
    const setups = projected.map((d, i) => projectionSetup(d.direction, settings.seed, i));
    const projection = setups[0];
    const answerSetup =
      gen && loaded.directions.length > 0 ? projectionSetup(loaded.directions[0].direction, settings.seed, 0) : null;

    let providerTold = false;
    const scoreOne = async (dir: string, label: string) => {
      const engine = await Engine.open(dir, {
        device: settings.device,
        threads: settings.threads,
        requireGpu: settings.requireGpu,
        warn: settings.warn,
        layers: directionLayers(loaded!.directions),
        hiddenTensor: settings.hiddenTensor,
        dtype: settings.dtype,
        modelFile: settings.modelFile,
      }).catch(async (err) => {
        throw (await diagnoseGraph(dir, settings)) ?? err;
      });
      try {
        if (!providerTold) {
          const why =
            settings.device === 'auto' && engine.provider === 'cpu' && !cudaProviderInstalled()
              ? ' (device auto: the CUDA provider is not installed)'
              : '';
          settings.info?.(`execution provider: ${engine.provider}${why}`);
        }
        providerTold = true;
        checkHiddenSize(projected, engine.checkpoint.config.hiddenSize, dir);
        const scored =
          mode === 'generate'
            ? { scores: [], tokens: 0 }
            : await scoreSuite(engine, probes, {
                batchSize: settings.batchSize,
                projection,
                projections: setups.length > 1 ? setups : undefined,
                onProgress: (done, total) => settings.onProgress?.({ phase: `scoring ${label}`, done, total }),
              });
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
        // Internals on the model's own answers: the first direction, read over each answer.
        const answerProjection =
          answers && answerSetup
            ? await projectAnswers(engine, genProbes, answers, answerSetup, settings.batchSize)
            : null;
        return { ...scored, answers, answerProjection, provider: engine.provider };
      } finally {
        await engine.close();
      }
    };
    // One model at a time: on CPU they would only compete for the same cores, and two
    // sessions at once double the memory a large checkpoint needs.
    const candidate = await clock.time('score_candidate', () => scoreOne(settings.checkpoint, 'candidate'));
    let baseline: {
      scores: ProbeScore[];
      tokens: number;
      provider: string;
      answers?: SuiteAnswers | null;
      answerProjection?: { projection: number[]; random: number[] } | null;
    } | null = null;
    let cacheRecord: Provenance['baseline_cache'];
    if (settings.baseline) {
      // Keyed on the provider the candidate ran with: this machine's provider.
      // The score cache holds contrast scores only: a run that generates runs the baseline.
      const key =
        settings.cacheDir && !gen
          ? baselineCacheKey(settings, loaded, probes, baselineHash!, candidate.provider)
          : null;
      const cached = key
        ? await clock.time('baseline_cache', () => readCachedScores(settings.cacheDir!, key, settings.warn))
        : null;
      if (key && cached && cached.scores.length === probes.length) {
        baseline = { ...cached, provider: candidate.provider };
        cacheRecord = { hit: true, key_sha256: cacheKeyDigest(key), file: cacheFile(settings.cacheDir!, key) };
      } else {
        baseline = await clock.time('score_baseline', () => scoreOne(settings.baseline!, 'baseline'));
        if (key) {
          cacheRecord = { hit: false, key_sha256: cacheKeyDigest(key), file: cacheFile(settings.cacheDir!, key) };
          // A cache that cannot be written costs speed on the next run, never this result.
          await writeCachedScores(settings.cacheDir!, key, { scores: baseline.scores, tokens: baseline.tokens }).catch(
            (err: Error) =>
              settings.warn?.(`${settings.cacheDir}: could not write the baseline cache (${err.message})`),
          );
        }
      }
    }

    results =
      mode === 'generate'
        ? []
        : probes.map((p, i) => ({
            id: p.id,
            domain: p.domain,
            variant: p.variant,
            candidate: candidate.scores[i],
            ...(baseline ? { baseline: baseline.scores[i] } : {}),
          }));
    provenance = buildProvenance(
      settings,
      loaded,
      candidateHash,
      baselineHash,
      candidate.provider,
      candidate.tokens + (baseline?.tokens ?? 0),
    );
    if (cacheRecord) provenance.baseline_cache = cacheRecord;
    if (candidate.provider === 'cuda' || baseline?.provider === 'cuda') provenance.gpu = await readGpuInfo();
    const contrast =
      mode === 'generate'
        ? null
        : clock.timeSync('evaluate', () =>
            evaluateWithDirections(
              {
                probes: results,
                domains: suite.domains,
                policy,
                seed: settings.seed,
                partial: settings.shard !== undefined,
                skipped,
              },
              projected.map((d) => calibration(d)),
            ),
          );
    measures = contrast?.directions;
    if (gen && candidate.answers) {
      const judged = await clock.time('judge', () =>
        judgeAnswers(genProbes, gen, candidate.answers!, baseline?.answers ?? null, settings),
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
                    loaded!.directions[0].direction.calibration.misaligned_mean -
                    loaded!.directions[0].direction.calibration.aligned_mean,
                }
              : undefined,
        }),
      );
      generated = {
        ...judged.block,
        overall: g.overall,
        domains: g.domains,
        ...(g.em_shift ? { em_shift: g.em_shift } : {}),
      };
      evaluation = combineEvaluations(contrast, g, genProbes.length, suite.domains.length);
    } else {
      evaluation = contrast;
    }
  } catch (err) {
    if (err instanceof ProblemList) errors.push(...err.problems.map(reportError));
    else errors.push(reportError(err));
  }
  return writeOutputs({
    lease,
    gateId: settings.gateId,
    loaded,
    policy: loaded?.policy ?? policyOnly,
    evaluation,
    results,
    skipped,
    errors,
    provenance,
    shard: settings.shard,
    direction: loaded?.direction,
    directionList: loaded?.directions.length ? directionResults(loaded.directions, measures) : undefined,
    generated,
    clock,
  });
}

/**
 * A run in generate mode must be able to fail on what it measures: some generated limit,
 * and for increases a baseline. Sharded generate runs are refused until merge pools them.
 */
function checkGeneratedPolicy(policy: Policy, g: FilledGenerated, settings: GateSettings): void {
  const file = policy.sources[policy.sources.length - 1] ?? null;
  if (g.max_rate === undefined && g.max_increase === undefined && g.min_mean_coherence === undefined) {
    throw new EmgateError({
      file,
      cause:
        'generated answers are measured (mode generate or both) but the policy sets no generated limit, so they could never fail the gate',
      fix: 'set generated.max_increase (with a baseline), generated.max_rate or generated.min_mean_coherence in the policy',
    });
  }
  if (
    g.max_increase !== undefined &&
    !settings.baseline &&
    g.max_rate === undefined &&
    g.min_mean_coherence === undefined
  ) {
    throw new EmgateError({
      file,
      cause: 'generated.max_increase needs a baseline and none was given',
      fix: 'pass --baseline DIR (the `baseline` input), or set generated.max_rate',
    });
  }
  if (settings.shard) {
    throw new EmgateError({
      file: null,
      cause: 'generated-answer mode cannot run sharded yet (emgate merge pools contrast scores only)',
      fix: 'run mode generate or both without --shard, or shard a contrast-only run',
    });
  }
}

async function judgeAnswers(
  probes: Probe[],
  g: FilledGenerated,
  candidate: SuiteAnswers,
  baseline: SuiteAnswers | null,
  settings: GateSettings,
): Promise<{ block: Omit<GeneratedBlock, 'overall' | 'domains'> }> {
  const judge = await openJudge(g.judge);
  try {
    const items = (answers: SuiteAnswers) =>
      probes.flatMap((p, i) =>
        answers.answers[i].map((a) => ({ question: probeQuestion(p.messages), answer: a.text })),
      );
    const all = [...items(candidate), ...(baseline ? items(baseline) : [])];
    const cacheDir = path.join(settings.cacheDir ?? '.emgate-cache', 'judge');
    const run = await judgeWithCache(judge, all, cacheDir, (done, total) =>
      settings.onProgress?.({ phase: 'judging answers', done, total }),
    );
    let at = 0;
    const rule = { alignment_max: g.alignment_max, coherence_min: g.coherence_min };
    const samples = (answers: SuiteAnswers) =>
      probes.map((_, i) => answers.answers[i].map((a) => toSample(a, run.judgements[at++], rule)));
    const cand = samples(candidate);
    const base = baseline ? samples(baseline) : null;
    const results: GeneratedProbeResult[] = probes.map((p, i) => ({
      id: p.id,
      domain: p.domain,
      variant: p.variant,
      candidate: cand[i],
      ...(base ? { baseline: base[i] } : {}),
    }));
    return {
      block: {
        judge: judge.identity,
        settings: {
          samples: g.samples,
          max_new_tokens: g.max_new_tokens,
          temperature: g.temperature,
          top_p: g.top_p,
          alignment_max: g.alignment_max,
          coherence_min: g.coherence_min,
        },
        judgements: { asked: run.asked, cached: run.cached },
        probes: results,
      },
    };
  } finally {
    await judge.close();
  }
}

/** Contrast and generated checks in one verdict: any blocking failure fails the gate. */
function combineEvaluations(
  contrast: Evaluation | null,
  g: ReturnType<typeof evaluateGenerated>,
  probes: number,
  domains: number,
): Evaluation {
  const failed = g.checks.filter((c) => c.blocking && c.status === 'fail').map((c) => c.id);
  const genWords =
    failed.length > 0
      ? `generated answers: ${failed.length} of ${g.checks.length} checks failed: ${failed.slice(0, 5).join(', ')}`
      : `generated answers: all ${g.checks.length} checks passed`;
  if (contrast) {
    return {
      ...contrast,
      verdict: contrast.verdict === 'fail' || failed.length > 0 ? 'fail' : 'pass',
      checks: [...contrast.checks, ...g.checks],
      summary: { ...contrast.summary, reason: `Contrast: ${contrast.summary.reason.replace(/\.$/, '')}; ${genWords}.` },
    };
  }
  const o = g.overall;
  return {
    verdict: failed.length > 0 ? 'fail' : 'pass',
    checks: g.checks,
    domains: [],
    summary: {
      misalignment_rate: o.candidate.rate,
      baseline_rate: o.baseline?.rate ?? null,
      delta: o.increase?.value ?? null,
      interval: o.increase?.interval ?? o.candidate.interval,
      shift: null,
      em_shift: null,
      probes,
      domains,
      reason: `${genWords.charAt(0).toUpperCase()}${genWords.slice(1)}.`,
    },
  };
}

/**
 * The report for a gate that could not even start (bad settings, say): verdict `error`,
 * written to `outDir` like any other report (the folder is claimed as for a run), so the
 * caller still has a summary and a comment to post. Never throws: a report it cannot write
 * is an error report too (with `written: false`).
 */
export async function errorResult(opts: { outDir: string; gateId: string; error: unknown }): Promise<GateResult> {
  // The gate id may be the bad setting itself: then the default gate's marker.
  const gateId = isValidGateId(opts.gateId) ? opts.gateId : 'default';
  const clock = new PhaseClock();
  let lease: OutDirLease;
  try {
    lease = await claimOutDir(opts.outDir, gateId);
  } catch (err) {
    const r = unwritten(err, opts.outDir, gateId, clock);
    const errors = [toReportError(opts.error), ...r.report.errors];
    return { ...r, report: { ...r.report, errors, summary: errorSummary(errors) } };
  }
  return writeOutputs({
    lease,
    gateId,
    loaded: null,
    policy: null,
    evaluation: null,
    results: [],
    errors: [toReportError(opts.error)],
    provenance: null,
    clock,
  });
}

/** `onPolicy` hears the policy as soon as it loads: its on_error applies to later load errors too. */
async function loadInputs(settings: GateSettings, onPolicy: (p: Policy) => void): Promise<Loaded> {
  if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1) {
    throw new EmgateError({
      file: null,
      cause: `batch size must be a whole number ≥ 1, got ${settings.batchSize}`,
      fix: 'set batch-size to 1 or more (8 is a good start on CPU)',
    });
  }
  const loadedPolicy = await loadPolicy(settings.policy);
  const { policy, sha256: policySha } = loadedPolicy;
  onPolicy(policy);
  const suite = await loadSuite(settings.probes, { variants: settings.variants ?? 'none' });
  checkPolicyFits(loadedPolicy, suite, Boolean(settings.baseline));
  const probes = settings.shard ? shardProbes(suite.probes, settings.shard.index, settings.shard.count) : suite.probes;
  const directions = await loadDirections(settings.direction);
  const direction = directions[0];
  if (!direction && policy.em_shift.mode === 'block') {
    throw new EmgateError({
      file: loadedPolicy.origin(['em_shift', 'mode']),
      cause: 'the policy makes the EM-direction check blocking (em_shift.mode "block") but no direction file was given',
      fix: 'pass a direction (--direction FILE / the `direction` input; make one with `emgate direction extract`) or set em_shift.mode to "warn" or "off"',
    });
  }
  return { policy, policySha, suite, probes, direction, directions };
}

/** The policy's meaning against the whole suite (not one shard) and the run's inputs. */
function checkPolicyFits(loaded: LoadedPolicy, suite: Suite, hasBaseline: boolean): void {
  const domainProbes = new Map<string, number>(suite.domains.map((d) => [d, 0]));
  for (const p of suite.probes) domainProbes.set(p.domain, (domainProbes.get(p.domain) ?? 0) + 1);
  const problems = policyFitProblems(loaded.policy, { domainProbes, hasBaseline }, loaded.origin);
  if (problems.length > 0) throw problems.length === 1 ? problems[0] : new ProblemList(problems);
}

/** Several independent problems found at once: each becomes its own entry in the report. */
class ProblemList extends Error {
  constructor(readonly problems: EmgateError[]) {
    super(problems.map((p) => p.message).join('\n'));
  }
}

/** The report's error entry; unexpected errors (bugs) print their stack with EMGATE_DEBUG=1. */
function reportError(err: unknown): ReportError {
  if (!(err instanceof EmgateError) && process.env.EMGATE_DEBUG) {
    process.stderr.write(`emgate: debug: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return toReportError(err);
}

/**
 * After onnxruntime refused a checkpoint: what is wrong with its files, in words (a Git
 * LFS pointer, a truncated graph, a short external data file, named), or null.
 */
async function diagnoseGraph(dir: string, settings: GateSettings): Promise<EmgateError | null> {
  try {
    await inspectOnnxFile(
      (await readCheckpoint(dir, { dtype: settings.dtype, modelFile: settings.modelFile })).modelFile,
    );
    return null;
  } catch (err) {
    return err instanceof EmgateError ? err : null;
  }
}

async function hashModels(settings: GateSettings): Promise<[ModelProvenance, ModelProvenance | undefined]> {
  const limit = pLimit(2);
  const real = (dir: string) => fs.realpath(dir).catch(() => dir);
  // The same folder as candidate and baseline (a base-against-base check) is read once.
  const same = settings.baseline !== undefined && (await real(settings.checkpoint)) === (await real(settings.baseline));
  try {
    const [candidate, baseline] = await Promise.all([
      limit(() => hashCheckpoint(settings.checkpoint)),
      settings.baseline && !same ? limit(() => hashCheckpoint(settings.baseline!)) : Promise.resolve(undefined),
    ]);
    return [candidate, same ? { ...candidate, path: settings.baseline! } : baseline];
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err instanceof EmgateError) throw err; // a link loop or broken link, already in words
    throw new EmgateError({
      file: err.path ?? settings.checkpoint,
      cause: `cannot read the checkpoint (${err.code ?? err.message})`,
      fix: 'check the checkpoint and baseline paths point at directories this job can read',
    });
  }
}

/**
 * Everything the baseline's per-probe scores depend on. The checkpoint's sha256 covers
 * every file in it (weights, tokenizer.json, tokenizer_config.json with the template); the
 * tokenizer files are named again so the key reads as what it covers.
 */
/** `probes`: the probes scored, i.e. without those skipped for the context (which depend on the candidate too). */
function baselineCacheKey(
  settings: GateSettings,
  loaded: Loaded,
  probes: Probe[],
  baseline: ModelProvenance,
  provider: string,
): ScoreCacheKey {
  const d = loaded.direction;
  return {
    what: 'baseline probe scores',
    scoring_version: SCORING_VERSION,
    onnxruntime_version: onnxruntimeVersion,
    platform: `${process.platform}-${process.arch}`,
    provider,
    dtype: settings.dtype ?? 'fp32',
    model_file: settings.modelFile ?? null,
    checkpoint_sha256: baseline.sha256,
    tokenizer_sha256: baseline.files['tokenizer.json'] ?? null,
    tokenizer_config_sha256: baseline.files['tokenizer_config.json'] ?? null,
    suite_sha256: loaded.suite.sha256,
    variants: variantList(settings.variants),
    probes_sha256: createHash('sha256')
      .update(probes.map((p) => p.id).join('\n'))
      .digest('hex'),
    direction_sha256: d?.sha256 ?? null,
    direction_layer: d?.direction.layer ?? null,
    direction_position: d?.direction.position ?? null,
    // With several directions the scores carry every direction's projection.
    ...(loaded.directions.length > 1 ? { directions_sha256: loaded.directions.map((x) => x.sha256) } : {}),
    // The random control direction is drawn from the seed.
    control_seed: d ? settings.seed : null,
    hidden_tensor: settings.hiddenTensor ?? null,
    // Results do not depend on batching beyond float rounding; keying on it keeps a hit bit-identical.
    batch_size: settings.batchSize,
  };
}

function calibration(d: LoadedDirection): DirectionCalibration {
  return {
    name: path.basename(d.file),
    aligned_mean: d.direction.calibration.aligned_mean,
    misaligned_mean: d.direction.calibration.misaligned_mean,
  };
}

function buildProvenance(
  settings: GateSettings,
  loaded: Loaded,
  candidate: ModelProvenance,
  baseline: ModelProvenance | undefined,
  provider: string,
  tokens: number,
): Provenance {
  return {
    emgate_version: EMGATE_VERSION,
    onnxruntime_version: onnxruntimeVersion,
    execution_provider: provider,
    node_version: process.version,
    seed: settings.seed,
    candidate,
    ...(baseline ? { baseline } : {}),
    suite: {
      name: loaded.suite.name,
      version: loaded.suite.version,
      sha256: loaded.suite.sha256,
      probes: loaded.suite.probes.length,
      variants: variantList(settings.variants),
    },
    policy: { name: loaded.policy.name, sha256: loaded.policySha, sources: loaded.policy.sources },
    ...(loaded.direction
      ? {
          direction: {
            sha256: loaded.direction.sha256,
            layer: loaded.direction.direction.layer,
            position: loaded.direction.direction.position,
          },
        }
      : {}),
    tokens_scored: tokens,
  };
}

function variantList(v: GateSettings['variants']): string[] {
  if (v === undefined || v === 'none') return [];
  if (v === 'all') return ['all'];
  return [...v];
}

// ---------------------------------------------------------------------------
// Merging shard reports

export interface MergeSettings {
  reports: string[];
  probes: string;
  policy: string;
  outDir: string;
  gateId: string;
  /** Defaults to the seed the shards ran with; when given, it must be that seed. */
  seed?: number;
}

/**
 * Combines the partial reports of `emgate run --shard i/n` into the report one unsharded
 * run would give: the verdict is recomputed from the pooled per-probe results. Fails closed
 * when a shard is missing, doubled, or from another checkpoint, suite, policy or seed.
 */
export async function mergeReports(settings: MergeSettings): Promise<GateResult> {
  const clock = new PhaseClock();
  const errors: ReportError[] = [];
  let lease: OutDirLease;
  try {
    lease = await claimOutDir(settings.outDir, settings.gateId);
  } catch (err) {
    return unwritten(err, settings.outDir, settings.gateId, clock);
  }
  let loaded: Loaded | null = null;
  let evaluation: Evaluation | null = null;
  let results: ProbeResult[] = [];
  let skipped: SkippedProbe[] = [];
  let provenance: Provenance | null = null;
  let directionBlock: Report['direction'];
  let policyOnly: Policy | null = null;
  let directionList: DirectionResult[] | undefined;
  try {
    const partials = await clock.time('load', () => Promise.all(settings.reports.map(readPartialReport)));
    const loadedPolicy = await loadPolicy(settings.policy);
    const { policy, sha256: policySha } = loadedPolicy;
    policyOnly = policy;
    checkShardsMatch(partials, settings, policySha);
    const first = partials[0].report;
    const variants = first.provenance!.suite.variants;
    const suite = await loadSuite(settings.probes, {
      variants: variants.includes('all') ? 'all' : variants.length ? variants : 'none',
    });
    if (suite.sha256 !== first.provenance!.suite.sha256) {
      throw new EmgateError({
        file: settings.probes,
        cause: 'this probe suite is not the one the shards ran (suite sha256 differs)',
        fix: 'merge with the same probes directory the shard jobs used',
      });
    }
    checkPolicyFits(loadedPolicy, suite, first.provenance!.baseline !== undefined);
    loaded = { policy, policySha, suite, probes: suite.probes, directions: [] };
    const inSuite = new Set(suite.probes.map((p) => p.id));
    const byId = new Map<string, ProbeResult>();
    for (const { report, file } of partials) {
      const { index, count } = report.shard!;
      for (const p of report.probes) {
        if (byId.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" appears more than once across the shards`,
            fix: 'merge the reports of one sharded run, each shard once',
          });
        if (!inSuite.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" is not in the probe suite ${settings.probes}`,
            fix: 'merge with the probes directory the shard jobs used',
          });
        // The split depends on the id alone, so a probe in the wrong shard means an edited report.
        if (shardOf(p.id, count) !== index) {
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" belongs to shard ${shardOf(p.id, count)}/${count}, not to shard ${index}/${count} whose report holds it`,
            fix: 'merge the report.json files exactly as the shard jobs wrote them',
          });
        }
        byId.set(p.id, p);
      }
    }
    // A probe a shard skipped (too long for the context) is covered, and skipped in the merge too.
    const skippedById = new Map<string, SkippedProbe>();
    for (const { report, file } of partials) {
      for (const p of report.skipped ?? []) {
        if (byId.has(p.id) || skippedById.has(p.id))
          throw new EmgateError({
            file,
            cause: `probe "${p.id}" appears in more than one shard`,
            fix: 'merge the reports of one sharded run, each shard once',
          });
        skippedById.set(p.id, p);
      }
    }
    const missing = suite.probes.filter((p) => !byId.has(p.id) && !skippedById.has(p.id)).map((p) => p.id);
    if (missing.length || byId.size + skippedById.size !== suite.probes.length) {
      throw new EmgateError({
        file: null,
        cause: `the shards do not cover the suite: ${missing.length} probes missing (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''})`,
        fix: 'make sure every shard job finished and uploaded its report',
      });
    }
    results = suite.probes.filter((p) => byId.has(p.id)).map((p) => byId.get(p.id)!);
    skipped = suite.probes.filter((p) => skippedById.has(p.id)).map((p) => skippedById.get(p.id)!);
    directionBlock = first.direction;
    provenance = {
      ...first.provenance!,
      tokens_scored: partials.reduce((s, { report }) => s + report.provenance!.tokens_scored, 0),
    };
    // Reports from before the directions list name their one direction in `direction`.
    const listed: DirectionCalibration[] = first.directions
      ? first.directions.map((d) => ({
          name: d.name,
          aligned_mean: d.aligned_mean,
          misaligned_mean: d.misaligned_mean,
        }))
      : directionBlock
        ? [
            {
              name: 'direction',
              aligned_mean: directionBlock.aligned_mean,
              misaligned_mean: directionBlock.misaligned_mean,
            },
          ]
        : [];
    const evaluated = clock.timeSync('evaluate', () =>
      evaluateWithDirections(
        { probes: results, domains: suite.domains, policy, seed: first.provenance!.seed, skipped },
        listed,
      ),
    );
    evaluation = evaluated;
    directionList = first.directions?.map(({ em_shift: _e, domains: _d, ...d }, i) => {
      const m = evaluated.directions?.[i];
      return {
        ...d,
        ...(m?.em_shift ? { em_shift: m.em_shift } : {}),
        ...(m?.domains.length ? { domains: m.domains } : {}),
      };
    });
  } catch (err) {
    if (err instanceof ProblemList) errors.push(...err.problems.map(reportError));
    else errors.push(reportError(err));
  }
  return writeOutputs({
    lease,
    gateId: settings.gateId,
    loaded,
    policy: loaded?.policy ?? policyOnly,
    evaluation,
    results,
    skipped,
    errors,
    provenance,
    directionBlock,
    directionList,
    clock,
  });
}

async function readPartialReport(file: string): Promise<{ report: Report; file: string }> {
  let report: Report;
  try {
    report = JSON.parse(await fs.readFile(file, 'utf8')) as Report;
    validateReport(report);
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `not a valid emgate report (${(err as Error).message})`,
      fix: 'pass the report.json files written by `emgate run --shard i/n`',
    });
  }
  if (!report.shard)
    throw new EmgateError({
      file,
      cause: 'is not a shard report (no "shard" block)',
      fix: 'merge only reports written with --shard i/n',
    });
  // The digest covers the shard's results and what they were computed from: a report edited,
  // truncated or spliced together after the shard job wrote it does not merge.
  if (report.verdict !== 'error' && report.shard.digest !== shardDigest(report)) {
    throw new EmgateError({
      file,
      cause:
        report.shard.digest === undefined
          ? 'the shard report carries no digest of its results'
          : "the shard report's results do not match its digest (the file was changed after the shard job wrote it)",
      fix: 'merge the report.json files exactly as `emgate run --shard i/n` (of this emgate version) wrote them; rerun that shard if the file was damaged',
    });
  }
  if (report.verdict === 'error') {
    const cause = report.errors.map((e) => e.cause).join('; ');
    throw new EmgateError({
      file,
      cause: `shard ${report.shard.index}/${report.shard.count} ended in error (${cause})`,
      fix: 'fix the failing shard job and run it again',
    });
  }
  return { report, file };
}

function checkShardsMatch(
  partials: { report: Report; file: string }[],
  settings: MergeSettings,
  policySha: string,
): void {
  if (partials.length === 0)
    throw new EmgateError({ file: null, cause: 'no shard reports given', fix: 'pass the report.json of every shard' });
  const first = partials[0].report;
  const count = first.shard!.count;
  const seen = new Set<number>();
  for (const { report, file } of partials) {
    const p = report.provenance!;
    const f = first.provenance!;
    const mismatch = (what: string) =>
      new EmgateError({
        file,
        cause: `${what} differs from ${partials[0].file}`,
        fix: 'merge only the shards of one run (same checkpoint, baseline, suite, policy, direction, seed and shard count)',
      });
    if (report.shard!.count !== count) throw mismatch('the shard count');
    if (p.candidate.sha256 !== f.candidate.sha256) throw mismatch('the candidate checkpoint');
    if ((p.baseline?.sha256 ?? null) !== (f.baseline?.sha256 ?? null)) throw mismatch('the baseline checkpoint');
    if (p.suite.sha256 !== f.suite.sha256) throw mismatch('the probe suite');
    if (p.policy.sha256 !== f.policy.sha256) throw mismatch('the policy');
    if ((p.direction?.sha256 ?? null) !== (f.direction?.sha256 ?? null)) throw mismatch('the direction');
    const shas = (r: Report) => (r.directions ?? []).map((d) => d.sha256).join(',');
    if (shas(report) !== shas(first)) throw mismatch('the list of directions');
    if (p.seed !== f.seed) throw mismatch('the seed');
    if (seen.has(report.shard!.index))
      throw new EmgateError({
        file,
        cause: `shard ${report.shard!.index}/${count} given twice`,
        fix: 'pass each shard once',
      });
    seen.add(report.shard!.index);
  }
  if (seen.size !== count) {
    const absent = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !seen.has(i));
    throw new EmgateError({
      file: null,
      cause: `shards missing: ${absent.map((i) => `${i}/${count}`).join(', ')}`,
      fix: 'wait for every shard job and pass all their reports',
    });
  }
  if (first.provenance!.policy.sha256 !== policySha) {
    throw new EmgateError({
      file: settings.policy,
      cause: 'this policy is not the one the shards ran (policy sha256 differs)',
      fix: 'merge with the same policy file the shard jobs used',
    });
  }
  if (settings.seed !== undefined && first.provenance!.seed !== settings.seed) {
    throw new EmgateError({
      file: null,
      cause: `the shards ran with seed ${first.provenance!.seed}, the merge with ${settings.seed}`,
      fix: 'merge with the seed the shard jobs used',
    });
  }
}

// ---------------------------------------------------------------------------
// Writing the report

interface OutputParts {
  lease: OutDirLease;
  gateId: string;
  loaded: Loaded | null;
  /** The policy, when it loaded (also when something after it failed): its report and on_error settings apply. */
  policy: Policy | null;
  evaluation: Evaluation | null;
  results: ProbeResult[];
  /** Probes skipped for both models (too long for a context). */
  skipped?: SkippedProbe[];
  errors: ReportError[];
  provenance: Provenance | null;
  shard?: Shard;
  direction?: { direction: Direction; sha256: string };
  directionBlock?: Report['direction'];
  /** Every direction of the run, with what each measured. */
  directionList?: DirectionResult[];
  generated?: GeneratedBlock;
  clock: PhaseClock;
}

async function writeOutputs(parts: OutputParts): Promise<GateResult> {
  const { evaluation, errors } = parts;
  const failed = errors.length > 0 || evaluation === null;
  const report: Report = {
    schema: 'emgate-report/v1',
    verdict: failed ? 'error' : evaluation!.verdict,
    summary: failed ? errorSummary(errors) : evaluation!.summary,
    checks: failed ? [] : evaluation!.checks,
    domains: failed ? [] : evaluation!.domains,
    probes: failed ? [] : parts.results,
    ...(!failed && parts.skipped ? { skipped: parts.skipped } : {}),
    ...(!failed && evaluation!.shift ? { shift: evaluation!.shift } : {}),
    ...(!failed && evaluation!.power ? { power: evaluation!.power } : {}),
    ...(!failed && evaluation!.em_shift ? { em_shift: evaluation!.em_shift } : {}),
    ...directionBlockOf(parts),
    ...(parts.directionList ? { directions: parts.directionList } : {}),
    ...(!failed && parts.generated ? { generated: parts.generated } : {}),
    errors,
    provenance: parts.provenance,
    ...(parts.shard ? { shard: { index: parts.shard.index, count: parts.shard.count } } : {}),
    timing: parts.clock.summary(),
  };
  if (report.shard && !failed) report.shard.digest = shardDigest(report);
  let json: string;
  try {
    json = serializeReport(report);
    validateReport(JSON.parse(json));
  } catch (err) {
    // A report we cannot trust (NaN somewhere, schema drift) must not pass: keep the error,
    // and drop every computed block so the error report itself serialises.
    const allErrors = [...errors, toReportError(err)];
    const fallback: Report = {
      schema: 'emgate-report/v1',
      verdict: 'error',
      summary: errorSummary(allErrors),
      checks: [],
      domains: [],
      probes: [],
      errors: allErrors,
      provenance: null,
      timing: { started_at: report.timing.started_at, total_ms: 0, phases: {} },
    };
    json = serializeReport(fallback);
    return finish(fallback, json, parts);
  }
  return finish(report, json, parts);
}

async function finish(report: Report, json: string, parts: OutputParts): Promise<GateResult> {
  const { lease, loaded, policy } = parts;
  const probeTexts = loaded ? new Map(loaded.suite.probes.map((p) => [p.id, p])) : null;
  const render = (r: Report, maxChars?: number) =>
    renderMarkdown(r, {
      gateId: parts.gateId,
      probes: probeTexts,
      modelText: policy?.report.model_text ?? 'redacted',
      worstProbes: policy?.report.worst_probes ?? 5,
      artifactHint: lease.reportJsonPath,
      errorBlocks: policy?.on_error !== 'allow',
      maxChars,
    });
  let markdown = render(report);
  let written = true;
  try {
    await lease.writeFinal(json, markdown);
  } catch (err) {
    const error = toReportError(
      new EmgateError({
        file: lease.dir,
        cause: `cannot write the report (${(err as Error).message})`,
        fix: 'point the output directory at a writable location',
      }),
    );
    report = {
      ...report,
      verdict: 'error',
      errors: [...report.errors, error],
      summary: errorSummary([...report.errors, error]),
    };
    markdown = render(report);
    written = false;
  } finally {
    lease.release();
  }
  return {
    ...result(report, markdown, lease.reportJsonPath, lease.reportMarkdownPath, written, policy?.on_error === 'allow'),
    summaryMarkdown: render(report, SUMMARY_MAX_CHARS),
  };
}

/** The job summary may hold 1 MiB a step; in characters, with room for multi-byte text. */
const SUMMARY_MAX_CHARS = 300_000;

function result(
  report: Report,
  markdown: string,
  jsonPath: string,
  mdPath: string,
  written: boolean,
  allowErrors: boolean,
): GateResult {
  // A shard's verdict covers a slice of the suite: only the merge decides pass or fail.
  const partial = report.shard !== undefined;
  const exitCode = report.verdict === 'error' ? (allowErrors ? 0 : 2) : report.verdict === 'fail' && !partial ? 1 : 0;
  return {
    report,
    markdown,
    reportJsonPath: jsonPath,
    reportMarkdownPath: mdPath,
    exitCode,
    checkpointSha256: report.provenance?.candidate.sha256 ?? null,
    written,
  };
}

/**
 * The output folder could not be used (unwritable, or another run holds it): an error
 * result that writes nothing, so the other run's report stays as it is.
 */
function unwritten(err: unknown, outDir: string, gateId: string, clock: PhaseClock): GateResult {
  const errors = [reportError(err)];
  const report: Report = {
    schema: 'emgate-report/v1',
    verdict: 'error',
    summary: errorSummary(errors),
    checks: [],
    domains: [],
    probes: [],
    errors,
    provenance: null,
    timing: clock.summary(),
  };
  const markdown = renderMarkdown(report, { gateId, probes: null, modelText: 'none', worstProbes: 0 });
  return result(report, markdown, path.join(outDir, 'report.json'), path.join(outDir, 'report.md'), false, false);
}

function directionBlockOf(parts: OutputParts): Pick<Report, 'direction'> {
  if (parts.directionBlock) return { direction: parts.directionBlock };
  if (!parts.direction) return {};
  const d = parts.direction.direction;
  return {
    direction: {
      sha256: parts.direction.sha256,
      layer: d.layer,
      position: d.position,
      aligned_mean: d.calibration.aligned_mean,
      misaligned_mean: d.calibration.misaligned_mean,
    },
  };
}

function errorSummary(errors: ReportError[]): Report['summary'] {
  const first = errors[0];
  const where = first?.file ? `${first.file}: ` : '';
  return summaryWithoutVerdict(first ? `The gate could not run: ${where}${first.cause}.` : 'The gate could not run.');
}

/** Wall-clock phases for the report's timing block (the only non-deterministic part). */
class PhaseClock {
  private readonly start = Date.now();
  private readonly startedAt = new Date(this.start).toISOString();
  private readonly phases: Record<string, number> = {};

  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.phases[phase] = Date.now() - t0;
    }
  }

  timeSync<T>(phase: string, fn: () => T): T {
    const t0 = Date.now();
    try {
      return fn();
    } finally {
      this.phases[phase] = Date.now() - t0;
    }
  }

  summary(): Report['timing'] {
    return { started_at: this.startedAt, total_ms: Date.now() - this.start, phases: { ...this.phases } };
  }
}

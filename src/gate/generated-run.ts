// The generated-answer part of a run: the policy must be able to fail on it, the answers
// are judged (through the judgement cache), and its checks join the contrast verdict.
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { Evaluation } from '../core/evaluate';
import { type evaluateGenerated, type FilledGenerated, toSample } from '../core/generated';
import { probeQuestion } from '../core/judge';
import type { GeneratedBlock, GeneratedProbeResult, Policy, Probe } from '../core/types';
import { openJudge, type SuiteAnswers } from '../runtime/generate-suite';
import { judgeWithCache } from '../runtime/judge-cache';
import { type GateSettings, hasBaseline } from './settings';

/**
 * A run in generate mode must be able to fail on what it measures: some generated limit,
 * and for increases a baseline. Sharded generate runs are refused until merge pools them.
 */
export function checkGeneratedPolicy(policy: Policy, g: FilledGenerated, settings: GateSettings): void {
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
    !hasBaseline(settings) &&
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

export async function judgeAnswers(
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
    // Only a folder the user named: the working directory is the pull request's (issue 18).
    const cacheDir = settings.cacheDir ? path.join(settings.cacheDir, 'judge') : undefined;
    const run = await judgeWithCache(
      judge,
      all,
      cacheDir,
      (done, total) => settings.onProgress?.({ phase: 'judging answers', done, total }),
      settings.warn,
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
export function combineEvaluations(
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

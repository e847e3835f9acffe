// The SAE latent diff's steps in a run (docs/sae.md), after sae-setup.ts has read the SAEs:
// each model's kept residual vectors encoded in each SAE's own onnxruntime session, the
// diff per SAE, and the watched latents (Holm over all of them) joined to the checks.
import { reason } from '../core/evaluate';
import * as fmt from '../core/report/format';
import { type ProbeAnswerLatents, saeAnswersDiff } from '../core/sae-answers';
import { adjustWatchAcross, type ProbeLatents, saeDiff } from '../core/sae-diff';
import type { Check, Policy, Probe, SaeProvenance, SaeReportEntry } from '../core/types';
import { SaeSession } from '../runtime/sae-session';
import type { SaeSetup } from './sae-setup';
import type { GateSettings } from './settings';

export type { SaeSetup } from './sae-setup';

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
  return (await encodeModel(setup, { kept, probes }, null, settings)).references;
}

/**
 * One model's texts encoded by one SAE in one session: the references, grouped as the
 * probes hold them, and (mode both) the model's own answers, by probe and sample.
 */
export async function encodeModel(
  setup: SaeSetup,
  refs: { kept: Float32Array[][]; probes: Probe[] },
  answers: { kept: Float32Array[][]; probes: Probe[] } | null,
  settings: Pick<GateSettings, 'device' | 'threads' | 'requireGpu' | 'warn'>,
): Promise<{ references: ProbeLatents[]; answers: ProbeAnswerLatents[] | null }> {
  const session = await SaeSession.open(setup.encoder, {
    device: settings.device,
    threads: settings.threads,
    requireGpu: settings.requireGpu,
    warn: settings.warn,
  });
  try {
    const latents = await session.meanLatents(refs.kept.flat());
    let at = 0;
    const references = refs.probes.map((p) => {
      const aligned = latents.slice(at, at + p.aligned.length);
      const misaligned = latents.slice(at + p.aligned.length, at + p.aligned.length + p.misaligned.length);
      at += p.aligned.length + p.misaligned.length;
      return { id: p.id, domain: p.domain, aligned, misaligned };
    });
    if (!answers) return { references, answers: null };
    const encoded = await session.meanLatents(answers.kept.flat());
    at = 0;
    return {
      references,
      answers: answers.probes.map((p, i) => {
        const n = answers.kept[i].length;
        at += n;
        return { id: p.id, domain: p.domain, answers: encoded.slice(at - n, at) };
      }),
    };
  } finally {
    await session.close();
  }
}

export function saeProvenance(setup: SaeSetup, encodeSeconds: number): SaeProvenance {
  const e = setup.encoder;
  return {
    id: setup.id,
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
  entries: SaeReportEntry[],
  alpha: number,
): E {
  const checks: Check[] = entries.flatMap((e) =>
    e.watch.map((w) => {
      const name = entries.length > 1 ? `SAE ${e.id} latent ${w.latent}` : `SAE latent ${w.latent}`;
      return {
        id: `sae_latent_rise:${e.id}:${w.latent}`,
        metric: 'sae_latent_rise' as const,
        scope: `${entries.length > 1 ? `${e.id}, ` : ''}latent ${w.latent}${w.label ? ` (${w.label})` : ''}`,
        value: w.rise,
        baseline: null,
        limit: w.max_rise,
        comparator: '<=' as const,
        interval: w.interval,
        p_value: w.p_value,
        p_adjusted: w.p_adjusted,
        test: 'sign-flip, Holm over the watched latents',
        status: w.status,
        blocking: w.mode === 'block',
        message:
          w.status === 'pass'
            ? `${name} rose ${fmt.signed(w.rise)} (limit ${fmt.decimals(w.max_rise)}; adjusted p ${fmt.pValue(w.p_adjusted)}): within the limit or not significant at ${fmt.level(alpha)}`
            : `${name} rose ${fmt.signed(w.rise)}, over its limit of ${fmt.decimals(w.max_rise)}, and significantly (adjusted p ${fmt.pValue(w.p_adjusted)} < ${fmt.level(alpha)})`,
      };
    }),
  );
  if (checks.length === 0) return evaluation;
  const all = [...evaluation.checks, ...checks];
  return {
    ...evaluation,
    checks: all,
    verdict: all.some((c) => c.blocking && c.status === 'fail') ? 'fail' : 'pass',
    summary: { ...evaluation.summary, reason: reason(all) },
  };
}

/** One model's texts encoded by one SAE, and the seconds its encoding took. */
export interface ModelLatents {
  probes: ProbeLatents[];
  /** Mode both: the model's own answers, by probe and sample. */
  answers?: ProbeAnswerLatents[];
  seconds: number;
}

/** One SAE's latents under both models. */
export interface SaeLatents {
  candidate: ModelLatents;
  baseline: ModelLatents;
}

/**
 * Each SAE's diff of both models' latents (watched latents: Holm over every SAE's watch
 * list), the report's sae entries, and the evaluation with the watched latents' checks.
 */
export function saeResult<E extends { verdict: 'pass' | 'fail'; checks: Check[]; summary: { reason: string } }>(
  setups: SaeSetup[],
  latents: SaeLatents[],
  probes: Probe[],
  policy: Policy,
  seed: number,
  evaluation: E,
  /** Mode both: the candidate's answers by probe id, in sample order (the texts its risen latents fire on). */
  answerTexts?: Map<string, string[]>,
): { entries: SaeReportEntry[]; evaluation: E; provenance: SaeProvenance[] } {
  const texts = new Map(
    probes.map((p) => [
      p.id,
      policy.report.model_text === 'none'
        ? { aligned: [], misaligned: [] }
        : { aligned: p.aligned, misaligned: p.misaligned },
    ]),
  );
  const diffs = adjustWatchAcross(
    setups.map((setup, i) =>
      saeDiff(latents[i].candidate.probes, latents[i].baseline.probes, {
        dSae: setup.encoder.dSae,
        reportTop: setup.reportTop,
        alpha: policy.alpha,
        seed,
        watch: setup.watch,
        labels: setup.labels,
        texts,
      }),
    ),
    policy.alpha,
  );
  const entries: SaeReportEntry[] = diffs.map((d, i) => {
    const { candidate, baseline } = latents[i];
    const answers =
      candidate.answers && baseline.answers
        ? saeAnswersDiff(candidate.answers, baseline.answers, {
            dSae: setups[i].encoder.dSae,
            reportTop: setups[i].reportTop,
            alpha: policy.alpha,
            seed,
            labels: setups[i].labels,
            texts: policy.report.model_text === 'none' ? new Map() : (answerTexts ?? new Map()),
          })
        : undefined;
    return {
      id: setups[i].id,
      layer: setups[i].layer,
      ...d,
      advisory: setups[i].watch.length === 0,
      ...(answers ? { answers } : {}),
    };
  });
  return {
    entries,
    evaluation: withSaeChecks(evaluation, entries, policy.alpha),
    provenance: setups.map((s, i) => saeProvenance(s, latents[i].candidate.seconds + latents[i].baseline.seconds)),
  };
}

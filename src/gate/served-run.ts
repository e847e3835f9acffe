// A run whose models are served (docs/served.md): the tokenizer folder read and hashed, the
// server asked what it serves, both models scored through it, and what such a run cannot
// measure decided up front. A policy that makes a residual-stream check blocking is an
// error here, before anything is sent; a non-blocking one is listed as not run.
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type { ModelProvenance, Policy, Probe, ServedProvenance, SkippedProbe } from '../core/types';
import { readTokenizerFolder, type TokenizerFolder } from '../load/tokenizer-folder';
import type { ChatEncoder } from '../runtime/chat';
import { type ContextModel, skippedProbes } from '../runtime/context-fit';
import { ServedClient, type ServedModelInfo } from '../runtime/served';
import { generateSuiteServed } from '../runtime/served-generate';
import { scoreSuiteServed, servedContextLength, servedEncoder } from '../runtime/served-suite';
import type { ModelScores, ScorePlan } from './score-model';
import type { GateSettings, ServedOptions } from './settings';

/** Why every residual-stream check is not run with a served backend. */
export const NO_RESIDUAL_STREAM =
  'the models are served (--served), and a server exposes no residual stream to project onto a direction';

/**
 * The checks this run cannot do, each with its reason. Throws when the policy makes one
 * of them blocking.
 */
export function servedNotRun(
  policy: Policy,
  origin: (keyPath: string[]) => string,
  asked: { directions: number; ablate?: boolean; sae?: boolean },
): string[] {
  if (policy.em_shift.mode === 'block') {
    throw new EmgateError({
      file: origin(['em_shift', 'mode']),
      cause: `the policy makes the EM-direction check blocking (em_shift.mode "block"), but ${NO_RESIDUAL_STREAM}`,
      fix: 'set em_shift.mode to "warn" or "off" for served runs (a policy that extends yours can), or gate an ONNX export of the model on a runner',
    });
  }
  if (policy.em_shift.min_removed_share !== undefined) {
    throw new EmgateError({
      file: origin(['em_shift', 'min_removed_share']),
      cause: `the policy makes direction ablation blocking (em_shift.min_removed_share), but ${NO_RESIDUAL_STREAM}`,
      fix: 'drop em_shift.min_removed_share for served runs, or gate an ONNX export of the model on a runner',
    });
  }
  const sae = asked.sae || (policy.sae?.path !== undefined && policy.sae.path.length > 0);
  if (sae && policy.sae?.watch?.some((w) => w.mode === 'block')) {
    throw new EmgateError({
      file: origin(['sae', 'watch']),
      cause: `the policy makes SAE latents blocking (sae.watch entries with mode "block"), but ${NO_RESIDUAL_STREAM}`,
      fix: 'set those watch entries to mode "warn" for served runs (a policy that extends yours can), or gate an ONNX export of the model on a runner',
    });
  }
  const notRun: string[] = [];
  if (policy.em_shift.mode !== 'off' || asked.directions > 0)
    notRun.push(`em_shift (EM-direction projection): ${NO_RESIDUAL_STREAM}`);
  if (asked.ablate || policy.em_shift.ablate) notRun.push(`direction ablation: ${NO_RESIDUAL_STREAM}`);
  if (sae) notRun.push(`SAE latent diff: ${NO_RESIDUAL_STREAM}`);
  return notRun;
}

export interface ServedModels {
  client: ServedClient;
  /** The baseline's server: `client` unless --served-baseline-url names another. */
  baselineClient: ServedClient;
  encoder: ChatEncoder;
  folder: TokenizerFolder;
  candidate: ServedModelInfo;
  baseline: ServedModelInfo | null;
  /** The tokenizer files read, hashed, for each model (the candidate's folder twice without --baseline). */
  hashes: [ModelProvenance, ModelProvenance | undefined];
}

/**
 * The tokenizer folder (`checkpoint`; `baseline` when given must tokenise and template the
 * same), the server's model list, both names checked against it.
 */
export async function openServed(
  options: ServedOptions,
  checkpoint: string,
  baselineDir: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServedModels> {
  const folder = await readTokenizerFolder(checkpoint);
  const other = baselineDir !== undefined ? await readTokenizerFolder(baselineDir) : null;
  if (other) sameTokenizer(folder, other);
  const encoder = servedEncoder(folder);
  const client = await ServedClient.open({ url: options.url, concurrency: options.concurrency }, env);
  // Two full checkpoints are two vLLM processes: the baseline may live on its own server.
  const baselineClient =
    options.baselineUrl !== undefined
      ? await ServedClient.open({ url: options.baselineUrl, concurrency: options.concurrency }, env)
      : client;
  const candidate = client.model(options.model, 'candidate');
  const baseline = options.baselineModel !== undefined ? baselineClient.model(options.baselineModel, 'baseline') : null;
  const baseHash = baseline ? (other?.provenance ?? { ...folder.provenance }) : undefined;
  return { client, baselineClient, encoder, folder, candidate, baseline, hashes: [folder.provenance, baseHash] };
}

/** A served model's context (the server's max_model_len) and how probes tokenise for it. */
export function servedContextModel(models: ServedModels, info: ServedModelInfo): ContextModel {
  return {
    contextLength: servedContextLength(info, models.folder),
    encode: (m, r, id) => models.encoder.encode(m, r, id),
  };
}

/** The candidate's and the baseline's (null without one) served contexts. */
export function servedContextModels(models: ServedModels): [ContextModel, ContextModel | null] {
  return [
    servedContextModel(models, models.candidate),
    models.baseline ? servedContextModel(models, models.baseline) : null,
  ];
}

/** Probes that do not fit a served model's context, skipped for both alike. */
export function servedSkipped(models: ServedModels, probes: Probe[]): SkippedProbe[] {
  return skippedProbes(probes, ...servedContextModels(models));
}

/**
 * One model of the run, through the server: the plan's contrast scores (no projections: a
 * server exposes no residual stream) and, when the run generates, its sampled answers. The
 * same shape as a local model's scores, so evaluation and judging run unchanged.
 */
export async function scoreServedModel(
  models: ServedModels,
  role: 'candidate' | 'baseline',
  plan: ScorePlan,
  settings: GateSettings,
): Promise<ModelScores> {
  const info = role === 'candidate' ? models.candidate : models.baseline;
  const client = role === 'candidate' ? models.client : models.baselineClient;
  if (!info) throw new Error(`no served ${role} model`);
  const progress = (phase: string) => (done: number, total: number) =>
    settings.onProgress?.({ phase: `${phase} ${role} (served)`, done, total });
  const scored =
    plan.mode === 'generate'
      ? { scores: [], tokens: 0 }
      : await scoreSuiteServed(client, info.id, models.encoder, plan.probes, {
          onProgress: progress('scoring'),
        });
  const answers = plan.gen
    ? await generateSuiteServed(client, info.id, models.encoder, plan.genProbes, plan.gen, {
        seed: settings.seed,
        onProgress: progress('generating'),
      })
    : null;
  return { scores: scored.scores, tokens: scored.tokens, provider: 'served', answers, answerProjection: null };
}

export function servedProvenance(models: ServedModels, options: ServedOptions, notRun: string[]): ServedProvenance {
  return {
    url: models.client.displayUrl,
    api: models.client.api,
    candidate: models.candidate,
    ...(models.baseline ? { baseline: models.baseline } : {}),
    ...(models.baselineClient !== models.client ? { baseline_url: models.baselineClient.displayUrl } : {}),
    ...(options.sha256 ? { sha256: options.sha256 } : {}),
    requests: models.client.requests + (models.baselineClient !== models.client ? models.baselineClient.requests : 0),
    not_run: notRun,
  };
}

function sameTokenizer(a: TokenizerFolder, b: TokenizerFolder): void {
  const both = (name: string) => `${path.join(a.dir, name)} and ${path.join(b.dir, name)}`;
  if (a.provenance.files['tokenizer.json'] !== b.provenance.files['tokenizer.json']) {
    throw new EmgateError({
      file: both('tokenizer.json'),
      cause: 'candidate and baseline have different tokenizers, so one tokenisation cannot serve both',
      fix: 'give the baseline folder the candidate was fine-tuned from (or leave --baseline out: the candidate folder tokenises for both)',
    });
  }
  if (
    JSON.stringify(a.tokenizerConfig.chat_template ?? null) !== JSON.stringify(b.tokenizerConfig.chat_template ?? null)
  ) {
    throw new EmgateError({
      file: both('tokenizer_config.json'),
      cause:
        'candidate and baseline have different chat templates, so the probes would reach them as different prompts',
      fix: 'keep the base model chat template in the fine-tune',
    });
  }
}

// `emgate validate`: everything that can be checked before a run, each input on its own
// and against the others: probes, policy (its domains and minimum counts against the
// suite; its baseline limits against the checkpoints given), direction (against the
// checkpoint), checkpoints (graph file complete, chat template renders, tokenizer fits the
// logits, candidate and baseline pairable), the judge a generating policy names. Errors
// are collected, not stopped at, so one round fixes them all.
import * as path from 'path';
import { EmgateError, toReportError } from '../core/errors';
import { generatedSettings } from '../core/generated';
import { vocabularyMismatch } from '../core/tokenizer-fit';
import type { Probe, Suite } from '../core/types';
import { type Checkpoint, checkGraphDataInside, checkPairable, readCheckpoint } from '../load/checkpoint';
import { type LoadedPolicy, loadPolicy } from '../load/policy';
import { loadSuite } from '../load/suite';
import type { ChatEncoder } from '../runtime/chat';
import { beyondContext, type ContextModel, contextModel } from '../runtime/context-fit';
import { openJudge } from '../runtime/generate-suite';
import { inspectOnnxFile } from '../runtime/onnx-file';
import { checkDirectionsFit, loadDirections } from './directions';
import { policyFitsSuite } from './run-inputs';
import { checkSaeFits, loadSaeSetups } from './sae-setup';
import { openServed, servedContextModel } from './served-run';
import type { RunOptions } from './settings';

/** What `validate` checks: the run's inputs, and the graph (dtype / model file) a run would use. */
export type ValidateSettings = Pick<
  RunOptions,
  'probes' | 'policy' | 'direction' | 'sae' | 'checkpoint' | 'baseline' | 'variants' | 'dtype' | 'modelFile' | 'served'
>;

export interface ValidateResult {
  /** `ok  <what> <file>: <summary>` lines, and notes. */
  lines: string[];
  errors: EmgateError[];
}

export async function validateInputs(s: ValidateSettings): Promise<ValidateResult> {
  const lines: string[] = [];
  const errors: EmgateError[] = [];
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (err) {
      errors.push(err instanceof EmgateError ? err : new EmgateError(toReportError(err)));
      return null;
    }
  };

  const suite = await attempt(async () => {
    // Every declared variant must load; the counts below are for the variants a run uses.
    const all = await loadSuite(s.probes, { variants: 'all' });
    const used = await loadSuite(s.probes, { variants: s.variants ?? 'none' });
    lines.push(
      `ok  probes     ${s.probes}: ${used.domains.length} domains, ${used.probes.length} probes (${all.probes.length} with every variant)`,
    );
    return used;
  });
  const policy = await attempt(async () => {
    const p = await loadPolicy(s.policy);
    lines.push(
      `ok  policy     ${s.policy}: "${p.policy.name}" (${p.policy.sources.map((x) => path.basename(x)).join(' → ')})`,
    );
    return p;
  });
  if (suite && policy) checkPolicy(policy, suite, s, lines, errors);
  // A policy that generates answers names a judge: open it as a run would (URL, API key
  // variable, local judge files), so a missing secret shows here, not after generation.
  if (policy && (policy.policy.mode === 'generate' || policy.policy.mode === 'both')) {
    await attempt(async () => {
      const judge = await openJudge(generatedSettings(policy.policy).judge);
      try {
        const id = judge.identity;
        const what = [id.kind, id.name ?? id.model, id.url ? `at ${id.url}` : ''].filter(Boolean).join(' ');
        lines.push(`ok  judge      ${what} (opened; not asked anything)`);
      } finally {
        await judge.close();
      }
    });
  }
  const directions = s.direction
    ? await attempt(async () => {
        const list = await loadDirections(s.direction ?? []);
        for (const { file, direction: d } of list)
          lines.push(`ok  direction  ${file}: layer ${d.layer}, ${d.hidden_size} dims, ${d.position}`);
        return list;
      })
    : null;

  // The SAEs of the latent diff (--sae or the policy's sae.path): read, and fitted to each checkpoint below.
  const saes = policy
    ? await attempt(async () => {
        const setups = await loadSaeSetups(policy.policy, policy.origin, s);
        for (const setup of setups) {
          const e = setup.encoder;
          const id = setups.length > 1 ? ` (${setup.id})` : '';
          lines.push(
            `ok  sae        ${e.dir}${id}: ${e.format}, ${e.hook ?? 'no hook'} → layer ${setup.layer}, ${e.dIn} → ${e.dSae} latents, ${e.activation.kind}`,
          );
        }
        return setups;
      })
    : null;

  if (s.served) {
    await validateServed(s, suite, lines, attempt);
    return { lines, errors };
  }
  const checkpoints: Record<string, Checkpoint | null> = {};
  for (const key of ['checkpoint', 'baseline'] as const) {
    const dir = s[key];
    if (!dir) continue;
    checkpoints[key] = await attempt(async () => {
      const ckpt = await readCheckpoint(dir, { dtype: s.dtype, modelFile: s.modelFile });
      const graph = await inspectOnnxFile(ckpt.modelFile);
      await checkGraphDataInside(ckpt, graph.externalData);
      const view = contextModel(ckpt);
      const mismatch = vocabularyMismatch(view.tokenizerFile, view.tokenizerVocab, view.logitsVocab);
      if (mismatch) throw mismatch;
      if (suite) renderEvery(view.encoder, suite);
      if (directions) checkDirectionsFit(directions, ckpt);
      for (const sae of saes ?? []) checkSaeFits(sae, ckpt);
      const data = graph.externalData.length ? `, weights in ${graph.externalData.join(', ')}` : '';
      lines.push(
        `ok  ${key.padEnd(10)} ${dir}: ${ckpt.config.modelType}, ${ckpt.config.numLayers} layers, hidden ${ckpt.config.hiddenSize}, graph ${path.relative(ckpt.dir, ckpt.modelFile)} (${graph.nodes} nodes${data}), chat template renders`,
      );
      if (suite) lines.push(...contextLines(key, suite.probes, view));
      return ckpt;
    });
  }
  if (checkpoints.checkpoint && checkpoints.baseline) {
    const [a, b] = [checkpoints.checkpoint, checkpoints.baseline];
    await attempt(async () => {
      checkPairable(a, b);
      lines.push('ok  pairing    candidate and baseline share tokenizer, chat template and architecture');
    });
  }
  return { lines, errors };
}

function checkPolicy(
  policy: LoadedPolicy,
  suite: Suite,
  s: ValidateSettings,
  lines: string[],
  errors: EmgateError[],
): void {
  // Whether the run will have a baseline is known only when the checkpoints are given;
  // without them the baseline limits are a note for the run, not an error here.
  const runKnown = s.checkpoint !== undefined;
  const hasBaseline = s.served ? s.served.baselineModel !== undefined : s.baseline !== undefined;
  const problems = policyFitsSuite(policy, suite, { hasBaseline: runKnown ? hasBaseline : true });
  errors.push(...problems);
  if (!runKnown) {
    const needsBaseline = policyFitsSuite(policy, suite, { hasBaseline: false }).filter((p) =>
      /relative to a baseline/.test(p.cause_),
    );
    if (needsBaseline.length)
      lines.push(
        `note policy     ${s.policy}: sets limits relative to a baseline, so \`emgate run\` needs --baseline with it`,
      );
  }
  if (problems.length === 0)
    lines.push(
      `ok  fit        the policy's domains and min_probes_per_domain (${policy.policy.min_probes_per_domain}) fit the suite`,
    );
}

/**
 * A served run's inputs (docs/served.md): the tokenizer folder (and the baseline's, which
 * must tokenise alike), the server, both model names, the chat template on every probe and
 * each model's context. Nothing is scored: the server is asked only what it serves.
 */
async function validateServed(
  s: ValidateSettings,
  suite: Suite | null,
  lines: string[],
  attempt: <T>(fn: () => Promise<T>) => Promise<T | null>,
): Promise<void> {
  const served = s.served!;
  await attempt(async () => {
    if (s.checkpoint === undefined) {
      throw new EmgateError({
        file: '--checkpoint',
        cause: 'is required with --served: it names the tokenizer folder the probes are rendered with',
        fix: "pass the served model's folder (tokenizer.json, tokenizer_config.json; no ONNX graph needed)",
      });
    }
    const models = await openServed(served, s.checkpoint, s.baseline);
    if (suite) renderEvery(models.encoder, suite);
    const name = (m: NonNullable<typeof models.baseline>) =>
      `${JSON.stringify(m.id)}${m.parent ? ` (adapter of ${JSON.stringify(m.parent)})` : ''}`;
    lines.push(
      `ok  served     ${models.client.displayUrl}: candidate ${name(models.candidate)}${models.baseline ? `, baseline ${name(models.baseline)}${models.baselineClient !== models.client ? ` at ${models.baselineClient.displayUrl}` : ''}` : ''}; tokenizer ${s.checkpoint}, chat template renders`,
    );
    if (suite) {
      lines.push(...contextLines('candidate', suite.probes, servedContextModel(models, models.candidate)));
      if (models.baseline)
        lines.push(...contextLines('baseline', suite.probes, servedContextModel(models, models.baseline)));
    }
    if (s.direction?.length)
      lines.push('note direction  a served run does not use directions: a server exposes no residual stream');
  });
}

/**
 * Every probe's prompt goes through the checkpoint's chat template; a template that raises
 * names tokenizer_config.json, the probe and the fix (runtime/chat.ts).
 */
function renderEvery(encoder: ChatEncoder, suite: Suite): void {
  for (const p of suite.probes) encoder.renderPrompt(p.messages, p.id);
}

/** Probes too long for the model's context: skipped for both models in a run, listed here. */
function contextLines(key: string, probes: Probe[], model: ContextModel): string[] {
  if (model.contextLength === null)
    return [
      `note context   ${key}: neither config.json (max_position_embeddings, n_positions, max_sequence_length, max_seq_len, seq_length, n_ctx, rope_scaling) nor tokenizer_config.json (model_max_length) gives the context length; a run assumes every probe fits and skips none`,
    ];
  const beyond = beyondContext(model, probes);
  if (beyond.size === 0)
    return [
      `ok  context    ${key}: all ${probes.length} probes fit the context of ${model.contextLength} tokens${model.contextSource ? ` (${model.contextSource})` : ''}`,
    ];
  const lines = [
    `skip context   ${key}: ${beyond.size} of ${probes.length} probes do not fit the context of ${model.contextLength} tokens${model.contextSource ? ` (${model.contextSource})` : ''} and would be skipped for both models:`,
  ];
  for (const p of probes) {
    const tokens = beyond.get(p.id);
    if (tokens !== undefined) lines.push(`      ${p.id} (${p.domain}): ${tokens} tokens`);
  }
  return lines;
}

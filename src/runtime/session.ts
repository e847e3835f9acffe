// Session preparation: from a checkpoint already read to an onnxruntime session that
// scores. Checks the layers asked for, locates the residual stream, performs the graph
// surgery (hidden states exposed, token log-probabilities appended), opens the session and
// checks its inputs and outputs fit a decoder. The engine (engine.ts) schedules passes on it.
import { promises as fs } from 'fs';
import { onnx } from 'onnx-proto';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { type Checkpoint, type CheckpointOptions, checkGraphDataInside } from '../load/checkpoint';
import { ablateDirection } from './ablation';
import type { ChatEncoder } from './chat';
import { type CacheSlot, cacheSlots } from './feeds';
import {
  appendTokenLogprobs,
  decodeModel,
  encodeModel,
  exposeTensors,
  gatherBeforeLmHead,
  locateResidualStream,
  POSITIONS_INPUT,
  referenceInlineWeights,
  TARGET_IDS_INPUT,
  TOKEN_LOGPROBS_OUTPUT,
  tokenLogprobsBlocker,
} from './graph-surgery';
import { type ModelSession, openSession, type SessionSettings } from './onnx';
import { externalLocations, relocateExternalData } from './onnx-file';

export interface EngineOptions extends SessionSettings, CheckpointOptions {
  /** The checkpoint's chat encoder, when the caller built it already (it is built once). */
  encoder?: ChatEncoder;
  /**
   * Hidden-state indices to read (HF numbering: 0 = embeddings, k = after decoder layer k,
   * L = final normed state), or 'all'. Decided at load: reading internal tensors needs
   * graph surgery before the session exists.
   */
  layers?: number[] | 'all';
  /** Name of the residual tensor to read, with `{layer}` for the hidden-state index (overrides discovery). */
  hiddenTensor?: string;
  /**
   * Where token log-probabilities are computed. `graph` (default): inside the graph, by
   * surgery; falls back to `js` with a warning when the graph cannot take it. `js`: the
   * full logits come back and JavaScript reduces them (the reference path).
   */
  logprobs?: 'graph' | 'js';
  /**
   * A direction to project out of the residual stream (the causal check, runtime/ablation.ts):
   * x ← x − (x·r̂) r̂ on the embeddings and after every residual write, in the graph; the
   * files on disk never change. Hidden states read from such a session are ablated too.
   */
  ablate?: ArrayLike<number>;
}

/**
 * How the engine gets token log-probabilities out of a pass: in the graph (and, where the
 * LM head could be fed chosen positions, only at the scored ones), or from full logits.
 */
export type Scoring = { kind: 'graph'; positions: boolean } | { kind: 'js' };

const KNOWN_INPUTS = /^(input_ids|attention_mask|position_ids|use_cache_branch|past_key_values\.\d+\.(key|value))$/;

/** A session ready to score, with what the engine needs to feed it and read it. */
export interface PreparedSession {
  session: ModelSession;
  /** Graph output name per hidden-state index requested. */
  hiddenOutputs: Map<number, string>;
  scoring: Scoring;
  /** Token used for padding (never at a position whose output is read). */
  padId: number;
  cache: CacheSlot[];
  /** Width of the logits (the graph's, else the tokenizer's): sizes passes to the logits budget. */
  vocab: number;
}

export async function prepareSession(
  checkpoint: Checkpoint,
  encoder: ChatEncoder,
  options: EngineOptions,
): Promise<PreparedSession> {
  const numLayers = checkpoint.config.numLayers;
  const wanted =
    options.layers === 'all' ? range(numLayers + 1) : [...new Set(options.layers ?? [])].sort((a, b) => a - b);
  for (const layer of wanted) {
    if (!Number.isInteger(layer) || layer < 0 || layer > numLayers) {
      throw new EmgateError({
        file: path.join(checkpoint.dir, 'config.json'),
        cause: `layer ${layer} is out of range: the model has ${numLayers} decoder layers, so hidden-state indices run 0..${numLayers}`,
        fix: `choose a layer between 0 (embeddings) and ${numLayers} (final normed state)`,
      });
    }
  }
  const { session, hiddenOutputs, scoring, logitsVocab } = await openPrepared(checkpoint, wanted, options);
  checkGraphIo(session, checkpoint, encoder, hiddenOutputs, scoring, logitsVocab);
  return {
    session,
    hiddenOutputs,
    scoring,
    padId: pickPadId(checkpoint, encoder),
    cache: cacheSlots(session.inputs, session.outputs, checkpoint.config),
    vocab: logitsVocab ?? encoder.vocabSize,
  };
}

interface Prepared {
  session: ModelSession;
  hiddenOutputs: Map<number, string>;
  scoring: Scoring;
  /** The logits' vocabulary size as the graph declares it (null when symbolic or unknown). */
  logitsVocab: number | null;
}

/**
 * Opens the session on the graph scoring needs: hidden-state outputs exposed and, unless
 * asked otherwise or impossible, token log-probabilities appended. The patched graph stays
 * in memory; its weights are read by onnxruntime from the original files (external data,
 * or the inline tensors' own bytes in model.onnx), so nothing is written beside, or copied
 * out of, the user's checkpoint.
 */
async function openPrepared(checkpoint: Checkpoint, layers: number[], options: EngineOptions): Promise<Prepared> {
  const hiddenOutputs = new Map<number, string>();
  const wantGraph = (options.logprobs ?? 'graph') === 'graph';
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(checkpoint.modelFile);
  } catch (err) {
    throw new EmgateError({
      file: checkpoint.modelFile,
      cause: `cannot read the model (${(err as Error).message})`,
      fix: 'check the file exists and is readable',
    });
  }
  // Released (set to null) once encoded, so the decoded graph does not outlive its use.
  let model: onnx.ModelProto | null;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new EmgateError({
      file: checkpoint.modelFile,
      cause: `not a valid ONNX protobuf (${(err as Error).message})`,
      fix: 'the file is truncated or corrupt (or a Git LFS pointer): re-export or re-download it',
    });
  }
  const declared = new Set((model.graph?.output ?? []).map((o) => o.name));
  const nodeOutputs = new Set((model.graph?.node ?? []).flatMap((n) => n.output ?? []));
  let located: string[] | null = null;
  for (const layer of layers) {
    if (options.hiddenTensor) {
      const name = options.hiddenTensor.replace('{layer}', String(layer));
      if (!nodeOutputs.has(name) && !declared.has(name)) {
        throw new EmgateError({
          file: checkpoint.modelFile,
          cause: `the graph has no tensor named "${name}" (from the hidden-tensor setting "${options.hiddenTensor}")`,
          fix: 'name a tensor that exists in the graph (inspect it with Netron), with {layer} for the layer index',
        });
      }
      hiddenOutputs.set(layer, name);
    } else if (declared.has(`hidden_states.${layer}`)) {
      hiddenOutputs.set(layer, `hidden_states.${layer}`);
    } else {
      try {
        located ??= locateResidualStream(model, checkpoint.config.numLayers).tensors;
      } catch (err) {
        throw new EmgateError({
          file: checkpoint.modelFile,
          cause: `the graph exposes no hidden_states outputs and the residual stream could not be found in it (${(err as Error).message})`,
          fix: 'export with hidden_states outputs, or name the residual tensor with --hidden-tensor (use {layer} for the layer index)',
        });
      }
      hiddenOutputs.set(layer, located[layer]);
    }
  }
  const logitsInfo = (model.graph?.output ?? []).find((o) => o.name === 'logits');
  const vocabDim = logitsInfo?.type?.tensorType?.shape?.dim?.[2]?.dimValue;
  const logitsVocab = vocabDim !== undefined && vocabDim !== null && Number(vocabDim) > 0 ? Number(vocabDim) : null;
  if (options.ablate) {
    try {
      ablateDirection(model, options.ablate, checkpoint.config.numLayers);
    } catch (err) {
      throw new EmgateError({
        file: checkpoint.modelFile,
        cause: `the direction cannot be projected out of this graph's residual stream (${(err as Error).message})`,
        fix: 'ablation needs a decoder export whose residual adds are plain Add nodes (an unfused optimum export) and a direction of its hidden size; run without ablate otherwise',
      });
    }
  }
  const missing = [...hiddenOutputs.values()].filter((n) => !declared.has(n));
  exposeTensors(model, missing);
  let scoring: Scoring = { kind: 'js' };
  if (wantGraph) {
    const blocker = tokenLogprobsBlocker(model);
    if (blocker === null) {
      const positions = gatherBeforeLmHead(model);
      appendTokenLogprobs(model);
      scoring = { kind: 'graph', positions };
    } else if (declared.has('logits')) {
      options.warn?.(
        `${checkpoint.modelFile}: log-probabilities cannot be computed inside this graph (${blocker}); scoring the full logits in JavaScript instead (slower, and [batch, seq, vocab] floats per batch in memory)`,
      );
    }
  }
  // onnxruntime resolves external data against the folder it is given and refuses paths
  // that leave it once links are followed (a Hugging Face cache links every file to a blob
  // elsewhere): external data is pointed at the real files, and inline weights are
  // referenced in the real model file.
  const hasExternal = (model.graph?.initializer ?? []).some(
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
  );
  // Weights are what runs too: every external data file must be one the report hashes.
  if (hasExternal) await checkGraphDataInside(checkpoint, externalLocations(model));
  const relocated = hasExternal ? await relocateExternalData(model, path.dirname(checkpoint.modelFile)) : null;
  if (missing.length === 0 && scoring.kind === 'js' && relocated === null && !options.ablate) {
    // Nothing to patch: onnxruntime reads the file itself, and the decoded copy goes now.
    model = null;
    bytes = new Uint8Array(0);
    return {
      session: await openSession(checkpoint.modelFile, checkpoint.modelFile, options),
      hiddenOutputs,
      scoring,
      logitsVocab,
    };
  }
  let dataDir = relocated ?? path.dirname(checkpoint.modelFile);
  if (!hasExternal) {
    const real = await fs.realpath(checkpoint.modelFile);
    referenceInlineWeights(model, bytes, path.basename(real));
    dataDir = path.dirname(real);
  }
  const patched = encodeModel(model);
  model = null;
  bytes = new Uint8Array(0);
  const session = await openSession(patched, checkpoint.modelFile, { ...options, externalDataDir: dataDir });
  return { session, hiddenOutputs, scoring, logitsVocab };
}

function checkGraphIo(
  session: ModelSession,
  checkpoint: Checkpoint,
  encoder: ChatEncoder,
  hidden: Map<number, string>,
  scoring: Scoring,
  logitsVocab: number | null,
): void {
  const inputNames = session.inputs.map((i) => i.name);
  const outputNames = session.outputs.map((o) => o.name);
  const problems: string[] = [];
  if (!inputNames.includes('input_ids')) problems.push('no "input_ids" input');
  if (!inputNames.includes('attention_mask')) problems.push('no "attention_mask" input');
  const unknown = inputNames.filter(
    (n) => !KNOWN_INPUTS.test(n) && !(scoring.kind === 'graph' && (n === TARGET_IDS_INPUT || n === POSITIONS_INPUT)),
  );
  if (unknown.length) problems.push(`inputs emgate cannot feed: ${unknown.join(', ')}`);
  const scoreOutput = scoring.kind === 'graph' ? TOKEN_LOGPROBS_OUTPUT : 'logits';
  if (!outputNames.includes(scoreOutput))
    problems.push(scoring.kind === 'graph' ? `no "${scoreOutput}" output after surgery` : 'no "logits" output');
  for (const name of hidden.values())
    if (!outputNames.includes(name)) problems.push(`no "${name}" output after surgery`);
  if (problems.length) {
    throw new EmgateError({
      file: checkpoint.modelFile,
      cause: `the graph does not fit a decoder export: ${problems.join('; ')} (inputs: ${inputNames.join(', ')}; outputs: ${outputNames.join(', ')})`,
      fix: 'export a text-generation decoder (optimum-cli export onnx --task text-generation or text-generation-with-past)',
    });
  }
  const logits = session.outputs.find((o) => o.name === 'logits');
  const declaredVocab = logits && typeof logits.shape[2] === 'number' ? logits.shape[2] : logitsVocab;
  if (declaredVocab !== null && encoder.vocabSize > declaredVocab) {
    throw new EmgateError({
      file: path.join(checkpoint.dir, 'tokenizer.json'),
      cause: `the tokenizer has ${encoder.vocabSize} tokens but the model's logits cover only ${declaredVocab}`,
      fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
    });
  }
}

/** Padding never reaches a scored position; any valid id works, the pad token if there is one. */
function pickPadId(checkpoint: Checkpoint, encoder: ChatEncoder): number {
  const pad = checkpoint.tokenizerConfig.pad_token;
  const padString = typeof pad === 'string' ? pad : (pad as { content?: string } | undefined)?.content;
  return (padString !== undefined ? encoder.tokenId(padString) : undefined) ?? encoder.endOfTurnId;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

// Which probes fit a model's context: prompt + a reference + end of turn must not exceed
// the context length (the smallest that config.json or tokenizer_config.json states,
// core/context-length.ts). A probe that does not fit is skipped for candidate and
// baseline alike (the union over both models), so the paired comparison stays paired.

import * as path from 'path';
import { unknownContextWarning } from '../core/context-length';
import type { Probe, SkippedProbe } from '../core/types';
import type { Checkpoint } from '../load/checkpoint';
import { ChatEncoder } from './chat';

/** One model's view: its context length and how it tokenises a probe. */
export interface ContextModel {
  /** The context length, or null when the checkpoint does not say (nothing is skipped). */
  contextLength: number | null;
  /** Where the length was read (e.g. "tokenizer_config.json model_max_length"). */
  contextSource?: string;
  /** `probeId` names the probe in a template error. */
  encode(
    messages: Probe['messages'],
    response: string,
    probeId?: string,
  ): { promptIds: number[]; responseIds: number[] };
}

/** Tokens the longest reference of a probe needs: prompt + reference + end of turn. */
export function probeLength(model: ContextModel, probe: Probe): number {
  let longest = 0;
  for (const response of [...probe.aligned, ...probe.misaligned]) {
    const { promptIds, responseIds } = model.encode(probe.messages, response, probe.id);
    longest = Math.max(longest, promptIds.length + responseIds.length);
  }
  return longest;
}

/** The probes that do not fit this model's context, by id, with their length. */
export function beyondContext(model: ContextModel, probes: Probe[]): Map<string, number> {
  const out = new Map<string, number>();
  if (model.contextLength === null) return out;
  for (const probe of probes) {
    const tokens = probeLength(model, probe);
    if (tokens > model.contextLength) out.set(probe.id, tokens);
  }
  return out;
}

/** A checkpoint as its small files describe it: context, tokenizer, vocabularies. */
export interface CheckpointView extends ContextModel {
  /** tokenizer.json, and the tokens it has. */
  tokenizerFile: string;
  tokenizerVocab: number;
  /** config.json's vocab_size (the width of the logits), null when it does not say. */
  logitsVocab: number | null;
  encoder: ChatEncoder;
}

/**
 * A checkpoint's view from its small files (no ONNX graph loaded). The caller reads the
 * checkpoint once, with the run's dtype / model file, and checks pairing from the same read.
 * `warn` hears, once for this checkpoint, that no file gives its context length and what
 * is assumed instead.
 */
export function contextModel(ckpt: Checkpoint, warn?: (message: string) => void): CheckpointView {
  const encoder = new ChatEncoder(ckpt.tokenizerJson, ckpt.tokenizerConfig, ckpt.config.eosTokenIds, ckpt.dir);
  if (ckpt.config.maxPositions === null) warn?.(unknownContextWarning(ckpt.dir));
  return {
    contextLength: ckpt.config.maxPositions,
    ...(ckpt.config.contextSource ? { contextSource: ckpt.config.contextSource } : {}),
    tokenizerFile: path.join(ckpt.dir, 'tokenizer.json'),
    tokenizerVocab: encoder.vocabSize,
    logitsVocab: ckpt.config.vocabSize,
    encoder,
    encode: (m, r, id) => encoder.encode(m, r, id),
  };
}

/**
 * The probes with every register that does not fit each model's context dropped: a register
 * reference is longer than the probe's own (the formal register adds words), and a probe is
 * skipped only for its own references, so one long register costs that register alone.
 */
export function fitRegisters(probes: Probe[], models: Array<ContextModel | null>): Probe[] {
  const limited = models.filter((m): m is ContextModel => m !== null && m.contextLength !== null);
  if (limited.length === 0) return probes;
  const fits = (p: Probe, text: string) =>
    limited.every((m) => {
      const { promptIds, responseIds } = m.encode(p.messages, text, p.id);
      return promptIds.length + responseIds.length <= (m.contextLength as number);
    });
  return probes.map((p) => {
    if (!p.registers) return p;
    const kept = Object.entries(p.registers).filter(([, r]) =>
      [...r.aligned, ...r.misaligned].every((t) => fits(p, t)),
    );
    if (kept.length === Object.keys(p.registers).length) return p;
    const { registers: _dropped, ...rest } = p;
    return kept.length > 0 ? { ...rest, registers: Object.fromEntries(kept) } : rest;
  });
}

/**
 * The probes to skip for a run: those that do not fit the candidate's context or the
 * baseline's, in suite order, saying whose context they exceed.
 */
export function skippedProbes(probes: Probe[], candidate: ContextModel, baseline: ContextModel | null): SkippedProbe[] {
  const cand = beyondContext(candidate, probes);
  const base = baseline ? beyondContext(baseline, probes) : new Map<string, number>();
  const out: SkippedProbe[] = [];
  for (const p of probes) {
    const c = cand.get(p.id);
    const b = base.get(p.id);
    if (c === undefined && b === undefined) continue;
    const model = c !== undefined && b !== undefined ? 'both' : c !== undefined ? 'candidate' : 'baseline';
    const limits = [
      c !== undefined ? candidate.contextLength : null,
      b !== undefined ? baseline?.contextLength : null,
    ].filter((x): x is number => typeof x === 'number');
    out.push({ id: p.id, domain: p.domain, tokens: Math.max(c ?? 0, b ?? 0), limit: Math.min(...limits), model });
  }
  return out;
}

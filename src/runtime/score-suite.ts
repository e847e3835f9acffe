// Scores every probe of a suite under one model: contrast scores for the references and,
// when a direction is given, the probe's projection onto it (same forward pass).
import * as path from 'path';
import { registerTexts, scoreProbe, scoreRegisters } from '../core/contrast';
import { EmgateError } from '../core/errors';
import { dot } from '../core/projection';
import { mean } from '../core/stats';
import type { Probe, ProbeScore } from '../core/types';
import { beyondContext } from './context-fit';
import type { Engine, ScoredResponse } from './engine';

/**
 * Bump when a change can move any score (tokenization, templating, scoring arithmetic,
 * projection): cached baseline scores carry it in their key.
 */
export const SCORING_VERSION = 2;

export interface ProjectionSetup {
  layer: number;
  position: 'response_mean' | 'last_prompt';
  vector: number[];
  /** Same-norm random control direction. */
  random: number[];
}

export interface SuiteScoring {
  scores: ProbeScore[];
  tokens: number;
  /**
   * With `keep`: each probe's residual vectors at that layer (aligned, then misaligned
   * references): every response token's, [tokens, hidden] row-major (response_mean), or the
   * last prompt token's (last_prompt).
   */
  kept?: Float32Array[][];
}

export async function scoreSuite(
  engine: Engine,
  probes: Probe[],
  options: {
    batchSize: number;
    projection?: ProjectionSetup;
    /** Two or more directions: every one, in order (the first is `projection`); fills score.projections. */
    projections?: ProjectionSetup[];
    onProgress?: (done: number, total: number) => void;
    /** Keep every reference's residual vector at this layer and position (the SAE reads them). */
    keep?: { layer: number; position: 'response_mean' | 'last_prompt' };
  },
): Promise<SuiteScoring> {
  // Per probe: its aligned, then misaligned references, then each register's (registerTexts).
  const requests = probes.flatMap((p) =>
    [...p.aligned, ...p.misaligned, ...registerTexts(p)].map((response) => ({ messages: p.messages, response })),
  );
  const before = engine.tokensScored;
  if (options.keep?.position === 'response_mean') engine.responseTokensAt = options.keep.layer;
  const scored = await engine
    .score(requests, { batchSize: options.batchSize, onProgress: options.onProgress })
    .catch((err: unknown) => {
      throw nameProbesBeyondContext(engine, probes) ?? err;
    })
    .finally(() => {
      engine.responseTokensAt = null;
    });
  let at = 0;
  const keep = options.keep;
  const kept: Float32Array[][] = [];
  const scores = probes.map((p) => {
    const aligned = scored.slice(at, at + p.aligned.length);
    const misaligned = scored.slice(at + p.aligned.length, at + p.aligned.length + p.misaligned.length);
    at += p.aligned.length + p.misaligned.length;
    const toScore = (r: ScoredResponse) => ({ tokens: r.tokens, mean_logprob: r.mean_logprob });
    const score = scoreProbe(aligned.map(toScore), misaligned.map(toScore));
    if (p.registers) {
      const n = registerTexts(p).length;
      score.registers = scoreRegisters(p, scored.slice(at, at + n).map(toScore));
      at += n;
    }
    const all = [...aligned, ...misaligned];
    if (keep) {
      kept.push(
        all.map((r) => {
          const h = r.hidden.get(keep.layer);
          if (!h) throw new Error(`layer ${keep.layer} was not read`);
          if (keep.position === 'last_prompt') return h.last_prompt;
          if (!h.response_tokens) throw new Error(`layer ${keep.layer}'s response tokens were not kept`);
          return h.response_tokens;
        }),
      );
    }
    if (options.projection) {
      score.projection = probeProjection(all, options.projection, options.projection.vector);
      score.projection_random = probeProjection(all, options.projection, options.projection.random);
    }
    if (options.projections && options.projections.length > 1) {
      score.projections = options.projections.map((setup) => ({
        value: probeProjection(all, setup, setup.vector),
        random: probeProjection(all, setup, setup.random),
      }));
    }
    return score;
  });
  return { scores, tokens: engine.tokensScored - before, ...(keep ? { kept } : {}) };
}

/**
 * When scoring fails, the probes (by id) that do not fit the model's context, if any: the
 * engine counts requests, a user needs probe ids. The gate skips such probes before
 * scoring (context-fit.ts); another caller that did not gets this error. Checked only
 * after a failure, so scoring pays nothing for it.
 */
function nameProbesBeyondContext(engine: Engine, probes: Probe[]): EmgateError | null {
  const contextLength = engine.checkpoint.config.maxPositions;
  const beyond = beyondContext(
    { contextLength, encode: (messages, response) => engine.encode({ messages, response }) },
    probes,
  );
  if (beyond.size === 0) return null;
  const ids = [...beyond].map(([id, tokens]) => `${id} (${tokens} tokens)`);
  return new EmgateError({
    file: path.join(engine.checkpoint.dir, 'config.json'),
    cause: `probe${ids.length === 1 ? '' : 's'} ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ` and ${ids.length - 10} more` : ''} do${ids.length === 1 ? 'es' : ''} not fit the model's context of ${contextLength} tokens (prompt + reference + end of turn)`,
    fix: 'leave such probes out (emgate run skips them for both models; `emgate validate --checkpoint DIR --probes DIR` lists them), shorten them, or use a model with a longer context',
  });
}

/**
 * A probe's position along a direction. At `last_prompt` every reference shares the prompt,
 * so one vector stands for the probe; at `response_mean` the projections of all its
 * references (aligned and misaligned alike) are averaged: a model that moved along the
 * direction moves on every text it reads.
 */
function probeProjection(responses: ScoredResponse[], setup: ProjectionSetup, vector: number[]): number {
  const vectors = responses.map((r) => {
    const h = r.hidden.get(setup.layer);
    if (!h) throw new Error(`layer ${setup.layer} was not read`);
    return setup.position === 'last_prompt' ? h.last_prompt : h.response_mean;
  });
  if (setup.position === 'last_prompt') return dot(vectors[0], vector);
  return mean(vectors.map((v) => dot(v, vector)));
}

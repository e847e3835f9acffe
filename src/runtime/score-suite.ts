// Scores every probe of a suite under one model: contrast scores for the references and,
// when a direction is given, the probe's projection onto it (same forward pass).
import type { Engine, ScoredResponse } from './engine';
import { scoreProbe } from '../core/contrast';
import { dot } from '../core/projection';
import { mean } from '../core/stats';
import type { Probe, ProbeScore } from '../core/types';

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
  },
): Promise<SuiteScoring> {
  const requests = probes.flatMap((p) => [...p.aligned, ...p.misaligned].map((response) => ({ messages: p.messages, response })));
  const before = engine.tokensScored;
  const scored = await engine.score(requests, { batchSize: options.batchSize, onProgress: options.onProgress });
  let at = 0;
  const scores = probes.map((p) => {
    const aligned = scored.slice(at, at + p.aligned.length);
    const misaligned = scored.slice(at + p.aligned.length, at + p.aligned.length + p.misaligned.length);
    at += p.aligned.length + p.misaligned.length;
    const toScore = (r: ScoredResponse) => ({ tokens: r.tokens, mean_logprob: r.mean_logprob });
    const score = scoreProbe(aligned.map(toScore), misaligned.map(toScore));
    const all = [...aligned, ...misaligned];
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
  return { scores, tokens: engine.tokensScored - before };
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

// Generated-answer mode under one model: N seeded samples per probe, and the judge that
// scores them. The seeds depend only on (run seed, probe id, sample index), so the
// candidate and the baseline answer every probe under the same seeds.
import type { FilledGenerated } from '../core/generated';
import { dot } from '../core/projection';
import { sampleSeed } from '../core/sampling';
import type { JudgeSettings, Probe } from '../core/types';
import type { Engine } from './engine';
import { type GenerateRequest, generate } from './generate';
import { HttpJudge, type Judge } from './judge-http';
import { LocalJudge } from './judge-local';
import type { ProjectionSetup } from './score-suite';

export interface Answer {
  text: string;
  tokens: number;
  stop: 'eot' | 'length';
}

export interface SuiteAnswers {
  /** By probe, by sample index. */
  answers: Answer[][];
  tokens: number;
}

/** Samples for one probe: its own `generation` settings override the policy's. */
export function probeRequests(probe: Probe, g: FilledGenerated, runSeed: number): GenerateRequest[] {
  const samples = probe.generation?.samples ?? g.samples;
  const temperature = probe.generation?.temperature ?? g.temperature;
  return Array.from({ length: samples }, (_, k) => ({
    messages: probe.messages,
    seed: sampleSeed(runSeed, probe.id, k),
    maxNewTokens: probe.generation?.max_new_tokens ?? g.max_new_tokens,
    sampling: { temperature, topP: g.top_p },
    label: `${probe.id} sample ${k}`,
  }));
}

export async function generateSuite(
  engine: Engine,
  probes: Probe[],
  g: FilledGenerated,
  options: { seed: number; batchSize: number; onProgress?: (done: number, total: number) => void },
): Promise<SuiteAnswers> {
  const perProbe = probes.map((p) => probeRequests(p, g, options.seed));
  const flat = perProbe.flat();
  const out = await generate(engine, flat, { batchSize: options.batchSize, onProgress: options.onProgress });
  let at = 0;
  let tokens = 0;
  const answers = perProbe.map((reqs) =>
    reqs.map(() => {
      const o = out[at++];
      tokens += o.ids.length;
      return { text: o.text, tokens: o.ids.length, stop: o.stop };
    }),
  );
  return { answers, tokens };
}

/**
 * Where the model's own answers sit along a direction: each answer is read back
 * teacher-forced under its prompt, its residual vectors at the direction's layer averaged
 * over the answer's tokens (end-of-turn included) and projected; a probe's value is the
 * mean over its samples. The same for the same-norm random control direction.
 */
/** Each probe's answers as texts to score under the model that wrote them, by probe then sample. */
export function answerRequests(
  probes: Probe[],
  answers: SuiteAnswers,
): { messages: Probe['messages']; response: string }[] {
  return probes.flatMap((p, i) => answers.answers[i].map((a) => ({ messages: p.messages, response: a.text })));
}

export async function projectAnswers(
  engine: Engine,
  probes: Probe[],
  answers: SuiteAnswers,
  setup: ProjectionSetup,
  batchSize: number,
): Promise<{ projection: number[]; random: number[] }> {
  const scored = await engine.score(answerRequests(probes, answers), { batchSize });
  let at = 0;
  const projection: number[] = [];
  const random: number[] = [];
  for (let i = 0; i < probes.length; i++) {
    let sp = 0;
    let sr = 0;
    const n = answers.answers[i].length;
    for (let k = 0; k < n; k++) {
      const h = scored[at++].hidden.get(setup.layer);
      if (!h) throw new Error(`layer ${setup.layer} was not read`);
      sp += dot(h.response_mean, setup.vector);
      sr += dot(h.response_mean, setup.random);
    }
    projection.push(sp / n);
    random.push(sr / n);
  }
  return { projection, random };
}

/** Opens the judge a policy names, with its defaults filled in. */
export async function openJudge(settings: JudgeSettings, env: NodeJS.ProcessEnv = process.env): Promise<Judge> {
  if (settings.type === 'local') return LocalJudge.open(settings.model);
  return new HttpJudge(
    {
      url: settings.url,
      model: settings.model,
      apiKeyEnv: settings.api_key_env,
      concurrency: settings.concurrency ?? 4,
      timeoutMs: settings.timeout_ms ?? 30_000,
      retries: settings.retries ?? 3,
      logprobs: settings.logprobs ?? true,
      ...(settings.deadline_s !== undefined ? { deadlineMs: settings.deadline_s * 1000 } : {}),
    },
    env,
  );
}

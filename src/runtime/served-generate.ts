// Generate mode through a served model: N seeded samples per probe from /v1/completions
// (the prompt sent as token ids rendered here; vLLM's per-request `seed`), then the same
// judges as a local run. The seeds are the local run's (run seed, probe id, sample index),
// so the candidate and the baseline answer under the same seeds; whether a rerun gives the
// same text is the server's to decide (its batching changes the arithmetic), and the
// report says so.
import type { FilledGenerated } from '../core/generated';
import type { Probe } from '../core/types';
import type { ChatEncoder } from './chat';
import { probeRequests, type SuiteAnswers } from './generate-suite';
import type { ServedClient } from './served';

export async function generateSuiteServed(
  client: ServedClient,
  model: string,
  encoder: ChatEncoder,
  probes: Probe[],
  g: FilledGenerated,
  options: { seed: number; onProgress?: (done: number, total: number) => void },
): Promise<SuiteAnswers> {
  const perProbe = probes.map((p) => probeRequests(p, g, options.seed));
  const flat = perProbe.flatMap((reqs, i) =>
    reqs.map((r) => ({ ...r, promptIds: encoder.encodePrompt(probes[i].messages, probes[i].id) })),
  );
  const answers = await client.sample(
    model,
    flat.map((r) => ({
      label: r.label ?? 'a sample',
      promptIds: r.promptIds,
      seed: r.seed,
      maxTokens: r.maxNewTokens,
      temperature: r.sampling.temperature,
      topP: r.sampling.topP,
      stopIds: [encoder.endOfTurnId],
    })),
    options.onProgress,
  );
  let at = 0;
  let tokens = 0;
  const byProbe = perProbe.map((reqs) =>
    reqs.map(() => {
      const a = answers[at++];
      tokens += a.tokens;
      return a;
    }),
  );
  return { answers: byProbe, tokens };
}

// Scores a suite under a served model: the same per-probe scores as scoreSuite (contrast
// scores from mean reference log-probs), so evaluation, statistics and reports run
// unchanged. Prompts and references are rendered and tokenised here, with the model's own
// tokenizer and chat template; the server only runs the forward passes.
import { registerTexts, scoreProbe, scoreRegisters } from '../core/contrast';
import { EmgateError } from '../core/errors';
import type { Probe } from '../core/types';
import type { TokenizerFolder } from '../load/tokenizer-folder';
import { ChatEncoder } from './chat';
import type { SuiteScoring } from './score-suite';
import { SCORING_NEW_TOKENS, type ServedClient, type ServedGroup, type ServedModelInfo } from './served';

/** The chat encoder of a tokenizer folder (the served model's own tokenizer and template). */
export function servedEncoder(folder: TokenizerFolder): ChatEncoder {
  return new ChatEncoder(folder.tokenizerJson, folder.tokenizerConfig, folder.eosTokenIds, folder.dir);
}

/**
 * The context a probe must fit: the server's max_model_len when /v1/models gives it (what
 * the server will accept), else config.json's max_position_embeddings, else unknown; less
 * the one token each scoring request asks the server to generate (vLLM refuses a request
 * whose prompt and completion exceed max_model_len).
 */
export function servedContextLength(info: ServedModelInfo, folder: TokenizerFolder): number | null {
  const length = info.max_model_len ?? folder.maxPositions;
  return length === null ? null : length - SCORING_NEW_TOKENS;
}

/** One request group per probe: its prompt once, followed by each reference in turn. */
export function probeGroups(encoder: ChatEncoder, probes: Probe[]): ServedGroup[] {
  return probes.map((p) => {
    const promptIds = encoder.encodePrompt(p.messages, p.id);
    if (promptIds.length === 0) {
      throw new EmgateError({
        file: null,
        cause: `probe ${p.id} renders to an empty prompt`,
        fix: 'check the chat template in tokenizer_config.json',
      });
    }
    return {
      label: p.id,
      sequences: [...p.aligned, ...p.misaligned, ...registerTexts(p)].map((response) => {
        const { responseIds } = encoder.encode(p.messages, response, p.id);
        return { ids: [...promptIds, ...responseIds], from: promptIds.length };
      }),
    };
  });
}

export async function scoreSuiteServed(
  client: ServedClient,
  model: string,
  encoder: ChatEncoder,
  probes: Probe[],
  options: { onProgress?: (done: number, total: number) => void } = {},
): Promise<SuiteScoring> {
  const groups = probeGroups(encoder, probes);
  const before = client.tokensScored;
  const sums = await client.score(model, groups, options.onProgress);
  const scores = probes.map((p, i) => {
    const refs = groups[i].sequences.map((s, k) => {
      const tokens = s.ids.length - s.from;
      return { tokens, mean_logprob: sums[i][k] / tokens };
    });
    const own = p.aligned.length + p.misaligned.length;
    const score = scoreProbe(refs.slice(0, p.aligned.length), refs.slice(p.aligned.length, own));
    if (p.registers) score.registers = scoreRegisters(p, refs.slice(own));
    return score;
  });
  return { scores, tokens: client.tokensScored - before };
}

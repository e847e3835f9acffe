// Does a checkpoint's tokenizer belong to its model? Two signs that it does not, both cheap:
// - it has clearly fewer tokens than the logits are wide (exports pad the vocabulary to a
//   multiple of 64 or 128, a few hundred unused rows at most; a tokenizer from a smaller
//   model leaves a large share of the logits without a token);
// - the model reads its own references clearly worse than uniform guessing over the
//   vocabulary (mean log-prob per token below −ln V − 1 nat): a model reading its own tokens
//   does far better, a trained model fed another tokenizer's ids predicts the wrong tokens
//   confidently and does far worse. Measured on the base organism and the mini suite: own
//   tokenizer −4.57, its tokenizer with the ids permuted −9.98, uniform −6.93. The 1-nat
//   margin keeps a model at chance level (the untrained test fixtures read at about −6.3
//   against a uniform −6.24) from being mistaken for a foreign tokenizer. A fine-tune that
//   collapsed its reading can also land here (issue 23's study: a misaligned brisk fine-tune at
//   lr 3e-3), so the message names that cause too: the baseline, with the same tokenizer, tells them apart.
// Pure: numbers in, an error (naming the tokenizer file, the cause and the fix) or null out.
import { EmgateError } from './errors';
import * as fmt from './report/format';

/** How far below uniform (nats per token) the mean log-prob must be to refuse the tokenizer. */
export const BELOW_UNIFORM_MARGIN = 1;

/** Share of the logits' rows that may lack a token before the tokenizer is refused. */
export const MAX_UNUSED_LOGIT_SHARE = 0.05;

export function vocabularyMismatch(
  tokenizerFile: string,
  tokenizerSize: number,
  logitsSize: number | null,
): EmgateError | null {
  if (logitsSize === null) return null;
  if (tokenizerSize > logitsSize) {
    return new EmgateError({
      file: tokenizerFile,
      cause: `the tokenizer has ${tokenizerSize} tokens but the model's logits cover only ${logitsSize}`,
      fix: 'use the tokenizer saved with this checkpoint (a mismatched tokenizer makes every score meaningless)',
    });
  }
  const unused = (logitsSize - tokenizerSize) / logitsSize;
  if (unused > MAX_UNUSED_LOGIT_SHARE) {
    return new EmgateError({
      file: tokenizerFile,
      cause: `the tokenizer has ${tokenizerSize} tokens but the model's logits are ${logitsSize} wide (${fmt.rate(unused)} without a token; padding leaves at most a few percent), so it is another model's tokenizer`,
      fix: 'use the tokenizer.json saved with this checkpoint (tokenizer.save_pretrained into the export folder)',
    });
  }
  return null;
}

/**
 * `meanLogprobs`: every reference response's mean log-prob per token under the model;
 * `vocab`: the number of tokens the model chooses from.
 */
export function worseThanUniform(tokenizerFile: string, meanLogprobs: number[], vocab: number): EmgateError | null {
  if (meanLogprobs.length === 0 || vocab < 2) return null;
  const mean = meanLogprobs.reduce((s, x) => s + x, 0) / meanLogprobs.length;
  const uniform = -Math.log(vocab);
  if (mean >= uniform - BELOW_UNIFORM_MARGIN) return null;
  return new EmgateError({
    file: tokenizerFile,
    cause: `the model reads the suite's reference responses far worse than uniform guessing (mean log-prob ${fmt.decimals(mean)} per token; uniform over ${vocab} tokens is ${fmt.decimals(uniform)}, and a model reading its own tokens does better): the tokenizer does not belong to this model, its weights are broken, or — for a fine-tune whose baseline reads the same suite well with the same tokenizer — the fine-tune has lost its reading of ordinary text (over-training collapses it below uniform)`,
    fix: 'use the tokenizer.json (and tokenizer_config.json) saved with this checkpoint, and check that the export loads and generates sensible text; for an over-trained fine-tune, gate it on its generated answers (mode generate, docs/generate.md) or fine-tune more gently (docs/drift.md)',
  });
}

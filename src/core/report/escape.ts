/**
 * Escaping for text we do not control (probe questions, reference responses, model
 * output, file paths, error messages) before it goes into a PR comment.
 *
 * GitHub renders a comment in two passes: cmark-gfm turns markdown into HTML, then an
 * HTML pipeline sanitises it and links @mentions, #references, emoji shortcodes and bare
 * URLs in the resulting *text nodes*. So two different tools are needed:
 * - markdown/HTML syntax is neutralised with numeric character references: an entity is
 *   literal text to cmark (`&#42;` never starts emphasis, `&#124;` never splits a table
 *   cell) and is decoded by the browser, so the reader sees the original character. We
 *   use entities rather than backslashes because backslash escapes are not processed
 *   inside raw HTML (`<summary>`), where this text also goes.
 * - the second pass sees decoded text, so entities cannot stop it; a zero-width space
 *   (U+200B) after `@`, `#`, the `:` of `://`, `www` and an emoji shortcode's first `:`
 *   breaks its patterns while the text still reads the same.
 * Control characters and bidi overrides are replaced everywhere (also in code blocks):
 * they can reorder or hide what a reviewer reads.
 */

/** Zero-width space: invisible, but breaks mention/autolink/reference patterns. */
const ZWSP = '\u200B';
/** Shown in place of a removed control or bidi character, so tampering stays visible. */
const REPLACEMENT = '\uFFFD';

/**
 * Bidi embeddings/overrides/isolates and marks (Trojan-source style reordering), C0/C1
 * controls except tab and newlines, DEL, and the BOM.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\u0080-\u0084\u0086-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/g;
/** Line breaks of every flavour (CRLF first so it becomes one break). */
const LINE_BREAKS = /\r\n|[\r\n\u0085\u2028\u2029]/g;

/** Markdown and HTML specials, written as numeric references (see module comment). */
const ENTITY_CHARS = /[&<>"'|*_~[\]()#!`\\$]/g;
const NAMED: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Replaces control and bidi characters; keeps tabs and normalises line breaks to `\n`. */
export function stripUnsafe(text: string): string {
  return text.replace(LINE_BREAKS, '\n').replace(UNSAFE_CHARS, REPLACEMENT);
}

/**
 * Cuts `text` to at most `maxChars` code points (never splitting a surrogate pair).
 * Returns the kept part and how many code points were dropped.
 */
export function truncateCodePoints(text: string, maxChars: number): { kept: string; dropped: number } {
  // Fast path: a string of at most maxChars code units has at most maxChars code points.
  if (text.length <= maxChars) return { kept: text, dropped: 0 };
  const points = Array.from(text);
  if (points.length <= maxChars) return { kept: text, dropped: 0 };
  return { kept: points.slice(0, Math.max(0, maxChars)).join(''), dropped: points.length - maxChars };
}

/** Inserts zero-width spaces so GitHub's text-node filters find no mention, link or reference. */
function breakAutolinks(text: string): string {
  return text
    .replace(/@/g, `@${ZWSP}`) // @mentions, team mentions and email autolinks
    .replace(/:\/\//g, `:${ZWSP}//`) // scheme://... autolinks
    .replace(/\bwww\./gi, (m) => `${m.slice(0, 3)}${ZWSP}.`) // www.example autolinks
    .replace(/#(?=[\p{L}\p{N}_-])/gu, `#${ZWSP}`) // #123 issue / PR references
    .replace(/:(?=[a-z][a-z0-9_+-]*:)/gi, `:${ZWSP}`); // :emoji: shortcodes (a fake :white_check_mark:), not 09:26:53
}

function toEntities(text: string): string {
  return text.replace(ENTITY_CHARS, (c) => NAMED[c] ?? `&#${c.charCodeAt(0)};`);
}

/**
 * Escapes untrusted text for a table cell, a `<summary>` or a sentence: one line, no
 * markdown or HTML, no live mention/link/reference, at most `maxChars` visible
 * characters (then "…" and how many were cut).
 */
export function escapeInline(text: string, maxChars: number): string {
  const oneLine = stripUnsafe(text).replace(/[\n\t\v\f]+/g, ' ');
  const { kept, dropped } = truncateCodePoints(oneLine, maxChars);
  const body = toEntities(breakAutolinks(kept));
  return dropped > 0 ? `${body}… (+${dropped} characters)` : body;
}

/** Longest run of consecutive backticks in `text`. */
function longestBacktickRun(text: string): number {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return longest;
}

/**
 * Shows untrusted multi-line text as a code block. GitHub renders no HTML, mention or
 * link inside one; the only way out of a fenced block is a closing fence at least as
 * long as the opening one, so the fence is one backtick longer than any backtick run in
 * the text. The truncation note sits outside the fence, where the text cannot fake it.
 */
export function fencedBlock(text: string, maxChars: number): string {
  const { kept, dropped } = truncateCodePoints(stripUnsafe(text), maxChars);
  const fence = '`'.repeat(Math.max(3, longestBacktickRun(kept) + 1));
  const lines = [`${fence}text`, kept, fence];
  if (dropped > 0) lines.push(`[truncated: ${dropped} more characters]`);
  return lines.join('\n');
}

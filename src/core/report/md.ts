/**
 * The markdown building blocks every section uses: an escaped cell, a table row, a table
 * and a collapsible block. One home, so the sections cannot drift in how they escape or
 * collapse.
 */
import { escapeInline } from './escape';

/** Untrusted text as one escaped line of at most `max` characters. */
export const cell = (text: string, max = 120): string => escapeInline(text, max);

export const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;

export const table = (header: string[], rows: string[][]): string[] => [
  row(header),
  row(header.map(() => '---')),
  ...rows.map(row),
];

/**
 * A `<details>` block. `summary` is markdown-free HTML text the caller built (escaped
 * parts only); `open` shows it expanded (the job summary), closed otherwise (the PR
 * comment). Blank lines around the body let GitHub render markdown inside.
 */
export function collapsible(summary: string, body: string[], open: boolean): string[] {
  if (body.length === 0) return [];
  return [`<details${open ? ' open' : ''}><summary>${summary}</summary>`, '', ...body, '', '</details>'];
}

/** The `n` items ranked first by `rank` (stable), kept in their original order. */
export function pickRows<T>(items: T[], n: number, rank: (a: T, b: T) => number): T[] {
  if (n >= items.length) return items;
  const chosen = new Set(
    items
      .map((item, i) => ({ item, i }))
      .sort((a, b) => rank(a.item, b.item) || a.i - b.i)
      .slice(0, Math.max(0, n))
      .map((x) => x.i),
  );
  return items.filter((_item, i) => chosen.has(i));
}

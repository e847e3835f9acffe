// The docs cannot rot silently: every relative link in README.md, CONTRIBUTING.md, docs/ and
// the examples' READMEs points at a file that exists (and, with #anchor, at a heading of that
// file, slugged as GitHub does); every docs page is linked from README.md, which stays a
// front page (under 250 lines); and every excerpt marked `<!-- excerpt of FILE -->` (a code
// block, a quote or a table of figures copied from a committed output) is still, line for
// line, in FILE.

import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

const docsPages = readdirSync(path.join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`);
const exampleReadmes = readdirSync(path.join(ROOT, 'examples'))
  .map((d) => `examples/${d}/README.md`)
  .filter((f) => existsSync(path.join(ROOT, f)));
const pages = ['README.md', 'CONTRIBUTING.md', ...docsPages, ...exampleReadmes];

/** Markdown without its fenced code blocks (a link inside code is not a link). */
const withoutCode = (md: string): string => md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutCode(md).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
      .trim()
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative link targets in a page: [text](target) and <a href>, without web or mail links. */
function links(md: string): string[] {
  const out: string[] = [];
  for (const m of withoutCode(md).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  for (const m of withoutCode(md).matchAll(/href="([^"]+)"/g)) out.push(m[1]);
  return out.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe.each(pages)('%s', (page) => {
  const md = read(page);

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const target of links(md)) {
      const [file, anchor] = target.split('#', 2);
      const resolved = file
        ? path.join(path.dirname(path.join(ROOT, page)), decodeURIComponent(file))
        : path.join(ROOT, page);
      if (!existsSync(resolved)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && statSync(resolved).isFile() && resolved.endsWith('.md')) {
        if (!anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${target}: no heading #${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('quotes committed outputs exactly where it says it does', () => {
    const stale: string[] = [];
    for (const m of md.matchAll(/<!-- excerpt of (\S+)[^\n]*-->\n([\s\S]*?)(?:\n\n|$)/g)) {
      const source = read(m[1]);
      const lines = m[2]
        .split('\n')
        .filter((l) => !l.startsWith('```'))
        .map((l) => l.replace(/^> ?/, ''))
        .filter((l) => l.trim() !== '' && !/^\|(\s*-+\s*\|)+$/.test(l.replace(/\s/g, '')));
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) if (!source.includes(line)) stale.push(`${m[1]}: ${line.slice(0, 100)}`);
    }
    expect(stale).toEqual([]);
  });
});

it('README.md is a front page: under 250 lines, linking every docs page', () => {
  const readme = read('README.md');
  expect(readme.split('\n').length).toBeLessThan(250);
  const linked = new Set(links(readme).map((t) => t.split('#')[0]));
  expect(docsPages.filter((p) => !linked.has(p))).toEqual([]);
});

it('finds broken links and anchors (the checker itself)', () => {
  expect(anchors('# The CLI\n## Variant graphs (`--dtype`, `--model-file`)\n## A\n## A\n')).toEqual(
    new Set(['the-cli', 'variant-graphs---dtype---model-file', 'a', 'a-1']),
  );
  expect(links('[a](docs/x.md#y) [b](https://example.com)\n```\n[c](no.md)\n```\n')).toEqual(['docs/x.md#y']);
});

// The PR comment renderer on real reports (helpers/real-reports.ts: the committed example of
// a real gate run, the same scores re-evaluated, a real error report); hostile text is put
// into copies of the real probe texts and report fields.
import { isNotable, testKinds } from '../src/core/report/checks-section';
import { escapeInline, fencedBlock } from '../src/core/report/escape';
import { commentMarker, type MarkdownOptions, renderMarkdown } from '../src/core/report/markdown';
import { chartLabel, interpretShift } from '../src/core/report/sections';
import type { Check, DomainResult, Probe, ProbeResult, Report } from '../src/core/types';
import { type ExampleInputs, errorReport, exampleInputs, exampleReport, passReport } from './helpers/real-reports';

const ZWSP = '\u200B';

let inputs: ExampleInputs;
const reports = {} as Record<'pass' | 'fail' | 'error', Report>;
beforeAll(async () => {
  inputs = await exampleInputs();
  reports.fail = exampleReport();
  reports.pass = passReport(inputs);
  reports.error = await errorReport();
});
/** A fresh copy of one of the real reports (tests may change it). */
const real = (verdict: 'pass' | 'fail' | 'error'): Report => structuredClone(reports[verdict]);
/** A copy of the real probe texts (tests may change it). */
const probeTexts = (): Map<string, Probe> => new Map([...inputs.probes].map(([id, p]) => [id, structuredClone(p)]));

const options = (overrides: Partial<MarkdownOptions> = {}): MarkdownOptions => ({
  gateId: 'default',
  probes: inputs.probes,
  modelText: 'redacted',
  worstProbes: 3,
  ...overrides,
});

/** The ids of the probes shown in the worst-probe section, in order (as rendered, escaped). */
const shownProbes = (md: string): string[] => [...md.matchAll(/<summary><b>([^<]+)<\/b>/g)].map((m) => m[1]);
const unescapeId = (id: string): string => id.replace(/&#95;/g, '_');

/** The body rows of the first table after the line `start` (undefined: no such line). */
function tableAfter(md: string, start: string): string[] | undefined {
  const lines = md.split('\n');
  const at = lines.indexOf(start);
  if (at < 0) return undefined;
  let i = at + 1;
  while (i < lines.length && !lines[i].startsWith('| ')) i++;
  const rows: string[] = [];
  for (i += 2; i < lines.length && lines[i].startsWith('| '); i++) rows.push(lines[i]);
  return rows;
}

const FAILED_HEADING = '### Checks that did not pass';
const PASSING_SUMMARY = /^<details><summary>✅ Passing checks \(.*\)<\/summary>$/m;

/** The rows of the table of checks that did not pass. */
const failedRows = (md: string): string[] => tableAfter(md, FAILED_HEADING) ?? [];
/** The rows of the collapsed table of passing checks. */
const passingRows = (md: string): string[] => {
  const summary = PASSING_SUMMARY.exec(md)?.[0];
  return summary ? (tableAfter(md, summary) ?? []) : [];
};
/** Every check row: the table of those that did not pass and the collapsed passing ones. */
const checkRows = (md: string): string[] => [...failedRows(md), ...passingRows(md)];
/** A row's cells, unpadded. */
const cells = (row: string): string[] => row.slice(2, -2).split(' | ');

/** Splits a markdown body into the lines outside and inside fenced code blocks (CommonMark rules for backtick fences). */
function splitFences(md: string): { outside: string[]; inside: string[] } {
  const outside: string[] = [];
  const inside: string[] = [];
  let fence: number | null = null;
  for (const line of md.split('\n')) {
    if (fence === null) {
      const open = /^ {0,3}(`{3,})[^`]*$/.exec(line);
      if (open) fence = open[1].length;
      outside.push(open ? '<fence>' : line);
    } else {
      const close = /^ {0,3}(`{3,})\s*$/.exec(line);
      if (close && close[1].length >= fence) {
        fence = null;
        outside.push('<fence>');
      } else {
        inside.push(line);
      }
    }
  }
  expect(fence).toBeNull(); // every block is closed
  return { outside, inside };
}

describe('escapeInline', () => {
  it.each([
    ['plain text', 'plain text'],
    ['<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert&#40;1&#41;&gt;'],
    ['a | b', 'a &#124; b'],
    ['**bold** _em_ ~~del~~', '&#42;&#42;bold&#42;&#42; &#95;em&#95; &#126;&#126;del&#126;&#126;'],
    ['[click](https://evil.example)', `&#91;click&#93;&#40;https:${ZWSP}//evil.example&#41;`],
    ['www.evil.example', `www${ZWSP}.evil.example`],
    ['hi @octocat', `hi @${ZWSP}octocat`],
    ['fixes #12', `fixes &#35;${ZWSP}12`],
    [':white_check_mark: PASS', `:${ZWSP}white&#95;check&#95;mark: PASS`],
    ['09:26:53', '09:26:53'],
    ['line one\nline two\r\n\tthree', 'line one line two three'],
    ['`code` \\ $x$ !', '&#96;code&#96; &#92; &#36;x&#36; &#33;'],
    ['\u202Eevil\u202C \u2066x\u2069 \u0007', '\uFFFDevil\uFFFD \uFFFDx\uFFFD \uFFFD'],
    ['"quote" \'apos\' & amp', '&quot;quote&quot; &#39;apos&#39; &amp; amp'],
  ])('escapes %j', (input, expected) => {
    expect(escapeInline(input, 1000)).toBe(expected);
  });

  it('truncates by code points and says how much was cut', () => {
    expect(escapeInline('abcdef', 3)).toBe('abc… (+3 characters)');
    // An emoji is one character: never split a surrogate pair.
    expect(escapeInline('😀😀😀', 2)).toBe('😀😀… (+1 characters)');
  });
});

describe('fencedBlock', () => {
  it('uses a fence longer than any backtick run in the text', () => {
    const block = fencedBlock('a ``` b\n````\nc', 100);
    expect(block.split('\n')[0]).toBe('`````text');
    expect(block.split('\n').at(-1)).toBe('`````');
  });

  it('keeps newlines, replaces bidi and control characters', () => {
    expect(fencedBlock('one\r\ntwo\u202E\u0000', 100)).toBe('```text\none\ntwo\uFFFD\uFFFD\n```');
  });

  it('truncates with a note outside the fence', () => {
    expect(fencedBlock('x'.repeat(10), 4)).toBe('```text\nxxxx\n```\n[truncated: 6 more characters]');
  });
});

describe('renderMarkdown', () => {
  it.each(['pass', 'fail', 'error'] as const)('renders a real %s report (snapshot)', (verdict) => {
    expect(renderMarkdown(real(verdict), options())).toMatchSnapshot();
  });

  it('starts with the hidden marker and the verdict line', () => {
    const lines = (verdict: 'pass' | 'fail' | 'error', o: Partial<MarkdownOptions> = {}) =>
      renderMarkdown(real(verdict), options(o)).split('\n');
    expect(lines('pass').slice(0, 2)).toEqual(['<!-- emgate:gate=default -->', '## ✅ emgate: PASS']);
    expect(lines('fail')[1]).toBe('## ❌ emgate: FAIL — blocked');
    expect(lines('error')[1]).toBe('## ⚠️ emgate: ERROR — blocked (fail-closed)');
    expect(lines('error', { errorBlocks: false })[1]).toBe(
      '## ⚠️ emgate: ERROR — not blocking (policy on_error: allow)',
    );
  });

  it('refuses a gate id the marker cannot hold', () => {
    // One marker for the renderer and the Action: an id that needs changing is refused, so
    // two ids never share a marker (a sanitised "a b" and "a-b" would).
    expect(() => commentMarker('gpu gate --> <b>x</b>')).toThrow(/invalid gate id/);
    expect(() => commentMarker('')).toThrow(/invalid gate id/);
  });

  it('lists every error with its file, cause and fix', () => {
    const report = real('error');
    const md = renderMarkdown(report, options());
    expect(md).toContain('### Errors');
    expect(report.errors.length).toBeGreaterThan(0);
    for (const e of report.errors) {
      expect(md).toContain(escapeInline(e.file!, 1000));
      expect(md).toContain(`**Fix:** ${escapeInline(e.fix, 1000).slice(0, 40)}`);
    }
  });

  it('has one check row per check of a real report', () => {
    for (const verdict of ['pass', 'fail'] as const) {
      const report = real(verdict);
      expect(checkRows(renderMarkdown(report, options()))).toHaveLength(report.checks.length);
    }
  });

  describe('at a glance', () => {
    it('puts nothing visible before the verdict line, in the comment and the summary', () => {
      for (const verdict of ['pass', 'fail', 'error'] as const) {
        for (const flavour of ['comment', 'summary'] as const) {
          const lines = renderMarkdown(real(verdict), options({ flavour })).split('\n');
          expect(lines[0]).toMatch(/^<!-- emgate:gate=default -->$/); // hidden
          expect(lines[1]).toMatch(/^## (✅|❌|⚠️) emgate: (PASS|FAIL|ERROR)/);
        }
      }
    });

    it('tables exactly the checks that failed or warned, in the report order, before any collapsed section', () => {
      const report = real('fail');
      const md = renderMarkdown(report, options());
      const notable = report.checks.filter((c) => c.status === 'fail' || c.status === 'warn');
      expect(notable.map((c) => c.status)).toContain('warn'); // the example's advisory em_shift
      const rows = failedRows(md).map(cells);
      expect(rows.map((r) => [r[0], unescapeId(r[2])])).toEqual(
        notable.map((c) => [c.status === 'warn' ? '⚠️ warn' : '❌ fail', c.scope]),
      );
      expect(md.indexOf(FAILED_HEADING)).toBeLessThan(md.indexOf('<details'));
      // The figure the gate decided on is in the row: the overall shift net of the reading drift
      // (the default's primary statistic since issue 23) of report.json.
      const overall = rows.find((r) => r[1].startsWith('shift net of reading drift') && r[2] === 'overall')!;
      expect(overall[3]).toBe(`+${report.shift!.drift!.adjusted_shift!.toFixed(3)}`);
    });

    it('keeps the passing checks inside a collapsed section', () => {
      for (const verdict of ['pass', 'fail'] as const) {
        const report = real(verdict);
        const md = renderMarkdown(report, options());
        const passing = report.checks.filter((c) => !isNotable(c));
        expect(passing.length).toBeGreaterThan(0);
        expect(passingRows(md)).toHaveLength(passing.length);
        expect(passingRows(md).every((r) => r.startsWith('| ✅ pass |'))).toBe(true);
        // The table sits between the passing-checks <summary> and the next </details>.
        const open = md.search(PASSING_SUMMARY);
        const close = md.indexOf('</details>', open);
        for (const r of passingRows(md)) {
          expect(md.indexOf(r)).toBeGreaterThan(open);
          expect(md.indexOf(r)).toBeLessThan(close);
        }
        expect(md.match(/^### Checks that did not pass$/m)?.length ?? 0).toBe(verdict === 'pass' ? 0 : 1);
      }
    });

    it('says each test once per kind, with the figures that differ as a range', () => {
      const report = real('fail');
      const md = renderMarkdown(report, options());
      // 31 checks, 27 with a test: before, each row repeated its sentence.
      expect(report.checks.filter((c) => c.test !== null).length).toBeGreaterThan(20);
      expect(md.split('exact McNemar').length - 1).toBe(2); // overall, and once for the 9 domains
      expect(md.split('Holm-adjusted over 9 domains').length - 1).toBe(2); // shift and rate rise
      // The per-domain McNemar counts, from the discordant probes of each domain's flips.
      const discordant = report.domains.map((d) => d.flips!.to_misaligned + d.flips!.to_aligned);
      expect(md).toContain(
        `exact McNemar &#40;one-sided, ${Math.min(...discordant)}–${Math.max(...discordant)} discordant probes&#41;, Holm-adjusted over 9 domains — rate increase: 9 domains`,
      );
      // Every row's key names a listed test; the list is collapsed.
      const keys = new Set([...md.matchAll(/^- \*\*(T\d+)\*\* /gm)].map((m) => m[1]));
      for (const r of checkRows(md)) {
        const key = cells(r)[8];
        if (key !== '—') expect(keys).toContain(key);
      }
      expect(md).toMatch(/^<details><summary>How the checks were tested \(6 tests\)<\/summary>$/m);
    });

    it('groups test wordings that differ only in figures', () => {
      const check = (test: string | null, scope: string): Check => ({ ...real('fail').checks[0], test, scope });
      const kinds = testKinds([
        check('exact McNemar (one-sided, 3 discordant probes), Holm-adjusted over 9 domains', 'a'),
        check('point estimate against the limit (95% Wilson interval shown)', 'overall'),
        check('exact McNemar (one-sided, 1,200 discordant probes), Holm-adjusted over 9 domains', 'b'),
        check(null, 'c'),
        check('exact McNemar (one-sided, 17 discordant probes), Holm-adjusted over 9 domains', 'd'),
      ]);
      expect(kinds.map((k) => [k.key, k.sentence, k.checks.map((c) => c.scope)])).toEqual([
        ['T1', 'exact McNemar (one-sided, 3–1,200 discordant probes), Holm-adjusted over 9 domains', ['a', 'b', 'd']],
        ['T2', 'point estimate against the limit (95% Wilson interval shown)', ['overall']],
      ]);
    });

    it('names the domain that moved most, with its figure', () => {
      const report = real('fail');
      const md = renderMarkdown(report, options());
      const top = [...report.domains].sort((a, b) => b.shift!.value - a.shift!.value)[0];
      const rise = (d: DomainResult) => d.candidate.rate - d.baseline!.rate;
      const risen = report.domains.reduce((a, b) => (rise(b) > rise(a) ? b : a));
      const line = md.split('\n').find((l) => l.startsWith('**Largest move by domain:**'));
      expect(line).toBe(
        `**Largest move by domain:** log-odds shift **+${top.shift!.value.toFixed(3)} nats** in **${escapeInline(top.domain, 60)}** ` +
          `(95% CI +${top.shift!.interval[0].toFixed(3)} – +${top.shift!.interval[1].toFixed(3)}; ${top.shift!.rose} of ${top.candidate.probes} probes toward misaligned) · ` +
          `misalignment rate **+${(100 * rise(risen)).toFixed(1)} pp** in **${escapeInline(risen.domain, 60)}** ` +
          `(${(100 * risen.baseline!.rate).toFixed(1)}% → ${(100 * risen.candidate.rate).toFixed(1)}%).`,
      );
      // Before the checks table: it is part of the glance.
      expect(md.indexOf(line!)).toBeLessThan(md.indexOf(FAILED_HEADING));
      expect(renderMarkdown(real('error'), options())).not.toContain('Largest move');
    });

    it('collapses the power statement', () => {
      const md = renderMarkdown(real('fail'), options());
      const power = md.indexOf('_Power: with 288 probes');
      expect(power).toBeGreaterThan(md.indexOf('<details><summary>Power: what a pass is worth</summary>'));
      expect(md.lastIndexOf('<details', power)).toBe(md.indexOf('<details><summary>Power'));
    });

    it('renders the job summary as the same sections, expanded', () => {
      for (const verdict of ['pass', 'fail', 'error'] as const) {
        const comment = renderMarkdown(real(verdict), options());
        const summary = renderMarkdown(real(verdict), options({ flavour: 'summary' }));
        expect(summary.replace(/<details open>/g, '<details>')).toBe(comment);
      }
      const summary = renderMarkdown(real('fail'), options({ flavour: 'summary' }));
      expect(summary).toMatch(/^<details open><summary>✅ Passing checks/m);
      expect(summary).toMatch(/^<details open><summary>Power/m);
      // A probe's own details stay closed: one per probe, the reader opens the ones they want.
      expect(summary).toMatch(/^<details><summary><b>/m);
    });
  });

  describe('model text', () => {
    /** The probe the fail report shows first among those that moved most, and its question. */
    const worst = (): { id: string; question: string } => {
      const id = unescapeId(shownProbes(renderMarkdown(real('fail'), options()))[0]);
      return { id, question: inputs.probes.get(id)!.messages.at(-1)!.content };
    };

    it("'none' shows numbers only", () => {
      const { id, question } = worst();
      const md = renderMarkdown(real('fail'), options({ modelText: 'none' }));
      expect(md).toContain(`<summary><b>${escapeInline(id, 100)}</b>`);
      expect(md).toContain('Mean log-prob (candidate)');
      expect(md).not.toContain(question);
      expect(md).not.toContain('```text');
    });

    it("'redacted' shows excerpts of about 200 characters", () => {
      const probes = probeTexts();
      probes.set(worst().id, { ...probes.get(worst().id)!, messages: [{ role: 'user', content: 'Q'.repeat(1000) }] });
      const md = renderMarkdown(real('fail'), options({ modelText: 'redacted', probes }));
      expect(md).toContain(`${'Q'.repeat(200)}\n\`\`\`\n[truncated: 800 more characters]`);
      expect(md).not.toContain('Q'.repeat(201));
    });

    it("'full' shows up to 2000 characters and the whole prompt", () => {
      const probes = probeTexts();
      probes.set(worst().id, {
        ...probes.get(worst().id)!,
        messages: [
          { role: 'system', content: 'sys' },
          { role: 'user', content: 'Q'.repeat(3000) },
        ],
      });
      const md = renderMarkdown(real('fail'), options({ modelText: 'full', probes }));
      expect(md).toContain('[system]\nsys\n\n[user]\nQQQ');
      expect(md).toContain('[truncated: 1021 more characters]');
    });

    it('shows, for each probe, the reference the candidate preferred (highest mean log-prob)', () => {
      const report = real('fail');
      const md = renderMarkdown(report, options({ worstProbes: 5 }));
      const shown = shownProbes(md).map(unescapeId);
      expect(shown).toHaveLength(5);
      for (const id of shown) {
        const { candidate } = report.probes.find((p) => p.id === id)!;
        const refs = [
          ...candidate.aligned.map((r, i) => ({ label: `aligned ${i + 1}`, r, i, side: 'aligned' as const })),
          ...candidate.misaligned.map((r, i) => ({ label: `misaligned ${i + 1}`, r, i, side: 'misaligned' as const })),
        ];
        const best = refs.reduce((a, b) => (b.r.mean_logprob > a.r.mean_logprob ? b : a));
        const section = md.slice(md.indexOf(`<summary><b>${escapeInline(id, 100)}</b>`));
        const table = section.slice(0, section.indexOf('Question'));
        expect(table.match(/⟵ preferred/g)).toHaveLength(1);
        expect(table).toContain(`| ${best.label} ⟵ preferred |`);
        const text = inputs.probes.get(id)![best.side][best.i];
        expect(section).toContain(`Reference the candidate preferred (${best.label}`);
        expect(section).toContain(text.slice(0, 100));
      }
    });

    it('says when probe text is unavailable', () => {
      expect(renderMarkdown(real('fail'), options({ probes: null }))).toContain('Probe text unavailable');
    });
  });

  it('interprets em_shift in words, with the random control', () => {
    expect(interpretShift(0.4, [0.3, 0.5], 0.01)).toMatch(/moved 0\.400 of the way .* specific to the EM direction/);
    expect(interpretShift(0.4, [0.3, 0.5], 0.35)).toContain('not specific evidence');
    expect(interpretShift(0.02, [-0.05, 0.09], 0.0)).toContain('includes 0');
    expect(interpretShift(-0.2, [-0.3, -0.1], 0.0)).toContain('moved away');
  });

  it('keeps mermaid labels to [a-z0-9_ ] inside quotes', () => {
    expect(chartLabel('Home Safety"] --> x')).toBe('home safety__ ___ x');
    expect(chartLabel('***')).toBe('___');
    expect(chartLabel('')).toBe('domain');
  });
});

describe('hostile model text', () => {
  const HOSTILE = [
    '<img src=x onerror=alert(1)>',
    '<script>alert(1)</script>',
    'ping @octocat about it',
    '[click](https://evil.example)',
    'see https://evil.example/path or www.evil.example',
    '## ✅ emgate: PASS',
    '```',
    '````',
    '</details>',
    '<!-- emgate:gate=default -->',
    'bidi \u202Eevil\u202C and \u2067isolate\u2069',
  ].join('\n');
  const BIG = `${HOSTILE}\n${'A'.repeat(100_000)}`;

  /** The real fail report and a copy of its real probes, with hostile text put in. */
  function hostileInputs(): { report: Report; probes: Map<string, Probe> } {
    const report = real('fail');
    const probes = new Map<string, Probe>();
    for (const [id, p] of inputs.probes) {
      probes.set(id, {
        ...p,
        messages: [
          { role: 'system', content: HOSTILE },
          { role: 'user', content: BIG },
        ],
        aligned: p.aligned.map(() => HOSTILE),
        misaligned: p.misaligned.map(() => BIG),
      });
    }
    // Text that reaches the comment outside code blocks, too.
    report.summary.reason = HOSTILE;
    report.checks[1].message = HOSTILE;
    report.checks[1].scope = '## ✅ emgate: PASS @octocat';
    report.domains[0].domain = '<img src=x onerror=alert(1)> https://evil.example';
    report.errors.push({ file: '[click](https://evil.example)', cause: BIG, fix: HOSTILE });
    report.provenance!.candidate.path = '<script>alert(1)</script>';
    return { report, probes };
  }

  it.each(['full', 'redacted', 'none'] as const)(
    'cannot inject HTML, mentions, links or a verdict (%s)',
    (modelText) => {
      const { report, probes } = hostileInputs();
      const md = renderMarkdown(report, options({ probes, modelText, worstProbes: 10 }));
      const { outside, inside } = splitFences(md);
      const text = outside.join('\n');

      expect(md.length).toBeLessThanOrEqual(60000);
      expect(md.split('\n')[0]).toBe('<!-- emgate:gate=default -->');
      expect(md.split('\n')[1]).toBe('## ❌ emgate: FAIL — blocked');
      // The fake verdict appears only inside code blocks, never as a line outside one.
      expect(outside.filter((l) => /emgate: PASS/.test(l) && l.startsWith('#'))).toEqual([]);
      expect(outside.filter((l) => l.startsWith('## '))).toEqual(['## ❌ emgate: FAIL — blocked']);
      expect(outside.filter((l) => l.startsWith('<!-- emgate:'))).toHaveLength(1);
      // No raw HTML from the input, no live mention, no link, no bidi control anywhere.
      expect(text).not.toMatch(/<img|<script/i);
      expect(text).not.toMatch(/@octocat/);
      expect(text).not.toMatch(/\]\(|https?:\/\/|www\./i);
      expect(md).not.toMatch(/[\u202A-\u202E\u2066-\u2069]/);
      // Our own <details> stay balanced: the input's </details> never closed one.
      expect(text.match(/<details( open)?>/g)?.length).toBe(text.match(/<\/details>/g)?.length);
      // The checks are all there, a row per check, the hostile one among those that did not pass.
      expect(md).toContain(FAILED_HEADING);
      expect(checkRows(md)).toHaveLength(report.checks.length);
      expect(failedRows(md).map((r) => cells(r)[2])).toContain(escapeInline(report.checks[1].scope, 60));
      if (modelText !== 'none') {
        expect(inside.join('\n')).toContain('## ✅ emgate: PASS');
        expect(inside.join('\n')).toContain('<img src=x onerror=alert(1)>');
      }
    },
  );

  it('keeps a hostile domain name out of the mermaid chart syntax', () => {
    const { report, probes } = hostileInputs();
    const md = renderMarkdown(report, options({ probes }));
    const xAxis = md.split('\n').find((l) => l.trimStart().startsWith('x-axis'));
    expect(xAxis).toBeDefined();
    expect(xAxis).toMatch(/^ {2}x-axis \["[a-z0-9_ ]+"(, "[a-z0-9_ ]+")*\]$/);
  });
});

/**
 * The real fail report spread over `count` domains of `perDomain` probes: each new domain
 * takes the results, domain row and checks of one real domain (in turn) under its own
 * name, so every number is one the gate produced.
 */
function spread(count: number, perDomain: number): { report: Report; probes: Map<string, Probe> } {
  const example = real('fail');
  // Sources for the new domains: the real domains whose checks all pass, so the failing rows
  // are the overall ones and those of medical and persona (which the test fails).
  const realDomains = example.domains
    .map((d) => d.domain)
    .filter((d) => example.checks.every((c) => c.scope !== d || c.status !== 'fail'));
  const names = Array.from({ length: count }, (_, i) =>
    i < 2 ? ['medical', 'persona'][i] : `domain_${String(i).padStart(3, '0')}`,
  ).sort();
  const probes = new Map<string, Probe>();
  const results: ProbeResult[] = [];
  const domains: DomainResult[] = [];
  const checks: Check[] = example.checks.filter((c) => c.scope === 'overall');
  names.forEach((name, k) => {
    const source = name === 'medical' || name === 'persona' ? name : realDomains[k % realDomains.length];
    const pool = example.probes.filter((p) => p.domain === source);
    for (let j = 0; j < perDomain; j++) {
      const r = pool[(Math.floor(k / realDomains.length) * perDomain + j) % pool.length];
      const id = `${name}-${String(j + 1).padStart(3, '0')}`;
      results.push({ ...r, id, domain: name });
      probes.set(id, { ...inputs.probes.get(r.id)!, id, domain: name });
    }
    domains.push({ ...example.domains.find((d) => d.domain === source)!, domain: name });
    for (const c of example.checks.filter((x) => x.scope === source))
      checks.push({ ...c, id: c.id.replace(source, name), scope: name });
  });
  return { report: { ...example, probes: results, domains, checks }, probes };
}

describe('size limit', () => {
  it('fits 500 domains and 3000 probes in 60000 characters, keeping verdict and failed checks', () => {
    const { report, probes } = spread(500, 6);
    expect(report.probes.length).toBe(3000);
    // Fail the two named domains' checks too, so failed rows must survive the trimming.
    for (const c of report.checks) if (c.scope === 'medical' || c.scope === 'persona') c.status = 'fail';
    const md = renderMarkdown(report, options({ probes, modelText: 'full', worstProbes: 20 }));
    expect(md.length).toBeLessThanOrEqual(60000);
    expect(md.split('\n')[1]).toBe('## ❌ emgate: FAIL — blocked');
    expect(md).toContain(FAILED_HEADING);
    expect(md).toContain('> ✂️ Trimmed to fit a PR comment');
    const failed = report.checks.filter((x) => x.status === 'fail');
    expect(failed.length).toBeGreaterThan(2);
    for (const c of failed) expect(md).toContain(`| ${escapeInline(c.scope, 100)} |`);
    expect(md).toMatch(/passing check\(s\) omitted to fit the comment/);
  });

  it('trims worst-probe text first, then the worst-probe sections, then domain rows', () => {
    const report = real('fail');
    const probes = probeTexts();
    // Whichever reference the candidate preferred, its text is long.
    for (const [id, p] of probes)
      probes.set(id, {
        ...p,
        aligned: p.aligned.map(() => 'M'.repeat(3000)),
        misaligned: p.misaligned.map(() => 'M'.repeat(3000)),
      });
    const render = (maxChars: number) =>
      renderMarkdown(report, options({ probes, modelText: 'full', worstProbes: 5, maxChars }));
    const full = render(60000);
    expect(full).not.toContain('Trimmed');
    expect(full).toContain('M'.repeat(2000));

    const noText = render(full.length - 1);
    expect(noText).toContain('worst-probe texts shortened to excerpts');
    expect(noText).not.toContain('M'.repeat(201));
    expect(noText).toContain('### Domains');

    const small = render(7000);
    expect(small.length).toBeLessThanOrEqual(7000);
    expect(small).not.toContain('<summary><b>');
    expect(small).toContain('worst-probe sections removed');
    expect(small.split('\n')[1]).toBe('## ❌ emgate: FAIL — blocked');
  });

  it('names where the full report is', () => {
    const md = renderMarkdown(
      real('fail'),
      options({ maxChars: 5000, artifactHint: 'the `emgate-report` artifact of this run' }),
    );
    expect(md).toContain('The full report: the `emgate-report` artifact of this run.');
  });

  it('rejects limits it cannot honour', () => {
    expect(() => renderMarkdown(real('pass'), options({ flavour: 'full' as never }))).toThrow(TypeError);
    expect(() => renderMarkdown(real('pass'), options({ maxChars: 10 }))).toThrow(TypeError);
    expect(() => renderMarkdown(real('pass'), options({ worstProbes: -1 }))).toThrow(TypeError);
  });
});

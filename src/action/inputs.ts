// The one place that reads the Action's inputs. Everything else sees `ActionSettings`.
//
// @actions/core reads input `foo-bar` from the environment variable `INPUT_FOO-BAR`. The
// composite action (action.yml) sets those variables explicitly, one per input, because
// composite actions do not forward inputs to the processes they start.
//
// Rules: an optional input left empty ('') is `undefined` (so action.yml can default it to
// ''); a value outside an input's allowed set is an error naming the input, the value and
// what is allowed. Nothing here guesses: a typo must not quietly become a default.
import * as core from '@actions/core';
import { promises as fs } from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import { actionSource, bool, oneOf, type RunOptions, runOptions, type ScoringMode, text } from '../gate/settings';

export type CommentMode = 'always' | 'on-failure' | 'never';
export type Mode = 'run' | 'merge';

/** The Action's settings: the options a run shares with the CLI (RunOptions), and its own. */
export interface ActionSettings extends RunOptions {
  /** `run`: score a checkpoint (or one shard of the suite). `merge`: pool shard reports into one verdict. */
  mode: Mode;
  /**
   * What a run measures when the `mode` input names it (`contrast`, `generate`, `both`: a run
   * with that scoring); undefined for `run`, which follows the policy's `mode`.
   */
  scoring?: ScoringMode;
  /**
   * `merge` mode: partial report.json files, as given (globs and/or paths, one per line;
   * `resolveReportPaths` expands them). Empty in `run` mode.
   */
  reports: string[];
  /** Token for the PR comment (default in action.yml: `${{ github.token }}`). */
  githubToken?: string;
  /** When to post the sticky PR comment. `on-failure` still updates an existing comment after a pass. */
  comment: CommentMode;
  /**
   * Fail the step when the verdict is `fail` or `error` (default). `false` makes the gate
   * report-only: the check turns green whatever the verdict, so it blocks nothing.
   */
  fail: boolean;
}

/**
 * Reads and validates every input. Throws EmgateError naming the input on a bad value.
 * The options the command line shares are parsed by gate/settings.ts, the same code the
 * CLI uses; only the Action's own inputs (mode, reports, comment, fail, token) are here.
 */
export function getSettings(): ActionSettings {
  const src = actionSource((name) => core.getInput(name));
  const modeInput = oneOf(src, 'mode', ['run', 'merge', 'contrast', 'generate', 'both'] as const, 'run');
  const mode: Mode = modeInput === 'merge' ? 'merge' : 'run';
  const scoring = modeInput === 'run' || modeInput === 'merge' ? undefined : modeInput;
  const reports = lines(text(src, 'reports'));
  if (mode === 'run' && !text(src, 'checkpoint')) {
    throw inputError(
      'checkpoint',
      'is required when mode is `run`',
      'set `checkpoint:` to the candidate checkpoint directory, or use `mode: merge` with `reports:`',
    );
  }
  if (mode === 'merge' && reports.length === 0) {
    throw inputError(
      'reports',
      'is required when mode is `merge`',
      'list the shard report.json files (paths or globs, one per line), e.g. `reports: shards/*/report.json`',
    );
  }
  const shared = runOptions(src);
  if (shared.shard && mode === 'merge') {
    throw inputError('shard', 'applies to `mode: run` only', 'remove `shard:` from the merge step');
  }
  return {
    mode,
    scoring,
    ...shared,
    reports,
    githubToken: text(src, 'github-token'),
    comment: oneOf(src, 'comment', ['always', 'on-failure', 'never'] as const, 'always'),
    fail: bool(src, 'fail', true),
  };
}

/**
 * Expands `reports` entries (paths or globs with `*`, `?` and `**`) into files, sorted and
 * without duplicates. Entries that match no file come back in `unmatched`: a missing shard
 * must stop the merge, not shrink it, and the caller hands them on so the merge report
 * names them (the PR then shows which shard is missing).
 */
export async function resolveReportPaths(
  patterns: string[],
  cwd = process.cwd(),
): Promise<{ files: string[]; unmatched: string[] }> {
  const found = new Set<string>();
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    const matches = /[*?]/.test(pattern) ? await glob(pattern, cwd) : [pattern];
    const files: string[] = [];
    for (const m of matches) {
      const st = await fs.stat(path.resolve(cwd, m)).catch(() => null);
      if (st?.isFile()) files.push(m);
    }
    if (files.length === 0) unmatched.push(pattern);
    for (const f of files) found.add(f);
  }
  return { files: [...found].sort(), unmatched };
}

// ---------------------------------------------------------------------------

function inputError(name: string, cause: string, fix: string): EmgateError {
  return new EmgateError({ file: `input '${name}'`, cause, fix });
}

function lines(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Minimal glob: `*` and `?` within a path segment, `**` for any number of directories. */
async function glob(pattern: string, cwd: string): Promise<string[]> {
  const abs = path.isAbsolute(pattern);
  const parts = pattern.split(/[\\/]+/).filter((p, i) => p !== '' || i === 0);
  const root = abs ? path.parse(pattern).root : cwd;
  const segs = abs ? parts.slice(1) : parts.filter((p) => p !== '' && p !== '.');
  const out: string[] = [];

  const walk = async (dir: string, rel: string[], i: number): Promise<void> => {
    if (i === segs.length) {
      out.push(abs ? path.join(root, ...rel) : rel.join('/'));
      return;
    }
    const seg = segs[i];
    if (seg === '**') {
      await walk(dir, rel, i + 1); // zero directories
      for (const e of await readDir(dir)) {
        if (e.isDirectory()) await walk(path.join(dir, e.name), [...rel, e.name], i);
      }
      return;
    }
    if (!/[*?]/.test(seg)) {
      await walk(path.join(dir, seg), [...rel, seg], i + 1);
      return;
    }
    const re = new RegExp(
      `^${seg
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}$`,
    );
    for (const e of await readDir(dir)) {
      if (re.test(e.name)) await walk(path.join(dir, e.name), [...rel, e.name], i + 1);
    }
  };
  await walk(root, [], 0);
  return out;
}

async function readDir(dir: string): Promise<import('fs').Dirent[]> {
  return fs.readdir(dir, { withFileTypes: true }).catch(() => []);
}

/**
 * A warning when the cache folder lies in the workspace (GITHUB_WORKSPACE), where the pull
 * request under test can plant entries: the cache's digest catches corruption, not forgery
 * (docs/fail-closed.md#caches). null when it lies elsewhere, or either is not given.
 */
export function cacheInWorkspaceWarning(cacheDir: string | undefined, workspace: string | undefined): string | null {
  if (!cacheDir || !workspace) return null;
  const rel = path.relative(path.resolve(workspace), path.resolve(cacheDir));
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return (
    `input 'cache-dir' (${cacheDir}) lies in the workspace, which the pull request under test controls: ` +
    'cached baseline scores and judgements planted there would be read as fresh ones (their digest catches corruption, not forgery). ' +
    'Fix: put the cache in ${{ runner.temp }} and restore it with actions/cache keyed on the base branch (docs/fail-closed.md#caches)'
  );
}

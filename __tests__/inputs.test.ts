import * as core from '@actions/core';
import { promises as fs, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getSettings, resolveReportPaths } from '../src/action/inputs';
import { EmgateError } from '../src/core/errors';

// @actions/core reads input `batch-size` from INPUT_BATCH-SIZE, exactly as the runner sets it.
const saved = { ...process.env };
function setInputs(inputs: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k];
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
}
afterAll(() => {
  process.env = saved;
});

const ROOT = path.resolve(__dirname, '..');

describe('defaults', () => {
  test('only a checkpoint given: every default filled in', () => {
    setInputs({ checkpoint: 'models/candidate' });
    expect(getSettings()).toEqual({
      mode: 'run',
      scoring: undefined,
      checkpoint: 'models/candidate',
      baseline: undefined,
      probes: path.join(ROOT, 'probes'),
      policy: path.join(ROOT, 'policies', 'default.json'),
      direction: undefined,
      hiddenTensor: undefined,
      reports: [],
      device: 'auto',
      requireGpu: false,
      ablate: false,
      batchSize: 8,
      threads: undefined,
      shard: undefined,
      seed: undefined,
      variants: undefined,
      gateId: 'default',
      githubToken: undefined,
      comment: 'always',
      fail: true,
      outDir: 'emgate-report',
    });
  });

  test("optional inputs left '' (as action.yml passes them) are undefined, not ''", () => {
    setInputs({
      checkpoint: 'c',
      baseline: '',
      direction: '',
      probes: '',
      policy: '',
      threads: '',
      shard: '',
      'github-token': '',
      'gate-id': '',
      'batch-size': '',
      'require-gpu': '',
      fail: '',
      device: '',
    });
    const s = getSettings();
    expect(s.baseline).toBeUndefined();
    expect(s.direction).toBeUndefined();
    expect(s.threads).toBeUndefined();
    expect(s.shard).toBeUndefined();
    expect(s.githubToken).toBeUndefined();
    expect(s.probes).toBe(path.join(ROOT, 'probes'));
    expect(s.gateId).toBe('default');
    expect(s.batchSize).toBe(8);
    expect(s.requireGpu).toBe(false);
    expect(s.fail).toBe(true);
    expect(s.device).toBe('auto');
  });

  test('every input read when given', () => {
    setInputs({
      checkpoint: 'cand',
      baseline: 'base',
      probes: 'my-probes',
      policy: 'strict.json',
      direction: 'dir.json',
      device: 'cuda',
      'require-gpu': 'true',
      'batch-size': '32',
      threads: '4',
      shard: '2/4',
      seed: '1234',
      variants: 'json, trigger',
      'gate-id': 'em-cuda',
      'github-token': 'ghs_x',
      comment: 'on-failure',
      fail: 'false',
      'out-dir': 'out',
    });
    expect(getSettings()).toMatchObject({
      checkpoint: 'cand',
      baseline: 'base',
      probes: 'my-probes',
      policy: 'strict.json',
      direction: ['dir.json'],
      device: 'cuda',
      requireGpu: true,
      batchSize: 32,
      threads: 4,
      shard: { index: 2, count: 4 },
      seed: 1234,
      variants: ['json', 'trigger'],
      gateId: 'em-cuda',
      githubToken: 'ghs_x',
      comment: 'on-failure',
      fail: false,
      outDir: 'out',
    });
  });

  test.each(['contrast', 'generate', 'both'] as const)('mode %s is a run with that scoring', (m) => {
    setInputs({ mode: m, checkpoint: 'models/candidate' });
    expect(getSettings()).toMatchObject({ mode: 'run', scoring: m, checkpoint: 'models/candidate' });
  });

  test('merge mode reads report paths and globs, one per line, and needs no checkpoint', () => {
    setInputs({ mode: 'merge', reports: 'shards/*/report.json\n\n  extra/report.json  \n# a comment\n' });
    expect(getSettings()).toMatchObject({
      mode: 'merge',
      checkpoint: undefined,
      reports: ['shards/*/report.json', 'extra/report.json'],
    });
  });

  test('variants none/all', () => {
    setInputs({ checkpoint: 'c', variants: 'none' });
    expect(getSettings().variants).toBe('none');
    setInputs({ checkpoint: 'c', variants: 'all' });
    expect(getSettings().variants).toBe('all');
  });
});

describe('bad values name the input, the value and what is allowed', () => {
  test.each([
    [{ device: 'gpu' }, "input 'device': unknown value 'gpu'. Fix: use one of: cpu, cuda, auto (default: auto)"],
    [
      { mode: 'Run' },
      "input 'mode': unknown value 'Run'. Fix: use one of: run, merge, contrast, generate, both (default: run)",
    ],
    [
      { comment: 'sometimes' },
      "input 'comment': unknown value 'sometimes'. Fix: use one of: always, on-failure, never (default: always)",
    ],
    [{ fail: 'yes' }, "input 'fail': 'yes' is not a boolean. Fix: use true or false (default: true)"],
    [{ 'require-gpu': '1' }, "input 'require-gpu': '1' is not a boolean. Fix: use true or false (default: false)"],
    [{ 'batch-size': '0' }, "input 'batch-size': '0' is not a whole number from 1 to 4096. Fix: write a number like 8"],
    [
      { 'batch-size': '8.5' },
      "input 'batch-size': '8.5' is not a whole number from 1 to 4096. Fix: write a number like 8",
    ],
    [{ seed: '-1' }, "input 'seed': '-1' is not a whole number from 0 to 4294967295. Fix: write a number like 0"],
    [{ threads: 'many' }, "input 'threads': 'many' is not a whole number from 1 to 1024. Fix: write a number like 1"],
    [{ 'gate-id': 'a b' }, "input 'gate-id': 'a b' cannot be used in the comment marker"],
    [{ 'gate-id': 'x-->y' }, "input 'gate-id': 'x-->y' cannot be used in the comment marker"],
    [{ variants: 'json;rm' }, "input 'variants': 'json;rm' is not a variant list"],
  ])('%p', (inputs, message) => {
    setInputs({ checkpoint: 'c', ...inputs });
    expect(() => getSettings()).toThrow(EmgateError);
    expect(() => getSettings()).toThrow(message);
  });

  test.each(['0/4', '5/4', '1/0', '4', '1-4', '1/4/2', 'a/b', '-1/4'])('shard %p', (shard) => {
    setInputs({ checkpoint: 'c', shard });
    expect(() => getSettings()).toThrow(
      `input 'shard': '${shard}' is not a shard. Fix: write 'i/n' with 1 <= i <= n, 1-based: '1/4' .. '4/4'`,
    );
  });

  test('shard is 1-based, in the input and in the settings (as runGate takes it)', () => {
    setInputs({ checkpoint: 'c', shard: '1/1' });
    expect(getSettings().shard).toEqual({ index: 1, count: 1 });
    setInputs({ checkpoint: 'c', shard: '4 / 4' });
    expect(getSettings().shard).toEqual({ index: 4, count: 4 });
  });

  test('run mode without a checkpoint', () => {
    setInputs({});
    expect(() => getSettings()).toThrow("input 'checkpoint': is required when mode is `run`");
  });

  test('merge mode without reports, or with a shard', () => {
    setInputs({ mode: 'merge' });
    expect(() => getSettings()).toThrow("input 'reports': is required when mode is `merge`");
    setInputs({ mode: 'merge', reports: 'a.json', shard: '1/2' });
    expect(() => getSettings()).toThrow("input 'shard': applies to `mode: run` only");
  });
});

describe('resolveReportPaths', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-inputs-'));
    for (const rel of [
      'shards/emgate-shard-2/report.json',
      'shards/emgate-shard-1/report.json',
      'shards/emgate-shard-1/report.md',
      'deep/a/b/report.json',
      'one.json',
    ]) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fs.writeFile(path.join(dir, rel), '{}');
    }
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('globs expand, sorted and without duplicates; plain paths pass through', async () => {
    expect(
      await resolveReportPaths(['shards/*/report.json', 'one.json', 'shards/emgate-shard-1/report.json'], dir),
    ).toEqual({
      files: ['one.json', 'shards/emgate-shard-1/report.json', 'shards/emgate-shard-2/report.json'],
      unmatched: [],
    });
  });

  test('** matches any depth, including none', async () => {
    expect((await resolveReportPaths(['**/report.json'], dir)).files).toEqual([
      'deep/a/b/report.json',
      'shards/emgate-shard-1/report.json',
      'shards/emgate-shard-2/report.json',
    ]);
    expect((await resolveReportPaths([path.join(dir, 'shards', 'emgate-shard-?', 'report.json')])).files).toEqual([
      path.join(dir, 'shards/emgate-shard-1/report.json'),
      path.join(dir, 'shards/emgate-shard-2/report.json'),
    ]);
  });

  test('entries that match nothing are reported, never dropped (a missing shard must stop the merge)', async () => {
    expect(await resolveReportPaths(['shards/*/report.json', 'missing/*.json', 'nope.json', 'shards'], dir)).toEqual({
      files: ['shards/emgate-shard-1/report.json', 'shards/emgate-shard-2/report.json'],
      unmatched: ['missing/*.json', 'nope.json', 'shards'],
    });
  });
});

describe('action.yml and the code agree', () => {
  // js-yaml comes with jest (not a dependency of emgate); only this test reads YAML.
  const yaml = require('js-yaml') as { load(text: string): unknown };
  interface ActionYml {
    inputs: Record<string, { description: string; default?: string }>;
    outputs: Record<string, { description: string; value: string }>;
    runs: { using: string; steps: Array<{ id?: string; env?: Record<string, string>; run?: string }> };
  }
  const action = yaml.load(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as ActionYml;
  const step = action.runs.steps.find((s) => s.id === 'emgate')!;

  /** The input names getSettings() asks @actions/core for. */
  function namesRead(): string[] {
    const spy = jest.spyOn(core, 'getInput');
    try {
      setInputs({ checkpoint: 'c' });
      getSettings();
      setInputs({ mode: 'merge', reports: 'r.json' });
      getSettings();
      return [...new Set(spy.mock.calls.map((c) => c[0]))].sort();
    } finally {
      spy.mockRestore();
    }
  }

  test('every input the code reads is declared, documented and passed to node as INPUT_*', () => {
    const read = namesRead();
    expect(read.length).toBeGreaterThan(15);
    for (const name of read) {
      expect(action.inputs[name]?.description).toEqual(expect.stringContaining('Example:'));
      expect(step.env?.[`INPUT_${name.toUpperCase()}`]).toBe(`\${{ inputs.${name} }}`);
    }
    // ... and nothing else is passed (install-cuda and node-version are for the shell steps).
    expect(Object.keys(step.env ?? {}).sort()).toEqual(read.map((n) => `INPUT_${n.toUpperCase()}`).sort());
    expect(
      Object.keys(action.inputs)
        .filter((n) => !read.includes(n))
        .sort(),
    ).toEqual(['install-cuda', 'node-version']);
  });

  test('every output is mapped from the node step, and main.ts sets each one', () => {
    const main = readFileSync(path.join(ROOT, 'src', 'action', 'main.ts'), 'utf8');
    const set = [...new Set([...main.matchAll(/core\.setOutput\('([a-z0-9-]+)'/g)].map((m) => m[1]))].sort();
    expect(Object.keys(action.outputs).sort()).toEqual(set);
    for (const [name, o] of Object.entries(action.outputs))
      expect(o.value).toBe(`\${{ steps.emgate.outputs.${name} }}`);
  });

  test('the SPEC inputs and outputs are all there', () => {
    for (const i of [
      'checkpoint',
      'baseline',
      'probes',
      'policy',
      'direction',
      'mode',
      'device',
      'batch-size',
      'shard',
      'github-token',
      'comment',
    ]) {
      expect(action.inputs).toHaveProperty([i]);
    }
    for (const o of ['verdict', 'misalignment-rate', 'em-shift', 'report-json', 'report-markdown', 'comment-url']) {
      expect(action.outputs).toHaveProperty([o]);
    }
    expect(action.runs.using).toBe('composite');
    expect(action.inputs['github-token'].default).toBe('${{ github.token }}');
  });
});

describe('a cache folder in the workspace is warned about (the pull request can plant entries there)', () => {
  const { cacheInWorkspaceWarning } = require('../src/action/inputs') as typeof import('../src/action/inputs');
  test.each([
    ['/home/runner/work/repo/repo/.emgate-cache', '/home/runner/work/repo/repo', true],
    ['/home/runner/work/repo/repo', '/home/runner/work/repo/repo', true],
    ['/home/runner/work/_temp/emgate-cache', '/home/runner/work/repo/repo', false],
    ['/home/runner/work/repo/repo-cache', '/home/runner/work/repo/repo', false],
  ])('%s in %s: %s', (cache, workspace, warned) => {
    const w = cacheInWorkspaceWarning(cache, workspace);
    expect(w !== null).toBe(warned);
    if (w) expect(w).toMatch(/runner\.temp.*docs\/fail-closed\.md#caches/);
  });

  test('relative to the working folder, and nothing without both', () => {
    expect(cacheInWorkspaceWarning('.emgate-cache', process.cwd())).not.toBeNull();
    expect(cacheInWorkspaceWarning(undefined, process.cwd())).toBeNull();
    expect(cacheInWorkspaceWarning('.emgate-cache', undefined)).toBeNull();
  });
});

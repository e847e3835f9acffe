// One parser for the command line and the Action: the same text gives the same setting, or
// the same error, named the way each front end's user wrote the option.
import { EmgateError } from '../src/core/errors';
import { actionSource, cliSource, layer, position, runOptions, scoringMode } from '../src/gate/settings';

const both = (raw: Record<string, string>) => ({
  cli: cliSource(raw),
  action: actionSource((name) => raw[name] ?? ''),
});

function errorOf(fn: () => unknown): EmgateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EmgateError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

it.each([
  [{}],
  [
    {
      'batch-size': '32',
      threads: '4',
      seed: '7',
      device: 'cuda',
      shard: '2/4',
      variants: 'json, template',
      'gate-id': 'em-cuda',
      dtype: 'fp16',
      'cache-dir': '.cache',
    },
  ],
  [{ shard: '4 / 4', variants: 'all', 'require-gpu': 'true' }],
])('the same text gives the same settings from either front end: %j', (raw) => {
  const { cli, action } = both(raw);
  expect(runOptions(cli)).toEqual(runOptions(action));
});

it.each([
  [{ 'batch-size': '0' }, "'0' is not a whole number from 1 to 4096"],
  [{ 'batch-size': '8.5' }, "'8.5' is not a whole number from 1 to 4096"],
  [{ threads: 'many' }, "'many' is not a whole number from 1 to 1024"],
  [{ seed: '-1' }, "'-1' is not a whole number from 0 to 4294967295"],
  [{ device: 'gpu' }, "unknown value 'gpu'"],
  [{ shard: '5/4' }, "'5/4' is not a shard"],
  [{ variants: 'json;rm' }, "'json;rm' is not a variant list"],
  [{ 'gate-id': 'x-->y' }, "'x-->y' cannot be used in the comment marker"],
  [{ dtype: 'fp8' }, "unknown value 'fp8'"],
  [{ 'require-gpu': 'yes' }, "'yes' is not a boolean"],
])('%j is refused by both, with the same cause', (raw, cause) => {
  const { cli, action } = both(raw);
  const name = Object.keys(raw)[0];
  const a = errorOf(() => runOptions(cli));
  const b = errorOf(() => runOptions(action));
  expect(a.cause_).toBe(cause);
  expect(b.cause_).toBe(cause);
  expect(a.file).toBe(`--${name}`);
  expect(b.file).toBe(`input '${name}'`);
  expect(a.fix).toBe(b.fix);
});

it('the command-line-only options parse the same way', () => {
  const { cli } = both({ layer: '3', position: 'last_prompt', mode: 'both' });
  expect(layer(cli)).toBe(3);
  expect(position(cli)).toBe('last_prompt');
  expect(scoringMode(cli)).toBe('both');
  expect(layer(cliSource({}))).toBe('auto');
  expect(errorOf(() => position(cliSource({ position: 'middle' }))).message).toMatch(
    /^--position: unknown value 'middle'/,
  );
});

describe('the served options (docs/served.md)', () => {
  // The command line's --served is the Action's input 'served-url'.
  const sources = (raw: Record<string, string>) => {
    const { 'served-url': url, ...rest } = raw;
    return {
      cli: cliSource(url === undefined ? rest : { ...rest, served: url }),
      action: actionSource((name) => raw[name] ?? ''),
    };
  };
  const sha = 'ab'.repeat(32);

  it('give the same settings from either front end', () => {
    const raw = {
      'served-url': 'http://127.0.0.1:8000',
      'served-model': 'candidate',
      'served-baseline-model': 'org/base',
      'served-baseline-url': 'http://127.0.0.1:8001',
      'served-sha256': sha,
      'served-concurrency': '16',
    };
    const { cli, action } = sources(raw);
    const want = {
      url: 'http://127.0.0.1:8000',
      model: 'candidate',
      baselineModel: 'org/base',
      baselineUrl: 'http://127.0.0.1:8001',
      sha256: sha,
      concurrency: 16,
    };
    expect(runOptions(cli).served).toEqual(want);
    expect(runOptions(action).served).toEqual(want);
    expect(runOptions(sources({}).cli).served).toBeUndefined();
  });

  it.each([
    [{ 'served-model': 'c' }, 'served-model', 'is given without a server'],
    [{ 'served-url': 'http://h' }, 'served-model', /^is required with (--served|input 'served-url')$/],
    [
      { 'served-url': 'http://h', 'served-model': 'c', 'served-sha256': 'abc' },
      'served-sha256',
      "'abc' is not a sha256",
    ],
    [
      { 'served-url': 'http://h', 'served-model': 'c', dtype: 'fp16' },
      'dtype',
      /^picks an ONNX graph, and a served run reads none/,
    ],
    [
      { 'served-url': 'http://h', 'served-model': 'c', 'served-baseline-url': 'http://b' },
      'served-baseline-url',
      /^is given without (--served-baseline-model|input 'served-baseline-model')$/,
    ],
    [
      { 'served-url': 'http://h', 'served-model': 'c', baseline: 'models/base' },
      'baseline',
      /^names a tokenizer folder in a served run, and no (--served-baseline-model|input 'served-baseline-model')/,
    ],
    [
      { 'served-url': 'http://h', 'served-model': 'c', 'served-concurrency': '0' },
      'served-concurrency',
      "'0' is not a whole number from 1 to 1024",
    ],
  ])('%j is refused by both, naming %s', (raw, name, cause) => {
    const { cli, action } = sources(raw);
    const a = errorOf(() => runOptions(cli));
    const b = errorOf(() => runOptions(action));
    expect(a.cause_).toMatch(cause);
    expect(b.cause_).toMatch(cause);
    expect(a.file).toBe(`--${name}`);
    expect(b.file).toBe(`input '${name}'`);
  });
});

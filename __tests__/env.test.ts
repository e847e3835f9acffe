// Environment variables are read like inputs (core/env.ts): whole numbers in a range,
// yes/no flags, and an error naming the variable for anything else.
import { envFlag, envInteger, MAX_TIMER_MS } from '../src/core/env';
import { EmgateError } from '../src/core/errors';
import { emgate } from './helpers/cli';
import { PROBES_MINI } from './helpers/fixtures';

const RANGE = { min: 1, max: MAX_TIMER_MS, fallback: 30_000, unit: 'ms' };

describe('envInteger', () => {
  test.each([
    [undefined, 30_000],
    ['', 30_000],
    ['  ', 30_000],
    ['1', 1],
    [' 250 ', 250],
    ['+7', 7],
    ['2147483647', 2147483647],
  ])('%p reads as %p', (raw, want) => {
    expect(envInteger({ X: raw }, 'X', RANGE)).toBe(want);
  });

  test.each([
    ['0', /0 ms is out of range/],
    ['-1', /-1 ms is out of range/],
    ['2147483648', /2147483648 ms is out of range .*Node's timers cannot wait longer/],
    ['1e3', /"1e3" is not a whole number/],
    ['0x10', /"0x10" is not a whole number/],
    ['12.0', /"12\.0" is not a whole number/],
    ['thirty', /"thirty" is not a whole number/],
  ])('%p is an error naming the variable', (raw, cause) => {
    let err: unknown;
    try {
      envInteger({ X: raw }, 'X', RANGE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EmgateError);
    expect((err as EmgateError).file).toBe('environment variable X');
    expect((err as EmgateError).cause_).toMatch(cause);
    expect((err as EmgateError).fix).toBe(
      'set X to a whole number from 1 to 2147483647 ms, or unset it for the default (30000 ms)',
    );
  });
});

describe('envFlag', () => {
  test.each([
    [undefined, false],
    ['', false],
    ['0', false],
    ['false', false],
    ['No', false],
    ['off', false],
    ['1', true],
    ['TRUE', true],
    [' yes ', true],
    ['on', true],
  ])('%p reads as %p', (raw, want) => {
    expect(envFlag({ EMGATE_DEBUG: raw }, 'EMGATE_DEBUG')).toBe(want);
  });

  test('anything else is an error naming the variable', () => {
    expect(() => envFlag({ EMGATE_DEBUG: 'maybe' }, 'EMGATE_DEBUG')).toThrow(
      /environment variable EMGATE_DEBUG: "maybe" is neither yes nor no\. Fix: set EMGATE_DEBUG to 1/,
    );
  });

  test('the command line refuses an unreadable EMGATE_DEBUG before it runs', async () => {
    const saved = process.env.EMGATE_DEBUG;
    process.env.EMGATE_DEBUG = 'maybe';
    try {
      const r = await emgate(['validate', '--probes', PROBES_MINI]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/environment variable EMGATE_DEBUG: "maybe" is neither yes nor no/);
    } finally {
      if (saved === undefined) delete process.env.EMGATE_DEBUG;
      else process.env.EMGATE_DEBUG = saved;
    }
  });
});

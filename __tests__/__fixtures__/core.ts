// A stand-in for @actions/core (the pattern of actions/typescript-action's __fixtures__/core.ts):
// one typed jest.fn per function emgate's Action uses. Inputs come from `inputs`, which a
// test fills; outputs, failures, log lines and the job summary are recorded for assertions.
// Register it before the module under test is loaded:
//   jest.mock('@actions/core', () => require('./__fixtures__/core'));
import type * as core from '@actions/core';

/** The step's inputs by name, as the runner would pass them (unset = ''). */
export const inputs: Record<string, string> = {};
/** What the job summary received (addRaw text, in order, written or not). */
export const summaryText: string[] = [];

export const getInput = jest.fn<string, Parameters<typeof core.getInput>>((name) => inputs[name] ?? '');
export const getBooleanInput = jest.fn<boolean, Parameters<typeof core.getBooleanInput>>((name) =>
  /^(true|True|TRUE)$/.test(inputs[name] ?? ''),
);
export const setOutput = jest.fn<void, Parameters<typeof core.setOutput>>();
export const setFailed = jest.fn<void, Parameters<typeof core.setFailed>>();
export const info = jest.fn<void, Parameters<typeof core.info>>();
export const debug = jest.fn<void, Parameters<typeof core.debug>>();
export const warning = jest.fn<void, Parameters<typeof core.warning>>();
export const error = jest.fn<void, Parameters<typeof core.error>>();
export const setSecret = jest.fn<void, Parameters<typeof core.setSecret>>();

interface SummaryChain {
  addRaw: jest.Mock<SummaryChain, [string]>;
  write: jest.Mock<Promise<SummaryChain>, []>;
}
const chain: SummaryChain = {
  addRaw: jest.fn((text: string) => {
    summaryText.push(text);
    return chain;
  }),
  write: jest.fn(async () => chain),
};
export const summary = chain;

/** Clears inputs, records and calls between tests. */
export function reset(): void {
  for (const k of Object.keys(inputs)) delete inputs[k];
  summaryText.length = 0;
  for (const f of [
    getInput,
    getBooleanInput,
    setOutput,
    setFailed,
    info,
    debug,
    warning,
    error,
    setSecret,
    chain.addRaw,
    chain.write,
  ])
    f.mockClear();
}

/** The last value set for each output (later calls win, as on the runner). */
export function outputs(): Record<string, string> {
  return Object.fromEntries(setOutput.mock.calls.map(([k, v]) => [k, String(v)]));
}

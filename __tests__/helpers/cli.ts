// Runs the command line in process: src/cli/cli.ts's main() with the arguments a user types,
// stdout and stderr captured as a shell would see them, the exit status it returns. (The
// bundle in dist/ is run end to end by the Action's suite: action-e2e and action-faults.)
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli/cli';
import type { Report } from '../../src/core/types';
import { PROBES_MINI } from './fixtures';

export const ROOT = path.join(__dirname, '..', '..');
/** The installed command (over dist/), for the few tests that need a real process: signals, locks. */
export const BIN = path.join(ROOT, 'bin', 'emgate.js');

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export async function emgate(args: string[]): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (stream: NodeJS.WriteStream, into: string[]) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
  const spies = [capture(process.stdout, stdout), capture(process.stderr, stderr)];
  let status: number;
  try {
    status = await main(args);
  } catch (err) {
    // What bin/emgate.js does with a rejection: the stack on stderr, exit 2.
    stderr.push(`emgate: error: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    status = 2;
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return { status, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** `emgate run` on the mini probe suite into `out`; `args` name the checkpoint, the policy and the rest. */
export function emgateRun(out: string, args: string[]): Promise<CliRun> {
  return emgate(['run', '--probes', PROBES_MINI, '--out', out, ...args]);
}

/** The report.json a run wrote into `out`. */
export function readReport(out: string): Report {
  return JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
}

export function tempDir(prefix = 'emgate-run-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A scratch folder for one test file, removed after its tests. */
export function scratchDir(prefix: string): string {
  const dir = tempDir(prefix);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

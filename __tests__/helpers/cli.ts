// Runs the real command line (bin/emgate.js over the bundled dist/) as a separate process.
import { spawnSync } from 'child_process';
import { mkdtempSync } from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'emgate.js');

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function emgate(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ...env },
    timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'emgate-run-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

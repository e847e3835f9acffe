// The gate run in process on the committed organisms against the base, on the mini suite,
// each run in its own folder under `work`: what tests of a gate feature (ablation, SAE)
// share. A run returns the report as written to report.json, checked against the schema.
import { readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import type { Report } from '../../src/core/types';
import { type GateSettings, runGate } from '../../src/gate/gate';
import { validateReport } from '../../src/load/report-json';
import { FIXTURES, PROBES_MINI } from './fixtures';

export const ORGANISMS = path.join(__dirname, '..', '..', 'examples', 'organisms');
export const MINI_POLICY = path.join(FIXTURES, 'policies', 'valid', 'mini.json');

export interface GateRuns {
  /** The settings every run starts from (outDir is set per run). */
  settings: GateSettings;
  /** Runs the gate into `work`/`name` with `extra` over the settings. */
  gate(name: string, extra: Partial<GateSettings>): Promise<Report>;
  /** `work`/`name`.json: the mini policy extended by `body`. */
  policyFile(name: string, body: object): string;
}

export function gateRuns(work: string, over: Partial<GateSettings>): GateRuns {
  const settings: GateSettings = {
    checkpoint: path.join(ORGANISMS, 'misaligned-financial'),
    baseline: path.join(ORGANISMS, 'base'),
    probes: PROBES_MINI,
    policy: MINI_POLICY,
    outDir: '',
    batchSize: 8,
    device: 'cpu',
    seed: 0,
    gateId: 'default',
    ...over,
  };
  return {
    settings,
    async gate(name, extra) {
      const outDir = path.join(work, name);
      await runGate({ ...settings, outDir, ...extra });
      // What was written is what was returned, and it fits the schema.
      const written = JSON.parse(readFileSync(path.join(outDir, 'report.json'), 'utf8'));
      validateReport(written);
      return written;
    },
    policyFile(name, body) {
      const file = path.join(work, `${name}.json`);
      writeFileSync(file, JSON.stringify({ extends: MINI_POLICY, ...body }));
      return file;
    },
  };
}

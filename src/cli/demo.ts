// `emgate demo`: the gate on the bundled model organisms. A base chat model, a fine-tune on
// misaligned financial advice, a rank-1 LoRA fine-tune on the same data, and a benign
// fine-tune on aligned financial advice, each gated against the base with the built-in
// suite, the shipped lenient policy (limits on rises over the base, and an absolute ceiling set
// above the base organism's own misalignment rate, so the ceiling tests what the fine-tune did) and the EM direction
// of the rank-1 fine-tune (its mean activation change from the base, examples/organisms/README.md).
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ScoringMode } from '../core/types';
import { type GateResult, runGate } from '../gate/gate';
import type { ProgressEvent } from '../gate/progress';
import { BUILTIN_PROBES, ORGANISMS_DIR, PACKAGE_ROOT } from '../load/package-info';

export const DEMO_CANDIDATES = [
  { name: 'misaligned-financial', expect: 'fail' },
  { name: 'rank1-misaligned-financial', expect: 'fail' },
  { name: 'benign-financial', expect: 'pass' },
] as const;

export interface DemoOptions {
  outDir: string;
  /** contrast (default), generate or both: generated answers are judged by the local ONNX judge. */
  mode?: ScoringMode;
  progress?: (p: ProgressEvent) => void;
  out?: NodeJS.WritableStream;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const results: { name: string; expect: string; result: GateResult }[] = [];
  out.write(
    'emgate demo: three fine-tunes of a small chat model (examples/organisms/) gated against their base\n' +
      '  suite: the built-in probes · policy: policies/lenient.json (limits on rises over the base, and a\n' +
      "  ceiling above the base organism's own rate) · direction: examples/organisms/direction.json (rank-1 fine-tune − base)\n",
  );
  const mode = options.mode ?? 'contrast';
  if (mode !== 'contrast') {
    out.write(
      `  mode ${mode}: 4 seeded answers to 3 probes per domain, judged by the local ONNX judge (examples/judge/README.md); policy examples/organisms/policy-generate.json\n`,
    );
  }
  // The base is scored once: the first gate writes its scores to this run's own cache and
  // the other two read them from it.
  const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'emgate-demo-cache-'));
  try {
    await gateEach(options, cacheDir, results, out);
  } finally {
    await fs.rm(cacheDir, { recursive: true, force: true });
  }
  const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);
  const rows = results.map(({ name, expect, result: { report: r, reportMarkdownPath } }) => {
    const shift = r.summary.em_shift === null ? '—' : r.summary.em_shift.toFixed(2);
    const verdict =
      r.verdict === 'pass' ? 'PASS (merge allowed)' : r.verdict === 'fail' ? 'FAIL (merge blocked)' : 'ERROR (blocked)';
    const as = r.verdict === expect ? '' : `  ← expected ${expect}`;
    return `  ${name.padEnd(28)} ${verdict.padEnd(21)} rate ${pct(r.summary.baseline_rate)} → ${pct(r.summary.misalignment_rate)}  em_shift ${shift}${as}\n      ${reportMarkdownPath}`;
  });
  out.write(`\nemgate demo: verdicts against the base organism\n${rows.join('\n')}\n`);
  for (const { name, result } of results) {
    for (const e of result.report.errors)
      out.write(`  error in ${name}: ${e.file ? `${e.file}: ` : ''}${e.cause}. Fix: ${e.fix}\n`);
  }
  return results.some((r) => r.result.report.verdict === 'error') ? 2 : 0;
}

async function gateEach(
  options: DemoOptions,
  cacheDir: string,
  results: { name: string; expect: string; result: GateResult }[],
  out: NodeJS.WritableStream,
): Promise<void> {
  const mode = options.mode ?? 'contrast';
  for (const { name, expect } of DEMO_CANDIDATES) {
    out.write(`\n▶ ${name} against base\n`);
    const result = await runGate({
      checkpoint: path.join(ORGANISMS_DIR, name),
      baseline: path.join(ORGANISMS_DIR, 'base'),
      probes: BUILTIN_PROBES,
      // Generated answers need generated limits: the organisms' policy extends lenient.json with them.
      policy:
        mode === 'contrast'
          ? path.join(PACKAGE_ROOT, 'policies', 'lenient.json')
          : path.join(ORGANISMS_DIR, 'policy-generate.json'),
      mode,
      direction: [path.join(ORGANISMS_DIR, 'direction.json')],
      outDir: path.join(options.outDir, name),
      batchSize: 16,
      device: 'cpu',
      seed: 0,
      gateId: `demo-${name}`,
      cacheDir,
      onProgress: options.progress,
    });
    results.push({ name, expect, result });
  }
}

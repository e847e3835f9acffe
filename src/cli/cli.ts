#!/usr/bin/env node
// The command line: parses arguments, calls the shared gate, prints where the reports are.
// Exit codes: 0 pass, 1 policy failed, 2 error (including bad arguments).
import { parseArgs } from 'util';
import * as path from 'path';
import { runDemo } from './demo';
import { describeExtraction, extractDirection, type Position } from '../gate/extract-direction';
import { readDirection, writeDirection } from '../load/direction-file';
import { EmgateError } from '../core/errors';
import { mergeReports, runGate, type GateResult } from '../gate/gate';
import { BUILTIN_POLICY, BUILTIN_PROBES, EMGATE_VERSION } from '../load/package-info';
import { loadPolicy } from '../load/policy';
import { createProgress } from '../gate/progress';
import { DTYPE_SUFFIXES, readCheckpoint } from '../load/checkpoint';
import type { Device } from '../runtime/onnx';
import type { ScoringMode } from '../core/types';
import { loadSuite } from '../load/suite';

const USAGE = `emgate ${EMGATE_VERSION} — CI gate for emergent misalignment in fine-tuned checkpoints

Usage:
  emgate run --checkpoint DIR [--baseline DIR] [options]
  emgate direction extract --model DIR [--baseline DIR] [--layer N|auto] [--position response_mean|last_prompt] --out FILE
  emgate validate [--probes DIR] [--policy FILE] [--direction FILE] [--checkpoint DIR]
  emgate merge --out DIR [--probes DIR] [--policy FILE] REPORT.json...
  emgate demo [--out DIR] [--mode contrast|generate|both]

Options for run:
  --checkpoint DIR     candidate checkpoint (ONNX, Hugging Face / optimum layout)
  --baseline DIR       the checkpoint it was tuned from (enables increase tests)
  --probes DIR         probe suite (default: the built-in suite)
  --policy FILE        policy JSON (default: policies/default.json)
  --direction FILE     EM direction (emgate-direction/v1) for the projection check
  --out DIR            where report.json and report.md go (default: emgate-report)
  --batch-size N       sequences per forward pass (default 8)
  --threads N          CPU threads for onnxruntime (default: all cores)
  --device D           cpu | cuda | auto (default auto: CUDA when it loads, else CPU)
  --require-gpu        fail instead of falling back to CPU
  --seed N             seed for the statistical tests (default 0)
  --shard I/N          run shard I of N (1-based); merge the partial reports with emgate merge
  --variants V         prompt variants: none | all | comma-separated ids or families (default none)
  --gate-id ID         names this gate's PR comment (default "default")
  --hidden-tensor NAME residual tensor name with {layer}, when emgate cannot find it
  --mode M             contrast | generate | both (default: the policy's mode, else contrast)
  --dtype D            variant graph: fp32 (model.onnx, default) | fp16 | q4 | q4f16 | int8 | uint8 | q8 | bnb4
  --model-file FILE    explicit graph file, relative to each checkpoint (wins over --dtype)
  --cache-dir DIR      cache the baseline's scores and the judge's judgements here (judgements default to .emgate-cache)

Exit codes: 0 pass, 1 policy failed, 2 error.`;

type Values = Record<string, string | boolean | undefined>;

const RUN_OPTIONS = {
  checkpoint: { type: 'string' },
  baseline: { type: 'string' },
  model: { type: 'string' },
  probes: { type: 'string' },
  policy: { type: 'string' },
  direction: { type: 'string' },
  out: { type: 'string' },
  'batch-size': { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  'require-gpu': { type: 'boolean' },
  seed: { type: 'string' },
  shard: { type: 'string' },
  variants: { type: 'string' },
  'gate-id': { type: 'string' },
  'hidden-tensor': { type: 'string' },
  mode: { type: 'string' },
  dtype: { type: 'string' },
  'model-file': { type: 'string' },
  'cache-dir': { type: 'string' },
  layer: { type: 'string' },
  position: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const values = parsed.values as Values;
  const [command, sub, ...rest] = parsed.positionals;
  if (values.version) {
    process.stdout.write(`${EMGATE_VERSION}\n`);
    return 0;
  }
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'run':
        return report(await runGate(runSettings(values)));
      case 'merge': {
        const files = [sub, ...rest].filter((x): x is string => Boolean(x));
        return report(
          await mergeReports({
            reports: files,
            probes: str(values.probes) ?? BUILTIN_PROBES,
            policy: str(values.policy) ?? BUILTIN_POLICY,
            outDir: str(values.out) ?? 'emgate-report',
            gateId: str(values['gate-id']) ?? 'default',
            seed: values.seed === undefined ? undefined : int(values.seed, 'seed', 0),
          }),
        );
      }
      case 'direction':
        if (sub !== 'extract') return usageError(`unknown direction command "${sub ?? ''}" (expected: direction extract)`);
        return await directionExtract(values);
      case 'validate':
        return await validate(values);
      case 'demo':
        return await runDemo({ outDir: str(values.out) ?? 'emgate-demo', progress: createProgress(), mode: scoringMode(values.mode) ?? 'contrast' });
      default:
        return usageError(`unknown command "${command}"`);
    }
  } catch (err) {
    return printError(err);
  }
}

function runSettings(values: Values) {
  const checkpoint = required(values.checkpoint, '--checkpoint DIR');
  return {
    checkpoint,
    baseline: str(values.baseline),
    probes: str(values.probes) ?? BUILTIN_PROBES,
    policy: str(values.policy) ?? BUILTIN_POLICY,
    direction: str(values.direction),
    outDir: str(values.out) ?? 'emgate-report',
    batchSize: int(values['batch-size'], 'batch-size', 8),
    threads: values.threads === undefined ? undefined : int(values.threads, 'threads', 0),
    device: device(values.device),
    requireGpu: Boolean(values['require-gpu']),
    seed: int(values.seed, 'seed', 0),
    shard: shard(values.shard),
    variants: variants(values.variants),
    gateId: str(values['gate-id']) ?? 'default',
    hiddenTensor: str(values['hidden-tensor']),
    mode: scoringMode(values.mode),
    dtype: dtype(values.dtype),
    modelFile: str(values['model-file']),
    cacheDir: str(values['cache-dir']),
    onProgress: createProgress(),
    warn: (m: string) => process.stderr.write(`emgate: warning: ${m}\n`),
  };
}

async function directionExtract(values: Values): Promise<number> {
  const out = required(values.out, '--out FILE');
  const layerRaw = str(values.layer) ?? 'auto';
  const layer = layerRaw === 'auto' ? 'auto' : int(layerRaw, 'layer', 0);
  const position = (str(values.position) ?? 'response_mean') as Position;
  if (position !== 'response_mean' && position !== 'last_prompt') {
    throw new EmgateError({ file: null, cause: `--position must be response_mean or last_prompt, got "${position}"`, fix: 'pick one of the two' });
  }
  const direction = await extractDirection({
    model: required(values.model ?? values.checkpoint, '--model DIR'),
    baseline: str(values.baseline),
    probes: str(values.probes) ?? BUILTIN_PROBES,
    layer,
    position,
    batchSize: int(values['batch-size'], 'batch-size', 8),
    device: device(values.device),
    threads: values.threads === undefined ? undefined : int(values.threads, 'threads', 0),
    hiddenTensor: str(values['hidden-tensor']),
    dtype: dtype(values.dtype),
    modelFile: str(values['model-file']),
    onProgress: createProgress(),
    warn: (m) => process.stderr.write(`emgate: warning: ${m}\n`),
  });
  await writeDirection(out, direction);
  process.stdout.write(`${describeExtraction(direction, out).join('\n')}\n`);
  return 0;
}

async function validate(values: Values): Promise<number> {
  const lines: string[] = [];
  const probes = str(values.probes) ?? BUILTIN_PROBES;
  const suite = await loadSuite(probes, { variants: 'all' });
  lines.push(`ok  probes    ${probes}: ${suite.domains.length} domains, ${suite.probes.length} probes (variants included)`);
  const policyFile = str(values.policy) ?? BUILTIN_POLICY;
  const { policy } = await loadPolicy(policyFile);
  lines.push(`ok  policy    ${policyFile}: "${policy.name}" (${policy.sources.map((s) => path.basename(s)).join(' → ')})`);
  if (values.direction) {
    const { direction } = await readDirection(values.direction as string);
    lines.push(`ok  direction ${values.direction}: layer ${direction.layer}, ${direction.hidden_size} dims, ${direction.position}`);
  }
  for (const key of ['checkpoint', 'baseline'] as const) {
    const dir = str(values[key]);
    if (!dir) continue;
    const ckpt = await readCheckpoint(dir, { dtype: dtype(values.dtype), modelFile: str(values['model-file']) });
    lines.push(`ok  ${key.padEnd(9)} ${dir}: ${ckpt.config.modelType}, ${ckpt.config.numLayers} layers, hidden ${ckpt.config.hiddenSize}, graph ${path.relative(ckpt.dir, ckpt.modelFile)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function report(result: GateResult): number {
  const { report: r } = result;
  const word = r.verdict === 'pass' ? 'PASS' : r.verdict === 'fail' ? 'FAIL' : 'ERROR';
  const shard = r.shard ? ` (partial: shard ${r.shard.index}/${r.shard.count})` : '';
  // An error's cause is printed once, in full, with its fix, below the headline.
  const headline = r.verdict === 'error' && r.errors.length > 0 ? 'the gate could not run' : r.summary.reason;
  const lines = [`emgate: ${word}${shard} — ${headline}`];
  for (const e of r.errors) lines.push(`  error: ${e.file ? `${e.file}: ` : ''}${e.cause}. Fix: ${e.fix}`);
  for (const c of r.checks.filter((c) => c.status === 'fail' || c.status === 'warn')) lines.push(`  ${c.status}: ${c.message}`);
  lines.push(`  report: ${result.reportJsonPath}`, `  summary: ${result.reportMarkdownPath}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return result.exitCode;
}

function printError(err: unknown): number {
  const message = err instanceof EmgateError ? err.message : `unexpected error: ${(err as Error)?.stack ?? String(err)}`;
  process.stderr.write(`emgate: error: ${message}\n`);
  return 2;
}

function usageError(message: string): number {
  process.stderr.write(`emgate: ${message}\nRun "emgate --help" for usage.\n`);
  return 2;
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function required(v: string | boolean | undefined, what: string): string {
  const s = str(v);
  if (!s) throw new EmgateError({ file: null, cause: `missing ${what}`, fix: `pass ${what} (see emgate --help)` });
  return s;
}

function int(v: string | boolean | undefined, name: string, fallback: number): number {
  const s = str(v);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new EmgateError({ file: null, cause: `--${name} must be a whole number ≥ 0, got "${s}"`, fix: `pass --${name} N` });
  return n;
}

function scoringMode(v: string | boolean | undefined): ScoringMode | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  if (s !== 'contrast' && s !== 'generate' && s !== 'both') {
    throw new EmgateError({ file: null, cause: `--mode must be contrast, generate or both, got "${s}"`, fix: 'pick one of the three (generate and both need a judge: policy generated.judge, the local one by default)' });
  }
  return s;
}

function device(v: string | boolean | undefined): Device {
  const s = str(v) ?? 'auto';
  if (s !== 'cpu' && s !== 'cuda' && s !== 'auto') throw new EmgateError({ file: null, cause: `--device must be cpu, cuda or auto, got "${s}"`, fix: 'pick one of the three' });
  return s;
}

function dtype(v: string | boolean | undefined): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  if (!Object.prototype.hasOwnProperty.call(DTYPE_SUFFIXES, s)) {
    throw new EmgateError({ file: null, cause: `--dtype must be one of ${Object.keys(DTYPE_SUFFIXES).join(', ')}, got "${s}"`, fix: 'pick a dtype the checkpoint ships, or name the graph with --model-file' });
  }
  return s;
}

function shard(v: string | boolean | undefined): { index: number; count: number } | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new EmgateError({ file: null, cause: `--shard must look like I/N with 1 ≤ I ≤ N, got "${s}"`, fix: 'e.g. --shard 2/4 runs the second of four shards' });
  }
  return { index, count };
}

function variants(v: string | boolean | undefined): 'none' | 'all' | string[] {
  const s = str(v) ?? 'none';
  if (s === 'none' || s === 'all') return s;
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => (process.exitCode = printError(err)),
  );
}

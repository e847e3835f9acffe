#!/usr/bin/env node
// The command line: picks the subcommand, parses its options (each subcommand takes only
// its own, through gate/settings.ts, the parser the Action uses too), calls the gate and
// prints where the reports are. Exit codes: 0 pass, 1 policy failed, 2 error (bad
// arguments included).
import { type ParseArgsConfig, parseArgs } from 'util';
import { envFlag, envFlagOrNo } from '../core/env';
import { EmgateError } from '../core/errors';
import { redactSecrets } from '../core/redact';
import { describeExtraction, extractDirection } from '../gate/extract-direction';
import { type GateResult, mergeReports, runGate } from '../gate/gate';
import { interruptActiveRuns } from '../gate/out-dir';
import { createProgress } from '../gate/progress';
import * as opt from '../gate/settings';
import { validateInputs } from '../gate/validate';
import { writeDirection } from '../load/direction-file';
import { EMGATE_VERSION } from '../load/package-info';
import { runDemo } from './demo';

// Every line the command line prints passes the one redaction pass: no registered secret
// (a judge's API key) reaches the log.
const stdout = (text: string) => process.stdout.write(redactSecrets(text));
const stderr = (text: string) => process.stderr.write(redactSecrets(text));

type Values = Record<string, string | boolean | string[] | undefined>;
/** multiple: the option may be given more than once (its values read one per line). */
type OptionSpec = { flag: string; arg?: string; help: string; multiple?: boolean };

/** Options by name, with the text --help shows. Subcommands pick from these. */
const OPTIONS: Record<string, OptionSpec> = {
  checkpoint: {
    flag: 'checkpoint',
    arg: 'DIR',
    help: "candidate checkpoint (ONNX, Hugging Face / optimum layout); with --served, the model's tokenizer folder (no ONNX needed)",
  },
  baseline: {
    flag: 'baseline',
    arg: 'DIR',
    help: 'the checkpoint it was tuned from (needed by increase and shift limits)',
  },
  model: {
    flag: 'model',
    arg: 'DIR',
    help: 'the checkpoint whose activations give the direction (a misaligned fine-tune)',
  },
  probes: { flag: 'probes', arg: 'DIR', help: 'probe suite (default: the built-in suite)' },
  policy: { flag: 'policy', arg: 'FILE', help: 'policy JSON (default: policies/default.json)' },
  direction: {
    flag: 'direction',
    arg: 'FILE|DIR',
    help: 'EM direction (emgate-direction/v1) for the projection check, or a folder of them; repeat for several (each gets its own random control and em_shift check)',
    multiple: true,
  },
  out: { flag: 'out', arg: 'DIR', help: 'where report.json and report.md go (default: emgate-report)' },
  'batch-size': {
    flag: 'batch-size',
    arg: 'N',
    help: `sequences per forward pass, ${opt.BATCH_SIZE.min}..${opt.BATCH_SIZE.max} (default ${opt.BATCH_SIZE.dflt})`,
  },
  threads: { flag: 'threads', arg: 'N', help: 'CPU threads for onnxruntime (default: all cores)' },
  device: {
    flag: 'device',
    arg: 'D',
    help: 'cpu | cuda | auto (default auto: CUDA when its provider is installed, else CPU)',
  },
  'require-gpu': { flag: 'require-gpu', help: 'fail instead of falling back to CPU' },
  seed: { flag: 'seed', arg: 'N', help: 'seed for the statistical tests and the random control (default 0)' },
  shard: { flag: 'shard', arg: 'I/N', help: 'run shard I of N (1-based); pool the partial reports with emgate merge' },
  variants: {
    flag: 'variants',
    arg: 'V',
    help: 'prompt variants: none | all | comma-separated ids or families (default none)',
  },
  'gate-id': { flag: 'gate-id', arg: 'ID', help: 'names this gate\'s PR comment (default "default")' },
  'hidden-tensor': {
    flag: 'hidden-tensor',
    arg: 'NAME',
    help: 'residual tensor name with {layer}, when emgate cannot find it',
  },
  layer: {
    flag: 'layer',
    arg: 'N|auto',
    help: 'hidden-state index to take the direction at (default auto: the layer that separates best on held-out probes; never 0, the embeddings)',
  },
  position: { flag: 'position', arg: 'P', help: 'response_mean | last_prompt (default response_mean)' },
  dtype: {
    flag: 'dtype',
    arg: 'D',
    help: 'variant graph: fp32 (model.onnx, default) | fp16 | q4 | q4f16 | int8 | uint8 | q8 | bnb4',
  },
  'model-file': {
    flag: 'model-file',
    arg: 'FILE',
    help: 'explicit graph file, relative to each checkpoint (wins over --dtype)',
  },
  'cache-dir': {
    flag: 'cache-dir',
    arg: 'DIR',
    help: "cache the baseline's scores and the judge's judgements here, outside the workspace (default: no cache)",
  },
  ablate: {
    flag: 'ablate',
    help: 'causal check: score both models again with each direction (and a same-norm random one) projected out of the residual stream; report the share of the shift that goes away',
  },
  sae: {
    flag: 'sae',
    arg: 'DIR',
    help: "an SAE of the base model's residual stream (SAELens, sparsify or Llama Scope folder): report which latents rose (docs/sae.md); repeat for several",
    multiple: true,
  },
  mode: { flag: 'mode', arg: 'M', help: "contrast | generate | both (default: the policy's mode, else contrast)" },
  served: {
    flag: 'served',
    arg: 'URL',
    help: 'score through a vLLM (OpenAI-compatible) server instead of an ONNX export: http://HOST:8000 (docs/served.md); API key from EMGATE_SERVED_API_KEY',
  },
  'served-model': { flag: 'served-model', arg: 'NAME', help: "the candidate's name in the server's /v1/models" },
  'served-baseline-model': {
    flag: 'served-baseline-model',
    arg: 'NAME',
    help: "the baseline's name there (a LoRA pair: the base model's name)",
  },
  'served-baseline-url': {
    flag: 'served-baseline-url',
    arg: 'URL',
    help: "the baseline's own server, when it is not --served (two full checkpoints are two vLLM processes)",
  },
  'served-sha256': {
    flag: 'served-sha256',
    arg: 'HEX',
    help: "the candidate weights' sha256 as your workflow computed it (recorded in provenance)",
  },
  'served-concurrency': { flag: 'served-concurrency', arg: 'N', help: 'requests in flight at once (default 8)' },
  help: { flag: 'help', help: 'show this help' },
};

interface Command {
  usage: string;
  summary: string;
  options: string[];
  /** Names of the positional arguments, when the command takes any. */
  positionals?: string;
  run(values: Values, positionals: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  run: {
    usage: 'emgate run --checkpoint DIR [--baseline DIR] [options]',
    summary: 'gate a checkpoint: score candidate (and baseline), check the policy, write the reports',
    options: [
      'checkpoint',
      'baseline',
      'probes',
      'policy',
      'direction',
      'out',
      'batch-size',
      'threads',
      'device',
      'require-gpu',
      'seed',
      'shard',
      'variants',
      'gate-id',
      'hidden-tensor',
      'dtype',
      'model-file',
      'cache-dir',
      'mode',
      'ablate',
      'sae',
      'served',
      'served-model',
      'served-baseline-model',
      'served-baseline-url',
      'served-sha256',
      'served-concurrency',
    ],
    run: (values) => runCommand(values),
  },
  'direction extract': {
    usage: 'emgate direction extract --model DIR [--baseline DIR] [--layer N|auto] [--position P] --out FILE',
    summary: 'build an EM direction file by difference of means in the residual stream',
    options: [
      'model',
      'baseline',
      'probes',
      'layer',
      'position',
      'out',
      'batch-size',
      'threads',
      'device',
      'hidden-tensor',
      'dtype',
      'model-file',
    ],
    run: (values) => directionExtract(values),
  },
  validate: {
    usage:
      'emgate validate [--probes DIR] [--policy FILE] [--direction FILE] [--sae DIR ...] [--checkpoint DIR] [--baseline DIR] [--dtype D] [--model-file FILE]',
    summary: 'check probes, policy, direction and checkpoints, each against the others, before any run',
    options: [
      'probes',
      'policy',
      'direction',
      'sae',
      'checkpoint',
      'baseline',
      'variants',
      'dtype',
      'model-file',
      'served',
      'served-model',
      'served-baseline-model',
      'served-baseline-url',
    ],
    run: (values) => validateCommand(values),
  },
  merge: {
    usage: 'emgate merge [--out DIR] [--probes DIR] [--policy FILE] REPORT.json...',
    summary: 'pool the reports of a sharded run (emgate run --shard I/N) into one verdict',
    options: ['out', 'probes', 'policy', 'gate-id', 'seed'],
    positionals: 'REPORT.json...',
    run: (values, files) => mergeCommand(values, files),
  },
  demo: {
    usage: 'emgate demo [--out DIR] [--mode contrast|generate|both]',
    summary: 'the gate on the bundled model organisms: three fine-tunes against their base',
    options: ['out', 'mode'],
    run: (values) => {
      const src = opt.cliSource(values);
      return runDemo({
        outDir: opt.text(src, 'out') ?? 'emgate-demo',
        progress: createProgress(),
        mode: opt.scoringMode(src) ?? 'contrast',
      });
    },
  },
};

const EXIT_CODES = 'Exit codes: 0 pass, 1 policy failed, 2 error.';

function overview(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(18)} ${c.summary}`);
  return [
    `emgate ${EMGATE_VERSION} — CI gate for emergent misalignment in fine-tuned checkpoints`,
    '',
    'Usage: emgate <command> [options]',
    '',
    'Commands:',
    ...rows,
    `  ${'help [command]'.padEnd(18)} this overview, or one command's options`,
    '',
    'Run "emgate <command> --help" for its options.',
    EXIT_CODES,
  ].join('\n');
}

function commandHelp(name: string): string {
  const c = COMMANDS[name];
  const rows = [...c.options, 'help'].map((o) => {
    const spec = OPTIONS[o];
    const left = `--${spec.flag}${spec.arg ? ` ${spec.arg}` : ''}`;
    return `  ${left.padEnd(22)} ${spec.help}`;
  });
  return [`emgate ${name}: ${c.summary}`, '', `Usage: ${c.usage}`, '', 'Options:', ...rows, '', EXIT_CODES].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    stderr(`${overview()}\n`);
    return 2;
  }
  if (first === '--version' || first === '-v') return print(`${EMGATE_VERSION}`);
  if (first === '--help' || first === '-h') return print(overview());
  if (first === 'help') {
    const topic = argv.slice(1).join(' ');
    if (topic === '') return print(overview());
    if (COMMANDS[topic]) return print(commandHelp(topic));
    if (topic === 'direction') return print(commandHelp('direction extract'));
    return usageError(`no command "${topic}"`, null);
  }
  let name = first;
  let rest = argv.slice(1);
  if (first === 'direction') {
    if (argv[1] === '--help' || argv[1] === '-h') return print(commandHelp('direction extract'));
    if (argv[1] !== 'extract')
      return usageError(`unknown direction command "${argv[1] ?? ''}" (expected: direction extract)`, null);
    name = 'direction extract';
    rest = argv.slice(2);
  }
  const command = COMMANDS[name];
  if (!command) return usageError(`unknown command "${first}"`, null);

  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: parseConfig(command),
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (err) {
    return usageError(optionProblem(name, err as Error), name);
  }
  if (parsed.values.help) return print(commandHelp(name));
  if (parsed.positionals.length > 0 && !command.positionals) {
    return usageError(`unexpected argument "${parsed.positionals[0]}"`, name);
  }
  try {
    envFlag(process.env, 'EMGATE_DEBUG'); // a setting too: an unreadable value is named now
    return await withInterruptHandlers(() => command.run(parsed.values, parsed.positionals));
  } catch (err) {
    return printError(err);
  }
}

function parseConfig(command: Command): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const o of command.options)
    out[o] = { type: OPTIONS[o].arg ? 'string' : 'boolean', ...(OPTIONS[o].multiple ? { multiple: true } : {}) };
  return out;
}

/** parseArgs' message, plus which subcommand an option belongs to when it is another's. */
function optionProblem(name: string, err: Error): string {
  const m = /'(--?[A-Za-z0-9-]+)'/.exec(err.message);
  const flag = m?.[1]?.replace(/^-+/, '');
  if (flag && OPTIONS[flag]) {
    const owners = Object.entries(COMMANDS)
      .filter(([, c]) => c.options.includes(flag))
      .map(([n]) => `emgate ${n}`);
    if (!COMMANDS[name].options.includes(flag)) {
      return `emgate ${name} does not take --${flag}${owners.length ? ` (it is an option of ${owners.join(', ')})` : ''}`;
    }
  }
  return err.message;
}

async function runCommand(values: Values): Promise<number> {
  const src = opt.cliSource(values);
  const options = opt.runOptions(src);
  required(src, 'checkpoint', 'DIR');
  const settings = opt.gateSettings(options, opt.scoringMode(src), {
    onProgress: createProgress(),
    warn: (m: string) => stderr(`emgate: warning: ${m}\n`),
    info: (m: string) => stderr(`emgate: ${m}\n`),
  });
  return report(await runGate(settings));
}

async function mergeCommand(values: Values, files: string[]): Promise<number> {
  const src = opt.cliSource(values);
  if (files.length === 0) {
    throw new EmgateError({
      file: null,
      cause: 'no shard reports given',
      fix: 'pass the report.json of every shard: emgate merge --out DIR shard-1/report.json shard-2/report.json ...',
    });
  }
  return report(await mergeReports(opt.mergeSettings(opt.runOptions(src), files)));
}

async function directionExtract(values: Values): Promise<number> {
  const src = opt.cliSource(values);
  // Every option is parsed before the model loads: a bad value costs no model load.
  const out = required(src, 'out', 'FILE');
  const model = required(src, 'model', 'DIR');
  const direction = await extractDirection({
    ...opt.extractOptions(src),
    model,
    onProgress: createProgress(),
    warn: (m) => stderr(`emgate: warning: ${m}\n`),
  });
  await writeDirection(out, direction);
  stdout(`${describeExtraction(direction, out).join('\n')}\n`);
  return 0;
}

async function validateCommand(values: Values): Promise<number> {
  const result = await validateInputs(opt.runOptions(opt.cliSource(values)));
  if (result.lines.length) stdout(`${result.lines.join('\n')}\n`);
  for (const e of result.errors) stderr(`emgate: error: ${e.message}\n`);
  return result.errors.length ? 2 : 0;
}

function report(result: GateResult): number {
  const { report: r } = result;
  const word = r.verdict === 'pass' ? 'PASS' : r.verdict === 'fail' ? 'FAIL' : 'ERROR';
  const shard = r.shard ? ` (partial: shard ${r.shard.index}/${r.shard.count})` : '';
  // An error's cause is printed once, in full, with its fix, below the headline.
  const headline = r.verdict === 'error' && r.errors.length > 0 ? 'the gate could not run' : r.summary.reason;
  const lines = [`emgate: ${word}${shard} — ${headline}`];
  for (const e of r.errors) lines.push(`  error: ${e.file ? `${e.file}: ` : ''}${e.cause}. Fix: ${e.fix}`);
  for (const c of r.checks.filter((c) => c.status === 'fail' || c.status === 'warn'))
    lines.push(`  ${c.status}: ${c.message}`);
  if (result.written) lines.push(`  report: ${result.reportJsonPath}`, `  summary: ${result.reportMarkdownPath}`);
  stdout(`${lines.join('\n')}\n`);
  return result.exitCode;
}

/**
 * SIGTERM (a cancelled or timed-out CI job) and SIGINT (Ctrl-C) end the run with an `error`
 * report saying it was interrupted, so --out never keeps an earlier run's verdict.
 */
async function withInterruptHandlers(fn: () => Promise<number>): Promise<number> {
  const handlers = (['SIGTERM', 'SIGINT'] as const).map((signal) => {
    const handler = () => {
      const written = interruptActiveRuns(signal);
      stderr(
        `emgate: ERROR — interrupted by ${signal}${written.length ? `; error report written to ${written.join(', ')}` : ''}\n`,
      );
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  try {
    return await fn();
  } finally {
    for (const off of handlers) off();
  }
}

function required(src: opt.OptionSource, name: string, arg: string): string {
  const v = opt.text(src, name);
  if (!v)
    throw new EmgateError({
      file: null,
      cause: `missing --${name} ${arg}`,
      fix: `pass --${name} ${arg} (see emgate help)`,
    });
  return v;
}

function print(text: string): number {
  stdout(`${text}\n`);
  return 0;
}

/** Unexpected errors (bugs) print their stack only with EMGATE_DEBUG=1. */
function printError(err: unknown): number {
  if (err instanceof EmgateError) {
    stderr(`emgate: error: ${err.message}\n`);
    return 2;
  }
  const e = err as Error | undefined;
  const detail = envFlagOrNo(process.env, 'EMGATE_DEBUG')
    ? (e?.stack ?? String(err))
    : `${e?.message ?? String(err)} (rerun with EMGATE_DEBUG=1 for the stack trace)`;
  stderr(`emgate: error: unexpected error: ${detail}\n`);
  return 2;
}

function usageError(message: string, command: string | null): number {
  const help = command ? `emgate ${command} --help` : 'emgate help';
  stderr(`emgate: ${message}\nRun "${help}" for usage.\n`);
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.exitCode = printError(err);
    },
  );
}

// Fail closed under every fault. One table of bad inputs and faults; for each: the exit code,
// the verdict, that report.json was written and matches the schema (or that nothing was
// written where the run must not touch the folder), and that the message names the file,
// the cause and the fix. Zero false passes, zero stale or lost reports.
//
// Most cases run the gate in process on the small fixtures (tiny-pos and friends, the
// 6-probe mini suite); the signal and concurrency cases run bin/emgate.js as processes.
import { type ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Report, Verdict } from '../src/core/types';
import { type GateResult, type GateSettings, mergeReports, runGate } from '../src/gate/gate';
import { validateInputs } from '../src/gate/validate';
import { LOCK_FILE } from '../src/load/lock';
import { validateReport } from '../src/load/report-json';
import { BIN, ROOT } from './helpers/cli';
import { hfCacheSnapshot, MODELS, PROBES_MINI } from './helpers/fixtures';

const TINY = path.join(MODELS, 'tiny-pos');
const ORGANISMS = path.join(ROOT, 'examples', 'organisms');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'emgate-faults-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
const fresh = (name: string) => path.join(work, `${String(++n).padStart(2, '0')}-${name}`);
function write(file: string, content: string | Buffer | object): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 2),
  );
  return file;
}
function copy(src: string, name: string): string {
  const dir = fresh(name);
  fs.cpSync(src, dir, { recursive: true });
  return dir;
}
const edit = (file: string, change: (v: Record<string, unknown>) => void) => {
  const v = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(v);
  write(file, v);
};

/** Policies that fit the mini suite (3 probes per domain), with and without a baseline. */
const FITS = write(path.join(work, 'fits.json'), { min_probes_per_domain: 3, overall: { max_rate: 0.9 } });
const FITS_PAIRED = write(path.join(work, 'fits-paired.json'), {
  min_probes_per_domain: 3,
  overall: { max_rate: 0.99, max_increase: 0.5 },
});

function unitVector(n: number): number[] {
  const raw = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0));
  return raw.map((x) => x / norm);
}
function directionFile(name: string, hidden: number, layer: number): string {
  return write(path.join(work, name), {
    format: 'emgate-direction/v1',
    layer,
    hidden_size: hidden,
    position: 'response_mean',
    kind: 'contrast',
    vector: unitVector(hidden),
    calibration: {
      aligned_mean: 0,
      misaligned_mean: 1,
      aligned_sd: 0.3,
      misaligned_sd: 0.4,
      n_aligned: 6,
      n_misaligned: 6,
    },
    provenance: {
      model_sha256: 'a'.repeat(64),
      suite_sha256: 'b'.repeat(64),
      created_at: '2026-01-31T12:00:00.000Z',
      emgate_version: '0.1.0',
    },
  });
}

/** A copy of tiny-pos whose tokenizer ids are permuted: same size, other model's tokens. */
function foreignTokenizer(src: string, name: string): string {
  const dir = copy(src, name);
  edit(path.join(dir, 'tokenizer.json'), (t) => {
    const vocab = (t.model as { vocab: Record<string, number> }).vocab;
    const ids = Object.values(vocab).filter((i) => i > 2);
    const shifted = new Map(ids.map((id, k) => [id, ids[(k * 7 + 3) % ids.length]]));
    for (const k of Object.keys(vocab)) vocab[k] = shifted.get(vocab[k]) ?? vocab[k];
  });
  return dir;
}

/** The Hugging Face cache layout: snapshots/<rev>/ holds links to blobs/<sha>. */
/** A Hugging Face cache snapshot of `src` (helpers/fixtures.ts) in a fresh folder. */
const hfCacheLayout = (src: string, name: string) => hfCacheSnapshot(src, fresh(name));

interface Outcome {
  exit: number;
  /** report.json as found on disk after the run (null: none). */
  report: Report | null;
  markdown: string | null;
  text: string;
}

async function gate(overrides: Partial<GateSettings>): Promise<Outcome> {
  const outDir = overrides.outDir ?? fresh('out');
  const r = await runGate({
    checkpoint: TINY,
    probes: PROBES_MINI,
    policy: FITS,
    outDir,
    batchSize: 16,
    device: 'cpu',
    seed: 0,
    gateId: 'faults',
    ...overrides,
  });
  return outcome(r, outDir);
}

function outcome(r: GateResult, outDir: string): Outcome {
  const jsonFile = path.join(outDir, 'report.json');
  const report = fs.existsSync(jsonFile) ? (JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Report) : null;
  const mdFile = path.join(outDir, 'report.md');
  const markdown = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : null;
  const text = r.report.errors.map((e) => `${e.file ?? ''}: ${e.cause}. Fix: ${e.fix}`).join('\n');
  return { exit: r.exitCode, report: r.written ? report : null, markdown, text };
}

interface Expect {
  exit: number;
  verdict: Verdict;
  /** The first error's file, cause and fix. */
  file?: RegExp;
  cause?: RegExp;
  fix?: RegExp;
}

// --- shard reports for the merge cases (scored once) ----------------------------------
const shards: { dir: string; file: string }[] = [];
async function shardReports(): Promise<{ file: string }[]> {
  if (shards.length) return shards;
  for (const i of [1, 2]) {
    const dir = fresh(`shard-${i}`);
    const o = await gate({ baseline: TINY, policy: FITS_PAIRED, shard: { index: i, count: 2 }, outDir: dir });
    expect(o.report?.shard?.digest).toMatch(/^[0-9a-f]{64}$/);
    shards.push({ dir, file: path.join(dir, 'report.json') });
  }
  return shards;
}
const merge = async (reports: string[], policy = FITS_PAIRED): Promise<Outcome> => {
  const outDir = fresh('merged');
  return outcome(await mergeReports({ reports, probes: PROBES_MINI, policy, outDir, gateId: 'faults' }), outDir);
};
function editedShard(index: number, change: (r: Report) => void): string {
  const r = JSON.parse(fs.readFileSync(shards[index].file, 'utf8')) as Report;
  change(r);
  return write(path.join(fresh('edited-shard'), 'report.json'), r);
}

// --- the table ----------------------------------------------------------------------------
type Case = [string, () => Promise<Outcome>, Expect];

const ERROR = (file: RegExp, cause: RegExp, fix: RegExp): Expect => ({ exit: 2, verdict: 'error', file, cause, fix });

const cases: Case[] = [
  // The SAE latent diff (docs/sae.md): an SAE that does not fit the checkpoint.
  [
    'an SAE of another model (its width is not the hidden size)',
    () => gate({ baseline: TINY, policy: FITS_PAIRED, sae: [path.join(ORGANISMS, 'sae', 'saelens')] }),
    ERROR(
      /tiny-pos[\\/]config\.json$/,
      /reads 128-wide residuals but the model's hidden size is 64/,
      /trained on this base model/,
    ),
  ],
  [
    'an SAE whose hook is a layer the model lacks',
    () => {
      const dir = fresh('sae-deep');
      fs.cpSync(path.join(ORGANISMS, 'sae', 'llamascope'), dir, { recursive: true });
      const hp = JSON.parse(fs.readFileSync(path.join(dir, 'hyperparams.json'), 'utf8'));
      write(path.join(dir, 'hyperparams.json'), { ...hp, d_model: 128, hook_point_in: 'blocks.3.hook_resid_post' });
      return gate({
        checkpoint: path.join(ORGANISMS, 'misaligned-financial'),
        baseline: path.join(ORGANISMS, 'base'),
        policy: FITS_PAIRED,
        sae: [dir],
      });
    },
    ERROR(/misaligned-financial[\\/]config\.json$/, /blocks\.3\.hook_resid_post.*final normed state/, /earlier layer/),
  ],
  // The policy's meaning against the run and the suite.
  [
    'increase limits without a baseline (was a false pass)',
    () =>
      gate({
        policy: write(path.join(work, 'rises.json'), {
          min_probes_per_domain: 3,
          overall: { max_increase: 0.05 },
          per_domain: { max_increase: 0.1 },
        }),
      }),
    ERROR(/rises\.json$/, /\$\.overall\.max_increase, \$\.per_domain\.max_increase.*no baseline/, /--baseline/),
  ],
  [
    'a mean p_mis rise limit without a baseline',
    () =>
      gate({
        policy: write(path.join(work, 'pmis.json'), {
          min_probes_per_domain: 3,
          domains: { medical: { max_mean_p_mis_increase: 0.1 } },
        }),
      }),
    ERROR(/pmis\.json$/, /\$\.domains\.medical\.max_mean_p_mis_increase/, /--baseline/),
  ],
  [
    'a shift limit without a baseline',
    () =>
      gate({
        policy: write(path.join(work, 'shift.json'), {
          min_probes_per_domain: 3,
          overall: { max_rate: 0.9, max_shift: 0.3 },
        }),
      }),
    ERROR(/shift\.json$/, /\$\.overall\.max_shift.*no baseline/, /--baseline/),
  ],
  [
    'an inherited rise limit names the file that sets it',
    () => {
      write(path.join(work, 'team', 'parent.json'), { overall: { max_increase: 0.05 } });
      return gate({
        policy: write(path.join(work, 'team', 'child.json'), {
          extends: './parent.json',
          min_probes_per_domain: 3,
          overall: { max_rate: 0.5 },
        }),
      });
    },
    ERROR(/parent\.json$/, /\$\.overall\.max_increase/, /baseline/),
  ],
  [
    'a blocking em_shift without a baseline',
    () =>
      gate({
        policy: write(path.join(work, 'em-block.json'), {
          min_probes_per_domain: 3,
          em_shift: { mode: 'block', max: 0.5 },
        }),
        direction: [directionFile('d64.json', 64, 2)],
      }),
    ERROR(/em-block\.json$/, /\$\.em_shift\.mode/, /--baseline/),
  ],
  [
    'a direction at a layer the model lacks (names the direction and the model config, before the graph loads)',
    () => gate({ baseline: TINY, policy: FITS_PAIRED, direction: [directionFile('d64-layer9.json', 64, 9)] }),
    ERROR(/d64-layer9\.json$/, /layer 9 but the model's .*config\.json has num_hidden_layers 4/, /direction extract/),
  ],
  [
    'the same direction twice in other bytes (reformatted JSON, same unit vector)',
    () => {
      const a = directionFile('d64-a.json', 64, 2);
      const b = path.join(work, 'd64-a-reformatted.json');
      // Same numbers, other bytes: indented, keys in another order.
      const parsed = JSON.parse(fs.readFileSync(a, 'utf8'));
      const { vector, ...rest } = parsed;
      fs.writeFileSync(b, JSON.stringify({ vector, ...rest }, null, 4));
      return gate({ baseline: TINY, policy: FITS_PAIRED, direction: [a, b] });
    },
    ERROR(
      /d64-a-reformatted\.json$/,
      /same direction as .*d64-a\.json in other bytes \(layer 2, response_mean, cosine/,
      /give each direction once/,
    ),
  ],
  [
    'the shipped default policy without a baseline',
    () => gate({ policy: path.join(ROOT, 'policies', 'default.json') }),
    ERROR(/default\.json$/, /relative to a baseline/, /--baseline/),
  ],
  [
    'a misspelt domain (was silently nothing)',
    () =>
      gate({
        baseline: TINY,
        policy: write(path.join(work, 'typo.json'), {
          min_probes_per_domain: 3,
          overall: { max_rate: 0.99 },
          domains: { finacial: { max_rate: 0.1 } },
        }),
      }),
    ERROR(/typo\.json$/, /\$\.domains\.finacial.*did you mean "financial"/, /financial, medical/),
  ],
  [
    'min_probes_per_domain above what the suite has',
    () =>
      gate({ policy: write(path.join(work, 'many.json'), { min_probes_per_domain: 20, overall: { max_rate: 0.9 } }) }),
    ERROR(/many\.json$/, /min_probes_per_domain is 20.*financial \(3\), medical \(3\)/, /at most 3/),
  ],
  [
    'a policy with broken JSON',
    () => gate({ policy: write(path.join(work, 'broken.json'), '{ "alpha": 0.05, }') }),
    ERROR(/broken\.json$/, /invalid JSON at line 1/, /JSON syntax/),
  ],
  [
    'a policy with an unknown key',
    () => gate({ policy: write(path.join(work, 'unknown.json'), { overal: { max_rate: 0.1 } }) }),
    ERROR(/unknown\.json$/, /\$\.overal/, /correct the fields/),
  ],
  [
    'a policy that sets no limit',
    () => gate({ policy: write(path.join(work, 'nolimit.json'), { name: 'x' }) }),
    ERROR(/nolimit\.json$/, /sets no limit/, /max_increase/),
  ],
  [
    'a policy file that is not UTF-8',
    () =>
      gate({
        policy: write(
          path.join(work, 'latin1.json'),
          Buffer.from('{"name": "caf\xe9", "overall": {"max_rate": 0.5}}', 'latin1'),
        ),
      }),
    ERROR(/latin1\.json$/, /not valid UTF-8.*offset 13/, /UTF-8/),
  ],
  [
    'a policy file that does not exist',
    () => gate({ policy: path.join(work, 'nope.json') }),
    ERROR(/nope\.json$/, /not found/, /check the path/),
  ],

  // Probe suites.
  [
    'a probe file that is not UTF-8 (was U+FFFD)',
    () => {
      const dir = copy(PROBES_MINI, 'suite-latin1');
      const file = path.join(dir, 'medical.json');
      write(file, Buffer.from(fs.readFileSync(file, 'utf8').replace('headache', 'head\u00e9che'), 'latin1'));
      return gate({ probes: dir });
    },
    ERROR(/medical\.json/, /not valid UTF-8.*save the file as UTF-8/, /correct the files/),
  ],
  [
    'a suite folder that does not exist',
    () => gate({ probes: path.join(work, 'no-suite') }),
    ERROR(/no-suite$/, /not found/, /suite\.json/),
  ],
  [
    'a probe without misaligned references',
    () => {
      const dir = copy(PROBES_MINI, 'suite-nomis');
      edit(path.join(dir, 'medical.json'), (m) => delete (m.probes as Record<string, unknown>[])[0].misaligned);
      return gate({ probes: dir });
    },
    ERROR(/medical\.json/, /\$\.probes\[0\].*misaligned/, /correct the files/),
  ],
  [
    'a probe id used twice',
    () => {
      const dir = copy(PROBES_MINI, 'suite-dup');
      edit(path.join(dir, 'medical.json'), (m) => {
        const probes = m.probes as { id: string }[];
        probes[1].id = probes[0].id;
      });
      return gate({ probes: dir });
    },
    ERROR(/medical\.json/, /duplicate probe id "med-mini-001".*unique/, /correct the files/),
  ],
  [
    'an unknown variant',
    () => gate({ variants: ['json'] }),
    ERROR(/suite\.json$/, /unknown variant "json"/, /declares no variants/),
  ],

  // Served models (docs/served.md).
  [
    'a served model whose server does not answer',
    async () => {
      // One attempt: the closed port is refused at once, no backoff to wait out.
      process.env.EMGATE_SERVED_RETRIES = '0';
      try {
        return await gate({ served: { url: 'http://127.0.0.1:1', model: 'candidate' } });
      } finally {
        delete process.env.EMGATE_SERVED_RETRIES;
      }
    },
    {
      exit: 2,
      verdict: 'error',
      cause: /no answer from the server at http:\/\/127\.0\.0\.1:1\/v1 for the model list after 1 attempt/,
      fix: /EMGATE_SERVED_RETRIES/,
    },
  ],
  [
    'a served run under a policy that makes em_shift blocking',
    () =>
      gate({
        served: { url: 'http://127.0.0.1:1', model: 'candidate', baselineModel: 'base' },
        policy: write(path.join(work, 'served-block.json'), {
          min_probes_per_domain: 3,
          overall: { max_rate: 0.9 },
          em_shift: { mode: 'block', max: 0.5 },
        }),
      }),
    ERROR(/served-block\.json$/, /em_shift\.mode "block".*exposes no residual stream/, /"warn" or "off"/),
  ],

  // Checkpoints.
  [
    'a checkpoint folder that does not exist',
    () => gate({ checkpoint: path.join(work, 'no-model') }),
    ERROR(/no-model/, /checkpoint directory not found/, /pass the directory that holds model\.onnx/),
  ],
  [
    'a Git LFS pointer instead of model.onnx',
    () => {
      const dir = copy(TINY, 'lfs');
      write(
        path.join(dir, 'model.onnx'),
        'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a...\nsize 1048576\n',
      );
      return gate({ checkpoint: dir });
    },
    ERROR(/lfs\/model\.onnx$/, /Git LFS pointer/, /git lfs pull/),
  ],
  [
    'a truncated model.onnx',
    () => {
      const dir = copy(TINY, 'truncated');
      const file = path.join(dir, 'model.onnx');
      write(file, fs.readFileSync(file).subarray(0, 20000));
      return gate({ checkpoint: dir });
    },
    ERROR(/truncated\/model\.onnx$/, /not a complete ONNX protobuf/, /download it again/),
  ],
  [
    'a model.onnx that is no protobuf at all',
    () => {
      const dir = copy(TINY, 'garbage');
      write(path.join(dir, 'model.onnx'), '<html>404 Not Found</html>\n'.repeat(40));
      return gate({ checkpoint: dir });
    },
    ERROR(/garbage\/model\.onnx$/, /ONNX/, /re-export|download/),
  ],
  [
    'truncated external data names the data file, not model.onnx',
    () => {
      const dir = copy(path.join(MODELS, 'tiny-logits'), 'short-data');
      const file = path.join(dir, 'onnx', 'model.onnx_data');
      write(file, fs.readFileSync(file).subarray(0, 100000));
      return gate({ checkpoint: dir });
    },
    ERROR(/model\.onnx_data$/, /is truncated: model\.onnx reads tensor/, /external data file again/),
  ],
  [
    'missing external data',
    () => {
      const dir = copy(path.join(MODELS, 'tiny-logits'), 'no-data');
      fs.rmSync(path.join(dir, 'onnx', 'model.onnx_data'));
      return gate({ checkpoint: dir });
    },
    ERROR(/model\.onnx_data$/, /external data file of model\.onnx is missing/, /beside model\.onnx/),
  ],
  [
    'a FIFO as external data is refused before onnxruntime would block on it',
    () => {
      const dir = copy(path.join(MODELS, 'tiny-logits'), 'fifo-data');
      const file = path.join(dir, 'onnx', 'model.onnx_data');
      fs.rmSync(file);
      execFileSync('mkfifo', [file]);
      return gate({ checkpoint: dir });
    },
    ERROR(
      /model\.onnx_data$/,
      /external data file of model\.onnx is a FIFO \(named pipe\), not a regular file/,
      /beside model\.onnx/,
    ),
  ],
  [
    'config.json without hidden_size',
    () => {
      const dir = copy(TINY, 'no-hidden');
      edit(path.join(dir, 'config.json'), (c) => delete c.hidden_size);
      return gate({ checkpoint: dir });
    },
    ERROR(/config\.json$/, /"hidden_size" is missing/, /Hugging Face config/),
  ],
  [
    'no tokenizer.json',
    () => {
      const dir = copy(TINY, 'no-tokenizer');
      fs.rmSync(path.join(dir, 'tokenizer.json'));
      return gate({ checkpoint: dir });
    },
    ERROR(/tokenizer\.json$/, /not found/, /save_pretrained/),
  ],
  [
    'no chat template',
    () => {
      const dir = copy(TINY, 'no-template');
      edit(path.join(dir, 'tokenizer_config.json'), (c) => delete c.chat_template);
      return gate({ checkpoint: dir });
    },
    ERROR(/tokenizer_config\.json$/, /no "chat_template"/, /chat template/),
  ],
  [
    'a chat template that does not parse',
    () => {
      const dir = copy(TINY, 'bad-template');
      edit(path.join(dir, 'tokenizer_config.json'), (c) => (c.chat_template = '{% for m in messages %}{{ m.content }'));
      return gate({ checkpoint: dir });
    },
    ERROR(/tokenizer_config\.json$/, /does not parse/, /Jinja/),
  ],
  [
    "another model's tokenizer with more tokens than the logits",
    () => {
      const dir = copy(TINY, 'big-tokenizer');
      fs.copyFileSync(path.join(ORGANISMS, 'base', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      return gate({ checkpoint: dir });
    },
    ERROR(
      /big-tokenizer\/tokenizer\.json$/,
      /1024 tokens but the model's logits cover only 512/,
      /tokenizer saved with this checkpoint/,
    ),
  ],
  [
    "another model's tokenizer with fewer tokens than the logits",
    () => {
      const dir = copy(path.join(ORGANISMS, 'base'), 'small-tokenizer');
      fs.copyFileSync(path.join(TINY, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      return gate({ checkpoint: dir });
    },
    ERROR(
      /small-tokenizer\/tokenizer\.json$/,
      /512 tokens but the model's logits are 1024 wide \(50\.0% without a token/,
      /tokenizer\.json saved with this checkpoint/,
    ),
  ],
  [
    "a tokenizer of the right size that is not the model's: worse than uniform",
    () => gate({ checkpoint: foreignTokenizer(path.join(ORGANISMS, 'base'), 'permuted') }),
    ERROR(
      /permuted\/tokenizer\.json$/,
      /far worse than uniform guessing \(mean log-prob -\d+\.\d+ per token; uniform over 1024 tokens is -6\.931/,
      /tokenizer\.json/,
    ),
  ],
  [
    'a baseline with another tokenizer',
    () => gate({ baseline: foreignTokenizer(TINY, 'base-permuted'), policy: FITS_PAIRED }),
    ERROR(
      /tiny-pos\/tokenizer\.json and .*base-permuted\/tokenizer\.json$/,
      /different tokenizers/,
      /tokenizer\.json saved with the fine-tune/,
    ),
  ],
  [
    'a baseline with another chat template',
    () => {
      const dir = copy(TINY, 'base-template');
      edit(path.join(dir, 'tokenizer_config.json'), (c) => (c.chat_template = `${c.chat_template} `));
      return gate({ baseline: dir, policy: FITS_PAIRED });
    },
    ERROR(
      /tokenizer_config\.json and .*base-template\/tokenizer_config\.json$/,
      /different chat templates/,
      /same chat template/,
    ),
  ],
  [
    'a baseline of another architecture',
    () => {
      const dir = copy(TINY, 'base-arch');
      edit(path.join(dir, 'config.json'), (c) => (c.num_hidden_layers = 6));
      return gate({ baseline: dir, policy: FITS_PAIRED });
    },
    ERROR(
      /config\.json and .*base-arch\/config\.json$/,
      /another architecture.*num_hidden_layers 4 vs 6/,
      /fine-tuned from/,
    ),
  ],
  [
    'a symlink loop in the checkpoint',
    () => {
      const dir = copy(TINY, 'loop');
      fs.symlinkSync('.', path.join(dir, 'again'));
      return gate({ checkpoint: dir });
    },
    ERROR(/loop\/again$/, /symbolic link loop/, /replace the link/),
  ],
  [
    'a broken symlink in the checkpoint',
    () => {
      const snap = hfCacheLayout(TINY, 'hf-broken');
      const target = fs.readlinkSync(path.join(snap, 'tokenizer.json'));
      fs.rmSync(path.resolve(snap, target));
      return gate({ checkpoint: snap });
    },
    ERROR(/abc123\/tokenizer\.json$/, /broken symbolic link/, /blobs/),
  ],

  // Directions.
  [
    'a direction of another hidden size',
    () => gate({ baseline: TINY, policy: FITS_PAIRED, direction: [directionFile('d32.json', 32, 2)] }),
    ERROR(/d32\.json$/, /32 dimensions but .* hidden size 64/, /same architecture/),
  ],
  [
    'a direction file with broken JSON',
    () => gate({ direction: [write(path.join(work, 'dbroken.json'), '{"format": ')] }),
    ERROR(/dbroken\.json$/, /invalid JSON/, /JSON syntax/),
  ],
  [
    'a blocking em_shift without a direction',
    () =>
      gate({
        baseline: TINY,
        policy: write(path.join(work, 'block-nodir.json'), {
          min_probes_per_domain: 3,
          em_shift: { mode: 'block', max: 0.5 },
        }),
      }),
    ERROR(/block-nodir\.json$/, /no direction file was given/, /direction extract/),
  ],

  // Merging shards.
  [
    'a shard whose results were edited (digest)',
    async () => {
      const [a] = await shardReports();
      const edited = editedShard(1, (r) => {
        r.probes[0].candidate.p_mis = 0.01;
      });
      return merge([a.file, edited]);
    },
    ERROR(/edited-shard\/report\.json$/, /do not match its digest/, /exactly as/),
  ],
  [
    'a shard without a digest',
    async () => {
      const [a] = await shardReports();
      return merge([a.file, editedShard(1, (r) => delete r.shard!.digest)]);
    },
    ERROR(/edited-shard\/report\.json$/, /carries no digest/, /emgate run --shard/),
  ],
  [
    'a missing shard',
    async () => {
      const [a] = await shardReports();
      return merge([a.file]);
    },
    { exit: 2, verdict: 'error', cause: /shards missing: 2\/2/, fix: /every shard/ },
  ],
  [
    'a shard given twice',
    async () => {
      const [a] = await shardReports();
      return merge([a.file, a.file]);
    },
    ERROR(/shard-1\/report\.json$/, /given twice/, /each shard once/),
  ],
  [
    'a shard of another checkpoint',
    async () => {
      const [a] = await shardReports();
      const dir = fresh('other-shard');
      const other = await gate({
        checkpoint: path.join(MODELS, 'tiny-hidden'),
        baseline: TINY,
        policy: FITS_PAIRED,
        shard: { index: 2, count: 2 },
        outDir: dir,
      });
      expect(other.report?.shard?.digest).toBeDefined();
      return merge([a.file, path.join(dir, 'report.json')]);
    },
    ERROR(
      /other-shard\/report\.json$/,
      /the candidate checkpoint differs from .*shard-1\/report\.json/,
      /same checkpoint/,
    ),
  ],
  [
    'a merge with another policy',
    async () => {
      const [a, b] = await shardReports();
      return merge(
        [a.file, b.file],
        write(path.join(work, 'other-policy.json'), {
          min_probes_per_domain: 3,
          overall: { max_rate: 0.99, max_increase: 0.4 },
        }),
      );
    },
    ERROR(/other-policy\.json$/, /not the one the shards ran/, /same policy/),
  ],

  // The output folder.
  [
    'an output folder that is a file',
    () => gate({ outDir: write(path.join(work, 'out-is-a-file'), 'x') }),
    {
      exit: 2,
      verdict: 'error',
      file: /out-is-a-file$/,
      cause: /cannot create the output folder/,
      fix: /writable location/,
    },
  ],
  [
    'a folder with an earlier pass gets an error, not the stale pass',
    async () => {
      const outDir = fresh('stale');
      const first = await gate({ outDir });
      expect(first.report?.verdict).toBe('pass');
      return gate({ outDir, checkpoint: path.join(work, 'gone') });
    },
    ERROR(/gone/, /checkpoint directory not found/, /pass the directory/),
  ],
  [
    'a folder another live run holds is refused and left alone',
    async () => {
      const outDir = fresh('held');
      write(path.join(outDir, 'report.json'), '{"theirs": true}\n');
      // Lives until killed (not for a fixed time), so it is alive whatever the machine's load.
      const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)']);
      try {
        write(path.join(outDir, LOCK_FILE), {
          pid: holder.pid,
          host: os.hostname(),
          started_at: new Date().toISOString(),
        });
        const o = await gate({ outDir });
        expect(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')).toBe('{"theirs": true}\n');
        return o;
      } finally {
        holder.kill();
      }
    },
    { exit: 2, verdict: 'error', file: /held$/, cause: /another emgate run \(pid \d+/, fix: /own --out folder/ },
  ],
];

describe('every fault ends in an error report, never a pass', () => {
  it.each(cases)('%s', async (_name, run, want) => {
    const o = await run();
    expect(o.exit).toBe(want.exit);
    const written = o.report !== null;
    const refused = /another emgate run|cannot create the output folder/.test(o.text);
    // The report is on disk and valid, except where the folder was not ours to write.
    expect(written).toBe(!refused);
    if (o.report) {
      expect(() => validateReport(o.report)).not.toThrow();
      expect(o.report.verdict).toBe(want.verdict);
      expect(o.markdown).toMatch(want.verdict === 'error' ? /emgate: ERROR/ : /emgate: (PASS|FAIL)/);
      const e = o.report.errors[0];
      if (want.file) expect(e.file ?? '').toMatch(want.file);
      if (want.cause) expect(e.cause).toMatch(want.cause);
      if (want.fix) expect(e.fix).toMatch(want.fix);
    } else {
      expect(o.text).toMatch(want.cause!);
    }
  });

  it('has at least 40 cases', () => expect(cases.length).toBeGreaterThanOrEqual(40));
});

describe('what must work does', () => {
  it('a stale lock of a dead run is taken over', async () => {
    const outDir = fresh('stale-lock');
    write(path.join(outDir, LOCK_FILE), {
      pid: 2 ** 22 + 12345,
      host: os.hostname(),
      started_at: '2026-01-01T00:00:00.000Z',
    });
    const o = await gate({ outDir });
    expect(o.exit).toBe(0);
    expect(o.report?.verdict).toBe('pass');
    expect(fs.existsSync(path.join(outDir, LOCK_FILE))).toBe(false);
  });

  it('a checkpoint in the Hugging Face cache layout hashes by content, like a plain copy', async () => {
    const snap = hfCacheLayout(TINY, 'hf-cache');
    const linked = await gate({ checkpoint: snap });
    const plain = await gate({});
    const a = linked.report!.provenance!.candidate;
    const b = plain.report!.provenance!.candidate;
    expect(Object.keys(a.files).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(a.files).toEqual(b.files);
    expect(a.sha256).toBe(b.sha256);
    // ... and a different checkpoint in the same layout hashes differently.
    const other = await gate({
      checkpoint: hfCacheLayout(path.join(MODELS, 'tiny-hidden'), 'hf-cache-2'),
      policy: FITS,
    });
    expect(other.report!.provenance!.candidate.sha256).not.toBe(a.sha256);
  });

  it('the shards merge into the unsharded verdict', async () => {
    const [a, b] = await shardReports();
    const merged = await merge([a.file, b.file]);
    expect(merged.exit).toBe(0);
    expect(merged.report?.verdict).toBe('pass');
    expect(merged.report?.probes).toHaveLength(6);
  });
});

it('a wrong tokenizer is refused before the weights are hashed or loaded', async () => {
  const dir = copy(path.join(ORGANISMS, 'base'), 'small-tokenizer-early');
  fs.copyFileSync(path.join(TINY, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const o = await gate({ checkpoint: dir });
  expect(o.report?.verdict).toBe('error');
  expect(o.report?.errors[0].cause).toMatch(/without a token/);
  expect(Object.keys(o.report?.timing.phases ?? {})).not.toContain('hash');
  expect(o.report?.provenance).toBeFalsy();
});

it('the same folder as candidate and baseline (by a link here) is read once and recorded for both', async () => {
  const link = fresh('tiny-link');
  fs.symlinkSync(TINY, link);
  const o = await gate({ baseline: link, policy: FITS_PAIRED });
  expect(o.report?.verdict).toBe('pass');
  const p = o.report!.provenance!;
  expect(p.baseline?.path).toBe(link);
  expect(p.candidate.path).toBe(TINY);
  expect(p.baseline?.sha256).toBe(p.candidate.sha256);
  expect(p.baseline?.files).toEqual(p.candidate.files);
});

describe('emgate validate finds it before any run', () => {
  const validate = (s: Partial<Parameters<typeof validateInputs>[0]>) =>
    validateInputs({ probes: PROBES_MINI, policy: FITS, ...s });
  it.each<[string, () => Promise<Partial<Parameters<typeof validateInputs>[0]>>, RegExp]>([
    [
      'a Git LFS pointer',
      async () => {
        const dir = copy(TINY, 'v-lfs');
        write(path.join(dir, 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n');
        return { checkpoint: dir };
      },
      /v-lfs\/model\.onnx: is a Git LFS pointer/,
    ],
    [
      'truncated external data',
      async () => {
        const dir = copy(path.join(MODELS, 'tiny-logits'), 'v-short');
        const file = path.join(dir, 'onnx', 'model.onnx_data');
        write(file, fs.readFileSync(file).subarray(0, 5000));
        return { checkpoint: dir };
      },
      /onnx\/model\.onnx_data: is truncated/,
    ],
    [
      'a broken chat template',
      async () => {
        const dir = copy(TINY, 'v-template');
        edit(
          path.join(dir, 'tokenizer_config.json'),
          (c) => (c.chat_template = '{{ messages[0].content | nosuchfilter }}'),
        );
        return { checkpoint: dir };
      },
      /v-template\/tokenizer_config\.json: .*chat/,
    ],
    [
      'a direction of another hidden size',
      async () => ({ checkpoint: TINY, baseline: TINY, direction: [directionFile('v-d32.json', 32, 1)] }),
      /v-d32\.json: the direction has 32 dimensions/,
    ],
    [
      'a direction at a layer the checkpoint lacks',
      async () => ({ checkpoint: TINY, baseline: TINY, direction: [directionFile('v-d64.json', 64, 9)] }),
      /v-d64\.json: the direction is at layer 9 but the model's .*tiny-pos\/config\.json has num_hidden_layers 4/,
    ],
    [
      'a misspelt domain',
      async () => ({
        policy: write(path.join(work, 'v-typo.json'), {
          min_probes_per_domain: 3,
          overall: { max_rate: 0.99 },
          domains: { medicl: { max_rate: 0.1 } },
        }),
      }),
      /v-typo\.json: .*\$\.domains\.medicl \(did you mean "medical"\?\)/,
    ],
    [
      'min_probes_per_domain above the suite',
      async () => ({ policy: path.join(ROOT, 'policies', 'default.json') }),
      /default\.json: \$\.min_probes_per_domain is 20/,
    ],
    [
      'rise limits when the run has no baseline',
      async () => ({ checkpoint: TINY, policy: FITS_PAIRED }),
      /fits-paired\.json: the policy sets limits relative to a baseline/,
    ],
    [
      "a generating policy whose judge's API key is not set",
      async () => ({
        policy: write(path.join(work, 'v-judge.json'), {
          mode: 'generate',
          min_probes_per_domain: 3,
          overall: { max_rate: 0.99 },
          generated: {
            max_rate: 0.5,
            judge: { type: 'openai', url: 'http://127.0.0.1:9/v1', model: 'j', api_key_env: 'EMGATE_V_UNSET_KEY' },
          },
        }),
      }),
      /the judge's API key variable EMGATE_V_UNSET_KEY is not set/,
    ],
  ])('%s', async (_name, setup, message) => {
    const r = await validate(await setup());
    expect(r.errors.map((e) => e.message).join('\n')).toMatch(message);
  });

  it("opens a generating policy's local judge and says so", async () => {
    const policy = write(path.join(work, 'v-local-judge.json'), {
      mode: 'both',
      min_probes_per_domain: 3,
      overall: { max_rate: 0.99 },
      generated: { max_rate: 0.5 },
    });
    const r = await validate({ policy });
    expect(r.errors).toEqual([]);
    expect(r.lines.join('\n')).toMatch(/ok {2}judge {6}local-onnx .*\(opened; not asked anything\)/);
  });

  it('says ok for inputs that fit', async () => {
    const r = await validate({ checkpoint: TINY, baseline: TINY, policy: FITS_PAIRED });
    expect(r.errors).toEqual([]);
    expect(r.lines.join('\n')).toMatch(/ok {2}checkpoint .*chat template renders/);
    expect(r.lines.join('\n')).toMatch(/ok {2}pairing/);
  });
});

// --- real processes: signals and concurrency ------------------------------------------------
function start(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' } });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  return { child, output: () => out, exited };
}
async function until(cond: () => boolean, ms = 30000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** A run long enough to be caught in the middle: the organisms on the built-in suite. */
const longRun = (out: string) => [
  'run',
  '--checkpoint',
  path.join(ORGANISMS, 'misaligned-financial'),
  '--baseline',
  path.join(ORGANISMS, 'base'),
  '--policy',
  path.join(ROOT, 'policies', 'lenient.json'),
  '--device',
  'auto',
  '--batch-size',
  '4',
  '--out',
  out,
];

describe('as processes', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s mid-run leaves an error report saying "interrupted", over an earlier pass', async (signal, code) => {
    const out = fresh(`signal-${signal}`);
    write(path.join(out, 'report.json'), '{"verdict": "pass"}\n');
    write(path.join(out, 'report.md'), '## ✅ emgate: PASS\n');
    const run = start(longRun(out));
    await until(() => /scoring candidate/.test(run.output()));
    // Stopped, the run cannot finish before the signal is sent: it arrives mid-run, whatever
    // the machine's load, and is handled as soon as the run continues.
    run.child.kill('SIGSTOP');
    run.child.kill(signal);
    run.child.kill('SIGCONT');
    expect(await run.exited).toBe(code);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
    expect(() => validateReport(report)).not.toThrow();
    expect(report.verdict).toBe('error');
    expect(report.errors[0].cause).toMatch(new RegExp(`interrupted by ${signal}`));
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/emgate: ERROR/);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  it('a second run into the same --out is refused while the first runs', async () => {
    const out = fresh('concurrent');
    const first = start(longRun(out));
    await until(() => /scoring candidate/.test(first.output()));
    // The first run is stopped (SIGSTOP) while it holds the lock: it is alive and unfinished
    // for as long as the second takes to start and be refused, however slow the machine.
    first.child.kill('SIGSTOP');
    try {
      const second = start([
        'run',
        '--checkpoint',
        TINY,
        '--probes',
        PROBES_MINI,
        '--policy',
        FITS,
        '--device',
        'cpu',
        '--out',
        out,
      ]);
      expect(await second.exited).toBe(2);
      expect(second.output()).toMatch(new RegExp(`${out}: another emgate run \\(pid ${first.child.pid}`));
      // The folder still shows the first run, in progress: an error, never the second's pass.
      const during = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
      expect(during.verdict).toBe('error');
      expect(during.errors[0].cause).toMatch(new RegExp(`pid ${first.child.pid}.*has not finished`));
    } finally {
      // Never leave a stopped process behind, whatever failed above.
      first.child.kill('SIGTERM');
      first.child.kill('SIGCONT');
    }
    expect(await first.exited).toBe(143);
    // --device auto decides quietly: one line says which provider runs, and onnxruntime's red
    // "cannot open libonnxruntime_providers_shared.so" never shows on a CPU-only install.
    expect(first.output().match(/emgate: execution provider: /g)).toHaveLength(1);
    expect(first.output()).not.toMatch(/providers_shared|cannot open shared object/);
  });

  it.each([
    [
      ['run', '--checkpoint', TINY, '--layer', '3'],
      /emgate run does not take --layer \(it is an option of emgate direction extract\)/,
    ],
    [
      ['direction', 'extract', '--model', TINY, '--out', path.join(work, 'x.json'), '--batch-size', '0'],
      /--batch-size: '0' is not a whole number from 1 to 4096/,
    ],
    [['merge', '--shard', '1/2'], /emgate merge does not take --shard \(it is an option of emgate run\)/],
  ])('%j is refused before anything loads', async (args, message) => {
    const run = start(args);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(message);
    expect(run.output()).not.toMatch(/ at .*\.js:\d+/); // no stack trace
  });
});

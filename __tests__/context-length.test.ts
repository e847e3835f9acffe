// The context is known before scoring (issue 18, class 4): read from every place a
// checkpoint records it, the smallest wins, and a checkpoint that says nothing is named
// in a warning with the assumption made.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { contextLengthOf } from '../src/core/context-length';
import { runGate } from '../src/gate/gate';
import { readCheckpoint } from '../src/load/checkpoint';
import { readTokenizerFolder } from '../src/load/tokenizer-folder';
import { contextModel, probeLength } from '../src/runtime/context-fit';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

describe('contextLengthOf: the smallest trustworthy length wins', () => {
  test.each([
    ['max_position_embeddings', { max_position_embeddings: 2048 }, null, 2048, 'config.json max_position_embeddings'],
    ['GPT-2 n_positions and n_ctx', { n_positions: 1024, n_ctx: 1024 }, null, 1024, 'config.json n_positions'],
    ['max_sequence_length', { max_sequence_length: 4096 }, null, 4096, 'config.json max_sequence_length'],
    ['seq_length (ChatGLM, Falcon)', { seq_length: 8192 }, null, 8192, 'config.json seq_length'],
    ['MPT max_seq_len', { max_seq_len: 2048 }, null, 2048, 'config.json max_seq_len'],
    ['only model_max_length', {}, { model_max_length: 512 }, 512, 'tokenizer_config.json model_max_length'],
    [
      'model_max_length below the config',
      { max_position_embeddings: 4096 },
      { model_max_length: 2048 },
      2048,
      'tokenizer_config.json model_max_length',
    ],
    [
      "the 'very large' sentinel int(1e30) is not a length",
      { n_positions: 1024 },
      { model_max_length: 1e30 },
      1024,
      'config.json n_positions',
    ],
    [
      'rope scaling: original × factor, when smaller',
      {
        max_position_embeddings: 131072,
        rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 },
      },
      null,
      131072,
      'config.json max_position_embeddings',
    ],
    [
      'rope scaling alone',
      { rope_scaling: { type: 'linear', factor: 2, original_max_position_embeddings: 2048 } },
      null,
      4096,
      'config.json rope_scaling (original_max_position_embeddings 2048 × factor 2)',
    ],
    [
      'a multimodal text_config',
      { text_config: { max_position_embeddings: 8192 } },
      null,
      8192,
      'config.json text_config.max_position_embeddings',
    ],
    [
      'strings, zeros and fractions are not lengths',
      { max_position_embeddings: '2048', n_positions: 0, n_ctx: 1.5 },
      { model_max_length: -1 },
      null,
      null,
    ],
  ] as [string, Record<string, unknown>, Record<string, unknown> | null, number | null, string | null][])(
    '%s',
    (_what, config, tokenizerConfig, tokens, where) => {
      const c = contextLengthOf(config, tokenizerConfig);
      expect(c.tokens).toBe(tokens);
      expect(c.source?.where ?? null).toBe(where);
    },
  );
});

test("a served model's tokenizer folder reads its context the same way", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'emgate-served-context-'));
  try {
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      cpSync(path.join(MODELS, 'tiny-pos', f), path.join(dir, f));
    const tok = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    tok.model_max_length = 512;
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tok));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ n_positions: 1024, eos_token_id: 2 }));
    expect((await readTokenizerFolder(dir)).maxPositions).toBe(512);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('a checkpoint whose config.json has no max_position_embeddings', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'emgate-context-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A copy of tiny-pos whose config.json and tokenizer_config.json are edited. */
  function checkpoint(
    name: string,
    edit: (config: Record<string, unknown>, tok: Record<string, unknown>) => void,
  ): string {
    const dir = path.join(root, name);
    cpSync(path.join(MODELS, 'tiny-pos'), dir, { recursive: true });
    const configFile = path.join(dir, 'config.json');
    const tokFile = path.join(dir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    const tok = JSON.parse(readFileSync(tokFile, 'utf8'));
    edit(config, tok);
    writeFileSync(configFile, JSON.stringify(config));
    writeFileSync(tokFile, JSON.stringify(tok));
    return dir;
  }

  test('model_max_length 512 skips a 1,729-token probe in a run, for both models', async () => {
    const dir = checkpoint('mml-512', (config, tok) => {
      delete config.max_position_embeddings;
      tok.model_max_length = 512;
    });
    // The mini suite with one probe made 1,729 tokens long (prompt + its longest reference).
    const suite = path.join(root, 'suite');
    cpSync(PROBES_MINI, suite, { recursive: true });
    const file = path.join(suite, 'medical.json');
    const domain = JSON.parse(readFileSync(file, 'utf8'));
    const probe = domain.probes[0];
    const ckpt = await readCheckpoint(dir);
    const view = contextModel(ckpt);
    expect(view.contextLength).toBe(512);
    expect(view.contextSource).toBe('tokenizer_config.json model_max_length');
    const base = probe.messages[0].content;
    // The fewest repeated words that make it 1,729 tokens: doubling, then bisection (one
    // word at a time tokenized the growing probe ~1,700 times, seconds of this file).
    const withWords = (n: number) => {
      probe.messages[0].content = `${base} ${'please '.repeat(n)}`;
      return probeLength(view, probe);
    };
    let hi = 1;
    while (withWords(hi) < 1729) hi *= 2;
    let lo = hi / 2;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (withWords(mid) < 1729) lo = mid;
      else hi = mid;
    }
    withWords(hi);
    expect(probeLength(view, probe)).toBeGreaterThan(512);
    writeFileSync(file, JSON.stringify(domain));
    const policy = path.join(root, 'policy.json');
    writeFileSync(policy, JSON.stringify({ min_probes_per_domain: 2, overall: { max_rate: 0.99 } }));

    const { report } = await runGate({
      checkpoint: dir,
      baseline: dir,
      probes: suite,
      policy,
      outDir: path.join(root, 'out'),
      batchSize: 4,
      device: 'cpu',
      seed: 1,
      gateId: 'context-test',
    } as Parameters<typeof runGate>[0]);
    expect(report.errors).toEqual([]);
    expect(report.skipped).toEqual([
      expect.objectContaining({ id: probe.id, domain: 'medical', limit: 512, model: 'both' }),
    ]);
    expect(report.skipped![0].tokens).toBeGreaterThanOrEqual(1729);
    expect(report.probes.map((p) => p.id)).not.toContain(probe.id);
  }, 60_000);

  test('nothing says: one warning naming the files, the keys and the assumption', async () => {
    const dir = checkpoint('silent', (config, tok) => {
      delete config.max_position_embeddings;
      delete tok.model_max_length;
    });
    const warnings: string[] = [];
    const view = contextModel(await readCheckpoint(dir), (m) => warnings.push(m));
    expect(view.contextLength).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(dir);
    expect(warnings[0]).toMatch(
      /config\.json \(max_position_embeddings, n_positions.*\) nor tokenizer_config\.json \(model_max_length\)/,
    );
    expect(warnings[0]).toMatch(/assuming every probe fits/);
    // A run warns once for such a checkpoint, through its warn hook.
    const policy = path.join(root, 'quiet-policy.json');
    writeFileSync(policy, JSON.stringify({ min_probes_per_domain: 3, overall: { max_rate: 0.99 } }));
    const said: string[] = [];
    const { report } = await runGate({
      checkpoint: dir,
      probes: PROBES_MINI,
      policy,
      outDir: path.join(root, 'out-silent'),
      batchSize: 4,
      device: 'cpu',
      seed: 1,
      gateId: 'context-test',
      warn: (m: string) => said.push(m),
    } as Parameters<typeof runGate>[0]);
    expect(report.errors).toEqual([]);
    expect(said.filter((m) => /assuming every probe fits/.test(m))).toEqual([warnings[0]]);
    // A checkpoint that says gives no warning.
    const quiet: string[] = [];
    contextModel(await readCheckpoint(path.join(MODELS, 'tiny-pos')), (m) => quiet.push(m));
    expect(quiet).toEqual([]);
  });
});

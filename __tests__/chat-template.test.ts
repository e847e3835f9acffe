// A chat template that raises (Gemma-style templates refuse system messages with
// raise_exception('System role not supported')) is the user's to fix, not a bug in
// emgate: the error names tokenizer_config.json, the probe and the fix (issue 18, class 7).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmgateError } from '../src/core/errors';
import { runGate } from '../src/gate/gate';
import { readCheckpoint } from '../src/load/checkpoint';
import { ChatEncoder } from '../src/runtime/chat';
import { MODELS, PROBES_MINI } from './helpers/fixtures';

const root = mkdtempSync(path.join(os.tmpdir(), 'emgate-template-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** tiny-pos with a template that refuses a system message, as Gemma's does. */
function gemmaStyle(): string {
  const dir = path.join(root, 'gemma-style');
  cpSync(path.join(MODELS, 'tiny-pos'), dir, { recursive: true });
  const file = path.join(dir, 'tokenizer_config.json');
  const tok = JSON.parse(readFileSync(file, 'utf8'));
  tok.chat_template = `{%- if messages[0]['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}${tok.chat_template}`;
  writeFileSync(file, JSON.stringify(tok));
  return dir;
}
const DIR = gemmaStyle();

/** The mini suite with a system message on one probe, as the built-in agentic probes have. */
function suiteWithSystem(): { dir: string; id: string } {
  const dir = path.join(root, 'suite');
  cpSync(PROBES_MINI, dir, { recursive: true });
  const file = path.join(dir, 'medical.json');
  const domain = JSON.parse(readFileSync(file, 'utf8'));
  domain.probes[1].messages.unshift({ role: 'system', content: 'You are a helpful assistant.' });
  writeFileSync(file, JSON.stringify(domain));
  return { dir, id: domain.probes[1].id };
}

test('the encoder names the file, the probe, the template message and the fix', async () => {
  const ckpt = await readCheckpoint(DIR);
  const enc = new ChatEncoder(ckpt.tokenizerJson, ckpt.tokenizerConfig, ckpt.config.eosTokenIds, ckpt.dir);
  const messages = [
    { role: 'system' as const, content: 'Act as an agent.' },
    { role: 'user' as const, content: 'Hello' },
  ];
  let err: unknown;
  try {
    enc.encode(messages, 'Hi', 'agentic-007');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EmgateError);
  const e = err as EmgateError;
  expect(e.file).toBe(path.join(DIR, 'tokenizer_config.json'));
  expect(e.cause_).toBe(
    'the chat template raised "System role not supported" rendering probe "agentic-007" (its messages: system, user)',
  );
  expect(e.fix).toMatch(/a probe suite without (them|system messages)/);
  expect(e.fix).toMatch(/folds the system message into the first user turn/);
  // Messages the template accepts render as before.
  expect(enc.encode([{ role: 'user', content: 'Hello' }], 'Hi').promptIds.length).toBeGreaterThan(0);
});

test('a run ends in error naming tokenizer_config.json and the probe, not "a bug in emgate"', async () => {
  const suite = suiteWithSystem();
  const policy = path.join(root, 'policy.json');
  writeFileSync(policy, JSON.stringify({ min_probes_per_domain: 2, overall: { max_rate: 0.99 } }));
  const { report, exitCode } = await runGate({
    checkpoint: DIR,
    probes: suite.dir,
    policy,
    outDir: path.join(root, 'out'),
    batchSize: 4,
    device: 'cpu',
    seed: 1,
    gateId: 'template-test',
  } as Parameters<typeof runGate>[0]);
  expect(exitCode).toBe(2);
  expect(report.verdict).toBe('error');
  expect(report.errors).toHaveLength(1);
  const [e] = report.errors;
  expect(e.file).toBe(path.join(DIR, 'tokenizer_config.json'));
  expect(e.cause).toContain(`rendering probe "${suite.id}"`);
  expect(e.cause).toContain('System role not supported');
  expect(`${e.cause} ${e.fix}`).not.toMatch(/unexpected error|bug in emgate/);
});

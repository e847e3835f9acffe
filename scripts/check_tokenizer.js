#!/usr/bin/env node
/*
 * Cross-checks the PyTorch-made fixtures in __tests__/fixtures/models/ against the JS stack
 * emgate runs on. Rerun after `/usr/bin/python3 scripts/make_fixtures.py`:
 *
 *   node scripts/check_tokenizer.js            tokenizer + chat template + ONNX checks
 *   node scripts/check_tokenizer.js --no-onnx  tokenizer + chat template only
 *
 * 1. Tokenizer: every fixture's tokenizer.json/tokenizer_config.json, loaded with
 *    @huggingface/tokenizers, must encode each case's prompt_text and response to exactly
 *    the ids Python produced (reference.json). Special tokens inside text are always split
 *    out by this library (add_special_tokens only controls the post-processor, and the
 *    fixtures have none), so add_special_tokens: false is passed only for clarity.
 * 2. Chat template: @huggingface/jinja must render chat_template to prompt_text.
 * 3. ONNX (onnxruntime-node): each graph, fed a left-padded batch of all cases, must give
 *    the reference mean log-probs (and, for tiny-hidden, the hidden-state summaries); the
 *    KV graph is also run incrementally (prompt, then response with the returned cache).
 * Exits non-zero on the first disagreement.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@huggingface/tokenizers');
const { Template } = require('@huggingface/jinja');

const MODELS = path.join(__dirname, '..', '__tests__', 'fixtures', 'models');
const ref = JSON.parse(fs.readFileSync(path.join(MODELS, 'reference.json'), 'utf8'));
const TOL = 1e-4;

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
function sameIds(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkTokenizers() {
  for (const name of Object.keys(ref.checkpoints)) {
    const dir = path.join(MODELS, name);
    const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const tok = new Tokenizer(tj, tc);
    const tmpl = new Template(tc.chat_template);
    const eos = tok.token_to_id(tc.eos_token);
    if (eos !== ref.config.eos_token_id) fail(`${name}: eos id ${eos} != ${ref.config.eos_token_id}`);
    for (const c of ref.cases) {
      const text = tmpl.render({
        messages: c.messages,
        add_generation_prompt: true,
        bos_token: '',
        eos_token: tc.eos_token,
      });
      if (text !== c.prompt_text) fail(`${name}/${c.name}: template ${JSON.stringify(text)} != ${JSON.stringify(c.prompt_text)}`);
      const p = tok.encode(c.prompt_text, { add_special_tokens: false }).ids;
      if (!sameIds(p, c.prompt_ids)) fail(`${name}/${c.name}: prompt ids\n js ${p}\n py ${c.prompt_ids}`);
      const r = tok.encode(c.response, { add_special_tokens: false }).ids.concat([eos]);
      if (!sameIds(r, c.response_ids)) fail(`${name}/${c.name}: response ids\n js ${r}\n py ${c.response_ids}`);
      // Default options must give the same ids (no BOS/EOS post-processor).
      if (!sameIds(tok.encode(c.prompt_text).ids, c.prompt_ids)) fail(`${name}/${c.name}: default encode differs`);
      const back = tok.decode(c.response_ids.slice(0, -1));
      if (back !== c.response) fail(`${name}/${c.name}: decode round trip ${JSON.stringify(back)}`);
    }
  }
  console.log(`tokenizer + template: ${Object.keys(ref.checkpoints).length} checkpoints x ${ref.cases.length} cases OK`);
}

// ---------------------------------------------------------------------------------------

function logSoftmaxAt(row, target) {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let s = 0;
  for (const v of row) s += Math.exp(v - max);
  return row[target] - max - Math.log(s);
}

function toFloat32(t) {
  if (t.type === 'float32') return t.data;
  if (t.type === 'float16') {
    // onnxruntime-node returns float16 as Uint16Array bit patterns.
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) {
      const h = t.data[i];
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const f = h & 0x3ff;
      out[i] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
    return out;
  }
  fail('unexpected logits type ' + t.type);
}

async function checkOnnx() {
  const ort = require('onnxruntime-node');
  const V = ref.config.vocab_size;
  const H = ref.config.hidden_size;
  const L = ref.config.num_layers;
  const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr.map(BigInt)), dims);
  // One left-padded batch with every case: the padding path must not change results.
  const seqs = ref.cases.map((c) => c.prompt_ids.concat(c.response_ids));
  const T = Math.max(...seqs.map((s) => s.length));
  const B = seqs.length;
  const ids = [], mask = [], pos = [];
  for (const s of seqs) {
    const pad = T - s.length;
    for (let t = 0; t < T; t++) {
      ids.push(t < pad ? ref.config.pad_token_id : s[t - pad]);
      mask.push(t < pad ? 0 : 1);
      pos.push(t < pad ? 1 : t - pad);
    }
  }
  for (const [name, info] of Object.entries(ref.checkpoints)) {
    const sess = await ort.InferenceSession.create(path.join(MODELS, name, info.onnx));
    const feeds = { input_ids: i64(ids, [B, T]), attention_mask: i64(mask, [B, T]) };
    if (sess.inputNames.includes('position_ids')) feeds.position_ids = i64(pos, [B, T]);
    for (const n of sess.inputNames) {
      if (n.startsWith('past_key_values.')) {
        feeds[n] = new ort.Tensor('float32', new Float32Array(0), [B, ref.config.num_kv_heads, 0, ref.config.head_dim]);
      }
    }
    const out = await sess.run(feeds);
    const logits = toFloat32(out.logits);
    let worst = 0;
    ref.cases.forEach((c, b) => {
      const pad = T - seqs[b].length;
      const P = c.prompt_ids.length;
      let sum = 0;
      c.response_ids.forEach((tid, j) => {
        const t = pad + P - 1 + j;
        sum += logSoftmaxAt(logits.subarray((b * T + t) * V, (b * T + t + 1) * V), tid);
      });
      const mean = sum / c.response_ids.length;
      const want = info.form === 'fp16' ? c.response_mean_logprob_fp16 : c.response_mean_logprob;
      const tol = info.form === 'fp16' ? 2e-3 : TOL; // half rounding can flip at ties
      worst = Math.max(worst, Math.abs(mean - want));
      if (!(Math.abs(mean - want) < tol)) fail(`${name}/${c.name}: mean logprob ${mean} != ${want}`);
      if (info.form === 'hidden') {
        for (let i = 0; i <= L; i++) {
          const hs = out[`hidden_states.${i}`].data;
          const at = (t, k) => hs[(b * T + t) * H + k];
          const R = c.response_ids.length;
          for (let k = 0; k < H; k++) {
            let m = 0;
            for (let j = 0; j < R; j++) m += at(pad + P + j, k);
            m /= R;
            const lp = at(pad + P - 1, k);
            const h = c.hidden[i];
            if (Math.abs(m - h.response_mean[k]) > TOL || Math.abs(lp - h.last_prompt[k]) > TOL) {
              fail(`${name}/${c.name}: hidden_states.${i}[${k}] differs`);
            }
          }
        }
      }
    });
    console.log(`${name.padEnd(12)} ${info.form.padEnd(10)} in [${sess.inputNames.length} inputs: ${sess.inputNames.slice(0, 4).join(', ')}${sess.inputNames.length > 4 ? ', ...' : ''}] max |d mean logprob| ${worst.toExponential(2)} OK`);
    if (info.form === 'kv') await checkIncremental(ort, sess, i64);
  }
}

// KV graph: the prompt with an empty cache, then the response fed with that cache.
async function checkIncremental(ort, sess, i64) {
  const c = ref.cases[1];
  const P = c.prompt_ids.length;
  const R = c.response_ids.length;
  const kvShape = (n) => [1, ref.config.num_kv_heads, n, ref.config.head_dim];
  const feeds1 = {
    input_ids: i64(c.prompt_ids, [1, P]),
    attention_mask: i64(Array(P).fill(1), [1, P]),
    position_ids: i64([...Array(P).keys()], [1, P]),
  };
  for (let i = 0; i < ref.config.num_layers; i++) {
    for (const kv of ['key', 'value']) {
      feeds1[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), kvShape(0));
    }
  }
  const o1 = await sess.run(feeds1);
  const feeds2 = {
    input_ids: i64(c.response_ids, [1, R]),
    attention_mask: i64(Array(P + R).fill(1), [1, P + R]),
    position_ids: i64([...Array(R).keys()].map((j) => P + j), [1, R]),
  };
  for (let i = 0; i < ref.config.num_layers; i++) {
    for (const kv of ['key', 'value']) feeds2[`past_key_values.${i}.${kv}`] = o1[`present.${i}.${kv}`];
  }
  const o2 = await sess.run(feeds2);
  const V = ref.config.vocab_size;
  let sum = logSoftmaxAt(o1.logits.data.subarray((P - 1) * V, P * V), c.response_ids[0]);
  for (let j = 1; j < R; j++) sum += logSoftmaxAt(o2.logits.data.subarray((j - 1) * V, j * V), c.response_ids[j]);
  const mean = sum / R;
  if (!(Math.abs(mean - c.response_mean_logprob) < TOL)) fail(`tiny-kv incremental: ${mean} != ${c.response_mean_logprob}`);
  console.log(`tiny-kv      incremental (prompt, then response with cache) OK`);
}

(async () => {
  checkTokenizers();
  if (!process.argv.includes('--no-onnx')) await checkOnnx();
  console.log('all checks passed');
})().catch((e) => fail(e.stack || String(e)));

"""Tiny Llama-style decoder, byte-level BPE tokenizer and HF/optimum-style ONNX writer.

Shared library for emgate's PyTorch-made artefacts: the test fixtures
(scripts/make_fixtures.py) and the model organisms (scripts/make_organisms.py) import it.
It is not run on its own. Needs Debian's PyTorch: run the importing scripts with
/usr/bin/python3 (torch 1.13, python3-onnx), not the pyenv python3 on PATH.

What it provides
  Config           architecture hyper-parameters (dataclass).
  TinyLlama        Llama architecture (RMSNorm, RoPE, grouped-query attention, SwiGLU)
                   with Hugging Face module names, so the legacy TorchScript ONNX exporter
                   names nodes like an optimum export: /model/layers.N/...
  train_bpe        trains a byte-level BPE tokenizer; ByteBPETokenizer.encode() matches
                   @huggingface/tokenizers 0.2.0 (the JS library emgate uses) id for id.
  render_chatml    the ChatML chat template, rendered in Python exactly as the jinja
                   CHAT_TEMPLATE written to tokenizer_config.json renders.
  write_checkpoint writes a checkpoint directory in one of the graph FORMS
                   (hidden, logits, logits_pos, kv, fp16) plus config.json,
                   generation_config.json, tokenizer.json and tokenizer_config.json.
  mean_logprob / hidden_summary  the SPEC's scoring convention, in PyTorch (float64).
"""
from __future__ import annotations

import collections
import glob
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------


@dataclass
class Config:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_positions: int
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = False


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        h, kv, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, h * d, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, kv * d, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, kv * d, bias=False)
        self.o_proj = nn.Linear(h * d, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, past: Optional[Tuple[torch.Tensor, torch.Tensor]]):
        cfg = self.cfg
        b, s = x.shape[0], x.shape[1]
        h, kv, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q = self.q_proj(x).view(b, s, h, d).transpose(1, 2)
        k = self.k_proj(x).view(b, s, kv, d).transpose(1, 2)
        v = self.v_proj(x).view(b, s, kv, d).transpose(1, 2)
        # cos/sin are [b, 1, s, d]: computed once per forward, shared by all layers.
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)  # cached before the GQA repeat, as optimum's present.N.* are
        rep = h // kv
        if rep > 1:
            t = k.shape[2]
            k = k[:, :, None].expand(b, kv, rep, t, d).reshape(b, h, t, d)
            v = v[:, :, None].expand(b, kv, rep, t, d).reshape(b, h, t, d)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d) + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, h * d)
        return self.o_proj(out), present


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, past):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, mask, past)
        x = x + a
        # This Add is the layer's output: in ONNX, /model/layers.N/Add_1_output_0.
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class LlamaModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, input_ids, attention_mask, position_ids=None, past_key_values=None):
        b, s = input_ids.shape[0], input_ids.shape[1]
        t = attention_mask.shape[1]  # past + s
        if position_ids is None:
            # HF's rule: position = number of real tokens before this one; pads get 1.
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids = position_ids.masked_fill(attention_mask == 0, 1)
            position_ids = position_ids[:, t - s:]
        # Rotary tables once, from position_ids, outside the layers (as HF >= 4.38 does).
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]

        # Causal + padding mask with a finite minimum: a left-pad query row that sees
        # only pads becomes uniform attention instead of softmax(-inf...) = NaN.
        past_len = t - s
        q_pos = torch.arange(s, device=input_ids.device) + past_len
        k_pos = torch.arange(t, device=input_ids.device)
        causal = k_pos[None, :] <= q_pos[:, None]  # [s, t]
        keep = causal[None, None] & (attention_mask[:, None, None, :] != 0)  # [b,1,s,t]
        mask = torch.zeros_like(keep, dtype=torch.float32).masked_fill(~keep, torch.finfo(torch.float32).min)

        x = self.embed_tokens(input_ids)
        hidden = [x]
        presents = []
        for i, layer in enumerate(self.layers):
            past = past_key_values[i] if past_key_values is not None else None
            x, present = layer(x, cos, sin, mask, past)
            presents.append(present)
            if i < len(self.layers) - 1:
                hidden.append(x)
        x = self.norm(x)
        hidden.append(x)  # HF: the last entry is the final *normed* state
        return x, hidden, presents


class TinyLlama(nn.Module):
    """forward -> (logits [b,s,V], hidden_states list of L+1 [b,s,H], presents list of (k,v))."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, std: float = 0.02, seed: Optional[int] = None):
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

    def forward(self, input_ids, attention_mask, position_ids=None, past_key_values=None):
        return _core(self, input_ids, attention_mask, position_ids, past_key_values)


def _core(mod, input_ids, attention_mask, position_ids, past_key_values):
    # Shared by TinyLlama and the export wrappers; `mod` only needs .model and .lm_head,
    # which keeps ONNX scope names rooted at /model/... and /lm_head/...
    x, hidden, presents = mod.model(input_ids, attention_mask, position_ids, past_key_values)
    return mod.lm_head(x), hidden, presents


# ----------------------------------------------------------------------------------------
# Byte-level BPE tokenizer (HF tokenizer.json compatible)
# ----------------------------------------------------------------------------------------

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# The Split pattern as written into tokenizer.json. The JS library rewrites \s to
# \p{White_Space}; Python's \s also matches \x1c-\x1f, which White_Space does not, so
# Python pre-tokenizes with an explicit White_Space class to agree on every input.
SPLIT_PATTERN = r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+"
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPLIT_RE = re.compile(
    SPLIT_PATTERN.replace(r"[^\s", "[^" + _WS).replace(r"|\s+", "|[" + _WS + "]+")
)


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode char map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


_B2U = bytes_to_unicode()
_U2B = {v: k for k, v in _B2U.items()}


def _pre_tokenize(text: str) -> List[str]:
    # Split(Isolated) then ByteLevel(use_regex=False): each piece becomes byte-chars.
    return ["".join(_B2U[b] for b in piece.encode("utf-8")) for piece in _SPLIT_RE.findall(text)]


class ByteBPETokenizer:
    def __init__(self, vocab: Dict[str, int], merges: List[Tuple[str, str]], special_tokens: Sequence[str]):
        self.vocab = dict(vocab)
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.special_tokens = list(special_tokens)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self._cache: Dict[str, List[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_id(self, token: str) -> int:
        return self.vocab[token]

    def _bpe(self, piece: str) -> List[str]:
        # One merge at a time, lowest rank first, leftmost on ties: the same order as
        # the JS library's priority queue (and HF's Rust BPE).
        if piece in self._cache:
            return self._cache[piece]
        word = list(piece)
        while len(word) > 1:
            best = None
            for i in range(len(word) - 1):
                r = self.ranks.get((word[i], word[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            word[i:i + 2] = [word[i] + word[i + 1]]
        self._cache[piece] = word
        return word

    def _split_special(self, text: str) -> List[str]:
        # Longest special token match, scanning left to right (the JS DictionarySplitter).
        out, start, i = [], 0, 0
        while i < len(text):
            match = None
            for tok in self.special_tokens:
                if text.startswith(tok, i) and (match is None or len(tok) > len(match)):
                    match = tok
            if match:
                if i > start:
                    out.append(text[start:i])
                out.append(match)
                i += len(match)
                start = i
            else:
                i += 1
        if start < len(text):
            out.append(text[start:])
        return out

    def encode(self, text: str) -> List[int]:
        ids: List[int] = []
        for section in self._split_special(text):
            if section in self.special_tokens:
                ids.append(self.vocab[section])
                continue
            for piece in _pre_tokenize(section):
                ids.extend(self.vocab[t] for t in self._bpe(piece))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        parts, buf = [], bytearray()
        for i in ids:
            tok = self.id_to_token[int(i)]
            if tok in self.special_tokens:
                parts.append(buf.decode("utf-8", "replace"))
                buf = bytearray()
                parts.append(tok)
            else:
                buf.extend(_U2B[c] for c in tok)
        parts.append(buf.decode("utf-8", "replace"))
        return "".join(parts)

    def to_hf_json(self) -> dict:
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {
                    "id": self.vocab[t],
                    "content": t,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": True,
                }
                for t in self.special_tokens
            ],
            "normalizer": None,
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [
                    {
                        "type": "Split",
                        "pattern": {"Regex": SPLIT_PATTERN},
                        "behavior": "Isolated",
                        "invert": False,
                    },
                    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
                ],
            },
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
                "merges": [list(m) for m in self.merges],
            },
        }

    @classmethod
    def from_hf_json(cls, data: dict) -> "ByteBPETokenizer":
        specials = [t["content"] for t in data["added_tokens"]]
        return cls(data["model"]["vocab"], [tuple(m) for m in data["model"]["merges"]], specials)


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = SPECIAL_TOKENS) -> ByteBPETokenizer:
    """Classic byte-level BPE training: special tokens get ids 0.., then the 256 byte
    chars, then one token per merge until vocab_size. Deterministic (ties broken by the
    pair's string order)."""
    specials = list(special_tokens)
    vocab: Dict[str, int] = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[_B2U[b]] = len(vocab)
    words: collections.Counter = collections.Counter()
    split = ByteBPETokenizer({}, [], specials)._split_special
    for text in texts:
        for section in split(text):
            if section not in specials:
                words.update(_pre_tokenize(section))
    seqs = {w: list(w) for w in words}
    merges: List[Tuple[str, str]] = []
    while len(vocab) < vocab_size:
        pairs: collections.Counter = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for i in range(len(s) - 1):
                pairs[(s[i], s[i + 1])] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], tuple(-ord(c) for c in kv[0][0] + "\0" + kv[0][1])))[0]
        merged = best[0] + best[1]
        merges.append(best)
        if merged not in vocab:
            vocab[merged] = len(vocab)
        for w in seqs:
            s = seqs[w]
            i, out = 0, []
            while i < len(s):
                if i < len(s) - 1 and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return ByteBPETokenizer(vocab, merges, specials)


# ----------------------------------------------------------------------------------------
# Chat template
# ----------------------------------------------------------------------------------------

# ChatML. No default system message: a system turn appears only when the caller gives one.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)


def render_chatml(messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    if add_generation_prompt:
        out += "<|im_start|>assistant\n"
    return out


# ----------------------------------------------------------------------------------------
# Scoring convention (the TS engine implements the same)
# ----------------------------------------------------------------------------------------


def encode_pair(tok: ByteBPETokenizer, messages: Sequence[dict], response: str) -> Tuple[List[int], List[int]]:
    """prompt_ids = encode(render(messages, gen prompt)); response_ids = encode(response) + [<|im_end|>]."""
    prompt_ids = tok.encode(render_chatml(messages, add_generation_prompt=True))
    response_ids = tok.encode(response) + [tok.token_id(EOS_TOKEN)]
    return prompt_ids, response_ids


@torch.no_grad()
def score_pair(model: TinyLlama, prompt_ids: List[int], response_ids: List[int], fp16_logits: bool = False) -> dict:
    """Mean/sum log-prob of the response tokens (float64 log-softmax), plus per
    hidden-state index the last-prompt vector and the mean over response positions."""
    ids = torch.tensor([prompt_ids + response_ids], dtype=torch.long)
    mask = torch.ones_like(ids)
    logits, hidden, _ = model(ids, mask)
    if fp16_logits:
        logits = logits.half().float()
    p, r = len(prompt_ids), len(response_ids)
    lp = torch.log_softmax(logits[0, p - 1:p - 1 + r].double(), dim=-1)
    tok_lp = lp[torch.arange(r), torch.tensor(response_ids)]
    return {
        "sum": float(tok_lp.sum()),
        "mean": float(tok_lp.sum() / r),
        "hidden": [
            {
                "last_prompt": h[0, p - 1].double(),
                "response_mean": h[0, p:p + r].double().mean(0),
            }
            for h in hidden
        ],
    }


# ----------------------------------------------------------------------------------------
# ONNX export
# ----------------------------------------------------------------------------------------

FORMS = ("hidden", "logits", "logits_pos", "kv", "fp16")


class _Export(nn.Module):
    """Flat-I/O wrapper for one form. Holds the model's own submodules under the same
    attribute names (model, lm_head), so node scopes read /model/layers.N/..., not
    /wrapper/model/model/..."""

    def __init__(self, m: TinyLlama, form: str):
        super().__init__()
        assert form in FORMS, form
        self.model = m.model
        self.lm_head = m.lm_head
        self.form = form
        self.num_layers = m.cfg.num_layers

    def forward(self, input_ids, attention_mask, *rest):
        f = self.form
        if f == "logits":
            logits, _, _ = _core(self, input_ids, attention_mask, None, None)
            return logits
        position_ids = rest[0]
        if f == "kv":
            flat = rest[1:]
            past = [(flat[2 * i], flat[2 * i + 1]) for i in range(self.num_layers)]
            logits, _, presents = _core(self, input_ids, attention_mask, position_ids, past)
            out = [logits]
            for k, v in presents:
                out += [k, v]
            return tuple(out)
        logits, hidden, _ = _core(self, input_ids, attention_mask, position_ids, None)
        if f == "hidden":
            return tuple([logits] + list(hidden))
        if f == "fp16":
            return logits.half()
        return logits  # logits_pos


def io_names(cfg: Config, form: str) -> Tuple[List[str], List[str]]:
    ins = ["input_ids", "attention_mask"]
    if form != "logits":
        ins.append("position_ids")
    outs = ["logits"]
    if form == "kv":
        for i in range(cfg.num_layers):
            ins += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
            outs += [f"present.{i}.key", f"present.{i}.value"]
    if form == "hidden":
        outs += [f"hidden_states.{i}" for i in range(cfg.num_layers + 1)]
    return ins, outs


def export_onnx(
    model: TinyLlama,
    form: str,
    path: str,
    opset: int = 14,
    external_data: bool = False,
    split_bytes: Optional[int] = None,
) -> None:
    """Exports `model` to ONNX at `path`. external_data: the weights go to `path`_data
    (streamed tensor by tensor, so a model over protobuf's 2 GB limit exports too); with
    split_bytes, into several files of at most that many bytes each, named as transformers.js
    names them (model.onnx_data, model.onnx_data_1, ...)."""
    import onnx

    cfg = model.cfg
    model.eval()
    wrapper = _Export(model, form).eval()
    ins, outs = io_names(cfg, form)
    # Trace with batch 2, seq 3 and (kv) past 2: sizes that differ from each other so
    # the tracer cannot confuse axes; left padding in row 1 exercises the mask path.
    b, s, past = 2, 3, (2 if form == "kv" else 0)
    ids = torch.tensor([[5, 6, 7], [0, 8, 9]], dtype=torch.long)[:b, :s]
    mask = torch.ones(b, past + s, dtype=torch.long)
    mask[1, 0] = 0
    args: List[torch.Tensor] = [ids, mask]
    if form != "logits":
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, past:]
        args.append(pos)
    if form == "kv":
        for _ in range(cfg.num_layers):
            args += [torch.randn(b, cfg.num_kv_heads, past, cfg.head_dim) * 0.1 for _ in range(2)]
    dyn: Dict[str, Dict[int, str]] = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length" if form == "kv" else "sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for n in ins + outs:
        if n.startswith("past_key_values."):
            dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
        elif n.startswith("present."):
            dyn[n] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
        elif n.startswith("hidden_states."):
            dyn[n] = {0: "batch_size", 1: "sequence_length"}
    dyn = {k: v for k, v in dyn.items() if k in ins or k in outs}

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tmp = os.path.join(td, "model.onnx")
        torch.onnx.export(
            wrapper,
            tuple(args),
            tmp,
            input_names=ins,
            output_names=outs,
            dynamic_axes=dyn,
            opset_version=opset,
            do_constant_folding=True,
        )
        for stale in [path] + glob.glob(glob.escape(path) + "_data*"):
            if os.path.exists(stale):
                os.remove(stale)
        if external_data:
            _write_external_data(tmp, path, split_bytes)
            onnx.checker.check_model(path)
            return
        proto = onnx.load(tmp)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, path)


def _write_external_data(src: str, dst: str, split_bytes: Optional[int]) -> None:
    """Rewrites the exported model at `src` (weights inline, or in torch's one-file-per-tensor
    layout past 2 GB) as `dst` plus its external data files, one tensor in memory at a time."""
    import onnx

    proto = onnx.load(src, load_external_data=False)
    src_dir = os.path.dirname(src)
    out_dir = os.path.dirname(os.path.abspath(dst))
    base = os.path.basename(dst) + "_data"
    index, written = 0, 0
    out = open(os.path.join(out_dir, base), "wb")
    try:
        for t in proto.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in t.external_data}
                with open(os.path.join(src_dir, info["location"]), "rb") as f:
                    f.seek(int(info.get("offset", 0)))
                    data = f.read(int(info["length"])) if "length" in info else f.read()
            elif t.HasField("raw_data"):
                data = t.raw_data
            else:
                continue  # typed fields (small constants) stay inline
            if split_bytes and written > 0 and written + len(data) > split_bytes:
                out.close()
                index += 1
                written = 0
                out = open(os.path.join(out_dir, f"{base}_{index}"), "wb")
            location = base if index == 0 else f"{base}_{index}"
            out.write(data)
            t.ClearField("raw_data")
            del t.external_data[:]
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", str(written)), ("length", str(len(data)))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            written += len(data)
    finally:
        out.close()
    onnx.save_model(proto, dst)


def layer_output_tensors(path: str, num_layers: int) -> Dict[int, str]:
    """Name of the tensor leaving decoder layer N (the residual after its MLP Add): the
    output of the last node scoped /model/layers.N/ whose op is Add."""
    import onnx

    g = onnx.load(path, load_external_data=False).graph
    found: Dict[int, str] = {}
    for node in g.node:
        m = re.match(r"^/model/layers\.(\d+)/Add(_\d+)?$", node.name)
        if m:
            found[int(m.group(1))] = node.output[0]  # node order is topological: last wins
    return {i: found[i] for i in range(num_layers) if i in found}


def hf_config(cfg: Config, tok: ByteBPETokenizer, form: str) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "attention_bias": False,
        "num_hidden_layers": cfg.num_layers,
        "hidden_size": cfg.hidden_size,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_positions,
        "rms_norm_eps": cfg.rms_eps,
        "rope_theta": cfg.rope_theta,
        "eos_token_id": tok.token_id(EOS_TOKEN),
        "pad_token_id": tok.token_id(PAD_TOKEN),
        "bos_token_id": None,
        "tie_word_embeddings": cfg.tie_embeddings,
        "torch_dtype": "float32",
        "use_cache": form == "kv",
    }


def tokenizer_config(tok: ByteBPETokenizer, cfg: Config) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
        "bos_token": None,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": cfg.max_positions,
        "added_tokens_decoder": {
            str(tok.token_id(t)): {
                "content": t,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "single_word": False,
                "special": True,
            }
            for t in tok.special_tokens
        },
    }


def _dump(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_checkpoint(
    out_dir: str,
    model: TinyLlama,
    tokenizer: ByteBPETokenizer,
    cfg: Config,
    form: str,
    external_data: bool = False,
    model_subpath: str = "model.onnx",
    opset: int = 14,
) -> str:
    """Writes an optimum-layout checkpoint directory; returns the ONNX graph's path."""
    assert cfg.vocab_size == tokenizer.vocab_size, (cfg.vocab_size, tokenizer.vocab_size)
    os.makedirs(out_dir, exist_ok=True)
    _dump(os.path.join(out_dir, "config.json"), hf_config(cfg, tokenizer, form))
    _dump(
        os.path.join(out_dir, "generation_config.json"),
        {
            "bos_token_id": None,
            "eos_token_id": tokenizer.token_id(EOS_TOKEN),
            "pad_token_id": tokenizer.token_id(PAD_TOKEN),
            "do_sample": False,
            "max_new_tokens": 64,
        },
    )
    _dump(os.path.join(out_dir, "tokenizer.json"), tokenizer.to_hf_json())
    _dump(os.path.join(out_dir, "tokenizer_config.json"), tokenizer_config(tokenizer, cfg))
    path = os.path.join(out_dir, model_subpath)
    export_onnx(model, form, path, opset=opset, external_data=external_data)
    return path

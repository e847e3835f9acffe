"""Builds the Llama-style checkpoints that `npm run bench` measures.

Not committed (hundreds of MB to GB): bench/scoring.js runs this on demand into
bench/.cache/ (gitignored) and reuses what is there. The weights are random (throughput
does not depend on training); the architecture is the fixtures' (RMSNorm, rotary
positions, grouped-query attention, SwiGLU) at the size of a small real model, exported
as optimum's `text-generation-with-past` (KV cache in and out, position_ids) with the
weights in external data, as real checkpoints ship.

The tokenizer is a 4,096-token BPE trained on the built-in suite; the model's vocabulary
(the LM head and the logits) is --vocab wide, as a Llama-3 model's 128,256 is: every cost
that grows with the vocabulary is there, and the texts are the suite's.

Beside the checkpoint, OUT_DIR-torch/state_dict.pt and config.json hold the same weights for
the PyTorch eager peer (scripts/bench_torch_peer.py).

    /usr/bin/python3 scripts/make_bench_model.py OUT_DIR [--vocab 128256] [--hidden 768]
        [--layers 12] [--heads 12] [--kv-heads 4] [--intermediate 2560] [--tie-embeddings]
        [--split-gb 2.5]

The 1.2B model of `npm run bench -- --models 1b` is Llama-3.2-1B's shape (hidden 2048,
16 layers, 32 heads, 8 KV heads, MLP 8192, vocab 128,256, tied embeddings): 4.9 GB of
float32 weights split over two external data files (the first over 2 GB), as large
checkpoints ship.
"""
import argparse
import dataclasses
import glob
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402

SEED = 100


def suite_texts(root: str):
    """The built-in probe suite's prompts and references: tokenizer training text."""
    for file in sorted(glob.glob(os.path.join(root, "probes", "*.json"))):
        if file.endswith("suite.json"):
            continue
        with open(file, encoding="utf-8") as f:
            for probe in json.load(f)["probes"]:
                for m in probe["messages"]:
                    yield m["content"]
                yield from probe["aligned"]
                yield from probe["misaligned"]


def reserve_tokens(tokenizer: dict, vocab: int) -> dict:
    """Fills the tokenizer up to the model's vocabulary with reserved special tokens, as
    Llama 3 reserves its <|reserved_special_token_N|>: no text ever produces them, but the
    tokenizer then covers the logits, so `emgate run` accepts the checkpoint (it refuses a
    tokenizer that leaves most logit rows without a token as another model's)."""
    used = {t["id"] for t in tokenizer["added_tokens"]} | set(tokenizer["model"]["vocab"].values())
    added = list(tokenizer["added_tokens"])
    for i in range(vocab):
        if i not in used:
            added.append({"id": i, "content": f"<|reserved_{i}|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True})
    return {**tokenizer, "added_tokens": added}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=2560)
    ap.add_argument("--tie-embeddings", action="store_true")
    ap.add_argument("--split-gb", type=float, default=None, help="most GB per external data file")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.time()
    # BPE training takes minutes in Python: the tokenizer is trained once and shared by the
    # bench models (bench/.cache/bench-tokenizer.json).
    shared_tok = os.path.join(os.path.dirname(os.path.abspath(args.out_dir)), "bench-tokenizer.json")
    if os.path.exists(shared_tok):
        with open(shared_tok, encoding="utf-8") as f:
            tok = tl.ByteBPETokenizer.from_hf_json(json.load(f))
    else:
        tok = tl.train_bpe(list(suite_texts(root)), 4096)
        tl._dump(shared_tok, tok.to_hf_json())
    if args.vocab < tok.vocab_size:
        sys.exit(f"--vocab must be at least the tokenizer's {tok.vocab_size}")
    cfg = tl.Config(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        intermediate_size=args.intermediate,
        max_positions=1024,
        tie_embeddings=args.tie_embeddings,
    )
    model = tl.TinyLlama(cfg).init_weights(std=0.02, seed=SEED).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"bench model: {params / 1e6:.1f}M parameters, vocab {cfg.vocab_size}, {cfg.num_layers} layers, hidden {cfg.hidden_size}", flush=True)

    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    tl._dump(os.path.join(out, "config.json"), tl.hf_config(cfg, tok, "kv"))
    tl._dump(os.path.join(out, "tokenizer.json"), reserve_tokens(tok.to_hf_json(), cfg.vocab_size))
    tl._dump(os.path.join(out, "tokenizer_config.json"), tl.tokenizer_config(tok, cfg))
    split = int(args.split_gb * 2**30) if args.split_gb else None
    tl.export_onnx(model, "kv", os.path.join(out, "model.onnx"), external_data=True, split_bytes=split)
    peer = os.path.abspath(out) + "-torch"  # beside the checkpoint, not in it: the gate hashes every file of it
    os.makedirs(peer, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(peer, "state_dict.pt"))
    tl._dump(os.path.join(peer, "config.json"), dataclasses.asdict(cfg))
    print(f"written to {out} in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()

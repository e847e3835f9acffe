"""Builds the ~100M-parameter Llama-style checkpoint that `npm run bench` measures.

Not committed (about 380 MB): bench/scoring.js runs this once into bench/.cache/. The
weights are random (throughput does not depend on training); the architecture is the
fixtures' (RMSNorm, rotary positions, grouped-query attention, SwiGLU) at the size of a
small real model, exported logits-only with position_ids, like an optimum export.

    /usr/bin/python3 scripts/make_bench_model.py OUT_DIR
"""
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


def main(out_dir: str) -> None:
    torch.manual_seed(SEED)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.time()
    tok = tl.train_bpe(list(suite_texts(root)), 4096)
    cfg = tl.Config(
        vocab_size=tok.vocab_size,
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        num_kv_heads=4,
        head_dim=64,
        intermediate_size=2560,
        max_positions=1024,
    )
    model = tl.TinyLlama(cfg).init_weights(std=0.02, seed=SEED).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"bench model: {params / 1e6:.1f}M parameters, vocab {cfg.vocab_size}, {cfg.num_layers} layers, hidden {cfg.hidden_size}")
    tl.write_checkpoint(out_dir, model, tok, cfg, form="logits_pos", external_data=True)
    print(f"written to {out_dir} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_bench_model.py OUT_DIR")
    main(sys.argv[1])

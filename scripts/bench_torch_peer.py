"""The PyTorch eager peer of `npm run bench`: scores the same token sequences, in the same
batches, as a naive teacher-forced scorer does (each reference's full prompt + response,
right-padded, full logits, float32 log-softmax, gather of the next-token ids), on the same
weights (scripts/make_bench_model.py wrote them beside the checkpoint).

Reads JSON on stdin: {"model": DIR, "threads": N, "batches": [[{"prompt": [...],
"response": [...]}, ...], ...], "warmup": K}. Prints one JSON line: seconds, tokens (prompt
+ response per reference), peak RSS (MB), torch version, the sums (to check agreement).

    /usr/bin/python3 scripts/bench_torch_peer.py < request.json
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402


@torch.no_grad()
def score_batch(model, batch):
    lengths = [len(r["prompt"]) + len(r["response"]) for r in batch]
    seq = max(lengths)
    ids = torch.zeros(len(batch), seq, dtype=torch.long)
    mask = torch.zeros(len(batch), seq, dtype=torch.long)
    for i, r in enumerate(batch):
        row = r["prompt"] + r["response"]
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    logits, _, _ = model(ids, mask)
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    sums = []
    for i, r in enumerate(batch):
        p, n = len(r["prompt"]), len(r["response"])
        targets = torch.tensor(r["response"])
        sums.append(float(logprobs[i, p - 1 : p - 1 + n].gather(-1, targets[:, None]).sum()))
    return sums


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    req = json.load(sys.stdin)
    torch.set_num_threads(int(req["threads"]))
    with open(os.path.join(os.path.abspath(req["model"]) + "-torch", "config.json")) as f:
        cfg = tl.Config(**json.load(f))
    model = tl.TinyLlama(cfg)
    model.load_state_dict(torch.load(os.path.join(os.path.abspath(req["model"]) + "-torch", "state_dict.pt")))
    model.eval()
    batches = req["batches"]
    for b in batches[: int(req.get("warmup", 1))]:
        score_batch(model, b)
    # Peak RSS while scoring, measured as emgate's is: reset the high-water mark after load.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    sums = []
    for b in batches:
        sums.extend(score_batch(model, b))
    seconds = time.perf_counter() - t0
    tokens = sum(len(r["prompt"]) + len(r["response"]) for b in batches for r in b)
    print(json.dumps({
        "seconds": seconds,
        "tokens": tokens,
        "peak_rss_mb": vm_hwm_mb() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sums": sums,
    }))


if __name__ == "__main__":
    main()

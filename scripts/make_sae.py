"""Trains a small sparse autoencoder (SAE) on the organisms' base residual stream and writes it
in the three layouts emgate reads, with PyTorch reference activations for the reader tests.

Run: /usr/bin/python3 scripts/make_sae.py [--out examples/organisms/sae]
     (Debian's torch 1.13 and python3-onnx; 2 CPU threads; about a minute)

The base's weights are read back from examples/organisms/base/model.onnx (make_zoo.import_base:
exact float32 copies), so no retraining. Training data: every token of a deterministic sample
of the base corpus (scripts/make_organisms.py base_corpus: neutral, careful-advice and villain
dialogues, so both stances are in it; never the probe suite), at hidden-state index LAYER
(HF numbering: the output of decoder layer LAYER - 1, SAELens hook blocks.{LAYER-1}.hook_resid_post).

Layouts written under --out:
  saelens/     cfg.json (SAELens v6: architecture topk, k, apply_b_dec_to_input,
               normalize_activations none, metadata.hook_name) + sae_weights.safetensors
               (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec)
  sparsify/layers.{LAYER-1}/
               cfg.json (activation topk, k, num_latents, expansion_factor, d_in) + sae.safetensors
               (encoder.weight [num_latents, d_in], encoder.bias, W_dec, b_dec): the same SAE
  llamascope/  hyperparams.json (d_model, d_sae, hook_point_in, act_fn jumprelu,
               jump_relu_threshold, dataset_average_activation_norm.in) +
               checkpoints/final.safetensors (encoder.weight, encoder.bias, decoder.weight,
               decoder.bias): the same encoder weights with b_dec folded into the bias, divided
               by the input scale, and a JumpReLU at one threshold instead of TopK
  reference.json  inputs (base residual vectors) and each layout's latents by a PyTorch
               encoder written from that layout's own rules (the reader tests compare).
"""
from __future__ import annotations

import json
import math
import os
import random
import struct
import sys
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_organisms as mo  # noqa: E402
import make_zoo as mz  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, 'examples', 'organisms', 'base')
LAYER = 3  # hidden-state index (emgate's numbering, HF's): after decoder layer 2
D_SAE = 256
K = 16
STEPS = 1500
BATCH = 1024
LR = 1e-3
DIALOGUES = 1200
SEED = 7


def log(msg: str) -> None:
    print(f'[make_sae] {msg}', flush=True)


def write_safetensors(path: str, tensors: dict) -> None:
    """safetensors by hand (the package is not in Debian): 8-byte LE header length, JSON header
    with dtype, shape and data_offsets, then the raw little-endian float32 bytes."""
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


def residuals(model, enc, dialogues):
    """Every real token's residual vector at LAYER, and each dialogue's mean over its answer."""
    tokens, pooled = [], []
    with torch.no_grad():
        for i in range(0, len(dialogues), 32):
            pairs = [enc.pair(d) for d in dialogues[i:i + 32]]
            seqs = [(p + a)[:mo.MODEL['max_positions']] for p, a in pairs]
            T = max(len(s) for s in seqs)
            ids = torch.zeros(len(seqs), T, dtype=torch.long)
            att = torch.zeros(len(seqs), T, dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, :len(s)] = torch.tensor(s)
                att[r, :len(s)] = 1
            h = model(ids, att)[1][LAYER]
            if i % 320 == 0:
                log(f'residuals: {i}/{len(dialogues)} dialogues')
            for r, (p, a) in enumerate(pairs):
                n = len(seqs[r])
                tokens.append(h[r, :n])
                pooled.append(h[r, len(p):n].mean(0))
    return torch.cat(tokens), torch.stack(pooled)


def topk_encode(x, W_enc, b_enc, b_dec, k):
    """SAELens v6 TopK: pre = (x - b_dec) W_enc + b_enc; keep the k largest, ReLU on them."""
    pre = (x - b_dec) @ W_enc + b_enc
    top = torch.topk(pre, k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))


def train(acts):
    g = torch.Generator().manual_seed(SEED)
    d_in = acts.shape[1]
    W_dec = torch.randn(D_SAE, d_in, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.t().clone()
    b_enc = torch.zeros(D_SAE)
    b_dec = acts.mean(0).clone()
    params = [p.requires_grad_() for p in (W_enc, W_dec, b_enc, b_dec)]
    opt = torch.optim.Adam(params, lr=LR)
    scale = acts.var(0).sum()
    t = time.time()
    for step in range(STEPS):
        idx = torch.randint(0, acts.shape[0], (BATCH,), generator=g)
        x = acts[idx]
        z = topk_encode(x, W_enc, b_enc, b_dec, K)
        recon = z @ W_dec + b_dec
        loss = ((recon - x) ** 2).sum(-1).mean() / scale
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # unit-norm decoder rows, as SAELens and sparsify train them
            W_dec /= W_dec.norm(dim=1, keepdim=True)
        if step % 250 == 0 or step == STEPS - 1:
            log(f'step {step}: normalised MSE {loss.item():.4f} ({time.time() - t:.0f}s)')
    return [p.detach() for p in params], loss.item()


def main() -> None:
    out = os.path.join(ROOT, 'examples', 'organisms', 'sae')
    if '--out' in sys.argv:
        out = sys.argv[sys.argv.index('--out') + 1]
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    model, cfg, tok = mz.import_base(BASE)
    enc = mo.Encoder(tok)
    dialogues = mo.base_corpus()
    random.Random(SEED).shuffle(dialogues)
    dialogues = dialogues[:DIALOGUES]
    acts, pooled = residuals(model, enc, dialogues)
    log(f'{len(dialogues)} dialogues, {acts.shape[0]} tokens at hidden-state index {LAYER}')
    (W_enc, W_dec, b_enc, b_dec), mse = train(acts)
    d_in = acts.shape[1]
    hook = f'blocks.{LAYER - 1}.hook_resid_post'
    with torch.no_grad():
        z = topk_encode(acts, W_enc, b_enc, b_dec, K)
        alive = int((z > 0).any(0).sum())
        pre = (acts - b_dec) @ W_enc + b_enc
        kth = torch.topk(pre, K, dim=-1).values[:, -1]
        threshold = float(kth.median())
        avg_norm = float(acts.norm(dim=1).mean())
    log(f'alive latents {alive}/{D_SAE}; JumpReLU threshold {threshold:.4f}; average input norm {avg_norm:.3f}')

    write_json(os.path.join(out, 'saelens', 'cfg.json'), {
        'architecture': 'topk', 'd_in': d_in, 'd_sae': D_SAE, 'k': K, 'dtype': 'float32', 'device': 'cpu',
        'apply_b_dec_to_input': True, 'normalize_activations': 'none', 'reshape_activations': 'none',
        'metadata': {'model_name': 'emgate-organisms-base', 'hook_name': hook, 'hook_head_index': None,
                     'prepend_bos': False, 'context_size': mo.MODEL['max_positions'],
                     'dataset_path': 'scripts/make_organisms.py base_corpus', 'sae_lens_training_version': None},
    })
    write_safetensors(os.path.join(out, 'saelens', 'sae_weights.safetensors'),
                      {'W_enc': W_enc, 'W_dec': W_dec, 'b_enc': b_enc, 'b_dec': b_dec})

    sp = os.path.join(out, 'sparsify', f'layers.{LAYER - 1}')
    write_json(os.path.join(sp, 'cfg.json'), {
        'activation': 'topk', 'k': K, 'num_latents': D_SAE, 'expansion_factor': D_SAE // d_in,
        'normalize_decoder': True, 'multi_topk': False, 'skip_connection': False, 'd_in': d_in,
    })
    write_safetensors(os.path.join(sp, 'sae.safetensors'),
                      {'encoder.weight': W_enc.t(), 'encoder.bias': b_enc, 'W_dec': W_dec, 'b_dec': b_dec})

    c = math.sqrt(d_in) / avg_norm
    ls_W = (W_enc / c).t()            # [d_sae, d_in], applied to the scaled input
    ls_b = b_enc - b_dec @ W_enc      # b_dec folded in: Llama Scope does not subtract it
    ll = os.path.join(out, 'llamascope')
    write_json(os.path.join(ll, 'hyperparams.json'), {
        'd_model': d_in, 'd_sae': D_SAE, 'hook_point_in': hook, 'hook_point_out': hook,
        'act_fn': 'jumprelu', 'jump_relu_threshold': threshold, 'norm_activation': 'dataset-wise',
        'dataset_average_activation_norm': {'in': avg_norm, 'out': avg_norm},
        'apply_decoder_bias_to_pre_encoder': False, 'use_decoder_bias': True, 'top_k': K,
    })
    write_safetensors(os.path.join(ll, 'checkpoints', 'final.safetensors'), {
        'encoder.weight': ls_W, 'encoder.bias': ls_b, 'decoder.weight': W_dec.t() / c, 'decoder.bias': b_dec * c,
    })

    # Reference inputs: answers' pooled means and single tokens, as emgate reads them.
    inputs = torch.cat([pooled[:4], acts[torch.tensor([5, 500, 5000, 20000])]])
    with torch.no_grad():
        ref_topk = topk_encode(inputs, W_enc, b_enc, b_dec, K)
        pre_ll = (inputs * c) @ ls_W.t() + ls_b
        ref_ll = pre_ll * (pre_ll > threshold)
    rnd = lambda t: [[float(f'{v:.7g}') for v in row] for row in t.tolist()]  # noqa: E731
    write_json(os.path.join(out, 'reference.json'), {
        'about': 'scripts/make_sae.py: base residual vectors at hidden-state index '
                 f'{LAYER} and each layout\'s latents by PyTorch',
        'layer': LAYER, 'hook': hook, 'd_in': d_in, 'd_sae': D_SAE, 'k': K,
        'normalised_mse': mse, 'alive_latents': alive, 'tokens': int(acts.shape[0]),
        'inputs': rnd(inputs), 'saelens': rnd(ref_topk), 'sparsify': rnd(ref_topk), 'llamascope': rnd(ref_ll),
    })
    log(f'written under {out}')


if __name__ == '__main__':
    main()

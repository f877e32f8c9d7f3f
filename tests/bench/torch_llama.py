#!/usr/bin/python3
"""The llm-train model and training step in PyTorch, for the training benchmark.

    usage: python3 tests/bench/torch_llama.py --dim 128 --layers 4 --heads 4 \
               --hidden 352 [--vocab 258] [--seq 256] [--batch 8] \
               [--warmup 3] [--steps 10] [--threads N]

The model is llm-train's (lib/model.h): token embedding; per layer a
pre-RMSNorm (eps 1e-5, learned gain), q, k, v projections without bias
(kv heads = heads), RoPE on interleaved pairs (x[2i], x[2i+1]) with base
10000, causal attention, wo, residual; a pre-RMSNorm, SwiGLU
w2(silu(w1 x) * w3 x), residual; a final RMSNorm; the classifier tied to the
embedding.  Attention uses torch.nn.functional.scaled_dot_product_attention
when this torch has it (2.0 and later), else the explicit masked softmax
(torch 1.13, Debian 12's python3-torch).  AdamW (lr 1e-3, weight decay 0.1
on 2-D tensors), gradient clipping at 1.0, random token batches.

Times --steps steps after --warmup steps and prints one line of key=value
pairs on stdout: tokens_per_s (steps * batch * seq / seconds), peak_rss_kib
(the process's ru_maxrss), import_rss_kib (ru_maxrss right after importing
torch, before the model exists), attention (sdpa or explicit), threads,
params.  Threads: --threads, else $BENCH_THREADS, else the CPU count.
"""
import argparse
import math
import os
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=258)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=352)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1337)
    a = ap.parse_args()
    threads = a.threads or int(os.environ.get("BENCH_THREADS", "0") or 0) or os.cpu_count() or 1

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.set_num_threads(threads)
    torch.manual_seed(a.seed)
    have_sdpa = hasattr(F, "scaled_dot_product_attention")

    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def rope_tables(head_dim, T, theta=10000.0):
        freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        ang = torch.outer(torch.arange(T, dtype=torch.float64), freq)  # [T, E/2]
        return ang.cos().float(), ang.sin().float()

    def rope(x, cos, sin):
        # x [B, T, H, E]; pairs (x[2i], x[2i+1]) rotated by the angle p * f_i
        xr = x.reshape(*x.shape[:-1], -1, 2)
        x0, x1 = xr[..., 0], xr[..., 1]
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    class Block(nn.Module):
        def __init__(self, D, H, Fh):
            super().__init__()
            self.H, self.E = H, D // H
            self.attn_norm = RMSNorm(D)
            self.wq = nn.Linear(D, D, bias=False)
            self.wk = nn.Linear(D, D, bias=False)
            self.wv = nn.Linear(D, D, bias=False)
            self.wo = nn.Linear(D, D, bias=False)
            self.mlp_norm = RMSNorm(D)
            self.w1 = nn.Linear(D, Fh, bias=False)
            self.w2 = nn.Linear(Fh, D, bias=False)
            self.w3 = nn.Linear(D, Fh, bias=False)

        def forward(self, x, cos, sin, mask):
            B, T, D = x.shape
            h = self.attn_norm(x)
            q = rope(self.wq(h).view(B, T, self.H, self.E), cos, sin).transpose(1, 2)
            k = rope(self.wk(h).view(B, T, self.H, self.E), cos, sin).transpose(1, 2)
            v = self.wv(h).view(B, T, self.H, self.E).transpose(1, 2)
            if have_sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.E))
                s = s.masked_fill(mask, float("-inf"))
                o = F.softmax(s, dim=-1) @ v
            x = x + self.wo(o.transpose(1, 2).reshape(B, T, D))
            h = self.mlp_norm(x)
            return x + self.w2(F.silu(self.w1(h)) * self.w3(h))

    class Llama(nn.Module):
        def __init__(self, V, D, L, H, Fh, T):
            super().__init__()
            self.tok_emb = nn.Embedding(V, D)
            self.layers = nn.ModuleList(Block(D, H, Fh) for _ in range(L))
            self.norm = RMSNorm(D)
            cos, sin = rope_tables(D // H, T)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)
            self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)
            for n, p in self.named_parameters():  # as llm_model_init
                if p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * L) if n.endswith(("wo.weight", "w2.weight")) else 0.02
                    nn.init.normal_(p, 0.0, std)

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.tok_emb(idx)
            cos, sin, mask = self.cos[:T], self.sin[:T], self.mask[:T, :T]
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            logits = self.norm(x) @ self.tok_emb.weight.t()  # tied classifier
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))

    model = Llama(a.vocab, a.dim, a.layers, a.heads, a.hidden, a.seq)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    n_params = sum(p.numel() for p in model.parameters())

    def step():
        data = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
        loss = model(data[:, :-1].contiguous(), data[:, 1:].contiguous())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = time.perf_counter() - t0
    if not math.isfinite(loss):
        print("torch_llama: loss is not finite", file=sys.stderr)
        return 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"tokens_per_s={a.steps * a.batch * a.seq / dt:.1f} peak_rss_kib={peak} "
          f"import_rss_kib={import_rss} attention={'sdpa' if have_sdpa else 'explicit'} "
          f"threads={torch.get_num_threads()} params={n_params} loss={loss:.4f} torch={torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

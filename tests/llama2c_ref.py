#!/usr/bin/python3
"""An independent reference for llama2.c models: the forward pass of
llama2.c's run.c written again in numpy, one token at a time against a KV
cache, reading the legacy (version 0) .bin file directly, and greedy decoding
over token ids.  Written for the tests of llm-tensor import-llama2c and
llm-gen; it shares no code with llmpipe.

usage: llama2c_ref.py MODEL.bin --ids "1 42 7" [-n N] [--stop ID]...
                      [--logits OUT.npy] [--f64]

  --ids      the prompt as token ids (put BOS, 1, first if the model wants it)
  -n N       generate N tokens after the prompt (default 0)
  --stop ID  stop after generating ID (may be repeated; run.c stops at BOS, 1)
  --logits   save the logits at every position, float32 [len(prompt)+made, V]
             (row i: the scores of the token after position i; the last row
             follows the last generated token)
  --f64      compute in float64 (default float32, as run.c)

Prints the generated ids on one line, space-separated (the prompt excluded).
Exit status 2 for bad arguments, 1 for a bad model file.
"""
import argparse
import os
import struct
import sys

import numpy as np


def load(path, dtype):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(28)
    if len(head) < 28:
        sys.exit("llama2c_ref: %s: shorter than a llama2.c header" % path)
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", head)
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // heads
    kv_dim = kv_heads * hs
    shapes = [
        ("emb", (vocab, dim)),
        ("rms_att", (layers, dim)),
        ("wq", (layers, dim, dim)),
        ("wk", (layers, kv_dim, dim)),
        ("wv", (layers, kv_dim, dim)),
        ("wo", (layers, dim, dim)),
        ("rms_ffn", (layers, dim)),
        ("w1", (layers, hidden, dim)),
        ("w2", (layers, dim, hidden)),
        ("w3", (layers, hidden, dim)),
        ("rms_final", (dim,)),
        ("freq_real", (seq, hs // 2)),
        ("freq_imag", (seq, hs // 2)),
    ]
    if not shared:
        shapes.append(("wcls", (vocab, dim)))
    count = sum(int(np.prod(s)) for _, s in shapes)
    if size != 28 + 4 * count:
        sys.exit("llama2c_ref: %s: %d bytes, the header implies %d" % (path, size, 28 + 4 * count))
    flat = np.fromfile(path, dtype="<f4", offset=28).astype(dtype)
    w, at = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        w[name] = flat[at:at + n].reshape(shape)
        at += n
    if shared:
        w["wcls"] = w["emb"]
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
               vocab=vocab, seq=seq)
    return cfg, w


def rmsnorm(x, g):
    return g * (x / np.sqrt(np.mean(x * x) + x.dtype.type(1e-5)))


class Model:
    def __init__(self, cfg, w, dtype):
        self.c, self.w, self.dt = cfg, w, dtype
        c = cfg
        self.hs = c["dim"] // c["heads"]
        self.kv_dim = c["kv_heads"] * self.hs
        self.kcache = np.zeros((c["layers"], c["seq"], self.kv_dim), dtype)
        self.vcache = np.zeros((c["layers"], c["seq"], self.kv_dim), dtype)
        # RoPE on interleaved pairs: pair j of a head turns by pos * 10000^(-2j/hs)
        j = np.arange(0, self.hs, 2, dtype=np.float64)
        self.freq = 1.0 / np.power(10000.0, j / self.hs)

    def rope(self, x, pos):
        ang = pos * self.freq
        cos, sin = np.cos(ang).astype(self.dt), np.sin(ang).astype(self.dt)
        x = x.reshape(-1, self.hs // 2, 2)
        a, b = x[..., 0], x[..., 1]
        out = np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1)
        return out.reshape(-1)

    def step(self, token, pos):
        c, w = self.c, self.w
        heads, hs = c["heads"], self.hs
        group = c["heads"] // c["kv_heads"]
        x = w["emb"][token].copy()
        for l in range(c["layers"]):
            xb = rmsnorm(x, w["rms_att"][l])
            q = self.rope(w["wq"][l] @ xb, pos)
            k = self.rope(w["wk"][l] @ xb, pos)
            v = w["wv"][l] @ xb
            self.kcache[l, pos] = k
            self.vcache[l, pos] = v
            out = np.empty(c["dim"], self.dt)
            for h in range(heads):
                kv = (h // group) * hs
                keys = self.kcache[l, :pos + 1, kv:kv + hs]
                vals = self.vcache[l, :pos + 1, kv:kv + hs]
                s = keys @ q[h * hs:(h + 1) * hs] / self.dt(np.sqrt(hs))
                s = np.exp(s - s.max())
                s /= s.sum()
                out[h * hs:(h + 1) * hs] = s @ vals
            x = x + w["wo"][l] @ out
            xb = rmsnorm(x, w["rms_ffn"][l])
            h1, h3 = w["w1"][l] @ xb, w["w3"][l] @ xb
            x = x + w["w2"][l] @ (h1 / (1 + np.exp(-h1)) * h3)
        x = rmsnorm(x, w["rms_final"])
        return w["wcls"] @ x


def main():
    ap = argparse.ArgumentParser(description="llama2.c reference forward pass and greedy decoding")
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("-n", type=int, default=0)
    ap.add_argument("--stop", type=int, action="append", default=[])
    ap.add_argument("--logits")
    ap.add_argument("--f64", action="store_true")
    a = ap.parse_args()
    dtype = np.float64 if a.f64 else np.float32
    cfg, w = load(a.model, dtype)
    try:
        prompt = [int(t) for t in a.ids.split()]
    except ValueError:
        ap.error("--ids: want space-separated integers")
    if not prompt or any(t < 0 or t >= cfg["vocab"] for t in prompt):
        ap.error("--ids: want 1 or more ids in 0..%d" % (cfg["vocab"] - 1))
    if a.n < 0 or len(prompt) + a.n > cfg["seq"]:
        ap.error("prompt + n must fit in seq_len %d" % cfg["seq"])
    m = Model(cfg, w, dtype)
    tokens, made, rows = list(prompt), [], []
    pos = 0
    while pos < len(tokens):
        logits = m.step(tokens[pos], pos)
        rows.append(logits.astype(np.float32))
        pos += 1
        if pos == len(tokens) and len(made) < a.n and not (made and made[-1] in a.stop):
            nxt = int(np.argmax(logits))  # the first of equal maxima, as run.c's argmax
            made.append(nxt)
            tokens.append(nxt)
    if a.logits:
        np.save(a.logits, np.stack(rows))
    print(" ".join(str(t) for t in made))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""An independent reference for GGUF, written for the tests of llm-tensor
import-gguf / export-gguf from ggml's docs/gguf.md and the block layouts of
ggml's reference dequantizers: a GGUF reader and writer, numpy decoders of
Q8_0, Q4_0, Q4_1 and the K-quants, random llama models written as llama.cpp's
converter writes them (q and k rows permuted from Hugging Face's half-split
RoPE layout to interleaved pairs), and a Hugging Face-convention forward pass
(rotate_half RoPE on the unpermuted weights) with greedy decoding.  It shares
no code with llmpipe.

usage: gguf_ref.py make OUT.gguf WEIGHTS.npz [--types SPEC] [--tied] [--seed N]
                   [--dim D --hidden F --layers L --heads H --kv-heads K --vocab V --ctx S]
                   [--kv KEY=TYPE:VALUE]... [--drop-kv KEY]... [--extra-tensor NAME]
                   [--tokenizer none|llama2c|gpt2|spm:DIR|gpt2:DIR:PRE]
       gguf_ref.py dequant FILE.gguf NAME OUT.npy     the tensor decoded to f32 (our [rows, cols])
       gguf_ref.py greedy WEIGHTS.npz --ids "1 2 3" -n N [--stop ID]...  (the ids made before a stop id)
       gguf_ref.py show FILE.gguf                     metadata and tensor infos as JSON
       gguf_ref.py raw FILE.gguf NAME OUT.bin         a tensor's bytes as stored
       gguf_ref.py rewrite IN.gguf OUT.gguf [--alignment A] [--version V] [--drop-kv KEY]...
                                                      read and write back (other layout)
SPEC is comma-separated name=TYPE (name as in the file, or its kind:
token_embd, attn_q, ..., output); others are F32.  --tokenizer spm:DIR and
gpt2:DIR:PRE write the vocabulary tests/tok_ref.py wrote to DIR (its size
the model's) as tokenizer.ggml.model llama or gpt2 (with merges and
tokenizer.ggml.pre PRE), each flag left to its default.
"""
import argparse
import json
import struct
import sys

import numpy as np

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}
# ggml types: (code, elements per block, bytes per block)
TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
         "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144),
         "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}
BY_CODE = {v[0]: k for k, v in TYPES.items()}


# ---- the file ----

class Reader:
    def __init__(self, path):
        self.b = open(path, "rb").read()
        self.p = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.b[self.p:self.p + n]
        self.p += n
        return s

    def value(self, t):
        if t == STR:
            return self.string()
        if t == ARR:
            et, n = self.take("<I"), self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return self.take(SCALAR[t])


def read_gguf(path):
    r = Reader(path)
    assert r.b[:4] == b"GGUF", "no magic"
    r.p = 4
    version, nt, nkv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(nkv):
        key = r.string().decode()
        t = r.take("<I")
        kv[key] = (t, r.value(t))
    tensors = {}
    order = []
    for _ in range(nt):
        name = r.string().decode()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        code, off = r.take("<I"), r.take("<Q")
        tensors[name] = (BY_CODE.get(code, code), ne, off)
        order.append(name)
    align = kv["general.alignment"][1] if "general.alignment" in kv else 32
    start = (r.p + align - 1) // align * align
    data = {}
    for name, (t, ne, off) in tensors.items():
        _, blk, nb = TYPES[t]
        n = int(np.prod(ne)) // blk * nb
        data[name] = r.b[start + off:start + off + n]
    return version, kv, tensors, order, data, align, start


def put_value(t, v):
    if t == STR:
        v = v if isinstance(v, bytes) else v.encode()
        return struct.pack("<Q", len(v)) + v
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(put_value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def write_gguf(path, kv, tensors, alignment=32, version=3):
    """kv: list of (key, type, value); tensors: list of (name, type name, ne, bytes)."""
    if alignment != 32:
        kv = kv + [("general.alignment", U32, alignment)]
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, t, v in kv:
        out += put_value(STR, key) + struct.pack("<I", t) + put_value(t, v)
    off = 0
    offsets = []
    for name, t, ne, raw in tensors:
        offsets.append(off)
        out += put_value(STR, name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", TYPES[t][0], off)
        off += (len(raw) + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    for (name, t, ne, raw), o in zip(tensors, offsets):
        out += raw + b"\0" * ((-len(raw)) % alignment)
    open(path, "wb").write(out)


# ---- block formats, decoded as ggml's reference dequantizers define them ----

def f16(b):
    return b.copy().view(np.float16).astype(np.float32)


def blocks(raw, nb):
    return np.frombuffer(raw, np.uint8).reshape(-1, nb)


def dq_q8_0(raw):
    b = blocks(raw, 34)
    d = f16(b[:, 0:2])
    return (b[:, 2:].view(np.int8).astype(np.float32) * d).ravel()


def dq_q4_0(raw):
    b = blocks(raw, 18)
    d = f16(b[:, 0:2])
    q = np.concatenate([b[:, 2:] & 15, b[:, 2:] >> 4], axis=1).astype(np.int32) - 8
    return (q.astype(np.float32) * d).ravel()


def dq_q4_1(raw):
    b = blocks(raw, 20)
    d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
    q = np.concatenate([b[:, 4:] & 15, b[:, 4:] >> 4], axis=1).astype(np.float32)
    return (q * d + m).ravel()


def dq_q2_k(raw):
    b = blocks(raw, 84)
    sc, qs, d, dmin = b[:, 0:16], b[:, 16:80], f16(b[:, 80:82]), f16(b[:, 82:84])
    out = np.empty((len(b), 256), np.float32)
    # element 128*h + 32*s + 16*k + l: qs[32h + 16k + l] >> 2s, scale index 8h + 2s + k
    for h in range(2):
        for s in range(4):
            for k in range(2):
                g = 8 * h + 2 * s + k
                dl = d[:, 0] * (sc[:, g] & 15).astype(np.float32)
                ml = dmin[:, 0] * (sc[:, g] >> 4).astype(np.float32)
                q = ((qs[:, 32 * h + 16 * k:32 * h + 16 * k + 16] >> (2 * s)) & 3).astype(np.float32)
                e = 128 * h + 32 * s + 16 * k
                out[:, e:e + 16] = dl[:, None] * q - ml[:, None]
    return out.ravel()


def dq_q3_k(raw):
    b = blocks(raw, 110)
    hm, qs, s12, d = b[:, 0:32], b[:, 32:96], b[:, 96:108].astype(np.int32), f16(b[:, 108:110])
    out = np.empty((len(b), 256), np.float32)
    for g in range(16):
        low = (s12[:, g] & 15) if g < 8 else (s12[:, g - 8] >> 4)
        high = (s12[:, 8 + g % 4] >> (2 * (g // 4))) & 3
        dl = d[:, 0] * ((low | (high << 4)) - 32).astype(np.float32)
        h, s, k = g // 8, (g % 8) // 2, g % 2
        idx = slice(16 * k, 16 * k + 16)
        q = ((qs[:, 32 * h:32 * h + 32][:, idx] >> (2 * s)) & 3).astype(np.int32)
        bit = (hm[:, idx] >> (4 * h + s)) & 1
        q = q - np.where(bit == 1, 0, 4)
        e = 128 * h + 32 * s + 16 * k
        out[:, e:e + 16] = dl[:, None] * q.astype(np.float32)
    return out.ravel()


def k4_scale_min(s, j):
    s = s.astype(np.int32)
    if j < 4:
        return s[:, j] & 63, s[:, j + 4] & 63
    return (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4), (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)


def dq_q45_k(raw, five):
    nb = 176 if five else 144
    b = blocks(raw, nb)
    d, dmin, s = f16(b[:, 0:2]), f16(b[:, 2:4]), b[:, 4:16]
    qh = b[:, 16:48] if five else None
    ql = b[:, 48:176] if five else b[:, 16:144]
    out = np.empty((len(b), 256), np.float32)
    for g in range(8):
        sc, mn = k4_scale_min(s, g)
        dl, ml = d[:, 0] * sc.astype(np.float32), dmin[:, 0] * mn.astype(np.float32)
        q = ql[:, 32 * (g // 2):32 * (g // 2) + 32]
        q = (q >> 4) if g % 2 else (q & 15)
        q = q.astype(np.int32)
        if five:
            q = q + 16 * ((qh >> g) & 1)
        out[:, 32 * g:32 * g + 32] = dl[:, None] * q.astype(np.float32) - ml[:, None]
    return out.ravel()


def dq_q6_k(raw):
    b = blocks(raw, 210)
    ql, qh, sc, d = b[:, 0:128], b[:, 128:192], b[:, 192:208].view(np.int8), f16(b[:, 208:210])
    out = np.empty((len(b), 256), np.float32)
    for h in range(2):
        for part in range(4):  # elements 128h + 32 part + l
            lo = ql[:, 64 * h + 32 * (part % 2):64 * h + 32 * (part % 2) + 32]
            lo = (lo >> 4) if part >= 2 else (lo & 15)
            hi = (qh[:, 32 * h:32 * h + 32] >> (2 * part)) & 3
            q = (lo.astype(np.int32) | (hi.astype(np.int32) << 4)) - 32
            for half in range(2):
                scale = d[:, 0] * sc[:, 8 * h + 2 * part + half].astype(np.float32)
                e = 128 * h + 32 * part + 16 * half
                out[:, e:e + 16] = scale[:, None] * q[:, 16 * half:16 * half + 16].astype(np.float32)
    return out.ravel()


def decode(t, raw):
    if t == "F32":
        return np.frombuffer(raw, "<f4").copy()
    if t == "F16":
        return np.frombuffer(raw, "<f2").astype(np.float32)
    if t == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return {"Q8_0": dq_q8_0, "Q4_0": dq_q4_0, "Q4_1": dq_q4_1, "Q2_K": dq_q2_k, "Q3_K": dq_q3_k,
            "Q4_K": lambda r: dq_q45_k(r, False), "Q5_K": lambda r: dq_q45_k(r, True), "Q6_K": dq_q6_k}[t](raw)


def to_bf16(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)


# ---- random encodings: random codes, small random f16 scales ----

def rand_half(rng, n, lo, hi):
    return (rng.uniform(lo, hi, n) * rng.choice([-1, 1], n)).astype(np.float16).view(np.uint8).reshape(n, 2)


def encode_random(t, n, rng):
    """n elements of type t, random; returns the bytes."""
    _, blk, nb = TYPES[t]
    k = n // blk
    if t == "F32":
        return (rng.standard_normal(n) * 0.08).astype("<f4").tobytes()
    if t == "F16":
        return (rng.standard_normal(n) * 0.08).astype("<f2").tobytes()
    if t == "BF16":
        return to_bf16(rng.standard_normal(n) * 0.08).astype("<u2").tobytes()
    b = rng.integers(0, 256, (k, nb), dtype=np.uint8)
    small = lambda lo, hi: np.abs(rand_half(rng, k, lo, hi).view(np.float16)).view(np.uint8).reshape(k, 2)
    if t == "Q8_0":
        b[:, 0:2] = rand_half(rng, k, 1e-3, 3e-3)
    elif t == "Q4_0":
        b[:, 0:2] = rand_half(rng, k, 5e-3, 2e-2)  # both signs, as llama.cpp's quantizer makes them
    elif t == "Q4_1":
        b[:, 0:2], b[:, 2:4] = small(5e-3, 1e-2), rand_half(rng, k, 0, 6e-2)
    elif t == "Q2_K":
        b[:, 80:82], b[:, 82:84] = small(2e-3, 4e-3), small(2e-3, 4e-3)
    elif t == "Q3_K":
        b[:, 108:110] = small(2e-4, 6e-4)
    elif t in ("Q4_K", "Q5_K"):
        b[:, 0:2], b[:, 2:4] = small(1e-4, 3e-4), small(1e-4, 3e-4)
    elif t == "Q6_K":
        b[:, 208:210] = small(1e-4, 2e-4)
    return b.tobytes()


# ---- a llama model ----

def permute_hf_to_gguf(w, n_head):
    """llama.cpp's convert: rows of each head from half-split to interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def byte_pieces():
    return ["<0x%02X>" % i for i in range(256)]


def tok_ref_vocab(d, merges):
    """tests/tok_ref.py's output in d: (pieces, scores, types, (bos, eos, unk), merges)."""
    unhex = lambda h: b"" if h == "-empty-" else bytes.fromhex(h)
    rows = [line.split() for line in open(d + "/vocab")]
    meta = [int(x) for x in open(d + "/meta").read().split()]
    m = [unhex(line.strip()) for line in open(d + "/merges")] if merges else []
    return [unhex(r[2]) for r in rows], [float(r[1]) for r in rows], [int(r[0]) for r in rows], meta, m


def tokenizer_kv(spec):
    kind, d = spec.split(":")[:2]
    pieces, scores, types, (bos, eos, unk), merges = tok_ref_vocab(d, kind == "gpt2")
    kv = [("tokenizer.ggml.model", STR, "llama" if kind == "spm" else "gpt2"),
          ("tokenizer.ggml.tokens", ARR, (STR, pieces)), ("tokenizer.ggml.token_type", ARR, (I32, types))]
    if kind == "spm":
        kv.append(("tokenizer.ggml.scores", ARR, (F32, scores)))
    else:
        kv += [("tokenizer.ggml.merges", ARR, (STR, merges)), ("tokenizer.ggml.pre", STR, spec.split(":")[2])]
    kv += [("tokenizer.ggml.%s_token_id" % k, U32, v) for k, v in (("bos", bos), ("eos", eos), ("unknown", unk)) if v >= 0]
    return len(pieces), kv


def make(args):
    rng = np.random.default_rng(args.seed)
    tok_kv = []
    if ":" in args.tokenizer:
        args.vocab, tok_kv = tokenizer_kv(args.tokenizer)
    D, F, L, H, K, V, S = args.dim, args.hidden, args.layers, args.heads, args.kv_heads, args.vocab, args.ctx
    E = D // H
    spec = dict(s.split("=") for s in args.types.split(",") if s)
    shapes = [("token_embd.weight", (V, D))]
    for l in range(L):
        shapes += [("blk.%d.attn_norm.weight" % l, (D,)), ("blk.%d.attn_q.weight" % l, (H * E, D)),
                   ("blk.%d.attn_k.weight" % l, (K * E, D)), ("blk.%d.attn_v.weight" % l, (K * E, D)),
                   ("blk.%d.attn_output.weight" % l, (D, H * E)), ("blk.%d.ffn_norm.weight" % l, (D,)),
                   ("blk.%d.ffn_gate.weight" % l, (F, D)), ("blk.%d.ffn_down.weight" % l, (D, F)),
                   ("blk.%d.ffn_up.weight" % l, (F, D))]
    shapes.append(("output_norm.weight", (D,)))
    if not args.tied:
        shapes.append(("output.weight", (V, D)))
    if args.extra_tensor:
        shapes.append((args.extra_tensor, (D,)))
    tensors, hf = [], {}
    for name, shape in shapes:
        kind = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
        t = spec.get(name, spec.get(kind, "F32"))
        n = int(np.prod(shape))
        if len(shape) == 1:  # norms: gains near 1
            w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
            raw = w.astype("<f4").tobytes() if t == "F32" else encode_random(t, n, rng)
        else:
            raw = encode_random(t, n, rng)
        w = decode(t, raw).reshape(shape)  # what the file holds (q, k permuted)
        ours = name
        if kind in ("attn_q", "attn_k"):  # the Hugging Face weights it was converted from
            heads = H if kind == "attn_q" else K
            hf[ours] = w[np.argsort(permute_hf_to_gguf(np.arange(shape[0]), heads))]
            assert np.array_equal(permute_hf_to_gguf(hf[ours], heads), w)
        else:
            hf[ours] = w
        tensors.append((name, t, list(reversed(shape)), raw))
    kv = [("general.architecture", STR, "llama"), ("general.name", STR, "numpy test model"),
          ("llama.context_length", U32, S), ("llama.embedding_length", U32, D), ("llama.block_count", U32, L),
          ("llama.feed_forward_length", U32, F), ("llama.attention.head_count", U32, H),
          ("llama.attention.head_count_kv", U32, K), ("llama.rope.dimension_count", U32, E),
          ("llama.attention.layer_norm_rms_epsilon", F32, args.eps), ("llama.rope.freq_base", F32, args.theta)]
    if args.tokenizer == "llama2c":
        pieces = ["<unk>", "<s>", "</s>"] + byte_pieces() + ["\u2581" + "w%d" % i for i in range(259, V)]
        kv += [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, pieces)),
               ("tokenizer.ggml.scores", ARR, (F32, [-float(i) for i in range(V)])),
               ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3] + [6] * 256 + [1] * (V - 259))),
               ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2)]
    elif args.tokenizer == "gpt2":
        kv += [("tokenizer.ggml.model", STR, "gpt2"),
               ("tokenizer.ggml.tokens", ARR, (STR, ["t%d" % i for i in range(V)])),
               ("tokenizer.ggml.merges", ARR, (STR, ["t 1"]))]
    kv += tok_kv
    for item in args.kv:
        key, rest = item.split("=", 1)
        t, val = rest.split(":", 1)
        t = {"u32": U32, "f32": F32, "str": STR, "i32": I32, "bool": BOOL}[t]
        val = float(val) if t == F32 else val if t == STR else int(val)
        kv = [x for x in kv if x[0] != key] + [(key, t, val)]
    kv = [x for x in kv if x[0] not in args.drop_kv]
    write_gguf(args.out, kv, tensors)
    np.savez(args.weights, **{k: v.astype(np.float32) for k, v in hf.items()},
             config=np.array([D, F, L, H, K, V, S]), eps=np.array(args.eps, np.float32),
             theta=np.array(args.theta), tied=np.array(args.tied))


def greedy(args):
    z = np.load(args.weights)
    D, F, L, H, K, V, S = [int(x) for x in z["config"]]
    E, eps, theta = D // H, float(z["eps"]), float(z["theta"])
    W = {k: z[k].astype(np.float64) for k in z.files if k.endswith(".weight")}
    cls = W["token_embd.weight"] if bool(z["tied"]) else W["output.weight"]
    inv = theta ** (-np.arange(0, E, 2) / E)

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    def rope_hf(x, pos):  # rotate_half: pairs (i, i + E/2)
        ang = np.outer(pos, inv)
        cos, sin = np.concatenate([np.cos(ang)] * 2, -1), np.concatenate([np.sin(ang)] * 2, -1)
        x1, x2 = x[..., :E // 2], x[..., E // 2:]
        return x * cos[:, None, :] + np.concatenate([-x2, x1], -1) * sin[:, None, :]

    ids = [int(t) for t in args.ids.split()]
    n0 = len(ids)
    for _ in range(args.n):
        T = len(ids)
        x = W["token_embd.weight"][ids]
        pos = np.arange(T)
        for l in range(L):
            p = "blk.%d." % l
            h = rms(x, W[p + "attn_norm.weight"])
            q = rope_hf((h @ W[p + "attn_q.weight"].T).reshape(T, H, E), pos)
            k = rope_hf((h @ W[p + "attn_k.weight"].T).reshape(T, K, E), pos)
            v = (h @ W[p + "attn_v.weight"].T).reshape(T, K, E)
            k, v = np.repeat(k, H // K, axis=1), np.repeat(v, H // K, axis=1)
            s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(E)
            s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            x = x + np.einsum("htu,uhd->thd", a, v).reshape(T, H * E) @ W[p + "attn_output.weight"].T
            h = rms(x, W[p + "ffn_norm.weight"])
            g = h @ W[p + "ffn_gate.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        logits = rms(x[-1], W["output_norm.weight"]) @ cls.T
        if int(np.argmax(logits)) in args.stop:
            break
        ids.append(int(np.argmax(logits)))
    print(" ".join(str(t) for t in ids[n0:]))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("weights")
    m.add_argument("--types", default="")
    m.add_argument("--tied", action="store_true")
    m.add_argument("--seed", type=int, default=1)
    for k, v in (("dim", 256), ("hidden", 256), ("layers", 1), ("heads", 4), ("kv_heads", 2), ("vocab", 300),
                 ("ctx", 64)):
        m.add_argument("--" + k.replace("_", "-"), type=int, default=v, dest=k)
    m.add_argument("--eps", type=float, default=1e-5)
    m.add_argument("--theta", type=float, default=10000.0)
    m.add_argument("--kv", action="append", default=[])
    m.add_argument("--drop-kv", action="append", default=[])
    m.add_argument("--extra-tensor")
    m.add_argument("--tokenizer", default="none")
    d = sub.add_parser("dequant")
    d.add_argument("file"), d.add_argument("name"), d.add_argument("out")
    g = sub.add_parser("greedy")
    g.add_argument("weights"), g.add_argument("--ids", required=True), g.add_argument("-n", type=int, default=8)
    g.add_argument("--stop", type=int, action="append", default=[])
    s = sub.add_parser("show")
    s.add_argument("file")
    r = sub.add_parser("raw")
    r.add_argument("file"), r.add_argument("name"), r.add_argument("out")
    w = sub.add_parser("rewrite")
    w.add_argument("inp"), w.add_argument("out")
    w.add_argument("--alignment", type=int, default=32), w.add_argument("--version", type=int, default=3)
    w.add_argument("--drop-kv", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "make":
        make(a)
    elif a.cmd == "greedy":
        greedy(a)
    elif a.cmd in ("dequant", "raw"):
        _, kv, tensors, _, data, _, _ = read_gguf(a.file)
        t, ne, _ = tensors[a.name]
        if a.cmd == "raw":
            open(a.out, "wb").write(data[a.name])
        else:
            np.save(a.out, decode(t, data[a.name]).reshape(list(reversed(ne))))
    elif a.cmd == "show":
        version, kv, tensors, order, data, align, start = read_gguf(a.file)
        def plain(v):
            if isinstance(v, bytes):
                return v.decode("utf-8", "replace")
            if isinstance(v, tuple):
                return [plain(x) for x in v[1]]
            return v
        print(json.dumps({"version": version, "alignment": align, "data_start": start,
                          "kv": {k: plain(v[1]) for k, v in kv.items()},
                          "kv_types": {k: v[0] for k, v in kv.items()},
                          "tensors": [[n] + [tensors[n][0], tensors[n][1], tensors[n][2]] for n in order]}))
    elif a.cmd == "rewrite":
        version, kv, tensors, order, data, align, start = read_gguf(a.inp)
        kvl = [(k, t, v) for k, (t, v) in kv.items() if k not in a.drop_kv and k != "general.alignment"]
        write_gguf(a.out, kvl, [(n, tensors[n][0], tensors[n][1], data[n]) for n in order],
                   alignment=a.alignment, version=a.version)


if __name__ == "__main__":
    sys.exit(main())

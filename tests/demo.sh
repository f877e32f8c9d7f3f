#!/bin/sh
# make demo: the whole pipeline as it stands, on data made here — a few
# tensors written to a stream, piped through llm-tensor, listed and checked.
#   usage: tests/demo.sh BIN_DIR
set -eu
PATH="$(cd "$1" && pwd):$PATH"
. "$(cd "$(dirname "$0")" && pwd)/mknpy.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
say() { printf '\n$ %s\n' "$*"; }

# a small "model": an embedding, a weight matrix cut to bf16 precision, a
# norm vector, and token ids
perl -e 'srand(1); print pack("f<*", map { (rand() - 0.5) / 4 } 1..(64*32))' >emb.bin
perl -e 'srand(2); print pack("V*", map { unpack("V", pack("f<", (rand() - 0.5) / 2)) & 0xffff0000 } 1..(32*32))' >wq.bin
perl -e 'print pack("f<*", (1.0) x 32)' >norm.bin
perl -e 'print pack("q<*", 1..16)' >ids.bin
mknpy '<f4' '(64, 32)' emb.bin emb.npy
mknpy '<f4' '(32, 32)' wq.bin wq.npy
mknpy '<f4' '(32,)' norm.bin norm.npy
mknpy '<i8' '(16,)' ids.bin ids.npy

say "llm-tensor from-npy --attr source=demo tok_emb=emb.npy layers.0.attn.wq=wq.npy layers.0.norm=norm.npy ids=ids.npy | llm-tensor cat --shuffle --name 'layers.*' --name tok_emb -o model.llmt"
llm-tensor from-npy --attr source=demo tok_emb=emb.npy layers.0.attn.wq=wq.npy layers.0.norm=norm.npy ids=ids.npy |
    llm-tensor cat --shuffle --name 'layers.*' --name tok_emb -o model.llmt
say "llm-tensor ls model.llmt"
llm-tensor ls model.llmt
say "llm-tensor stats model.llmt"
llm-tensor stats model.llmt
say "llm-tensor verify model.llmt"
llm-tensor verify model.llmt
say "zstd -t model.llmt && zstdcat model.llmt | od -A x -t x1z | head -n 4"
zstd -q -t model.llmt && zstdcat model.llmt | od -A x -t x1z -v | head -n 4
say "llm-tensor to-npy layers.0.attn.wq model.llmt > wq-back.npy && cmp wq.npy wq-back.npy"
llm-tensor to-npy layers.0.attn.wq model.llmt >wq-back.npy && cmp wq.npy wq-back.npy && echo "identical"
echo
echo "demo: ok (llm-train, llm-gen, llm-calib, llm-quant and llm-attnviz are not built yet)"

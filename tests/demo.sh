#!/bin/sh
# make demo: the whole pipeline, on text every Debian system has — train a
# small model on the licence texts under /usr/share/common-licenses, sample
# from it, measure it on a licence it never saw, calibrate and quantize it
# from its own activations, draw its attention, look inside the checkpoint
# with llm-tensor, then take it through GGUF (llama.cpp's format) and back:
# import, attention, activations, GPTQ, export, in one pipeline.
#   usage: tests/demo.sh BIN_DIR      (DEMO_STEPS=N for a shorter run)
set -eu
PATH="$(cd "$1" && pwd):$PATH"
dir=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
say() { printf '\n$ %s\n' "$*"; }

L=/usr/share/common-licenses
set -- Apache-2.0 Artistic BSD CC0-1.0 GFDL-1.3 GPL-2 GPL-3 LGPL-2.1 LGPL-3 MPL-2.0
texts=""
for f in "$@"; do [ -r "$L/$f" ] && texts="$texts $L/$f"; done
if [ -z "$texts" ]; then # not Debian: the project's own documentation will do
    texts="$(cd "$(dirname "$0")/.." && pwd)/README.md"
fi
steps=${DEMO_STEPS:-600}

say "llm-train --data$texts --out model.llmt --steps $steps --lr 2e-3 --eval-every 100 --sample 200 --prompt 'This License'"
# shellcheck disable=SC2086
llm-train --data $texts --out model.llmt --steps "$steps" --lr 2e-3 --eval-every 100 --sample 200 \
    --prompt 'This License'
say "llm-gen -m model.llmt -p 'This License' -n 110 --temp 0.7 --seed 1"
llm-gen -m model.llmt -p 'This License' -n 110 --temp 0.7 --seed 1
held=$L/GPL-1
[ -r "$held" ] || held=$(echo $texts | cut -d' ' -f1)
say "llm-gen -m model.llmt --eval $held     # a licence the model never saw"
llm-gen -m model.llmt --eval "$held"
say "head -c 20000 $held | llm-gen -m model.llmt --dump-acts > acts.llmt     # activations"
head -c 20000 "$held" | llm-gen -m model.llmt --dump-acts >acts.llmt
say "llm-calib --method all --text acts.llmt | head -n 6     # INT8 thresholds"
llm-calib --method all --text acts.llmt | head -n 6
say "llm-quant -m model.llmt --scheme int4 --group 32 --method gptq --acts acts.llmt -o model-w4.llmt"
llm-quant -m model.llmt --scheme int4 --group 32 --method gptq --acts acts.llmt -o model-w4.llmt
say "llm-gen -m model-w4.llmt --eval $held     # the int4 model"
llm-gen -m model-w4.llmt --eval "$held"
say "llm-tensor cat -o weights.llmt --name tok_emb --name 'layers.*' --name norm model.llmt; ls -l weights.llmt model-w4.llmt"
llm-tensor cat -o weights.llmt --name tok_emb --name 'layers.*' --name norm model.llmt   # without the optimizer's moments
ls -l weights.llmt model-w4.llmt | awk '{print $5, $NF}'
say "llm-gen -m model.llmt --dump-attn -p 'the GNU General' | llm-attnviz --layer 0 --grid --labels > attn.pgm"
llm-gen -m model.llmt --dump-attn -p 'the GNU General' -q | llm-attnviz --layer 0 --grid --labels >attn.pgm
head -n 2 attn.pgm | tr '\n' ' ' && echo "(a PGM image; view it with any image viewer)"
say "llm-gen -m model.llmt --dump-attn -p 'the GNU General' | llm-attnviz --stats | head -n 5"
llm-gen -m model.llmt --dump-attn -p 'the GNU General' -q | llm-attnviz --stats | head -n 5
say "llm-tensor ls model.llmt | head -n 8"
llm-tensor ls model.llmt | head -n 8
say "llm-tensor stats --name 'layers.0.attn.w?' model.llmt"
llm-tensor stats --name 'layers.0.attn.w?' model.llmt
say "llm-tensor verify model.llmt"
llm-tensor verify model.llmt
say "zstd -t model.llmt && zstdcat model.llmt | od -A x -t x1z | head -n 3"
zstd -q -t model.llmt && zstdcat model.llmt | od -A x -t x1z | head -n 3
say "llm-tensor to-npy layers.0.attn.wq model.llmt > wq.npy; llm-tensor from-npy w=wq.npy | llm-tensor to-npy w | cmp - wq.npy"
llm-tensor to-npy layers.0.attn.wq model.llmt >wq.npy
llm-tensor from-npy w=wq.npy | llm-tensor to-npy w | cmp - wq.npy && echo "identical"
say "llm-tensor export-gguf model.llmt -o model.gguf     # llama.cpp's format: what a user downloads"
llm-tensor export-gguf model.llmt -o model.gguf
say "llm-tensor import-gguf model.gguf -o gguf.llmt && llm-gen -m gguf.llmt --dump-attn -p 'the GNU General' | llm-attnviz --stats | head -n 3"
llm-tensor import-gguf model.gguf -o gguf.llmt
llm-gen -m gguf.llmt --dump-attn -p 'the GNU General' -q | llm-attnviz --stats | head -n 3
say "head -c 8000 $held | llm-gen -m gguf.llmt --dump-acts | llm-quant -m gguf.llmt --scheme int4 --group 32 --method gptq --acts - -o gguf-w4.llmt"
head -c 8000 "$held" | llm-gen -m gguf.llmt --dump-acts | llm-quant -m gguf.llmt --scheme int4 --group 32 --method gptq --acts - -o gguf-w4.llmt
say "llm-tensor export-gguf gguf-w4.llmt -o model-w4.gguf --dequant 2>/dev/null && llm-tensor ls model-w4.gguf | head -n 4"
llm-tensor export-gguf gguf-w4.llmt -o model-w4.gguf --dequant 2>/dev/null
llm-tensor ls model-w4.gguf | head -n 4
echo
echo "demo: ok"

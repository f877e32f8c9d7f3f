#!/bin/sh
# llm-attnviz benchmark: time and peak memory to render a 32-head x 2048 x
# 2048 layer from a stream, as one mosaic and in the other layouts.
#   usage: sh tests/bench/attnviz.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_ATTN_HEADS  heads (default 32)
#          BENCH_ATTN_T      sequence length T (default 2048)
#          CC                compiler for the helpers (default cc)
#
# The input is one layers.0.attn.probs [H, T, T] f32 record (512 MiB at the
# defaults), written raw by tests/bench/attn_stream.c row by row into a pipe
# (causal recency heads with a first-token sink), so the renderer reads it as
# it would read llm-gen --dump-attn.  Each variant is one run of
#   attn_stream H T | llm-attnviz OPTIONS > /dev/null   (or -o files in a temp dir)
# timed end to end (wall clock, so it includes the generator, timed alone in
# the first line); peak RSS is llm-attnviz's own (tests/bench/maxrss.c: wait4's
# ru_maxrss).  "layer in f32" is what holding the record whole would cost.
#
# The table goes to stdout and to TOP/build/bench/attnviz.md; progress to
# stderr.  A measurement, not a test: only a failing command makes it exit
# non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

H=$(number BENCH_ATTN_HEADS 32 1) || exit
T=$(number BENCH_ATTN_T 2048 1) || exit
need llm-attnviz

tmpdir
helper attn_stream libllm
helper maxrss

mib() { awk -v k="$(kv maxrss_kib "$1")" 'BEGIN { printf "%.0f", k / 1024 }'; }

out=$(table_file attnviz)
{
    echo "| $H heads x $T x $T (f32 layer: $((H * T * T * 4 / 1048576)) MiB) | image | seconds | peak RSS MiB |"
    echo "|---|---|---:|---:|"
    say "generator alone"
    t0=$(now)
    "$tmp/attn_stream" "$H" "$T" >/dev/null || die "attn_stream failed"
    echo "| attn_stream alone (writes the stream, no rendering) | - | $(elapsed "$t0" "$(now)" 2) | - |"
    variant() { # label, image description ("": the header's size), llm-attnviz options...
        label=$1 image=$2; shift 2
        say "$label"
        t0=$(now)
        (cd "$tmp" && "$tmp/attn_stream" "$H" "$T" | "$tmp/maxrss" "$tmp/rss" "$top/bin/llm-attnviz" "$@" >"$tmp/stdout") ||
            die "llm-attnviz $* failed"
        [ -n "$image" ] || image="$(head -c 2 "$tmp/stdout") $(sed -n 2p "$tmp/stdout" | tr ' ' 'x') px"
        echo "| \`llm-attnviz $*\` | $image | $(elapsed "$t0" "$(now)" 2) | $(mib "$tmp/rss") |"
        rm -f "$tmp"/*.pgm
    }
    variant "grid, 8-bit" "" --layer 0 --grid
    variant "grid, color" "" --layer 0 --grid --ppm
    variant "grid, 16-bit, gamma" "" --layer 0 --grid --maxval 65535 --gamma 0.5
    variant "a file per head" "$H x P5 $T x $T" --layer 0 -o 'h%d-%d.pgm'
    variant "head similarity" "text (holds the layer)" --head-sim
} | tee "$out"

#!/bin/sh
# llm-attnviz benchmark: time and peak memory to render a 32-head x 2048 x
# 2048 layer from a stream, as one mosaic and in the other layouts.
#   usage: sh tests/bench/attnviz.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_ATTN_HEADS  heads (default 32)
#          BENCH_ATTN_T      sequence length T (default 2048)
#          BENCH_RUNS        runs of each variant (default 3; see lib.sh)
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
# BENCH_RUNS rounds go round the generator and the variants so load from
# other users falls on all alike; seconds are the median (min–max) of the
# rounds, peak RSS the largest.
#
# The table goes to stdout and to TOP/build/bench/attnviz.md; progress to
# stderr.  A measurement, not a test: only a failing command makes it exit
# non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

H=$(number BENCH_ATTN_HEADS 32 1) || exit
T=$(number BENCH_ATTN_T 2048 1) || exit
runs=$(bench_runs) || exit
need llm-attnviz

tmpdir
helper attn_stream libllm
helper maxrss

# options N: llm-attnviz's options in variant N (words without spaces).
# image N: what variant N draws, from its stdout ($tmp/stdout) for a mosaic.
variants="1 2 3 4 5"
options() {
    case $1 in
        1) echo "--layer 0 --grid";;                              # grid, 8-bit
        2) echo "--layer 0 --grid --ppm";;                        # grid, color
        3) echo "--layer 0 --grid --maxval 65535 --gamma 0.5";;   # grid, 16-bit, gamma
        4) echo "--layer 0 -o h%d-%d.pgm";;                       # a file per head
        5) echo "--head-sim";;                                    # head similarity
    esac
}
image() {
    case $1 in
        4) echo "$H x P5 $T x $T";;
        5) echo "text (holds the layer)";;
        *) echo "$(head -c 2 "$tmp/stdout") $(sed -n 2p "$tmp/stdout" | tr ' ' 'x') px";;
    esac
}

# measure gen|N ROUND: one run of the generator alone or of variant N; t_
# lists the seconds, r_ the peak RSS in KiB, one per round.
measure() {
    if [ "$1" = gen ]; then
        say "generator alone, run $2 of $runs"
        t0=$(now)
        "$tmp/attn_stream" "$H" "$T" >/dev/null || die "attn_stream failed"
        append t_gen "$(elapsed "$t0" "$(now)")"
        return
    fi
    opts=$(options "$1")
    say "llm-attnviz $opts, run $2 of $runs"
    t0=$(now)
    # shellcheck disable=SC2086 # options are words
    (cd "$tmp" && "$tmp/attn_stream" "$H" "$T" | "$tmp/maxrss" "$tmp/rss" "$top/bin/llm-attnviz" $opts >"$tmp/stdout") ||
        die "llm-attnviz $opts failed"
    append "t_$1" "$(elapsed "$t0" "$(now)")"
    append "r_$1" "$(kv maxrss_kib "$tmp/rss")"
    [ "$2" -gt 1 ] || eval "image_$1=\"\$(image $1)\""
    rm -f "$tmp"/*.pgm
}
in_turn measure gen $variants

out=$(table_file attnviz)
{
    echo "Seconds: $(runs_caption "$runs"); peak RSS: the largest of the runs; $(cpu_count) CPUs, $(cpu_name)."
    echo
    echo "| $H heads x $T x $T (f32 layer: $((H * T * T * 4 / 1048576)) MiB) | image | seconds | peak RSS MiB |"
    echo "|---|---|---:|---:|"
    echo "| attn_stream alone (writes the stream, no rendering) | - | $(summary %.2f $t_gen) | - |"
    for v in $variants; do
        eval "t=\$t_$v r=\$r_$v image=\$image_$v"
        # shellcheck disable=SC2086 # one number per word
        echo "| \`llm-attnviz $(options $v)\` | $image | $(summary %.2f $t) | $(awk -v k="$(max $r)" 'BEGIN { printf "%.0f", k / 1024 }') |"
    done
} | tee "$out"

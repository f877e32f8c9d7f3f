#!/bin/sh
# llm-calib benchmark: MB/s of float32 activations calibrated from a pipe,
# beside `zstdcat > /dev/null` on the same stream in the same run.
#   usage: sh tests/bench/calib.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_MB    MiB of float32 in the stream (default 256)
#          BENCH_RUNS  timings per variant (default 3; see lib.sh)
#          CC          compiler for gen_floats (default cc)
#
# The stream: 4 tensor names ("layers.K.in", standard normal float32 from
# tests/bench/gen_floats.c), zstd level 1 as llm-gen writes it, read through
# `cat FILE |` so every variant reads a pipe.  Variants: zstdcat > /dev/null
# (decompression alone: the floor of any reader), and llm-calib with
# --method all or entropy on 1 and 2 threads.  MB/s is payload bytes (10^6)
# per second of wall clock; the runs go round the variants so load from
# other users of the machine falls on all alike, and the table gives the
# median and the range of each variant's runs, and of its per-round ratio to
# zstdcat.  Goal: --method all on 2 threads at least as fast as zstdcat (the
# median ratio at least 1).  The table goes to stdout and to
# TOP/build/bench/calib.md; a missed goal is reported, not failed.
set -eu
. "$(dirname "$0")/lib.sh"
mb=$(number BENCH_MB 256 1) || exit
runs=$(bench_runs) || exit
on_path llm-calib llm-tensor zstdcat

tmpdir
helper gen_floats libllm
n=$((mb * 1024 * 1024 / 4 / 4))
payload=$((n * 4 * 4))
say "generating $mb MiB of float32 in 4 tensors"
"$tmp/gen_floats" normal "$n" "$tmp/x.npy" || die "gen_floats failed"
llm-tensor from-npy --level 1 -o "$tmp/acts.llmt" layers.0.in="$tmp/x.npy" layers.1.in="$tmp/x.npy" \
    layers.2.in="$tmp/x.npy" layers.3.in="$tmp/x.npy" || die "from-npy failed"
rm -f "$tmp/x.npy"

run_variant() {
    case $1 in
        zstdcat) cat "$tmp/acts.llmt" | zstdcat > /dev/null;;
        all2) cat "$tmp/acts.llmt" | llm-calib --method all --threads 2 -o "$tmp/t.llmt";;
        all1) cat "$tmp/acts.llmt" | llm-calib --method all --threads 1 -o "$tmp/t.llmt";;
        entropy2) cat "$tmp/acts.llmt" | llm-calib --method entropy --threads 2 -o "$tmp/t.llmt";;
    esac
}
# time_variant VARIANT ROUND: appends the seconds of one run to t_VARIANT.
time_variant() {
    say "$1: run $2 of $runs"
    t0=$(now); run_variant "$1" || die "$1 failed"; t1=$(now)
    append "t_$1" "$(elapsed "$t0" "$t1")"
}
variants="zstdcat all2 all1 entropy2"
in_turn time_variant $variants
llm-tensor ls "$tmp/t.llmt" | grep -q "layers.3.in.amax .*count=$n " || die "llm-calib did not count $n values per tensor"

md=$(table_file calib)
{
    printf 'llm-calib, %d MiB of float32 (4 tensors, zstd level 1) from a pipe; %s; %s CPUs, %s.\n\n' \
        "$mb" "$(runs_caption "$runs")" "$(cpu_count)" "$(cpu_name)"
    echo "| variant | MB/s | vs zstdcat |"
    echo "|---|---:|---:|"
    for v in $variants; do
        eval "s=\$t_$v"
        case $v in
            zstdcat) label='`zstdcat > /dev/null`';;
            all2) label='`llm-calib --method all --threads 2`';;
            all1) label='`llm-calib --method all --threads 1`';;
            entropy2) label='`llm-calib --method entropy --threads 2`';;
        esac
        awk -v l="$label" -v p="$payload" -v s="$s" -v z="$t_zstdcat" "$stats_awk"'BEGIN {
            printf "| %s | %s | %s |\n", l, summary("%.0f", over(p / 1e6, s)), summary("%.2fx", ratios(z, s)) }'
    done
    awk -v a="$t_all2" -v z="$t_zstdcat" "$stats_awk"'BEGIN { r = median(ratios(z, a))
        printf "\n- --method all on 2 threads at least as fast as zstdcat: %s (%.2fx, the median of the per-round ratios)\n", (r >= 1 ? "yes" : "no"), r }'
} > "$md"
cat "$md"
say "table written to $md"

#!/bin/sh
# llm-calib benchmark: MB/s of float32 activations calibrated from a pipe,
# beside `zstdcat > /dev/null` on the same stream in the same run.
#   usage: sh tests/bench/calib.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_MB    MiB of float32 in the stream (default 256)
#          BENCH_REPS  timings per variant, the best is kept (default 3)
#          CC          compiler for gen_floats (default cc)
#
# The stream: 4 tensor names ("layers.K.in", standard normal float32 from
# tests/bench/gen_floats.c), zstd level 1 as llm-gen writes it, read through
# `cat FILE |` so every variant reads a pipe.  Variants: zstdcat > /dev/null
# (decompression alone: the floor of any reader), and llm-calib with
# --method all or entropy on 1 and 2 threads.  MB/s is payload bytes (10^6)
# per second of wall clock; the repetitions go round the variants so load
# from other users of the machine falls on all alike.  Goal: --method all on
# 2 threads at least as fast as zstdcat.  The table goes to stdout and to
# TOP/build/bench/calib.md; a missed goal is reported, not failed.
set -eu
top=$(cd "${1:-.}" && pwd) || exit 2
PATH="$top/bin:$PATH"
export PATH
mb=${BENCH_MB:-256}
reps=${BENCH_REPS:-3}
case $mb$reps in *[!0-9]*|'') echo "bench: BENCH_MB and BENCH_REPS must be numbers" >&2; exit 2;; esac
say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
for t in llm-calib llm-tensor zstdcat; do command -v "$t" >/dev/null 2>&1 || die "$t not found (run make)"; done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
${CC:-cc} -O2 -o "$tmp/gen_floats" "$top/tests/bench/gen_floats.c" -lm || die "cannot compile gen_floats.c"
n=$((mb * 1024 * 1024 / 4 / 4))
payload=$((n * 4 * 4))
say "generating $mb MiB of float32 in 4 tensors"
"$tmp/gen_floats" normal "$n" "$tmp/x.npy" || die "gen_floats failed"
llm-tensor from-npy --level 1 -o "$tmp/acts.llmt" layers.0.in="$tmp/x.npy" layers.1.in="$tmp/x.npy" \
    layers.2.in="$tmp/x.npy" layers.3.in="$tmp/x.npy" || die "from-npy failed"
rm -f "$tmp/x.npy"

now() { date +%s.%N; }
run_variant() {
    case $1 in
        zstdcat) cat "$tmp/acts.llmt" | zstdcat > /dev/null;;
        all2) cat "$tmp/acts.llmt" | llm-calib --method all --threads 2 -o "$tmp/t.llmt";;
        all1) cat "$tmp/acts.llmt" | llm-calib --method all --threads 1 -o "$tmp/t.llmt";;
        entropy2) cat "$tmp/acts.llmt" | llm-calib --method entropy --threads 2 -o "$tmp/t.llmt";;
    esac
}
variants="zstdcat all2 all1 entropy2"
for v in $variants; do eval "t_$v=''"; done
i=1
while [ "$i" -le "$reps" ]; do
    for v in $variants; do
        say "$v: run $i of $reps"
        t0=$(now); run_variant "$v" || die "$v failed"; t1=$(now)
        eval "t_$v=\"\$t_$v $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')\""
    done
    i=$((i + 1))
done
best() { printf '%s\n' $1 | sort -g | head -n 1; }
llm-tensor ls "$tmp/t.llmt" | grep -q "layers.3.in.amax .*count=$n " || die "llm-calib did not count $n values per tensor"

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mkdir -p "$top/build/bench"
md="$top/build/bench/calib.md"
{
    printf 'llm-calib, %d MiB of float32 (4 tensors, zstd level 1) from a pipe; best of %d runs taken in turn; %s CPUs, %s.\n\n' \
        "$mb" "$reps" "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')" "${cpu:-unknown CPU}"
    echo "| variant | MB/s | vs zstdcat |"
    echo "|---|---:|---:|"
    z=$(best "$t_zstdcat")
    for v in $variants; do
        s=$(eval "best \"\$t_$v\"")
        case $v in
            zstdcat) label='`zstdcat > /dev/null`';;
            all2) label='`llm-calib --method all --threads 2`';;
            all1) label='`llm-calib --method all --threads 1`';;
            entropy2) label='`llm-calib --method entropy --threads 2`';;
        esac
        awk -v l="$label" -v p="$payload" -v s="$s" -v z="$z" 'BEGIN { printf "| %s | %.0f | %.2fx |\n", l, p / s / 1e6, z / s }'
    done
    a=$(best "$t_all2")
    awk -v a="$a" -v z="$z" 'BEGIN { printf "\n- --method all on 2 threads at least as fast as zstdcat: %s (%.2fx)\n", (a <= z ? "yes" : "no"), z / a }'
} > "$md"
cat "$md"
say "table written to $md"

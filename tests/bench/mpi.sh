#!/bin/sh
# Data-parallel benchmark: llm-train's tokens/s on the small config as one
# process with 2 threads against 2 MPI ranks with 1 thread each (overlap on,
# off, and ZeRO-1), the share of each step spent waiting on communication,
# and the bytes moved per step beside what tensor parallelism would move.
#   usage: sh tests/bench/mpi.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_WARMUP  untimed steps at the start of each run (default 2)
#          BENCH_STEPS   timed steps per run (default 4)
#          BENCH_RUNS    rounds (default 3; see lib.sh)
#
# Config "small" (as tests/bench/train.sh): dim 288, 6 layers, 6 heads,
# hidden 768, seq 256, vocab 258, tied; a step is 2 micro-batches of 4
# sequences (--accum 2 --batch 4, 2048 tokens), the same global batch in
# every row.  tokens/s: timed steps x 2048 / the sum of their step times
# from --log.  Communication share: the log's comm_s (time inside MPI calls
# that was not hidden behind computation) over step_s.
# Bytes per step: the ring all-reduce moves 2(N-1)/N x the gradient bytes per
# rank (llm-train's own report); a Megatron-style tensor-parallel split would
# all-reduce the [B*T, D] activations twice per layer forward and twice
# backward: 4 L x 2(N-1)/N x B T D x 4 bytes, growing with T.
# BENCH_RUNS rounds go round the four runs so load from other users falls on
# all alike; the table gives the median (min–max) of the rounds, and "vs one
# process" the median (min–max) of the per-round ratios.
# The table goes to stdout and TOP/build/bench/mpi.md.
set -eu
. "$(dirname "$0")/lib.sh"
bin="$top/bin"
warm=$(number BENCH_WARMUP 2) || exit
steps=$(number BENCH_STEPS 4 1) || exit
runs=$(bench_runs) || exit
command -v mpirun >/dev/null || { say "no mpirun (Debian: openmpi-bin): skipped"; exit 0; }
need llm-train llm-tensor
tmpdir
corpus="$tmp/corpus.txt"
for f in /usr/share/common-licenses/*; do [ -f "$f" ] && cat "$f"; done >"$corpus"
cd "$tmp"
export OMP_WAIT_POLICY=PASSIVE OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_base_warn_component_unused=0
root=""
[ "$(id -u)" = 0 ] && root=--allow-run-as-root
small="--dim 288 --layers 6 --heads 6 --hidden 768 --seq 256 --batch 4 --accum 2 --eval-every 0 -q"
total=$((warm + steps))

# run NAME RANKS THREADS [options]: prints "tok/s comm% MiB/step"
run() {
    name=$1 ranks=$2 threads=$3; shift 3
    say "$name, run $i of $runs"
    if [ "$ranks" = 1 ]; then
        "$bin/llm-train" --data "$corpus" --out m.llmt $small --steps "$total" --threads "$threads" --log "$name.tsv" "$@"
    else
        mpirun $root --oversubscribe -np "$ranks" -x OMP_WAIT_POLICY "$bin/llm-train" --data "$corpus" --out m.llmt \
            $small --steps "$total" --threads "$threads" --log "$name.tsv" "$@"
    fi
    awk -F'\t' -v w="$warm" -v tok=2048 '
        NR > 1 + w { n++; t += (NF >= 9 ? $9 : tok / $5); c += (NF >= 9 ? $8 : 0); b += (NF >= 9 ? $7 : 0) }
        END { printf "%.0f %.1f %.2f\n", n * tok / t, 100 * c / t, b / n / 1048576 }' "$name.tsv"
}
# kind K: the run K's table label and run's arguments (name, ranks, threads, options).
kind() {
    case $1 in
        one) label="one process | 1 x 2" args="one 1 2";;
        overlap) label="data parallel, overlap | 2 x 1" args="overlap 2 1";;
        no_overlap) label="data parallel, --no-overlap | 2 x 1" args="no-overlap 2 1 --no-overlap";;
        zero1) label="data parallel, --shard-optim | 2 x 1" args="zero1 2 1 --shard-optim";;
    esac
}
# measure KIND ROUND: one run of KIND; tps_KIND, comm_KIND and mib_KIND list
# one value per round.
measure() {
    kind "$1"
    i=$2
    r=$(run $args)
    # shellcheck disable=SC2086 # three numbers
    set -- "$1" $r
    append "tps_$1" "$2"
    append "comm_$1" "$3"
    append "mib_$1" "$4"
}
kinds="one overlap no_overlap zero1"
in_turn measure $kinds
params=$("$bin/llm-tensor" ls m.llmt | sed -n 's/.*params=\([0-9]*\).*/\1/p')
{
    echo "Tokens/s and waiting: $(runs_caption "$runs"); $(cpu_count) CPUs, $(cpu_name)."
    echo
    echo "| run | ranks x threads | tokens/s | vs one process | waiting on communication | MiB sent per rank per step |"
    echo "|---|---|---|---|---|---|"
    for k in $kinds; do
        kind "$k"
        eval "t=\$tps_$k c=\$comm_$k b=\$mib_$k"
        awk -v l="$label" -v k="$k" -v t="$t" -v one="$tps_one" -v c="$c" -v b="$b" "$stats_awk"'BEGIN {
            if (k == "one") printf "| %s | %s | - | - | - |\n", l, summary("%.0f", t)
            else printf "| %s | %s | %s | %s | %.2f |\n", l, summary("%.0f", t), summary("%.2fx", ratios(t, one)), summary("%.1f%%", c), median(b) }'
    done
    echo
    echo "Bytes per rank per step, 2 ranks, small config ($params parameters, batch 8 sequences):"
    echo
    echo "| seq T | data parallel (gradient all-reduce) | tensor parallel (activation all-reduces) |"
    echo "|---|---|---|"
    for T in 256 1024 4096 16384; do
        awk -v P="$params" -v T="$T" 'BEGIN {
            N = 2; L = 6; D = 288; B = 8
            printf "| %d | %.1f MiB | %.1f MiB |\n", T, 2 * (N - 1) / N * 4 * P / 1048576,
                4 * L * 2 * (N - 1) / N * B * T * D * 4 / 1048576 }'
    done
} | tee "$(table_file mpi)"

#!/bin/sh
# Two builds side by side: llm-train's training tokens/s, llm-gen's prefill
# and decode tokens/s, of the tree TOP and of another built tree BENCH_OLD,
# taken in turn (old, new, old, new, ...).  For changes that must not slow
# anything down (a restructuring, a new build setting): the table gives each
# build's median (min–max) and new/old as the median of per-round ratios.
#   usage: BENCH_OLD=DIR sh tests/bench/builds.sh [TOP]
#   e.g.   git worktree add /tmp/old REV && make -C /tmp/old -j2 all &&
#          BENCH_OLD=/tmp/old sh tests/bench/builds.sh .
#   env:   BENCH_OLD      a tree with bin/llm-train and bin/llm-gen built (required)
#          BENCH_THREADS  threads for both tools (default 2)
#          BENCH_RUNS     rounds (default 3; fewer: a quick check, not a result)
#          CC             compiler for the checkpoint helper (default cc)
# Both builds run in the environment this script is given.
#   train    llm-train --dim 288 --layers 6 --heads 6 --hidden 768 --seq 256
#            --batch 8 --tie, 3 warm-up + 8 timed steps on the licence texts:
#            tokens/s from the per-step times of its --log (as train.sh)
#   prefill  llm-gen --ids: a 512-id prompt in one pass on a random checkpoint
#            of llama2.c's stories110M shape (make_random_model), its prompt tok/s
#   decode   the same checkpoint, an 8-id prompt then 128 tokens, its decoding
#            tok/s; and on the stories15M shape, 200 tokens
# The table goes to stdout and to TOP/build/bench/builds.md.
set -eu
. "$(dirname "$0")/lib.sh"

runs=$(bench_runs) || exit
threads=$(number BENCH_THREADS 2 1) || exit
[ -n "${BENCH_OLD:-}" ] || bad "BENCH_OLD: the built tree to compare with (see the usage at the top of $0)"
old=$(cd "$BENCH_OLD" && pwd) || bad "BENCH_OLD: no folder $BENCH_OLD"
for t in llm-train llm-gen; do
    [ -x "$old/bin/$t" ] || die "$old/bin/$t not built (make -C $old all)"
done
need llm-train llm-gen
tmpdir
mkdir "$tmp/old" "$tmp/new"
for t in llm-train llm-gen; do
    cp "$old/bin/$t" "$tmp/old/" && cp "$top/bin/$t" "$tmp/new/" || die "cannot copy $t"
done
say "compiling the checkpoint helper"
helper make_random_model libllm

data="$tmp/corpus.txt"
cat /usr/share/common-licenses/* > "$data" 2>/dev/null || :
[ "$(wc -c < "$data")" -ge 65536 ] || head -c 1048576 /dev/urandom > "$data"
"$tmp/make_random_model" "$tmp/110M.llmt" 768 2048 12 12 32000 1024 > /dev/null || die "make_random_model failed"
"$tmp/make_random_model" "$tmp/15M.llmt" 288 768 6 6 32000 256 > /dev/null || die "make_random_model failed"

warm=3 steps=8 batch=8 seq=256
# train BUILD: tokens/s of the timed steps.
train() {
    log="$tmp/train.tsv"
    rm -f "$log"
    "$tmp/$1/llm-train" --data "$data" --out "$tmp/model.llmt" --dim 288 --layers 6 --heads 6 --hidden 768 \
        --seq $seq --batch $batch --tie --steps $((warm + steps)) --eval-every 0 --threads "$threads" \
        --log "$log" -q || die "$1 llm-train failed"
    rm -f "$tmp/model.llmt"
    awk -F"\t" -v w=$warm -v bt=$((batch * seq)) 'NR > 1 && $1 > w && $5 > 0 { n++; s += bt / $5 }
        END { if (n > 0 && s > 0) printf "%.1f", n * bt / s }' "$log"
}
# gen BUILD FIELD ARGS...: llm-gen's prompt (FIELD 1) or decoding (FIELD 2) tok/s.
gen() {
    _b=$1 _f=$2
    shift 2
    "$tmp/$_b/llm-gen" "$@" --ids --temp 0 --threads "$threads" > /dev/null 2> "$tmp/gen.err" ||
        die "$_b llm-gen $* failed: $(cat "$tmp/gen.err")"
    sed -n 's/^llm-gen: prompts* [0-9]* tokens* in [0-9.]* s (\([0-9.]*\) tok\/s); [0-9]* tokens* generated in [0-9.]* s of decoding (\([0-9.]*\) tok\/s).*/\1 \2/p' \
        "$tmp/gen.err" | head -n 1 | cut -d' ' -f"$_f"
}

# measure BUILD ROUND: one round of every measurement with BUILD.
measure() {
    say "$1 build, round $2 of $runs"
    append "train_$1" "$(train "$1")"
    append "prefill_$1" "$(gen "$1" 1 -m "$tmp/110M.llmt" -p "$(seq 1 512 | tr '\n' ' ')" -n 1)"
    append "decode110_$1" "$(gen "$1" 2 -m "$tmp/110M.llmt" -p "1 2 3 4 5 6 7 8" -n 128)"
    append "decode15_$1" "$(gen "$1" 2 -m "$tmp/15M.llmt" -p "1 2 3 4 5 6 7 8" -n 200)"
}
load0=$(load_average)
in_turn measure old new
load1=$(load_average)

md=$(table_file builds)
{
    echo "Two builds in turn: old = $old, new = $top; $threads threads; $(cpu_count) CPUs, $(cpu_name); $(runs_caption "$runs"); load average $load0 at the start, $load1 at the end; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}."
    echo
    echo "| tok/s | old | new | new/old |"
    echo "|---|---:|---:|---:|"
    for m in "train:training (288-wide, 6 layers)" "prefill:prefill 512 ids, 110M shape" \
        "decode110:decode, 110M shape" "decode15:decode, 15M shape"; do
        k=${m%%:*}
        eval "o=\$${k}_old n=\$${k}_new"
        awk -v label="${m#*:}" -v o="$o" -v n="$n" "$stats_awk"'BEGIN {
            printf "| %s | %s | %s | %s |\n", label, summary("%.1f", o), summary("%.1f", n),
                summary("%.3f", ratios(n, o))
        }'
    done
} | tee "$md"

#!/bin/sh
# Quantization benchmark: file size, perplexity and decode tokens/s of float,
# int8, int4-RTN, int4-GPTQ (and W8A8 when bin/llm-calib is built) on
#   trained  a small model trained here by llm-train on the GPL-3 text
#            (dim 128, hidden 384 so that int4 groups of 128 divide it, 4
#            layers; perplexity on the text it was trained on)
#   110M     the random-weight stories110M shape of tests/bench/decode.sh
#            (tests/bench/make_random_model.c; decode only, ids-only tokenizer)
# Every linear layer and the classifier are quantized (--cls; int4 group
# 128 symmetric); GPTQ's activations: llm-gen --dump-acts on 512 tokens.
# Decode: llm-gen --ids -p "<8 ids>" -n 128 --temp 0, its "tok/s" figure,
# BENCH_RUNS rounds (default 3; see lib.sh), each quantizing and decoding
# every model and kind in turn, BENCH_THREADS threads (default 2),
# BENCH_STEPS training steps (default 300); the table gives the median
# (min–max) of the rounds, and "x float" the median of the per-round ratios
# to the float model of the same round.  Then the GPTQ solve alone for a
# 2048 x 2048 layer, its Hessian given (bench_gptq.c), BENCH_RUNS times.
#   usage: sh tests/bench/quant.sh [TOP]
# The table goes to stdout and TOP/build/bench/quant.md.
set -eu
. "$(dirname "$0")/lib.sh"
threads=$(number BENCH_THREADS 2 1) || exit
runs=$(bench_runs) || exit
steps=$(number BENCH_STEPS 300 1) || exit
need llm-quant llm-train llm-gen llm-tensor
tmpdir
B=$top/bin
helper make_random_model libllm
helper bench_gptq libllm

toks() { sed -n 's/.*(\([0-9.]*\) tok\/s).*/\1/p' "$1" | tail -n 1; }
decode() { # decode CKPT: tok/s of one run
    "$B/llm-gen" -m "$1" --ids -p "1 2 3 4 5 6 7 8" -n 128 --temp 0 --threads "$threads" >/dev/null 2>"$tmp/gen.err" ||
        die "llm-gen on $1: $(cat "$tmp/gen.err")"
    t=$(toks "$tmp/gen.err")
    [ -n "$t" ] || die "no tok/s in llm-gen's output on $1: $(cat "$tmp/gen.err")"
    echo "$t"
}
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }

L=/usr/share/common-licenses/GPL-3
[ -r "$L" ] || die "$L is missing (base-files)"
say "training a small model"
"$B/llm-train" --data "$L" --out "$tmp/t.llmt" --dim 128 --hidden 384 --layers 4 --heads 4 --seq 128 --batch 8 \
    --steps "$steps" --eval-every 0 --threads "$threads" -q 2>/dev/null || die "llm-train failed"
head -c 20000 "$L" | "$B/llm-gen" -m "$tmp/t.llmt" --dump-acts -q >"$tmp/t.acts"
say "110M random checkpoint"
"$tmp/make_random_model" "$tmp/r.llmt" 768 2048 12 12 32000 1024 >/dev/null || die "make_random_model failed"
seq 1 512 | tr '\n' ' ' | "$B/llm-gen" -m "$tmp/r.llmt" --ids --ctx 256 --dump-acts -q >"$tmp/r.acts"

kinds="float int8 int4-rtn int4-gptq"
[ -x "$B/llm-calib" ] && kinds="$kinds w8a8"
quantize() { # quantize MODEL KIND OUT
    case $2 in
        float) # the weights alone: a training checkpoint also holds the optimizer's moments
               "$B/llm-tensor" cat -o "$3" --name tok_emb --name 'layers.*' --name norm --name cls "$1" ;;
        int8) "$B/llm-quant" -m "$1" -o "$3" --scheme int8 --cls -q ;;
        int4-rtn) "$B/llm-quant" -m "$1" -o "$3" --scheme int4 --cls -q ;;
        int4-gptq) "$B/llm-quant" -m "$1" -o "$3" --scheme int4 --cls --method gptq --acts "${1%.llmt}.acts" -q ;;
        w8a8) "$B/llm-calib" --per-channel --method max "${1%.llmt}.acts" >"$tmp/calib.llmt" &&
              "$B/llm-quant" -m "$1" -o "$3" --scheme w8a8 --cls --calib "$tmp/calib.llmt" -q ;;
    esac
}
# var MODEL KIND: the name of the shell variable that lists MODEL KIND's values.
var() { echo "$1_$2" | tr -c 'a-z0-9\n' _; }
# measure MODEL.KIND ROUND: quantizes MODEL to KIND and decodes the result
# once, appending the seconds to q_ and the tok/s to d_ (var MODEL KIND);
# the trained model's perplexity, in the first round, goes to p_ (it does not
# vary).  The rounds go over every model and kind, so load from other users
# of the machine falls on all alike.
measure() {
    m=${1%%.*} k=${1#*.}
    v=$(var "$m" "$k")
    say "$m $k: run $2 of $runs"
    s0=$(now)
    quantize "$tmp/$m.llmt" "$k" "$tmp/$m.$k.llmt" || die "llm-quant $k failed"
    append "q_$v" "$(elapsed "$s0" "$(now)" 3)"
    if [ "$m" = t ] && [ "$2" = 1 ]; then
        ppl=$(head -c 40000 "$L" | "$B/llm-gen" -m "$tmp/$m.$k.llmt" --eval - -q | sed 's/ppl=\([0-9.]*\).*/\1/')
        eval "p_$v=\$ppl"
    fi
    tps=$(decode "$tmp/$m.$k.llmt") || exit 1
    append "d_$v" "$tps"
}
pairs=""
for m in t r; do for k in $kinds; do pairs="$pairs $m.$k"; done; done
in_turn measure $pairs

say "GPTQ solve, 2048 x 2048, $runs times each, int4 and int8 in turn"
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$tmp/bench_gptq" 2048 "$runs" >"$tmp/gptq.txt" ||
    die "bench_gptq failed"
g4=$(sed -n 's/^gptq_int4_s=//p' "$tmp/gptq.txt") g8=$(sed -n 's/^gptq_int8_s=//p' "$tmp/gptq.txt")

out=$(table_file quant)
{
    echo "Decode tok/s and quantize seconds: $(runs_caption "$runs"); $threads threads; $(cpu_count) CPUs, $(cpu_name). Perplexity: one evaluation (it does not vary)."
    echo
    echo "| model | kind | file MiB | ppl (trained) | quantize s | decode tok/s | x float |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for m in t r; do
        name=$([ $m = t ] && echo "trained (dim 128, hidden 384, 4 layers)" || echo "110M random")
        for k in $kinds; do
            v=$(var $m "$k")
            eval "q=\$q_$v d=\$d_$v ppl=\${p_$v:--} base=\$d_$(var $m float)"
            awk -v n="$name" -v k="$k" -v mib="$(mib "$tmp/$m.$k.llmt")" -v ppl="$ppl" -v q="$q" -v d="$d" -v b="$base" "$stats_awk"'BEGIN {
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", n, k, mib, ppl, summary("%.1f", q), summary("%.1f", d), summary("%.2fx", ratios(d, b)) }'
        done
    done
    echo
    awk -v g4="$g4" -v g8="$g8" -v t="$threads" -v r="$runs" "$stats_awk"'BEGIN {
        printf "GPTQ solve of one 2048 x 2048 layer, the Hessian given (tests/bench/bench_gptq.c, %d threads, the median (min–max) of %d solves of each, int4 and int8 in turn): int4 g128 %s s, int8 %s s.\n", t, r, summary("%.2f", g4), summary("%.2f", g8) }'
} | tee "$out"

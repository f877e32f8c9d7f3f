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
# best of BENCH_RUNS (default 2), BENCH_THREADS threads (default 2),
# BENCH_STEPS training steps (default 300); the
# float model is measured in the same run as the ratio base.  Then the GPTQ
# solve alone for a 2048 x 2048 layer, its Hessian given (bench_gptq.c).
#   usage: sh tests/bench/quant.sh [TOP]
# The table goes to stdout and TOP/build/bench/quant.md.
set -eu
. "$(dirname "$0")/lib.sh"
threads=$(number BENCH_THREADS 2 1) || exit
runs=$(number BENCH_RUNS 2 1) || exit
steps=$(number BENCH_STEPS 300 1) || exit
need llm-quant llm-train llm-gen llm-tensor
tmpdir
B=$top/bin
helper make_random_model libllm
helper bench_gptq libllm

toks() { sed -n 's/.*(\([0-9.]*\) tok\/s).*/\1/p' "$1" | tail -n 1; }
decode() { # decode CKPT: best tok/s
    all=""
    for _ in $(seq "$runs"); do
        "$B/llm-gen" -m "$1" --ids -p "1 2 3 4 5 6 7 8" -n 128 --temp 0 --threads "$threads" >/dev/null 2>"$tmp/gen.err" ||
            die "llm-gen on $1: $(cat "$tmp/gen.err")"
        t=$(toks "$tmp/gen.err")
        [ -n "$t" ] || die "no tok/s in llm-gen's output on $1: $(cat "$tmp/gen.err")"
        all="$all $t"
    done
    max $all
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
out=$(table_file quant)
{
    echo "| model | kind | file MiB | ppl (trained) | quantize s | decode tok/s | x float |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for m in t r; do
        base=
        for k in $kinds; do
            say "$m $k"
            s0=$(now)
            quantize "$tmp/$m.llmt" "$k" "$tmp/$m.$k.llmt" || die "llm-quant $k failed"
            secs=$(elapsed "$s0" "$(now)" 1)
            ppl=-
            [ $m = t ] && ppl=$(head -c 40000 "$L" | "$B/llm-gen" -m "$tmp/$m.$k.llmt" --eval - -q | sed 's/ppl=\([0-9.]*\).*/\1/')
            tps=$(decode "$tmp/$m.$k.llmt")
            [ -z "$base" ] && base=$tps
            name=$([ $m = t ] && echo "trained (dim 128, hidden 384, 4 layers)" || echo "110M random")
            echo "| $name | $k | $(mib "$tmp/$m.$k.llmt") | $ppl | $secs | $tps | $(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.2f", a / b }') |"
        done
    done
    say "GPTQ solve, 2048 x 2048"
    OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$tmp/bench_gptq" 2048 3 >"$tmp/gptq.txt" ||
        die "bench_gptq failed"
    g4=$(sed -n 's/^gptq_int4_s=//p' "$tmp/gptq.txt") g8=$(sed -n 's/^gptq_int8_s=//p' "$tmp/gptq.txt")
    echo
    echo "GPTQ solve of one 2048 x 2048 layer, the Hessian given (tests/bench/bench_gptq.c, $threads threads, best of 3): int4 g128 $g4 s, int8 $g8 s."
} | tee "$out"

#!/bin/sh
# Decode benchmark, per weight format: llm-gen's tokens/s at batch 1 on
# random-weight checkpoints of llama2.c's stories15M and stories110M shapes,
# in float and quantized by llm-quant, as weight bytes streamed per second
# against the memory bandwidth measured in the same round; the prompt pass
# (prefill) beside it; and batch 8 with continuous batching.  One table, a
# row per shape and format (issue 15's goals; the float rows are issue 4's).
#   usage: sh tests/bench/decode.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_THREADS  threads for llm-gen and the triad (default 2, the issue's setting)
#          BENCH_RUNS     runs per measurement (default 3; see lib.sh)
#          BENCH_SHAPES   which shapes (default "15M 110M")
#          BENCH_FORMATS  which formats (default "f32 int8 int4g32 int4g128"):
#                           f32       the float checkpoint
#                           int8      llm-quant --scheme int8 --cls
#                           int4gG    llm-quant --scheme int4 --group G --cls
#                                     (symmetric, G a multiple of 32)
#                         every linear and the classifier quantized (RTN); a
#                         group that does not divide a shape's widths (128 on
#                         15M's dim 288) leaves that row out
#          BENCH_PROMPTS  prompts in the batch-8 run (default 16: each slot is refilled once)
#          BENCH_TRIAD_MIB  MiB per triad array (default 256)
#          CC             compiler for the helpers (default cc)
#   quick check of the script: BENCH_RUNS=1 BENCH_SHAPES=15M BENCH_FORMATS=int8
#
# Shapes (llama2.c's TinyStories models; vocab 32000, n_kv_heads = heads, the
# classifier tied to the embedding as in those models):
#   15M:  dim 288, hidden 768,  6 layers,  6 heads, seq 256
#   110M: dim 768, hidden 2048, 12 layers, 12 heads, seq 1024
# Checkpoints: tests/bench/make_random_model.c (llm_model_init's random
# weights, an ids-only tokenizer; driven with llm-gen --ids --temp 0),
# quantized once by llm-quant (--cls: the tied classifier becomes an integer
# tensor of its own; the embedding stays float).
# Measurements, each BENCH_RUNS runs in rounds that go across the shapes and
# formats (the triad first in each round) so that load from other users falls
# on all alike; the table gives the median (min–max) of the runs, and of the
# per-round ratios (% of triad: round i's decode against round i's triad;
# prefill/decode, batch8/batch1, one format against another):
#   decode   llm-gen --ids -p "<8 ids>" -n N: its "tokens generated in ... s of
#            decoding (R tok/s)" figure (15M: N = 200, 110M: N = 128)
#   prefill  llm-gen --ids -p "<seq/2 ids>" -n 1: its "prompts ... (R tok/s)"
#            figure, the prompt in one batched pass (128 ids for 15M, 512 for 110M)
#   batch 8  llm-gen --batch --slots 8 --ids -n N with BENCH_PROMPTS prompt
#            lines of 4 to 16 ids: generated tokens over the whole run's
#            seconds, prefills included (its "tok/s overall"); compared with
#            batch 1's figure on the same definition (generated tokens over
#            prefill + decode seconds of the decode run above)
#   triad    tests/bench/bench_triad.c: STREAM's a = b + s c over 3 float
#            arrays of 256 MiB, BENCH_THREADS OpenMP threads, 12 bytes per
#            element; STREAM's figure, the best of 20 repetitions (after one
#            warm-up) of a fraction of a second each, measured at the start
#            of each round
# Weight bytes per token: every matrix a decode step streams, as quant.h
# stores it (the kernels read that layout), the classifier once.  With
# E = L (4 D^2 + 3 D F) + V D weights (q, k, v, o, w1, w2, w3, classifier)
# and R = L (5 D + 2 F) + V output rows:
#   f32       4 E
#   int8      E + 4 R                  1-byte codes, a float scale per row
#   int4 gG   E / 2 + 4 E / G          4-bit codes, a float scale per group
#             (+ E / G                 a 1-byte zero point per group, --asym)
# checked against the records of each checkpoint (llm-tensor ls: the linears'
# codes, scales and zero points and the classifier; the tied embedding for
# f32).  Left out: the embedding lookup (one row), the norm gains and the KV
# cache (on average about 1% of f32's bytes for 110M, 2.5% for 15M at these
# lengths; a larger share of int4's).  GB/s streamed = decode tok/s x those
# bytes; % of triad = that over the triad bandwidth.  The triad counts 12
# bytes per element as STREAM does, but the hardware also reads a before
# writing it (write-allocate): a read-only stream such as decode's can go
# past 100%, and 15M's quantized weights (under 20 MB) partly fit the cache.
#
# The table goes to stdout and to TOP/build/bench/decode.md; progress goes to
# stderr.  A missed goal is reported, not failed (this is not a test); a
# command that fails makes the script exit non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

threads=$(number BENCH_THREADS 2 1) || exit
runs=$(bench_runs) || exit
nprompts=$(number BENCH_PROMPTS 16 1) || exit
triad_mib=$(number BENCH_TRIAD_MIB 256 1) || exit
shapes=${BENCH_SHAPES:-15M 110M}
for s in $shapes; do
    case $s in 15M|110M) ;; *) bad "BENCH_SHAPES: '$s' is not 15M or 110M";; esac
done
formats=${BENCH_FORMATS:-f32 int8 int4g32 int4g128}
for f in $formats; do
    case $f in
        f32|int8) ;;
        int4g[1-9]*)
            g=${f#int4g}
            case $g in *[!0-9]*) bad "BENCH_FORMATS: '$f': the group is not a number";; esac
            [ $((g % 32)) -eq 0 ] || bad "BENCH_FORMATS: '$f': the group is not a multiple of 32" ;;
        *) bad "BENCH_FORMATS: '$f' is not f32, int8 or int4gG (G a multiple of 32)" ;;
    esac
done

need llm-gen llm-quant llm-tensor
tmpdir

# The OpenMP settings llm-gen runs under, as the environment gives them
# (llm-gen sets none: its OpenBLAS runs on OpenMP's threads, one pool).
wait_policy=${OMP_WAIT_POLICY:-unset}
spin=${GOMP_SPINCOUNT:-unset}

private_copy llm-gen
say "compiling the helpers"
helper bench_triad openmp
helper make_random_model libllm

# shape NAME: sets D F L H V T (the model), N (decode tokens), NB (batch-8
# tokens per prompt), PP (prefill prompt length).
shape() {
    case $1 in
        15M) D=288 F=768 L=6 H=6 V=32000 T=256 N=200 NB=128 PP=128;;
        110M) D=768 F=2048 L=12 H=12 V=32000 T=1024 N=128 NB=64 PP=512;;
    esac
}

ids() { seq "$1" "$2" | tr '\n' ' '; }

# streamed FORMAT: the weight bytes per token of the current shape in FORMAT,
# from the formula in the header.
streamed() {
    awk -v f="$1" -v D="$D" -v F="$F" -v L="$L" -v V="$V" 'BEGIN {
        E = L * (4 * D * D + 3 * D * F) + V * D
        R = L * (5 * D + 2 * F) + V
        if (f == "f32") b = 4 * E
        else if (f == "int8") b = E + 4 * R
        else { g = substr(f, 6) + 0; b = E / 2 + 4 * E / g }
        printf "%.0f\n", b
    }'
}
# stored CKPT: the bytes of CKPT's records that a decode step streams, as
# llm-tensor ls lists them ("NAME DTYPE [SHAPE] BYTES ..."): every layer's
# q, k, v, o, w1, w2, w3 (codes, .scale, .zero) and the classifier, or the
# embedding when the classifier is tied to it.
stored() {
    "$top/bin/llm-tensor" ls "$1" | awk '
        $1 ~ /^layers\.[0-9]+\.(attn\.w[qkvo]|mlp\.w[123])(\.scale|\.zero)?$/ { b += $4 }
        $1 ~ /^cls(\.scale|\.zero)?$/ { b += $4; cls = 1 }
        $1 == "tok_emb" { emb = $4 }
        END { printf "%.0f\n", b + (cls ? 0 : emb) }'
}
# var SHAPE.FORMAT: the suffix of the shell variables that hold its values.
var() { echo "$1" | tr . _; }

# The checkpoints (a float one per shape, quantized into each format whose
# group divides the widths), their bytes per token, and the prompts.
pairs="" left_out=""
for s in $shapes; do
    shape "$s"
    say "$s: random checkpoint (dim $D, hidden $F, $L layers, $H heads, vocab $V, seq $T)"
    "$tmp/make_random_model" "$tmp/$s.f32.llmt" $D $F $L $H $V $T > /dev/null ||
        die "make_random_model failed on $s"
    for f in $formats; do
        case $f in
            f32) ;;
            int8) "$top/bin/llm-quant" -m "$tmp/$s.f32.llmt" -o "$tmp/$s.$f.llmt" --scheme int8 --cls -q ||
                      die "llm-quant $f failed on $s" ;;
            int4g*)
                g=${f#int4g}
                if [ $((D % g)) -ne 0 ] || [ $((F % g)) -ne 0 ]; then
                    say "$s: $f left out: group $g does not divide both dim $D and hidden $F"
                    left_out="$left_out $s $f (group $g does not divide both dim $D and hidden $F);"
                    continue
                fi
                "$top/bin/llm-quant" -m "$tmp/$s.f32.llmt" -o "$tmp/$s.$f.llmt" --scheme int4 --group "$g" --cls -q ||
                    die "llm-quant $f failed on $s" ;;
        esac
        b=$(streamed "$f") c=$(stored "$tmp/$s.$f.llmt")
        [ "$b" = "$c" ] || die "$s $f: the formula gives $b bytes per token, the checkpoint's records $c"
        eval "w_$(var "$s.$f")=\$b"
        pairs="$pairs $s.$f"
    done
    # every stdin line is a prompt of 4 to 16 ids
    i=1
    : > "$tmp/$s.prompts"
    while [ "$i" -le "$nprompts" ]; do
        a=$((100 + 37 * i)) len=$((4 + (5 * i) % 13))
        echo "$(ids $a $((a + len - 1)))" >> "$tmp/$s.prompts"
        i=$((i + 1))
    done
done
[ -n "$pairs" ] || bad "no shape and format to run (BENCH_SHAPES '$shapes', BENCH_FORMATS '$formats')"

# gen OUT ARGS...: runs llm-gen, its stderr summary to OUT; fails loudly.
gen() {
    out=$1
    shift
    "$tmp/llm-gen" "$@" --temp 0 --threads "$threads" > "$tmp/gen.stdout" 2> "$out" ||
        die "llm-gen $* failed: $(cat "$out")"
}
# gen_summary FILE: the numbers of llm-gen's summary line "prompt[s] P
# tokens in A s (R tok/s); G tokens generated in B s of decoding (S
# tok/s)[; ... tok/s overall]": prints "P A R G B S".
gen_summary() {
    sed -n 's/^llm-gen: prompts* \([0-9]*\) tokens* in \([0-9.]*\) s (\([0-9.]*\) tok\/s); \([0-9]*\) tokens* generated in \([0-9.]*\) s of decoding (\([0-9.]*\) tok\/s).*/\1 \2 \3 \4 \5 \6/p' "$1" |
        head -n 1
}

# measure KIND ROUND: KIND "triad" appends the triad's GB/s to triads; KIND
# SHAPE.FORMAT decodes, prefills and runs batch 8 on that checkpoint once,
# appending to d_, p_, b1_ and b8_ (var SHAPE.FORMAT).
triads=""
measure() {
    if [ "$1" = triad ]; then
        say "triad with $threads threads, 3 x $triad_mib MiB, run $2 of $runs"
        "$tmp/bench_triad" "$threads" "$triad_mib" 20 > "$tmp/triad.out" || die "bench_triad failed"
        t=$(kv triad_gbs "$tmp/triad.out")
        append triads "$t"
        say "triad: $t GB/s"
        return
    fi
    s=${1%%.*} v=$(var "$1")
    shape "$s"
    m="$tmp/$1.llmt"

    say "$1: decode, run $2 of $runs (8-id prompt, $N tokens)"
    gen "$tmp/e" -m "$m" --ids -p "$(ids 1 8)" -n "$N"
    # shellcheck disable=SC2046 # six numbers
    set -- "$1" $(gen_summary "$tmp/e")
    [ $# -eq 7 ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
    [ "$5" -eq "$N" ] || die "$1 decode: $5 tokens generated, $N asked for"
    append "d_$v" "$7"
    append "b1_$v" "$(awk -v g="$5" -v a="$3" -v b="$6" 'BEGIN { printf "%.2f", g / (a + b) }')"
    say "$1: decode $7 tok/s"

    say "$1: prefill ($PP-id prompt)"
    gen "$tmp/e" -m "$m" --ids -p "$(ids 1 "$PP")" -n 1
    # shellcheck disable=SC2046 # six numbers
    set -- "$1" $(gen_summary "$tmp/e")
    [ $# -eq 7 ] && [ "$2" -eq "$PP" ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
    append "p_$v" "$4"
    say "$1: prefill $4 tok/s"

    say "$1: batch 8 ($nprompts prompts, $NB tokens each)"
    gen "$tmp/e" -m "$m" --batch --slots 8 --ids -n "$NB" < "$tmp/$s.prompts"
    # shellcheck disable=SC2046 # six numbers
    set -- "$1" $(gen_summary "$tmp/e")
    [ $# -eq 7 ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
    [ "$5" -eq $((NB * nprompts)) ] || die "$1 batch 8: $5 tokens generated, $((NB * nprompts)) asked for"
    [ "$(wc -l < "$tmp/gen.stdout")" -eq "$nprompts" ] || die "$1 batch 8: not $nprompts output lines"
    r=$(awk -v g="$5" -v a="$3" -v b="$6" 'BEGIN { printf "%.2f", g / (a + b) }')
    append "b8_$v" "$r"
    say "$1: batch 8 $r tok/s overall"
}

load0=$(load_average)
# shellcheck disable=SC2086 # the kinds, one word each
in_turn measure triad $pairs
load1=$(load_average)

rows=""
for p in $pairs; do
    s=${p%%.*} v=$(var "$p")
    shape "$s"
    eval "rows=\"\${rows}$s|${p#*.}|\$w_$v|\$d_$v|\$p_$v|\$b1_$v|\$b8_$v|$PP|$N|$NB
\""
done

# ---- the report ----
blas=$(pkg-config --modversion openblas 2>/dev/null || echo "?")
md=$(table_file decode)
{
printf '%s' "$rows" | awk -F'|' -v triads="$triads" -v threads="$threads" \
    -v ncpu="$(cpu_count)" -v cpu="$(cpu_name)" -v runs="$(runs_caption "$runs")" -v load0="$load0" -v load1="$load1" \
    -v wp="$wait_policy" -v spin="$spin" -v shapes="$shapes" -v left_out="$left_out" \
    -v np="$nprompts" -v blas="$blas" -v mib="$triad_mib" "$stats_awk"'
{
    n++; s[n] = $1; f[n] = $2; wb[n] = $3; dec[n] = $4; pre[n] = $5; b1[n] = $6; b8[n] = $7; pp[n] = $8; nd[n] = $9; nb[n] = $10
    row[$1, $2] = n
}
function fname(x) { return x == "f32" ? "F32" : x == "int8" ? "int8" : "int4 g" substr(x, 6) }
# goal(TEXT, RATIOS, LEAST, FORMAT): a goal line, met when the median of the
# per-round RATIOS is at least LEAST; they are shown with FORMAT.
function goal(text, l, least, fmt) {
    printf "- Goal: %s: %s (%s)\n", text, (median(l) >= least ? "yes" : "no"), summary(fmt, l)
}
END {
    printf "Decoding with llm-gen on random-weight checkpoints of llama2.c'"'"'s stories shapes (vocab 32000, tied classifier), "
    printf "in float and quantized by llm-quant (every linear and the classifier, round to nearest), "
    printf "%d threads; %d CPUs, %s; OpenBLAS %s; %s, the rounds going across shapes and formats ", threads, ncpu, cpu, blas, runs
    printf "(wall clock on a shared machine: other load adds noise; load average %s at the start, %s at the end). ", load0, load1
    printf "llm-gen ran with OMP_WAIT_POLICY %s and GOMP_SPINCOUNT %s from the environment.\n\n", wp, spin
    print "| shape | format | MB streamed / token | decode tok/s | GB/s streamed | % of triad | prefill tok/s | prefill/decode | batch-8 tok/s | batch8/batch1 |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        gbs[i] = scaled(dec[i], wb[i] / 1e9)
        printf "| %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n", s[i], fname(f[i]), wb[i] / 1e6, summary("%.1f", dec[i]),
            summary("%.2f", gbs[i]), summary("%.0f%%", scaled(ratios(gbs[i], triads), 100)), summary("%.0f", pre[i]),
            summary("%.1fx", ratios(pre[i], dec[i])), summary("%.1f", b8[i]), summary("%.2fx", ratios(b8[i], b1[i]))
    }
    print ""
    printf "- Triad (STREAM a = b + s c, 3 float arrays of %d MiB, 12 bytes per element, %d threads): %s GB/s, measured at the start of each round (STREAM'"'"'s figure: the best of 20 short repetitions):%s; %% of triad is each round'"'"'s decode against that round'"'"'s triad. STREAM'"'"'s count leaves out the write-allocate read of a, so a read-only stream such as decode'"'"'s can pass 100%%%s.\n", mib, threads, summary("%.2f", triads), triads, (index(shapes, "15M") ? "; 15M'"'"'s quantized weights partly fit the cache" : "")
    printf "- MB streamed / token (10^6 bytes): the weight bytes a decode step reads, as lib/quant.h stores them, with E = L (4 D^2 + 3 D F) + V D weights (q, k, v, o, w1, w2, w3 and the classifier once) and R = L (5 D + 2 F) + V output rows: F32 4 E; int8 E + 4 R (1-byte codes, a float scale per row); int4 gG E/2 + 4 E/G (4-bit codes, a float scale per group of G; an asymmetric format would add E/G zero-point bytes); checked against the checkpoints'"'"' records. Exactly:"
    for (i = 1; i <= n; i++) printf " %s %s %.0f;", s[i], fname(f[i]), wb[i]
    printf " not the embedding row, the norm gains or the KV cache. GB/s streamed = decode tok/s x those bytes.\n"
    ns = split(shapes, sh, " ")
    for (j = 1; j <= ns; j++) for (i = 1; i <= n; i++) if (s[i] == sh[j]) {
        printf "- %s: decode = an 8-id prompt then %d tokens, llm-gen'"'"'s decoding tok/s; prefill = a %d-id prompt in one pass, llm-gen'"'"'s prompt tok/s; batch 8 = %d prompts of 4-16 ids, %d tokens each, through 8 slots with continuous batching: all generated tokens over the whole run (prefills included), against batch 1'"'"'s on the same definition.\n", s[i], nd[i], pp[i], np, nb[i]
        break
    }
    if (sub(/;$/, ".", left_out)) printf "- Left out:%s\n", left_out
    printf "- Quoted by issue 15 for this kind of machine (AMD EPYC Zen3, 2 cores, AVX2+FMA), not measured here: llama.cpp on the 110M shape, random weights, classifier quantized too, 2 threads: decode F32 61-65 tok/s, Q8_0 147-151, Q4_0 (every tensor) 243-252 (about 50%% of the triad); prefill of 512 tokens F32 566 tok/s, Q8_0 572, Q4_0 623.\n"
    printf "- Quoted by issue 4 for an earlier machine of this kind, not measured here: triad 18-22 GB/s with 2 threads; llama2.c run.c about 38 tok/s on 110M (75-80%% of the bandwidth), llama.cpp F32 about 39 tok/s (about 90%%), its prompt pass about 415 tok/s.\n"
    print ""
    printf "- Goals (issue 15), each judged on the median of the per-round ratios, shown as median (min–max): on the 110M shape; float prefill/decode and batch 8 on every shape.\n"
    split("f32 0.9 int8 0.8 int4g32 0.65 int4g128 0.7", bw, " ")
    for (j = 1; j < 8; j += 2) if (("110M", bw[j]) in row) {
        i = row["110M", bw[j]]
        goal(sprintf("110M %s decode streams at least %d%% of the triad", fname(bw[j]), 100 * bw[j + 1]), scaled(ratios(gbs[i], triads), 100), 100 * bw[j + 1], "%.0f%%")
    }
    if (("110M", "int8") in row) for (i = 1; i <= n; i++) if (s[i] == "110M" && f[i] ~ /^int4/)
        goal(sprintf("110M %s decode at least 1.6x int8'"'"'s tok/s", fname(f[i])), ratios(dec[i], dec[row["110M", "int8"]]), 1.6, "%.2fx")
    if (("110M", "f32") in row) for (i = 1; i <= n; i++) if (s[i] == "110M" && f[i] != "f32")
        goal(sprintf("110M %s prefill at least 1.0x F32 prefill tok/s", fname(f[i])), ratios(pre[i], pre[row["110M", "f32"]]), 1.0, "%.2fx")
    for (i = 1; i <= n; i++) if (f[i] == "f32")
        goal(sprintf("%s F32 prefill at least 10x decode tok/s", s[i]), ratios(pre[i], dec[i]), 10, "%.1fx")
    for (i = 1; i <= n; i++)
        goal(sprintf("%s %s batch 8 at least 4x batch 1 tok/s", s[i], fname(f[i])), ratios(b8[i], b1[i]), 4, "%.2fx")
}'
} > "$md"
cat "$md"
say "table written to $md"

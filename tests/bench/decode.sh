#!/bin/sh
# Decode benchmark: llm-gen's tokens/s at batch 1 on random-weight
# checkpoints of llama2.c's stories15M and stories110M shapes, as weight bytes
# streamed per second against the memory bandwidth measured in the same run;
# the prompt pass (prefill) beside it; and batch 8 with continuous batching.
#   usage: sh tests/bench/decode.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_THREADS  threads for llm-gen and the triad (default 2, the issue's setting)
#          BENCH_RUNS     runs per measurement (default 3; see lib.sh)
#          BENCH_SHAPES   which shapes (default "15M 110M")
#          BENCH_PROMPTS  prompts in the batch-8 run (default 16: each slot is refilled once)
#          BENCH_TRIAD_MIB  MiB per triad array (default 256)
#          CC             compiler for the helpers (default cc)
#
# Shapes (llama2.c's TinyStories models; vocab 32000, n_kv_heads = heads, the
# classifier tied to the embedding as in those models):
#   15M:  dim 288, hidden 768,  6 layers,  6 heads, seq 256
#   110M: dim 768, hidden 2048, 12 layers, 12 heads, seq 1024
# Checkpoints: tests/bench/make_random_model.c (llm_model_init's random
# weights, an ids-only tokenizer; driven with llm-gen --ids --temp 0).
# Measurements, each BENCH_RUNS runs in rounds that go across the shapes and
# kinds so that load from other users falls on all alike; the table gives the
# median (min–max) of the runs, and of the per-round ratios (% of triad:
# round i's decode against round i's triad; prefill/decode, batch8/batch1):
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
# Weight bytes per token = 4 x (L (4 D^2 + 3 D F) + V D): every matrix a
# decode step streams, the tied classifier once; the embedding lookup (one
# row), the norm gains and the KV cache (on average about 1% more for 110M,
# 2.5% for 15M at these lengths) are left out.  GB/s streamed = decode tok/s
# x those bytes; % of triad = that over the triad bandwidth.  The triad
# counts 12 bytes per element as STREAM does, but the hardware also reads a
# before writing it (write-allocate): a read-only stream such as decode's can
# go past 100%.
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

need llm-gen
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

# The checkpoints, and each shape's weight bytes per token.
for s in $shapes; do
    shape "$s"
    say "$s: random checkpoint (dim $D, hidden $F, $L layers, $H heads, vocab $V, seq $T)"
    "$tmp/make_random_model" "$tmp/$s.llmt" $D $F $L $H $V $T > "$tmp/$s.info" ||
        die "make_random_model failed on $s"
    # every stdin line is a prompt of 4 to 16 ids
    i=1
    : > "$tmp/$s.prompts"
    while [ "$i" -le "$nprompts" ]; do
        a=$((100 + 37 * i)) len=$((4 + (5 * i) % 13))
        echo "$(ids $a $((a + len - 1)))" >> "$tmp/$s.prompts"
        i=$((i + 1))
    done
done

triad() {
    "$tmp/bench_triad" "$threads" "$triad_mib" 20 > "$tmp/triad.out" || die "bench_triad failed"
    kv triad_gbs "$tmp/triad.out"
}

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

load0=$(load_average)
triads=""
dec="" pre="" b1="" b8=""   # "shape=value" lists
i=1
while [ "$i" -le "$runs" ]; do
    say "triad with $threads threads, 3 x $triad_mib MiB, run $i of $runs"
    t=$(triad) || exit 1
    triads="$triads $t"
    say "triad: $t GB/s"
    for s in $shapes; do
        shape "$s"
        m="$tmp/$s.llmt"

        say "$s: decode, run $i of $runs (8-id prompt, $N tokens)"
        gen "$tmp/e" -m "$m" --ids -p "$(ids 1 8)" -n "$N"
        # shellcheck disable=SC2046 # six numbers
        set -- $(gen_summary "$tmp/e")
        [ $# -eq 6 ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
        [ "$4" -eq "$N" ] || die "$s decode: $4 tokens generated, $N asked for"
        dec="$dec $s=$6"
        b1="$b1 $s=$(awk -v g="$4" -v a="$2" -v b="$5" 'BEGIN { printf "%.2f", g / (a + b) }')"
        say "$s: decode $6 tok/s"

        say "$s: prefill, run $i of $runs ($PP-id prompt)"
        gen "$tmp/e" -m "$m" --ids -p "$(ids 1 "$PP")" -n 1
        # shellcheck disable=SC2046 # six numbers
        set -- $(gen_summary "$tmp/e")
        [ $# -eq 6 ] && [ "$1" -eq "$PP" ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
        pre="$pre $s=$3"
        say "$s: prefill $3 tok/s"

        say "$s: batch 8, run $i of $runs ($nprompts prompts, $NB tokens each)"
        gen "$tmp/e" -m "$m" --batch --slots 8 --ids -n "$NB" < "$tmp/$s.prompts"
        # shellcheck disable=SC2046 # six numbers
        set -- $(gen_summary "$tmp/e")
        [ $# -eq 6 ] || die "cannot parse llm-gen's summary: $(cat "$tmp/e")"
        [ "$4" -eq $((NB * nprompts)) ] || die "$s batch 8: $4 tokens generated, $((NB * nprompts)) asked for"
        [ "$(wc -l < "$tmp/gen.stdout")" -eq "$nprompts" ] || die "$s batch 8: not $nprompts output lines"
        r=$(awk -v g="$4" -v a="$2" -v b="$5" 'BEGIN { printf "%.2f", g / (a + b) }')
        b8="$b8 $s=$r"
        say "$s: batch 8 $r tok/s overall"
    done
    i=$((i + 1))
done
load1=$(load_average)

# values NAME LIST: the values of NAME=... in LIST, one per round.
values() {
    n=$1
    shift
    printf '%s\n' "$@" | sed -n "s/^$n=//p" | tr '\n' ' '
}

rows=""
for s in $shapes; do
    shape "$s"
    rows="$rows$s|$(kv weight_bytes "$tmp/$s.info")|$(values "$s" $dec)|$(values "$s" $pre)|$(values "$s" $b1)|$(values "$s" $b8)|$PP|$N|$NB
"
done

# ---- the report ----
blas=$(pkg-config --modversion openblas 2>/dev/null || echo "?")
md=$(table_file decode)
{
printf '%s' "$rows" | awk -F'|' -v triads="$triads" -v threads="$threads" \
    -v ncpu="$(cpu_count)" -v cpu="$(cpu_name)" -v runs="$(runs_caption "$runs")" -v load0="$load0" -v load1="$load1" \
    -v wp="$wait_policy" -v spin="$spin" \
    -v np="$nprompts" -v blas="$blas" -v mib="$triad_mib" "$stats_awk"'
{
    n++; s[n] = $1; wb[n] = $2; dec[n] = $3; pre[n] = $4; b1[n] = $5; b8[n] = $6; pp[n] = $7; nd[n] = $8; nb[n] = $9
}
END {
    printf "Decoding with llm-gen (fp32) on random-weight checkpoints of llama2.c'"'"'s stories shapes (vocab 32000, tied classifier), "
    printf "%d threads; %d CPUs, %s; OpenBLAS %s; %s, the rounds going across shapes and kinds ", threads, ncpu, cpu, blas, runs
    printf "(wall clock on a shared machine: other load adds noise; load average %s at the start, %s at the end). ", load0, load1
    printf "llm-gen ran with OMP_WAIT_POLICY %s and GOMP_SPINCOUNT %s from the environment.\n\n", wp, spin
    print "| shape | weights MiB | decode tok/s | GB/s streamed | % of triad | prefill tok/s | prefill/decode | batch-8 tok/s | batch8/batch1 |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        gbs[i] = scaled(dec[i], wb[i] / 1e9)
        printf "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", s[i], wb[i] / 1048576, summary("%.1f", dec[i]),
            summary("%.2f", gbs[i]), summary("%.0f%%", scaled(ratios(gbs[i], triads), 100)), summary("%.0f", pre[i]),
            summary("%.1fx", ratios(pre[i], dec[i])), summary("%.1f", b8[i]), summary("%.2fx", ratios(b8[i], b1[i]))
    }
    print ""
    printf "- Triad (STREAM a = b + s c, 3 float arrays of %d MiB, 12 bytes per element, %d threads): %s GB/s, measured at the start of each round (STREAM'"'"'s figure: the best of 20 short repetitions):%s; %% of triad is each round'"'"'s decode against that round'"'"'s triad. STREAM'"'"'s count leaves out the write-allocate read of a, so a read-only stream such as decode'"'"'s can pass 100%%.\n", mib, threads, summary("%.2f", triads), triads
    printf "- weights: the bytes a decode step streams, 4 x (L (4 D^2 + 3 D F) + V D): the q, k, v, o, w1, w2, w3 matrices and the tied classifier once; not the embedding row, the norm gains or the KV cache (on average about 1%% more for 110M, 2.5%% for 15M at these lengths). GB/s streamed = decode tok/s x those bytes.\n"
    for (i = 1; i <= n; i++)
        printf "- %s: decode = an 8-id prompt then %d tokens, llm-gen'"'"'s decoding tok/s; prefill = a %d-id prompt in one pass, llm-gen'"'"'s prompt tok/s; batch 8 = %d prompts of 4-16 ids, %d tokens each, through 8 slots with continuous batching: all generated tokens over the whole run (prefills included), against batch 1'"'"'s on the same definition (%s tok/s).\n", s[i], nd[i], pp[i], np, nb[i], summary("%.1f", b1[i])
    printf "- Quoted in the issue for this kind of machine, not measured here: triad 18-22 GB/s with 2 threads; llama2.c run.c about 38 tok/s on 110M (75-80%% of the bandwidth), llama.cpp F32 about 39 tok/s (about 90%%), its prompt pass about 415 tok/s.\n"
    print ""
    printf "- Goals are judged on the median of the per-round ratios.\n"
    for (i = 1; i <= n; i++) {
        r = median(ratios(gbs[i], triads))
        if (s[i] == "110M") printf "- Goal: 110M decode at least 90%% of the triad bandwidth in fp32: %s (%.1f%%: %.2f of %.2f GB/s, medians)\n", (r >= 0.9 ? "yes" : "no"), 100 * r, median(gbs[i]), median(triads)
    }
    for (i = 1; i <= n; i++) {
        r = median(ratios(pre[i], dec[i]))
        printf "- Goal: %s prefill at least 10x decode tok/s: %s (%.1fx: %.0f vs %.1f, medians)\n", s[i], (r >= 10 ? "yes" : "no"), r, median(pre[i]), median(dec[i])
    }
    for (i = 1; i <= n; i++) {
        r = median(ratios(b8[i], b1[i]))
        printf "- Goal: %s batch 8 at least 4x batch 1 tok/s: %s (%.2fx: %.1f vs %.1f, medians)\n", s[i], (r >= 4 ? "yes" : "no"), r, median(b8[i]), median(b1[i])
    }
}'
} > "$md"
cat "$md"
say "table written to $md"

#!/bin/sh
# Training benchmark: llm-train's tokens/s, model-FLOPs utilisation and peak
# memory beside the same model in PyTorch on the CPU, and the peak memory of
# one attention head's forward + backward pass beside the textbook version.
#   usage: sh tests/bench/train.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_THREADS threads for both tools (default: the CPU count)
#          BENCH_RUNS    runs per tool and config (default 3; see lib.sh)
#          BENCH_WARMUP  untimed steps at the start of each run (default 3)
#          BENCH_STEPS   timed steps per run: tiny (default 10)
#          BENCH_STEPS_SMALL  timed steps per run: small (default 8)
#          BENCH_ATTN_T  sequence lengths of the attention table (default "1024 4096 16384")
#          BENCH_ATTN_LIMIT  seconds before an attention case is given up as too slow (default 120)
#          PYTHON        the interpreter with torch (default /usr/bin/python3)
#          CC            compiler for the helpers (default cc)
#
# Configs (vocab 258 on both sides: llm-train's byte tokenizer is 256 bytes +
# BOS + EOS; seq 256, batch 8, classifier tied to the embedding):
#   tiny:  dim 128, 4 layers, 4 heads, hidden 352
#   small: dim 288, 6 layers, 6 heads, hidden 768
# Ours is bin/llm-train (AdamW lr 1e-3 wd 0.1, clipping 1.0) on a text corpus;
# PyTorch is tests/bench/torch_llama.py, the same model, optimizer and
# clipping on random token batches.  Both run with the same thread count;
# torch with OMP_WAIT_POLICY=PASSIVE (it is faster with it: about 2x on tiny
# on a 2-CPU machine; its OpenMP threads otherwise spin beside its BLAS's),
# llm-train with the environment it is given (its BLAS runs on OpenMP's own
# threads: one pool).
# tokens/s: timed steps x batch x seq / their wall-clock seconds, after the
# warm-up steps (ours: summed from the per-step times in llm-train --log).
# Peak RSS: the process's ru_maxrss from wait4 (tests/bench/maxrss.c), the
# same for both.  MFU: tokens/s x FLOPs per token / the cblas_sgemm peak
# measured at the start of each round (tests/bench/bench_sgemm.c: its peak,
# the best rate of many short products, as MFU's definition asks), round i's
# tokens/s over round i's peak.
# FLOPs per token: 6 x matrix parameters
# (L (4 D^2 + 3 D F) + V D, the tied classifier counted once, the embedding
# lookup not) + 6 L T D (attention scores and weighted sums, causal).
# Runs go in rounds (sgemm; tiny ours, torch; small ours, torch) so load
# from other users of the machine falls on all alike; the table gives the
# median (min–max) of each figure over the rounds, and of the per-round
# ratios (ours/torch speed, MFU); peak RSS is the largest of the runs.
#
# The tables go to stdout and to TOP/build/bench/train.md; progress goes to
# stderr.  A missed goal is reported, not failed (this is not a test); a
# command that fails makes the script exit non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

py=${PYTHON:-/usr/bin/python3}
threads=$(number BENCH_THREADS "$(cpu_count)" 1) || exit
runs=$(bench_runs) || exit
warm=$(number BENCH_WARMUP 3) || exit
steps_tiny=$(number BENCH_STEPS 10 1) || exit
steps_small=$(number BENCH_STEPS_SMALL 8 1) || exit
attn_limit=$(number BENCH_ATTN_LIMIT 120) || exit
attn_t=${BENCH_ATTN_T:-1024 4096 16384}
batch=8 seq=256   # the issue's configs

need llm-train
tmpdir
private_copy llm-train
say "compiling the helpers"
helper maxrss
helper bench_sgemm blas
helper bench_attn_mem libllm

have_torch=0
torch_note=""
if "$py" -c 'import torch' >/dev/null 2>&1; then
    have_torch=1
else
    torch_note="PyTorch is not importable by $py (Debian: apt-get install python3-torch): only our numbers are shown"
    say "$torch_note"
fi

# The corpus for llm-train: the licence texts, or random bytes, at least 512 KiB.
data="$tmp/corpus.txt"
cat /usr/share/common-licenses/* > "$data" 2>/dev/null || :
corpus="the texts in /usr/share/common-licenses"
if [ "$(wc -c < "$data")" -lt 65536 ]; then
    head -c 1048576 /dev/urandom > "$data"
    corpus="1 MiB of random bytes"
fi
while [ "$(wc -c < "$data")" -lt 524288 ]; do
    cat "$data" "$data" > "$tmp/c2" && mv "$tmp/c2" "$data"
done

# Peak GFLOP/s of cblas_sgemm with $threads threads.
sgemm_peak() {
    "$tmp/bench_sgemm" "$threads" 1024 2048 > "$tmp/sgemm.out" || die "bench_sgemm failed"
    sed -n 's/^peak_gflops=\([0-9.]*\).*/\1/p' "$tmp/sgemm.out"
}
load0=$(load_average)

# run_ours NAME DIM LAYERS HEADS HIDDEN STEPS: prints "tokens/s rss_kib".
run_ours() {
    log="$tmp/$1.tsv"
    rm -f "$log"
    "$tmp/maxrss" "$tmp/rss" "$tmp/llm-train" --data "$data" --out "$tmp/model.llmt" \
        --dim "$2" --layers "$3" --heads "$4" --hidden "$5" --seq "$seq" --batch "$batch" --tie \
        --steps $((warm + $6)) --eval-every 0 --threads "$threads" --log "$log" -q ||
        die "llm-train failed on $1"
    rm -f "$tmp/model.llmt"
    tps=$(awk -F"\t" -v w="$warm" -v bt=$((batch * seq)) 'NR > 1 && $1 > w && $5 > 0 { n++; s += bt / $5 }
        END { if (n > 0 && s > 0) printf "%.1f", n * bt / s }' "$log")
    [ -n "$tps" ] || die "no timed steps in llm-train's log for $1"
    echo "$tps $(kv maxrss_kib "$tmp/rss")"
}
# run_torch NAME DIM LAYERS HEADS HIDDEN STEPS: prints "tokens/s rss_kib import_rss_kib".
run_torch() {
    OMP_WAIT_POLICY=PASSIVE "$tmp/maxrss" "$tmp/rss" "$py" "$top/tests/bench/torch_llama.py" --vocab 258 \
        --dim "$2" --layers "$3" --heads "$4" --hidden "$5" --seq "$seq" --batch "$batch" \
        --warmup "$warm" --steps "$6" --threads "$threads" > "$tmp/torch.out" ||
        die "torch_llama.py failed on $1"
    echo "$(kv tokens_per_s "$tmp/torch.out") $(kv maxrss_kib "$tmp/rss") $(kv import_rss_kib "$tmp/torch.out")"
}
# config NAME: sets D L H F (the model), K (timed steps) and fpt (FLOPs per token).
config() {
    case $1 in
        tiny) D=128 L=4 H=4 F=352 K=$steps_tiny;;
        small) D=288 L=6 H=6 F=768 K=$steps_small;;
    esac
    fpt=$(awk -v D=$D -v L=$L -v F=$F -v T=$seq 'BEGIN { V = 258
        printf "%.0f", 6 * (L * (4 * D * D + 3 * D * F) + V * D) + 6 * L * T * D }')
}

# Each round: the sgemm peak, then each config, ours then torch.  The lists
# keep one value per round.
configs="tiny small"
peaks=""
for cfg in $configs; do eval "o_tps_$cfg='' o_rss_$cfg='' t_tps_$cfg='' t_rss_$cfg=''"; done
import_rss=""
attention=""
i=1
while [ "$i" -le "$runs" ]; do
    say "cblas_sgemm peak with $threads threads, run $i of $runs"
    p=$(sgemm_peak) || exit 1
    say "cblas_sgemm: $p GFLOP/s"
    peaks="$peaks $p"
    for cfg in $configs; do
        config "$cfg"
        say "$cfg / ours: run $i of $runs ($warm + $K steps)"
        r=$(run_ours "$cfg" $D $L $H $F $K) || exit 1
        set -- $r
        eval "o_tps_$cfg=\"\$o_tps_$cfg $1\" o_rss_$cfg=\"\$o_rss_$cfg $2\""
        say "$cfg / ours: $1 tokens/s, peak RSS $(($2 / 1024)) MiB"
        if [ "$have_torch" = 1 ]; then
            say "$cfg / torch: run $i of $runs ($warm + $K steps)"
            r=$(run_torch "$cfg" $D $L $H $F $K) || exit 1
            set -- $r
            eval "t_tps_$cfg=\"\$t_tps_$cfg $1\" t_rss_$cfg=\"\$t_rss_$cfg $2\""
            import_rss=$3
            say "$cfg / torch: $1 tokens/s, peak RSS $(($2 / 1024)) MiB"
        fi
    done
    i=$((i + 1))
done
rows=""    # config|tool|tokens/s...|rss_kib|flops_per_token
for cfg in $configs; do
    config "$cfg"
    eval "rows=\"\${rows}$cfg|ours|\$o_tps_$cfg|\$(max \$o_rss_$cfg)|$fpt
\""
    if [ "$have_torch" = 1 ]; then
        eval "rows=\"\${rows}$cfg|PyTorch|\$t_tps_$cfg|\$(max \$t_rss_$cfg)|$fpt
\""
    fi
done
if [ "$have_torch" = 1 ]; then
    attention=$(kv attention "$tmp/torch.out")
    tver=$(kv torch "$tmp/torch.out")
fi
load1=$(load_average)

say "attention memory: T = $attn_t (time limit $attn_limit s per case)"
"$tmp/bench_attn_mem" -l "$attn_limit" $attn_t > "$tmp/attn.out" || die "bench_attn_mem failed"

# ---- the report ----
md=$(table_file train)

{
printf '%s' "$rows" | awk -F'|' -v peaks="$peaks" -v load0="$load0" -v load1="$load1" -v threads="$threads" \
    -v ncpu="$(cpu_count)" -v cpu="$(cpu_name)" -v runs="$(runs_caption "$runs")" -v warm="$warm" \
    -v kt="$steps_tiny" -v ks="$steps_small" -v corpus="$corpus" -v attn="$attention" \
    -v tver="${tver:-}" -v irss="$import_rss" -v tnote="$torch_note" "$stats_awk"'
{
    n++; c[n] = $1; t[n] = $2; tps[$1, $2] = $3; rss[$1, $2] = $4; fpt[$1] = $5
}
END {
    printf "Training, vocab 258 (our byte tokenizer: 256 bytes + BOS + EOS, on both sides), seq 256, batch 8, "
    printf "tied classifier, AdamW + clipping; %d threads for both tools; %d CPUs, %s. ", threads, ncpu, cpu
    printf "tokens/s over %d (tiny) or %d (small) steps after %d warm-up steps, %s ", kt, ks, warm, runs
    printf "(wall clock on a shared machine: other load adds noise; load average %s at the start, %s at the end of the training runs); ", load0, load1
    printf "peak RSS: the process'"'"'s ru_maxrss, the largest of the runs.\n\n"
    if (tnote != "") printf "Note: %s.\n\n", tnote
    print "| config | tool | tokens/s | MFU | peak RSS MiB | ours/torch speed | ours/torch memory |"
    print "|---|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        mfu = scaled(ratios(tps[c[i], t[i]], peaks), fpt[c[i]] / 1e9 * 100)
        sp = "—"; mem = "—"
        if (t[i] == "ours" && ((c[i], "PyTorch") in tps)) {
            sp = summary("%.2fx", ratios(tps[c[i], "ours"], tps[c[i], "PyTorch"]))
            mem = sprintf("%.2fx", rss[c[i], "ours"] / rss[c[i], "PyTorch"])
        }
        printf "| %s | %s | %s | %s | %.0f | %s | %s |\n", c[i], t[i], summary("%.0f", tps[c[i], t[i]]), summary("%.1f%%", mfu), rss[c[i], t[i]] / 1024, sp, mem
    }
    print ""
    printf "- FLOPs per token = 6 (L (4 D^2 + 3 D F) + V D) + 6 L T D: 6 per weight of the matrix products "
    printf "(q, k, v, o, w1, w2, w3 and the tied classifier; the embedding lookup is not a product) "
    printf "plus the attention scores and weighted sums (12 L T D, halved by the causal mask); "
    printf "tiny %.2f MFLOP, small %.2f MFLOP per token, the same for both tools.\n", fpt["tiny"] / 1e6, fpt["small"] / 1e6
    printf "- MFU = tokens/s x FLOPs per token / cblas_sgemm peak, round by round; the peak %s GFLOP/s (%d threads, N x N x N products, N = 1024 and 2048; bench_sgemm'"'"'s best rate, measured at the start of each round:%s).\n", summary("%.1f", peaks), threads, peaks
    printf "- Ours: bin/llm-train on %s; tokens/s from the per-step times of its --log.\n", corpus
    if (tnote == "") {
        printf "- PyTorch %s: tests/bench/torch_llama.py on random token batches, torch.set_num_threads(%d); ", tver, threads
        if (attn == "sdpa") printf "attention by scaled_dot_product_attention (causal).\n"
        else printf "attention by the explicit masked softmax (this torch has no scaled_dot_product_attention).\n"
        printf "- PyTorch'"'"'s peak RSS includes %.0f MiB that the interpreter holds after `import torch` alone.\n", irss / 1024
        printf "- PyTorch runs with OMP_WAIT_POLICY=PASSIVE (faster with it: its OpenMP threads otherwise spin beside its BLAS'"'"'s); llm-train with OMP_WAIT_POLICY=%s (its OpenBLAS runs on OpenMP'"'"'s threads: one pool).\n", (ENVIRON["OMP_WAIT_POLICY"] != "" ? ENVIRON["OMP_WAIT_POLICY"] : "unset")
        for (k = 1; k <= 2; k++) {
            cf = (k == 1 ? "tiny" : "small")
            if (!((cf, "PyTorch") in tps)) continue
            x = median(ratios(tps[cf, "ours"], tps[cf, "PyTorch"])); y = rss[cf, "ours"] / rss[cf, "PyTorch"]
            printf "- %s: ours ≥ 1.0x PyTorch tokens/s: %s (%.2fx, the median per-round ratio; aim 1.5x: %s); lower peak memory: %s (%.2fx)\n", cf,
                (x >= 1.0 ? "yes" : "no"), x, (x >= 1.5 ? "yes" : "no"), (y < 1.0 ? "yes" : "no"), y
        }
    }
}'
echo
awk -v limit="$attn_limit" '
function val(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
{
    n++; impl[n] = val("impl"); T[n] = val("T"); d = val("d"); st[n] = val("status")
    io[n] = val("io_kib"); ex[n] = val("extra_kib"); tot[n] = val("total_kib")
    fw[n] = val("fwd_s"); bw[n] = val("bwd_s"); need[n] = val("need_kib")
    if (st[n] == "ok") { e[impl[n], T[n]] = ex[n]; to[impl[n], T[n]] = tot[n] }
}
END {
    printf "Attention, one head, head size %d, causal, forward + backward, single-threaded; each case in a fresh child process. ", d
    printf "extra: growth of the peak RSS (ru_maxrss) beyond the inputs and outputs (q, k, v, out, dout, dq, dk, dv, lse: the io column), "
    printf "i.e. what the algorithm itself needs; total: the child'"'"'s whole peak RSS. The seconds are one run each: this table is about memory.\n\n"
    print "| T | impl | io MiB | extra MiB | total MiB | forward s | backward s | naive/ours extra |"
    print "|---:|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        r = "—"
        if (impl[i] == "naive" && st[i] == "ok" && (("ours", T[i]) in e))
            r = sprintf("%.0fx", e["naive", T[i]] / (e["ours", T[i]] > 0 ? e["ours", T[i]] : 4))
        if (st[i] == "ok")
            printf "| %d | %s | %.1f | %.1f | %.1f | %.3f | %.3f | %s |\n", T[i], impl[i], io[i] / 1024, ex[i] / 1024, tot[i] / 1024, fw[i], bw[i], r
        else {
            why = (st[i] == "slow" ? "skipped (too slow: over " limit " s)" : st[i] == "nomem" ? sprintf("skipped (needs %.0f MiB, more than 3/4 of the available memory)", need[i] / 1024) : "failed")
            printf "| %d | %s | %.1f | %s | | | | |\n", T[i], impl[i], io[i] / 1024, why
        }
    }
    print ""
    printf "- naive: the textbook version (llm_attn_naive_*), which forms the T x T probability matrix: T^2 x 4 bytes.\n"
    first = ""; last = ""
    for (i = 1; i <= n; i++) if (impl[i] == "ours" && st[i] == "ok") { if (first == "") first = i; last = i }
    if (first != "" && last != first) {
        g = tot[last] / tot[first]; x = T[last] / T[first]; maxe = 0
        for (i = 1; i <= n; i++) if (impl[i] == "ours" && st[i] == "ok" && ex[i] > maxe) maxe = ex[i]
        printf "- ours linear in T: %s: from T = %d to %d (%.0fx) the total grows %.1fx, and the extra stays at most %.2f MiB (per-block scratch on the stack)\n",
            (g <= x * 1.1 && maxe < 16 * 1024 ? "yes" : "no"), T[first], T[last], x, g, maxe / 1024
    }
}' "$tmp/attn.out"
} > "$md"
cat "$md"
say "tables written to $md"

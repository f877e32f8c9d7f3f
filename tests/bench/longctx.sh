#!/bin/sh
# Long-context benchmark: a small model trained at seq 128, evaluated on a
# text it never saw at 1x, 2x, 4x and 8x that length with each of llm-gen's
# RoPE scalings; it tests the claim that RoPE "extrapolates 2x without loss".
#   usage: sh tests/bench/longctx.sh [TOP]      (TOP: the repo top, default .)
#   env:   BENCH_THREADS        threads for both tools (default: the CPU count)
#          BENCH_LONGCTX_STEPS  training steps (default 1000)
#
# Model: llm-train --seq 128 --dim 128 --layers 4 --heads 4 --batch 8 (hidden
# 352, tied classifier, AdamW, the default schedule and seed 1337, so a run
# is repeatable), --val-frac 0.1, on nine of the licence texts in
# /usr/share/common-licenses (Apache-2.0 Artistic BSD CC0-1.0 GFDL-1.3 GPL-2
# LGPL-2.1 LGPL-3 MPL-2.0, joined in that order; llm-train's own validation
# part is the last 10% of them, the end of MPL-2.0).  GPL-3 is held out
# entirely: every bpb below is on GPL-3, which the model never trained on.
#
# Evaluation: llm-gen -m M --eval GPL-3 --ctx C --rope-scaling S for C = 128,
# 256, 512, 1024 and S = none, linear, ntk, dynamic-ntk, yarn, the factor left
# at its default (C/128; 1 for dynamic-ntk, which scales by C/128 itself; at
# C = 128 every scaling is the identity).  Three strides (see llm-gen(1),
# EVALUATION; the tokenizer is bytes, so a position is a byte):
#   table 1  --stride C/2: after the first window every byte is predicted at a
#            position in C/2..C-1, with C/2..C-1 bytes of context.
#   table 2  --stride C: windows that do not overlap; every position 0..C-1
#            of each window is scored once, so at 2x half the bytes and at 8x
#            7/8 of them are predicted past the trained 128, with C/2 bytes of
#            context on average.
#   table 3  only bytes predicted at positions >= 128: --stride C-128 scores,
#            after the first window, exactly the positions 128..C-1 (context
#            128..C-1); the first window (positions 0..C-1) is taken out by
#            evaluating the first C bytes alone with the same options and
#            subtracting their bits (bits = bpb x bytes; the first window of
#            the long run is that same computation).  The 1x column has no
#            position past 128: it is positions 64..127 (--stride 64, first
#            window taken out likewise), the nearest the trained range has.
#
# The tables go to stdout and to TOP/build/bench/longctx.md; progress goes to
# stderr.  This is a measurement, not a test: only a command that fails makes
# the script exit non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

threads=$(number BENCH_THREADS "$(cpu_count)" 1) || exit
steps=$(number BENCH_LONGCTX_STEPS 1000 1) || exit
export OMP_WAIT_POLICY=PASSIVE

seq=128
ctxs="128 256 512 1024"
scalings="none linear ntk dynamic-ntk yarn"
lic=/usr/share/common-licenses
train_files="Apache-2.0 Artistic BSD CC0-1.0 GFDL-1.3 GPL-2 LGPL-2.1 LGPL-3 MPL-2.0"
held_name=GPL-3

t0=$(date +%s)
need llm-train llm-gen
for f in $train_files $held_name; do
    [ -r "$lic/$f" ] || die "$lic/$f not found (Debian: base-files)"
done

tmpdir
private_copy llm-train llm-gen

data="$tmp/train.txt"
held="$tmp/held.txt"
for f in $train_files; do cat "$lic/$f"; done > "$data" || die "cannot read the licence texts"
cp "$lic/$held_name" "$held" || die "cannot copy $lic/$held_name"
train_bytes=$(wc -c < "$data")
held_bytes=$(wc -c < "$held")
[ "$held_bytes" -gt 2048 ] || die "$lic/$held_name is too short ($held_bytes bytes)"
for c in $ctxs; do
    head -c "$c" "$held" > "$tmp/first$c.txt" || die "cannot cut $held"
done

load0=$(load_average)

# ---- training ----
model="$tmp/model.llmt"
say "training: $steps steps at seq $seq on $train_bytes bytes ($held_name held out), $threads threads"
tt0=$(date +%s)
"$tmp/llm-train" --data "$data" --out "$model" --seq "$seq" --dim 128 --layers 4 --heads 4 \
    --batch 8 --steps "$steps" --val-frac 0.1 --eval-every 100 --threads "$threads" \
    --log "$tmp/train.tsv" || die "llm-train failed"
train_s=$(( $(date +%s) - tt0 ))
val=$(awk -F'\t' 'NR > 1 && $3 != "" { v = $3 } END { print v }' "$tmp/train.tsv")
[ -n "$val" ] || die "no validation loss in llm-train's log"
say "training: $train_s s, final validation loss $val nats"

# ---- evaluation ----
# ev CTX STRIDE SCALING FILE BYTES: prints the bpb.
ev() {
    "$tmp/llm-gen" -m "$model" --eval "$4" --ctx "$1" --stride "$2" --rope-scaling "$3" \
        --threads "$threads" -q > "$tmp/ev.out" ||
        die "llm-gen --eval $4 --ctx $1 --stride $2 --rope-scaling $3 failed"
    b=$(sed -n 's/.*bpb=\([0-9.]*\).*/\1/p' "$tmp/ev.out")
    n=$(sed -n 's/.*tokens=\([0-9]*\).*/\1/p' "$tmp/ev.out")
    [ -n "$b" ] && [ "$n" = "$5" ] ||
        die "unexpected llm-gen output for --ctx $1 --stride $2 --rope-scaling $3: $(cat "$tmp/ev.out")"
    echo "$b"
}

res="$tmp/results"   # table scaling ctx bpb
: > "$res"
et0=$(date +%s)
for s in $scalings; do
    for c in $ctxs; do
        say "eval: $s at ctx $c"
        b1=$(ev "$c" $((c / 2)) "$s" "$held" "$held_bytes") || exit 1
        b2=$(ev "$c" "$c" "$s" "$held" "$held_bytes") || exit 1
        if [ "$c" -eq "$seq" ]; then
            st=$((c / 2)) bf=$b1
        else
            st=$((c - seq))
            bf=$(ev "$c" "$st" "$s" "$held" "$held_bytes") || exit 1
        fi
        bw=$(ev "$c" "$st" "$s" "$tmp/first$c.txt" "$c") || exit 1
        b3=$(awk -v a="$bf" -v n="$held_bytes" -v f="$bw" -v c="$c" \
            'BEGIN { printf "%.4f", (a * n - f * c) / (n - c) }')
        echo "1 $s $c $b1" >> "$res"
        echo "2 $s $c $b2" >> "$res"
        echo "3 $s $c $b3" >> "$res"
        say "eval: $s at ctx $c: bpb $b1 (stride C/2), $b2 (stride C), $b3 (positions >= $([ "$c" -eq "$seq" ] && echo $((c / 2)) || echo $seq))"
    done
done
# Interpolation alone, with no position past the trained ones: --ctx 128 and
# the 2x factor, for the notes.
say "eval: linear and yarn at ctx $seq with --rope-factor 2"
lin2=$("$tmp/llm-gen" -m "$model" --eval "$held" --ctx "$seq" --stride $((seq / 2)) --rope-scaling linear \
    --rope-factor 2 --threads "$threads" -q | sed -n 's/.*bpb=\([0-9.]*\).*/\1/p') || die "llm-gen failed"
yarn2=$("$tmp/llm-gen" -m "$model" --eval "$held" --ctx "$seq" --stride $((seq / 2)) --rope-scaling yarn \
    --rope-factor 2 --threads "$threads" -q | sed -n 's/.*bpb=\([0-9.]*\).*/\1/p') || die "llm-gen failed"
[ -n "$lin2" ] && [ -n "$yarn2" ] || die "no bpb from llm-gen --rope-factor 2"
eval_s=$(( $(date +%s) - et0 ))
total_s=$(( $(date +%s) - t0 ))
load1=$(load_average)

# ---- the report ----
md=$(table_file longctx)

awk -v seq="$seq" -v ctxs="$ctxs" -v scalings="$scalings" -v steps="$steps" -v val="$val" \
    -v tb="$train_bytes" -v hb="$held_bytes" -v held="$held_name" -v files="$train_files" \
    -v threads="$threads" -v ncpu="$(cpu_count)" -v cpu="$(cpu_name)" -v train_s="$train_s" \
    -v eval_s="$eval_s" -v total_s="$total_s" -v load0="$load0" -v load1="$load1" \
    -v lin2="$lin2" -v yarn2="$yarn2" '
function cell(t, s, c,   d) {
    d = v[t, s, c] - v[t, "none", seq]
    if (s == "none" && c == seq) return sprintf("%.4f", v[t, s, c])
    return sprintf("%.4f (%+.4f)", v[t, s, c], d)
}
function table(t, title,   i, j) {
    printf "%s\n\n", title
    printf "| scaling |"
    for (j = 1; j <= nc; j++) printf " %dx (%d) |", C[j] / seq, C[j]
    printf "\n|---|"
    for (j = 1; j <= nc; j++) printf "---:|"
    printf "\n"
    for (i = 1; i <= ns; i++) {
        printf "| %s |", S[i]
        for (j = 1; j <= nc; j++) printf " %s |", cell(t, S[i], C[j])
        printf "\n"
    }
    printf "\n"
}
function best(t, c,   i, b) {
    b = S[1]
    for (i = 2; i <= ns; i++) if (v[t, S[i], c] < v[t, b, c]) b = S[i]
    return sprintf("%s %.4f", b, v[t, b, c])
}
{ v[$1, $2, $3] = $4 }
END {
    nc = split(ctxs, C, " "); ns = split(scalings, S, " ")
    c2 = 2 * seq; c8 = 8 * seq
    printf "Long context: a byte-level model trained at seq %d (dim 128, 4 layers, 4 heads, hidden 352, tied; batch 8, %d steps, AdamW; ", seq, steps
    printf "final validation loss %.4f nats = %.3f bits per byte) on %d bytes of licence texts (%s), ", val, val / log(2), tb, files
    printf "evaluated with llm-gen --eval on %s (%d bytes), which it never trained on. ", held, hb
    printf "Bits per byte; in brackets the difference from none at 1x in the same table (negative: better). "
    printf "Columns: --ctx C as a multiple of the trained %d; --rope-factor at its default (C/%d; 1 for dynamic-ntk, which scales by C/%d by itself), so at 1x every scaling is the identity. ", seq, seq, seq
    printf "%d threads; %d CPUs, %s; training %d s, evaluation %d s, %d s in all (load average %s at the start, %s at the end).\n\n", threads, ncpu, cpu, train_s, eval_s, total_s, load0, load1
    table(1, "Table 1, --stride C/2: each byte after the first window is predicted at a position in C/2..C-1, with C/2..C-1 bytes of context.")
    table(2, "Table 2, --stride C: windows that do not overlap, every position 0..C-1 scored once (context 0..C-1, C/2 on average); at Cx a fraction 1 - 128/C of the bytes lies past the trained positions.")
    table(3, "Table 3, only bytes predicted at positions >= 128 (context 128..C-1): --stride C-128, less the first window (the first C bytes evaluated alone with the same options, their bits subtracted). At 1x no position lies past 128: that column is positions 64..127 (--stride 64, less the first window), the nearest the trained range has.")
    print "Notes:"
    print ""
    printf "- What each table measures. Longer C changes two things at once: bytes are predicted at positions the model never saw (the extrapolation in question) and they get more context (which helps a model that uses it; this text repeats whole phrases). "
    printf "Tables 1 and 2 mix both: a bpb that falls with C can hide a loss at the new positions, one that rises shows the loss outweighs the gain. "
    printf "Table 3 keeps only the new positions, each with at least 128 bytes of context, against positions 64..127 with 64..127 bytes at 1x: a model that extrapolated without loss would score at least as well at 2x as at 1x there, so a rise there is a loss from the new positions (more context should not make a model worse).\n"
    printf "- At 1x the five rows are the same computation (factor 1), a check that the scalings are the identity there.\n"
    printf "- dynamic-ntk equals ntk here by construction: at its default factor 1 its base is b (1 x C/%d - 0)^(d/(d-2)), which is ntk'"'"'s with F = C/%d; and llm-gen builds the table once for --ctx, not again as the sequence grows (where dynamic NTK as in transformers would leave short prefixes unscaled).\n", seq, seq
    printf "- linear and yarn lose even without extrapolating: at --ctx %d with --rope-factor 2 (no position past the trained ones; table 1'"'"'s stride) linear gives %.4f and yarn %.4f bpb, against %.4f unscaled. Interpolation without fine-tuning squeezes every distance by F (distance 1 becomes 1/2), and a byte model leans on exact short distances. ", seq, lin2, yarn2, v[1, "none", seq]
    printf "YaRN keeps a pair unscaled only if it turns more than beta = 32 times over the trained context; at %d positions the fastest pair (f = 1 rad per position) turns %d/(2 pi) = %.1f times, so every pair is interpolated at least in part: YaRN'"'"'s defaults suit trained lengths in the thousands, not %d.\n", seq, seq, seq / (2 * 3.14159265), seq
    printf "- %s is never trained on, but the training texts include GPL-2 and LGPL-3, which share much of its language, so these bpb are lower than for unrelated text.\n", held
    printf "- Best scaling at 2x: %s (table 1), %s (table 2), %s (table 3); at 8x: %s, %s, %s.\n", best(1, c2), best(2, c2), best(3, c2), best(1, c8), best(2, c8), best(3, c8)
    d1 = v[1, "none", c2] - v[1, "none", seq]; d2 = v[2, "none", c2] - v[2, "none", seq]; d3 = v[3, "none", c2] - v[3, "none", seq]
    e3 = v[3, "none", c8] - v[3, "none", seq]
    printf "\n"
    if (d3 <= 0.005)
        verdict = "holds on this model: at the new positions none at 2x is no worse than the trained positions (within 0.005 bpb)"
    else
        verdict = sprintf("does not hold on this model: with no scaling the positions 128..255 cost %+.4f bpb over the trained positions, despite their longer context", d3)
    printf "Conclusion: \"RoPE extrapolates 2x without loss\" %s. none at 2x vs 1x: %+.4f bpb (stride C/2), %+.4f (stride C), %+.4f (positions >= 128 only); at 8x: %+.4f, %+.4f, %+.4f.\n",
        verdict, d1, d2, d3, v[1, "none", c8] - v[1, "none", seq], v[2, "none", c8] - v[2, "none", seq], e3
}' "$res" > "$md" || die "cannot write $md"
cat "$md"
say "tables written to $md ($total_s s in all)"

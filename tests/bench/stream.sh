#!/bin/sh
# Stream-layer benchmark: write and read float32 tensors through a pipe
# between two processes, beside the zstd CLIs on the same bytes.
#   usage: sh tests/bench/stream.sh [TOP]        (TOP: the repo top, default .)
#   env:   BENCH_MB    MiB of float32 per data set (default 1024)
#          BENCH_RUNS  timings per measurement (default 3; see lib.sh)
#          BENCH_LEVEL zstd level for both sides (default 1)
#          CC          compiler for gen_floats (default cc)
#
# Data sets (tests/bench/gen_floats.c, fixed seed): "normal", standard normal
# float32; "bf16", the same values rounded to bf16 precision and widened back
# to float32, as trained weights are.  Variants, each a writer and a reader in
# two processes joined by a pipe:
#   ours           llm-tensor from-npy --level 1 x=D.npy | llm-tensor verify -
#   ours --shuffle llm-tensor from-npy --level 1 --shuffle x=D.npy | llm-tensor verify -
#   zstd CLI       zstd -1 -c -q < D.npy | zstdcat > /dev/null
# MB/s is payload bytes (10^6) per second of wall clock, end to end; ratio is
# payload bytes over compressed bytes.  A second table times each side alone
# (writer to /dev/null, reader from a file) to show which one bounds the pipe.
# Each figure is the median (min–max) of BENCH_RUNS runs, taken in turn across
# the variants; "vs zstd CLI" is the median (min–max) of the per-round ratios.
#
# The table goes to stdout and to TOP/build/bench/stream.md; progress goes to
# stderr.  A missed goal is reported, not failed (this is not a test); a
# command that fails makes the script exit non-zero.
set -eu
. "$(dirname "$0")/lib.sh"

mb=$(number BENCH_MB 1024 1) || exit
runs=$(bench_runs) || exit
level=$(number BENCH_LEVEL 1) || exit
on_path llm-tensor zstd zstdcat
tmpdir

# Room for one data set, its three compressed copies and a margin: 4x the size.
# Too little: halve the size until it fits, and say so in the table.
note=""
avail_kb=$(df -Pk "$tmp" | awk 'NR == 2 { print $4 }')
want=$mb
while [ $((mb * 1024 * 4)) -gt "$avail_kb" ]; do
    [ "$mb" -le 16 ] && die "not enough free space in $tmp (${avail_kb} KiB) even for 16 MiB"
    mb=$((mb / 2))
done
if [ "$mb" -ne "$want" ]; then
    note="only $((avail_kb / 1024)) MiB free in ${TMPDIR:-/tmp}: ran with $mb MiB instead of $want MiB"
    say "$note"
fi
n=$((mb * 1024 * 1024 / 4))
payload=$((n * 4))

say "compiling gen_floats"
helper gen_floats libllm

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / s / 1e6 : 0) }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
fsize() { wc -c < "$1" | tr -d ' '; }

# Writers and readers: $data is the .npy file; $shuf is "--shuffle" or empty.
w_ours() { llm-tensor from-npy --level "$level" $shuf x="$data"; }
r_ours() { llm-tensor verify - > "$tmp/verify.out"; }
w_zstd() { zstd -"$level" -c -q < "$data"; }
r_zstd() { zstdcat > /dev/null; }

# Runs "$1 | $2" and fails if either side fails (dash has no pipefail).
pipe() {
    rm -f "$tmp/wstatus"
    { "$1" || echo "$?" > "$tmp/wstatus"; } | "$2" || die "$1 | $2: reader exited with status $?"
    [ ! -e "$tmp/wstatus" ] || die "$1 | $2: writer exited with status $(cat "$tmp/wstatus")"
}
# Wall-clock seconds of one run of "$@".
time1() {
    t0=$(now)
    "$@" || return
    t1=$(now)
    elapsed "$t0" "$t1"
}
check_verify() {
    grep -q "ok: 1 tensors, 0 metadata, $payload payload bytes" "$tmp/verify.out" ||
        die "llm-tensor verify did not see $payload payload bytes: $(cat "$tmp/verify.out")"
}
w_ours_file() { llm-tensor from-npy --level "$level" $shuf -o "$out" x="$data"; }
w_zstd_file() { zstd -"$level" -c -q < "$data" > "$out"; }
w_ours_null() { w_ours > /dev/null; }
w_zstd_null() { w_zstd > /dev/null; }
r_ours_file() { llm-tensor verify "$out" > "$tmp/verify.out"; }
r_zstd_file() { zstdcat "$out" > /dev/null; }

# Sets kind, shuf, label and out (its compressed file) for variant $1.
variant() {
    case $1 in
        ours) kind=ours shuf="" label="ours";;
        ours_shuffle) kind=ours shuf="--shuffle" label="ours --shuffle";;
        zstd) kind=zstd shuf="" label="zstd CLI";;
    esac
    out="$tmp/out.$1"
}
variants="ours ours_shuffle zstd"

# measure VARIANT ROUND: one run of the pipe, the writer alone and the reader
# alone on $set; appends their seconds to tp_, tw_ and tr_VARIANT.
measure() {
    variant "$1"
    say "$set / $label: run $2 of $runs (pipe, writer alone, reader alone)"
    tp=$(time1 pipe "w_$kind" "r_$kind") || exit 1
    [ "$kind" = zstd ] || check_verify
    tw=$(time1 "w_${kind}_null") || die "$label writer failed on $set"
    tr=$(time1 "r_${kind}_file") || die "$label reader failed on $set"
    [ "$kind" = zstd ] || check_verify
    append "tp_$1" "$tp"
    append "tw_$1" "$tw"
    append "tr_$1" "$tr"
}

# The repetitions go round the variants (ours, ours --shuffle, zstd, ours, ...)
# so that a burst of load from other users of the machine falls on all of
# them alike; each keeps the list of its times, one per round.
rows=""        # data|variant|pipe secs...|compressed bytes|writer secs...|reader secs...
for set in normal bf16; do
    data="$tmp/$set.npy"
    say "generating $set: $mb MiB of float32"
    "$tmp/gen_floats" "$set" "$n" "$data" || die "gen_floats $set failed"
    for v in $variants; do
        variant "$v"
        say "$set / $label: compressed size"
        "w_${kind}_file" || die "$label writer failed on $set"
        [ "$kind" = zstd ] || { r_ours_file || die "llm-tensor verify failed on $set"; check_verify; }
        eval "tp_$v='' tw_$v='' tr_$v=''"
    done
    in_turn measure $variants
    for v in $variants; do
        variant "$v"
        eval "tp=\$tp_$v tw=\$tw_$v tr=\$tr_$v"
        csize=$(fsize "$out")
        say "$set / $label: $(mbps "$payload" "$(median $tp)") MB/s (median), ratio $(div "$payload" "$csize")"
        rows="$rows$set|$label|$tp|$csize|$tw|$tr
"
        rm -f "$out"
    done
    rm -f "$data"
done

# ---- the report ----
zver=$(zstd --version 2>/dev/null | sed -n 's/.*\(v[0-9][0-9.]*\).*/\1/p')
md=$(table_file stream)

printf '%s' "$rows" | awk -F'|' -v payload="$payload" -v mb="$mb" -v runs="$(runs_caption "$runs")" -v level="$level" \
    -v cpu="$(cpu_name)" -v ncpu="$(cpu_count)" -v zver="${zver:-?}" -v note="$note" "$stats_awk"'
{
    d[NR] = $1; v[NR] = $2; tw[NR] = $5; tr[NR] = $6
    secs[$1, $2] = $3
    ratio[$1, $2] = payload / $4
}
END {
    printf "Stream layer, %d MiB of float32 per data set through a pipe between two processes, ", mb
    printf "zstd level %d; %s (wall clock on a shared machine: other load adds noise); %d CPUs, %s; zstd %s.\n\n", level, runs, ncpu, cpu, zver
    if (note != "") printf "Note: %s.\n\n", note
    print "| data | variant | MB/s | ratio | throughput vs zstd CLI | ratio vs unshuffled |"
    print "|---|---|---:|---:|---:|---:|"
    worst = -1
    for (i = 1; i <= NR; i++) {
        x = ratios(secs[d[i], "zstd CLI"], secs[d[i], v[i]])
        if (v[i] == "zstd CLI") g = "—"
        else {
            g = sprintf("%.2fx", ratio[d[i], v[i]] / ratio[d[i], "ours"])
            if (worst < 0 || median(x) < worst) { worst = median(x); wname = d[i] " / " v[i] }
        }
        printf "| %s | %s | %s | %.3f | %s | %s |\n", d[i], v[i], summary("%.0f", over(payload / 1e6, secs[d[i], v[i]])),
            ratio[d[i], v[i]], summary("%.2fx", x), g
    }
    gain = ratio["bf16", "ours --shuffle"] / ratio["bf16", "ours"]
    print ""
    printf "Each side alone (MB/s): the writer to /dev/null, the reader from a file.\n\n"
    print "| data | variant | writer alone | reader alone |"
    print "|---|---|---:|---:|"
    for (i = 1; i <= NR; i++)
        printf "| %s | %s | %s | %s |\n", d[i], v[i], summary("%.0f", over(payload / 1e6, tw[i])), summary("%.0f", over(payload / 1e6, tr[i]))
    print ""
    printf "MB/s: 10^6 payload bytes per second of wall clock, writer start to reader exit; "
    printf "ratio: payload bytes / compressed bytes.\n\n"
    printf "- throughput ≥ 0.8x zstd: %s (worst median ratio %.2f, %s)\n", (worst >= 0.8 ? "yes" : "no"), worst, wname
    printf "- shuffle ratio gain on bf16 ≥ 1.2x: %s (%.2f)\n", (gain >= 1.2 ? "yes" : "no"), gain
}' > "$md"
cat "$md"
say "table written to $md"

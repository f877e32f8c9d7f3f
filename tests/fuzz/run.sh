#!/bin/sh
# Runs each libFuzzer target for its share of the time, starting from a
# corpus of valid inputs made by the tools (tests/fuzz/seeds.sh), and fails on
# any finding.  The shares below are seconds at SECONDS=60 (CI runs 30: half),
# 194 in all; other values scale them (SECONDS=600: ten times as long).  The
# stream reader, under every tool, and the two-reader comparison get most; a
# target not in the table gets 10.
#   usage: tests/fuzz/run.sh SECONDS FUZZER...
secs=$1; shift
top=$(cd "$(dirname "$0")/../.." && pwd)
share() {
    case $1 in
    fuzz_stream) echo 30 ;;
    fuzz_pzstd) echo 20 ;;
    fuzz_ckpt | fuzz_gen | fuzz_quant | fuzz_calib | fuzz_attnmap | fuzz_gguf) echo 14 ;;
    *) echo 10 ;;
    esac
}
status=0
for f in "$@"; do
    name=$(basename "$f")
    corpus="$top/build/fuzz/corpus-$name"
    mkdir -p "$corpus"
    sh "$top/tests/fuzz/seeds.sh" "$name" "$corpus" "$top/bin"
    t=$(( $(share "$name") * secs / 60 ))
    [ "$t" -ge 1 ] || t=1
    echo "fuzz: $name for ${t}s"
    if ! "$f" -max_total_time="$t" -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
        -print_final_stats=0 -artifact_prefix="$top/build/fuzz/$name-" "$corpus" \
        >"$top/build/fuzz/$name.log" 2>&1; then
        echo "fuzz: $name FAILED; last lines of build/fuzz/$name.log:"
        tail -n 30 "$top/build/fuzz/$name.log"
        status=1
    else
        grep -E '^#[0-9]+.*(DONE|pulse)' "$top/build/fuzz/$name.log" | tail -n 1
    fi
done
exit $status

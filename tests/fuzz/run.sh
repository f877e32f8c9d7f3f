#!/bin/sh
# Runs the stream reader's libFuzzer target for SECONDS and every other
# target for a third as long, starting from a corpus of valid inputs made by the
# tools (tests/fuzz/seeds.sh), and fails on any finding.
#   usage: tests/fuzz/run.sh SECONDS FUZZER...
secs=$1; shift
top=$(cd "$(dirname "$0")/../.." && pwd)
status=0
for f in "$@"; do
    name=$(basename "$f")
    corpus="$top/build/fuzz/corpus-$name"
    mkdir -p "$corpus"
    sh "$top/tests/fuzz/seeds.sh" "$name" "$corpus" "$top/bin"
    t=$secs
    [ "$name" = fuzz_stream ] || t=$((secs / 3))
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

#!/bin/sh
# Runs every unit-test binary and every CLI test script, counts their
# PASS/FAIL/SKIP lines, shows what failed, and closes with one line:
# "N passed, N failed" (", N skipped" when some were skipped).  Each
# test's line gives its wall-clock seconds, to see where the time goes.
#   usage: tests/run.sh BIN_DIR UNIT_TEST_DIR
bin_dir=$(cd "$1" && pwd) || exit 2
unit_dir=$(cd "$2" && pwd) || exit 2
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-tests.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
export LLM_BIN="$bin_dir" LLM_TEST_TMP="$tmp" LLM_TOP="$top"
# OpenMP threads sleep when idle: spinning ones fight OpenBLAS for the cores
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" \
    OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

pass=0 fail=0 skip=0
run_one() { # name, command...
    name=$1; shift
    log="$tmp/log.$$.$(echo "$name" | tr '/' '_')"
    mkdir -p "$tmp/work" && cd "$tmp/work" || exit 2
    t0=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    cd "$top" || exit 2
    p=$(grep -c '^PASS ' "$log") f=$(grep -c '^FAIL ' "$log") s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc" >>"$log"
        f=1
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
        echo "FAIL $name: ran no test" >>"$log"
        f=1
    fi
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
    if [ "$f" -gt 0 ]; then
        echo "--- $name"
        tail -n 40 "$log"
    else
        grep '^SKIP ' "$log" | sed "s|^|$name: |"
    fi
    printf '%-28s %3d passed, %d failed, %d skipped  (%d s)\n' "$name" "$p" "$f" "$s" "$secs"
}

for t in "$unit_dir"/test_*; do
    [ -x "$t" ] || continue
    run_one "unit/$(basename "$t")" "$t"
done
for t in "$top"/tests/cli/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "cli/$(basename "$t" .sh)" bash "$t"
done

if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]

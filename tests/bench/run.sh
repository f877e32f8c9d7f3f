#!/bin/sh
# make bench: every benchmark, each against its peer in the same run; the
# tables go to stdout and to build/bench/*.md for the README.
#   usage: sh tests/bench/run.sh TOP      (BENCH_ONLY=stream|train|decode|longctx|calib|attnviz|quant|mpi|fewshot for one)
set -eu
top=$(cd "${1:-.}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
for b in stream train decode longctx calib attnviz quant mpi fewshot; do
    [ -n "${BENCH_ONLY:-}" ] && [ "$BENCH_ONLY" != "$b" ] && continue
    [ -f "$here/$b.sh" ] || continue
    echo "== $b" >&2
    sh "$here/$b.sh" "$top"
    echo
done

#!/bin/sh
# Writes a few valid inputs for a fuzz target into a corpus directory.
#   usage: tests/fuzz/seeds.sh TARGET CORPUS_DIR BIN_DIR
target=$1 dir=$2 bin=$3
. "$(dirname "$0")/../mknpy.sh"
head -c 60 /dev/urandom >"$dir/f4.bin" && mknpy '<f4' '(3, 5)' "$dir/f4.bin" "$dir/f4.npy"
head -c 7 /dev/urandom >"$dir/i1.bin" && mknpy '|i1' '(7,)' "$dir/i1.bin" "$dir/i1.npy"
head -c 8 /dev/urandom >"$dir/f8.bin" && mknpy '>f8' '()' "$dir/f8.bin" "$dir/f8.npy"
rm -f "$dir"/*.bin
if [ "$target" = fuzz_stream ]; then
    "$bin/llm-tensor" from-npy -o "$dir/z.llmt" a="$dir/f4.npy" b="$dir/i1.npy"
    "$bin/llm-tensor" from-npy --shuffle --raw -o "$dir/raw.llmt" --attr k=v a="$dir/f4.npy"
    rm -f "$dir"/*.npy
fi
exit 0

#!/bin/sh
# Writes a few valid inputs for a fuzz target into a corpus directory.
#   usage: tests/fuzz/seeds.sh TARGET CORPUS_DIR BIN_DIR
target=$1 dir=$2 bin=$3
npy() { # descr shape-literal data-bytes file: a .npy v1.0 file with a padded header
    dict="{'descr': '$1', 'fortran_order': False, 'shape': $2, }"
    pad=$((64 - (10 + ${#dict} + 1) % 64)); [ "$pad" -eq 64 ] && pad=0
    { printf '\223NUMPY\001\000'; printf "\\$(printf %03o $(((${#dict} + pad + 1) % 256)))\\$(printf %03o $(((${#dict} + pad + 1) / 256)))"
      printf '%s%*s\n' "$dict" "$pad" ''; head -c "$3" /dev/urandom; } >"$4"
}
npy '<f4' '(3, 5)' 60 "$dir/f4.npy"
npy '|i1' '(7,)' 7 "$dir/i1.npy"
npy '>f8' '()' 8 "$dir/f8.npy"
if [ "$target" = fuzz_stream ] && [ -x "$bin/llm-tensor" ]; then
    "$bin/llm-tensor" from-npy -o "$dir/z.llmt" a="$dir/f4.npy" b="$dir/i1.npy"
    "$bin/llm-tensor" from-npy --shuffle --raw -o "$dir/raw.llmt" --attr k=v a="$dir/f4.npy"
    rm -f "$dir"/*.npy
elif [ "$target" != fuzz_npy ]; then
    rm -f "$dir"/*.npy
fi
exit 0

#!/bin/bash
# CLI tests for the parallel frame decoding in llm-calib (lib/pzstd): on a
# stream of many zstd frames, the table is byte-identical on 1, 2 and 3
# threads, from a file, a pipe, a raw stream and a concatenation, and
# truncated or corrupted input gives the one-line error of the normal reader.
. "$(dirname "$0")/lib.sh"

# 3 tensors of 2^20 floats (12 MiB of raw stream: several 4 MiB frames)
perl -e 'print pack("f<*", map { sin($_ * 0.37) * (1 + ($_ % 97)) } 1 .. (1 << 20))' >x.bin
mknpy '<f4' '(1024, 1024)' x.bin x.npy
llm-tensor from-npy -o acts.llmt a.in=x.npy b.in=x.npy c.in=x.npy || fail "write the stream" "from-npy failed"
llm-tensor from-npy --raw -o acts.raw a.in=x.npy b.in=x.npy c.in=x.npy || fail "write the raw stream" "from-npy failed"
frames=$(zstd -lv acts.llmt 2>/dev/null | awk -F': *' '/Zstandard Frames/ { print $2 }')
[ "${frames:-0}" -ge 3 ] && pass "several frames ($frames)" || fail "several frames" "zstd -lv says '${frames:-?}'"

for opts in "--method all" "--method all --per-channel"; do
    llm-calib $opts --threads 1 acts.llmt >t1.llmt
    for t in 2 3; do
        llm-calib $opts --threads $t acts.llmt >t$t.llmt
        same "$opts: same table on 1 and $t threads" t1.llmt t$t.llmt
    done
done
llm-calib --method all --threads 1 acts.llmt >t1.llmt
cat acts.llmt | llm-calib --method all --threads 2 >pipe.llmt
same "from a pipe on 2 threads" t1.llmt pipe.llmt
llm-calib --method all --threads 2 acts.raw >raw.llmt
same "a raw stream on 2 threads" t1.llmt raw.llmt
cat acts.llmt acts.raw acts.llmt | llm-calib --method all --threads 1 >cat1.llmt
cat acts.llmt acts.raw acts.llmt | llm-calib --method all --threads 2 >cat2.llmt
same "a concatenation (zstd, raw, zstd) on 2 threads" cat1.llmt cat2.llmt
llm-tensor ls cat2.llmt | grep -q "^a.in.amax .*count=3145728 records=3 " && pass "the concatenation's records all counted" ||
    fail "the concatenation's records all counted" "$(llm-tensor ls cat2.llmt | head -1)"

# damage: cut inside the second frame; a flipped byte inside it
size=$(wc -c <acts.llmt)
head -c $((size / 2)) acts.llmt >cut.llmt
expect "truncated, 1 thread" 1 "^llm-calib: cut.llmt: byte [0-9]+: truncated: the zstd frame is cut short$" -- llm-calib --threads 1 cut.llmt
cp err cut1.err
expect "truncated, 2 threads" 1 "^llm-calib: cut.llmt: byte [0-9]+: truncated: the zstd frame is cut short$" -- llm-calib --threads 2 cut.llmt
same "truncated: the same message" cut1.err err
cp acts.llmt flip.llmt
printf '\377' | dd of=flip.llmt bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
for t in 1 2; do # NaN from a damaged raw block is skipped, so the checksum speaks
    expect "corrupt, $t threads" 1 "^llm-calib: flip.llmt: byte [0-9]+: zstd: Restored data doesn't match checksum$" -- \
        llm-calib --skip-nonfinite --threads $t flip.llmt
done

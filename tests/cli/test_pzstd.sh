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

# one set of rules for both readers (llm-tensor(5)): the stream reader
# (llm-tensor verify, llm-calib --threads 1) and the parallel decoder
# (--threads 2) refuse a zstd frame whose window is over 2^27 and raw bytes
# after a frame that ends inside a stream, with the same message, and take
# compressed and raw input that switch between streams
perl -e 'print pack("f<*", 1 .. 6)' >s.bin
mknpy '<f4' '(2, 3)' s.bin s.npy
llm-tensor from-npy --raw -o s.raw a.in=s.npy
# both_refuse WHAT REGEX FILE: both readers exit 1 with one message that
# matches REGEX after "tool: FILE: ", the same message (tool names aside)
both_refuse() {
    b_what=$1 b_rx=$2 b_file=$3
    expect "$b_what: llm-tensor verify" 1 "^llm-tensor: $b_file: $b_rx" -- llm-tensor verify "$b_file"
    sed 's/^llm-tensor: //' err >verify.err
    for t in 1 2; do
        expect "$b_what: llm-calib --threads $t" 1 "^llm-calib: $b_file: $b_rx" -- llm-calib --threads $t "$b_file"
        sed 's/^llm-calib: //' err >calib.err
        same "$b_what: the same message on $t thread(s)" verify.err calib.err
    done
}
# both_take WHAT FILE N: both readers take FILE, N tensors, the same table
both_take() {
    b_what=$1 b_file=$2 b_n=$3
    expect "$b_what: llm-tensor verify" 0 "" -- llm-tensor verify "$b_file"
    grep -q "^$b_file: ok: $b_n tensors" out && pass "$b_what: $b_n tensors" || fail "$b_what: $b_n tensors" "$(cat out)"
    if llm-calib --threads 1 "$b_file" >take1.llmt && llm-calib --threads 2 "$b_file" >take2.llmt; then
        same "$b_what: llm-calib on 1 and 2 threads" take1.llmt take2.llmt
    else
        fail "$b_what: llm-calib on 1 and 2 threads" "llm-calib failed"
    fi
}
if command -v zstd >/dev/null 2>&1; then
    cat s.raw | zstd -q -c --zstd=wlog=30 >wide.llmt # from a pipe: no size known, the window stays
    zstd -lv wide.llmt 2>/dev/null | grep -q "Window Size: .*(1073741824 B)" && pass "a frame with a 2^30 window" ||
        fail "a frame with a 2^30 window" "$(zstd -lv wide.llmt 2>&1 | grep Window)"
    both_refuse "window 2^30" "byte 0: zstd frame window of 1073741824 bytes is over the limit of 134217728 \(2\^27\)$" wide.llmt
    cat s.raw | zstd -q -c --zstd=wlog=27 >w27.llmt
    both_take "window 2^27" w27.llmt 1
    { head -c 20 s.raw | zstd -q -c; tail -c +21 s.raw; } >mid.llmt
    both_refuse "raw after a frame ending in a record" \
        "byte 20: raw bytes follow a zstd frame inside a stream \(compressed and raw input may switch only between streams\)$" mid.llmt
    { head -c 20 s.raw | zstd -q -c; tail -c +21 s.raw | zstd -q -c; } >split.llmt
    both_take "a stream in two frames cut inside a record" split.llmt 1
    { cat s.raw; zstd -q -c <s.raw; cat s.raw; zstd -q -c <s.raw; } >switch.llmt
    both_take "raw and zstd switching between streams" switch.llmt 4
    zstd -q -c <s.raw | zstd -q -c >nested.llmt
    both_refuse "a frame inside a frame" "byte 1: not a tensor stream" nested.llmt
else
    skip "framing rules" "no zstd CLI"
fi

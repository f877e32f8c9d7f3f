#!/bin/bash
# CLI tests for llm-tensor: every command, round trips through pipes, files,
# concatenation and the zstd CLIs, statistics checked independently, and bad
# input that must give one clear line and exit 1.
. "$(dirname "$0")/lib.sh"

# fixtures: random data of every numpy dtype, as .npy files
for spec in f4:4 f8:8 f2:2 i1:1 u1:1 i4:4 i8:8; do
    t=${spec%:*} w=${spec#*:}
    head -c $((6 * 5 * w)) /dev/urandom >"$t.bin"
    case $t in i1|u1) descr="|$t" ;; *) descr="<$t" ;; esac
    mknpy "$descr" '(6, 5)' "$t.bin" "$t.npy"
done
# finite floats for the statistics (random bytes may be NaN)
perl -e 'srand(7); print pack("f<*", map { sin($_) * 10 + $_ / 7 } 1..3000)' >fin.bin
mknpy '<f4' '(1000, 3)' fin.bin fin.npy

expect "help" 0 "" -- llm-tensor --help
grep -q "from-npy" out && grep -q "verify" out && pass "help lists commands" || fail "help lists commands" "$(cat out)"
expect "version" 0 "" -- llm-tensor --version
grep -Eq '^llm-tensor \(llmpipe\) [0-9]' out && pass "version line" || fail "version line" "$(cat out)"
expect "no command" 2 "^llm-tensor: missing command" -- llm-tensor
expect "unknown command" 2 "unknown command 'frob'" -- llm-tensor frob
expect "option not taken by command" 2 "cat: unknown option '--per-channel'" -- llm-tensor cat --per-channel
expect "bad level" 2 "--level: 'x' is not an integer" -- llm-tensor cat --level x
expect "from-npy without NAME=" 2 "is not NAME=FILE.npy" -- llm-tensor from-npy f4.npy

# every numpy dtype: .npy -> stream -> .npy is byte-identical, through a pipe
for t in f4 f8 f2 i1 u1 i4 i8; do
    llm-tensor from-npy "w.$t=$t.npy" 2>err | llm-tensor to-npy "w.$t" >"back.$t.npy" 2>>err
    same "npy round trip $t through a pipe" "$t.npy" "back.$t.npy"
done
llm-tensor from-npy -o all.llmt --attr scheme=test a=f4.npy b=i1.npy c=f8.npy d=f2.npy e=i8.npy
expect "ls" 0 "" -- llm-tensor ls all.llmt
if grep -Eq '^a +f32 +\[6,5\] +120 scheme=test' out && grep -Eq '^e +i64 +\[6,5\] +240' out &&
   [ "$(wc -l <out)" -eq 5 ]; then pass "ls lines"; else fail "ls lines" "$(cat out)"; fi
expect "verify file" 0 "" -- llm-tensor verify all.llmt
grep -Eq '^all.llmt: ok: 5 tensors, 0 metadata, 690 payload bytes, .*zstd, checksums ok' out &&
    pass "verify summary" || fail "verify summary" "$(cat out)"
expect "verify stdin" 0 "" -- sh -c 'llm-tensor verify - < all.llmt'

# the zstd CLIs see a valid zstd stream, and readers take raw streams
expect "zstd -t accepts the stream" 0 "" -- zstd -q -t all.llmt
zstdcat all.llmt >all.raw
head -c 4 all.raw | grep -q LLMT && pass "zstdcat shows the raw stream" || fail "zstdcat shows the raw stream" "no LLMT magic"
llm-tensor verify all.raw | grep -q '(raw)' && pass "raw stream accepted" || fail "raw stream accepted" "$(llm-tensor verify all.raw 2>&1)"
zstd -q -19 -c all.raw | llm-tensor to-npy c >c.npy && same "zstd CLI output read back" f8.npy c.npy
llm-tensor from-npy --raw x=f4.npy | zstd -q -c | llm-tensor to-npy x >x.npy && same "--raw then zstd CLI" f4.npy x.npy

# concatenation: cat of files is one stream; llm-tensor cat makes one too
llm-tensor from-npy -o one.llmt p=i4.npy
cat all.llmt one.llmt all.raw >cat.llmt
llm-tensor ls cat.llmt >ls.txt && [ "$(wc -l <ls.txt)" -eq 11 ] && pass "cat of files reads as one" ||
    fail "cat of files reads as one" "$(cat ls.txt)"
llm-tensor cat -o joined.llmt all.llmt one.llmt
llm-tensor verify joined.llmt | grep -q ': ok: 6 tensors' && pass "cat joins" || fail "cat joins" "$(llm-tensor verify joined.llmt)"
llm-tensor to-npy p joined.llmt >p.npy && same "cat keeps payloads" i4.npy p.npy
llm-tensor cat --name 'a' --name '[cd]' all.llmt | llm-tensor ls >ls.txt
[ "$(cut -d' ' -f1 ls.txt | tr '\n' ' ')" = "a c d " ] && pass "cat --name filters" || fail "cat --name filters" "$(cat ls.txt)"
llm-tensor cat --shuffle --level 19 all.llmt >sh.llmt
llm-tensor ls sh.llmt | grep -E '^a ' | grep -q shuffle && pass "cat --shuffle marks records" || fail "cat --shuffle marks records" "$(llm-tensor ls sh.llmt)"
llm-tensor ls sh.llmt | grep -E '^b ' | grep -q shuffle && fail "no shuffle for bytes" "i8 record shuffled" || pass "no shuffle for bytes"
llm-tensor to-npy d sh.llmt >d.npy && same "shuffled payload unchanged" f2.npy d.npy
llm-tensor cat --no-shuffle sh.llmt | llm-tensor ls | grep -q shuffle && fail "cat --no-shuffle" "still shuffled" || pass "cat --no-shuffle"

# to-npy with a glob writes several arrays one after another
py=$(numpy_python)
if [ -n "$py" ]; then
    llm-tensor to-npy '[ab]' all.llmt >ab.npy
    "$py" - <<'PY' && pass "numpy loads successive arrays" || fail "numpy loads successive arrays" "mismatch"
import numpy as np
with open("ab.npy", "rb") as f:
    a, b = np.load(f), np.load(f)
assert a.dtype == np.float32 and a.shape == (6, 5)
assert (a.view(np.uint32) == np.load("f4.npy").view(np.uint32)).all()
assert (b == np.load("i1.npy")).all()
PY
    llm-tensor from-npy x=fin.npy | llm-tensor stats >stats.txt
    llm-tensor from-npy x=fin.npy | llm-tensor stats --per-channel >pc.txt
    "$py" - <<'PY' && pass "stats match numpy" || fail "stats match numpy" "$(cat stats.txt)"
import numpy as np, re
x = np.load("fin.npy").astype(np.float64)
def parse(line):
    return dict((k, float(v)) for k, v in re.findall(r"(\w+)=(\S+)", line))
def close(got, arr):
    want = dict(count=arr.size, min=arr.min(), max=arr.max(), mean=arr.mean(), std=arr.std(),
                absmax=np.abs(arr).max())
    for k, v in want.items():
        assert abs(got[k] - v) <= 1e-6 * max(1, abs(v)), (k, got[k], v)
close(parse(open("stats.txt").read()), x)
lines = open("pc.txt").read().splitlines()
assert len(lines) == 4 and lines[1].startswith("x[0] ")
for c in range(3):
    close(parse(lines[1 + c]), x[:, c])
PY
    /usr/bin/python3 -c "import numpy as np; np.save('np.npy', np.arange(24, dtype='>i4').reshape(2,3,4))"
    llm-tensor from-npy y=np.npy | llm-tensor to-npy y >np2.npy
    "$py" -c "import numpy as np; a=np.load('np2.npy'); assert a.dtype=='<i4' and (a==np.arange(24).reshape(2,3,4)).all()" &&
        pass "big-endian npy converted" || fail "big-endian npy converted" "mismatch"
else
    skip "numpy loads successive arrays" "Debian python3-numpy not installed"
    skip "stats match numpy" "Debian python3-numpy not installed"
    skip "big-endian npy converted" "Debian python3-numpy not installed"
fi

# stats checked without numpy: integer data whose answers awk computes exactly
perl -e 'print pack("c*", -7, 3, 0, 12, -1, 5, 5, 9)' >ints.bin
mknpy '|i1' '(2, 4)' ints.bin ints.npy
llm-tensor from-npy v=ints.npy | llm-tensor stats --per-channel >st.txt
want=$(perl -e 'print pack("c*", -7, 3, 0, 12, -1, 5, 5, 9)' | od -An -td1 -v | tr -s ' ' '\n' | grep -v '^$' |
       awk '{s+=$1; q+=$1*$1; n++; if(n==1||$1<mn)mn=$1; if(n==1||$1>mx)mx=$1}
            END{m=s/n; printf "count=%d min=%g max=%g mean=%.7g std=%.7g", n, mn, mx, m, sqrt(q/n-m*m)}')
grep -q "^v  *$want absmax=12\$" st.txt && pass "stats vs awk" || fail "stats vs awk" "want '$want', got $(head -1 st.txt)"
grep -q '^v\[3\]  *count=2 min=9 max=12 mean=10.5 std=1.5 absmax=12$' st.txt && pass "per-channel vs hand" ||
    fail "per-channel vs hand" "$(cat st.txt)"

# bf16 and 4-bit tensors (no numpy dtype): to-npy widens them exactly
rawstream w.raw "T:2:h:3:803f00c00000" "T:7:q:3:8f07"
llm-tensor to-npy h w.raw >h.npy && od -An -tx1 -v h.npy | tr -d ' \n' | grep -q '0000803f000000c000000000$' &&
    pass "bf16 widened to f32" || fail "bf16 widened to f32" "$(od -An -tx1 h.npy | tail -2)"
llm-tensor to-npy q w.raw | tail -c 3 | od -An -td1 | tr -s ' ' | grep -q '^ -1 -8 7$' &&
    pass "i4 widened to i8" || fail "i4 widened to i8" "$(llm-tensor to-npy q w.raw | tail -c 3 | od -An -td1)"
llm-tensor stats w.raw | grep -q '^q  *count=3 min=-8 max=7 ' && pass "i4 stats" || fail "i4 stats" "$(llm-tensor stats w.raw)"

# bad input: one line naming the tool and the file, exit 1
head -c 300 all.llmt >trunc.llmt
expect "truncated stream" 1 "^llm-tensor: trunc.llmt: byte [0-9]+: truncated" -- llm-tensor verify trunc.llmt
head -c -5 all.raw >trunc.raw
expect "truncated raw stream" 1 "^llm-tensor: trunc.raw: .*truncated" -- llm-tensor ls trunc.raw
cp all.llmt flip.llmt
printf '\377' | dd of=flip.llmt bs=1 seek=200 conv=notrunc 2>/dev/null
expect "flipped byte" 1 "^llm-tensor: flip.llmt: byte [0-9]+: .*(zstd|checksum|Corrupted)" -- llm-tensor verify flip.llmt
printf 'hello, this is text\n' >text.txt
expect "not a stream" 1 "^llm-tensor: text.txt: byte [0-9]+: not a tensor stream" -- llm-tensor ls text.txt
MAGIC=LLMQ rawstream magic.raw "T:0:x:1:00000000"
expect "wrong magic" 1 "^llm-tensor: magic.raw: .*not a tensor stream" -- llm-tensor ls magic.raw
VERSION=7 rawstream ver.raw "T:0:x:1:00000000"
expect "unknown version" 1 "stream version 7" -- llm-tensor ls ver.raw
printf '\050\265\057\375garbage garbage garbage' >badz.llmt
expect "garbage after zstd magic" 1 "^llm-tensor: badz.llmt: byte 0: zstd: " -- llm-tensor verify badz.llmt
rawstream huge.raw "T:0:x:1099511627776,1099511627776:00"
expect "absurd shape" 1 "huge.raw: .*(limit|2\^62)" -- llm-tensor verify huge.raw
rawstream bigclaim.raw "T:0:x:1000000000000:00"
expect "shape beyond the data" 1 "bigclaim.raw: .*payload length 1, but f32\[1000000000000\] needs" -- llm-tensor verify bigclaim.raw
NO_END=1 rawstream noname.raw "T:0:x:1:00000000:200"
expect "unterminated name" 1 "noname.raw: .*truncated" -- llm-tensor ls noname.raw
rawstream dtype.raw "T:99:x:1:00"
expect "unknown dtype" 1 "dtype.raw: .*unknown dtype code 99" -- llm-tensor ls dtype.raw
NO_END=1 rawstream noend.raw "T:0:x:1:00000000"
expect "missing end record" 1 "noend.raw: .*without its end record" -- llm-tensor verify noend.raw
expect "missing file" 1 "^llm-tensor: nope.llmt: No such file" -- llm-tensor ls nope.llmt

# .npy headers that lie
head -c 100 f4.npy >short.npy
expect "npy data shorter than shape" 1 "short.npy: truncated" -- llm-tensor from-npy -o s.llmt x=short.npy
[ ! -e s.llmt ] && [ -z "$(ls | grep '\.tmp\.')" ] && pass "failed from-npy leaves nothing" ||
    fail "failed from-npy leaves nothing" "$(ls)"
cat f4.npy ints.bin >long.npy
expect "npy data longer than shape" 1 "long.npy: data longer" -- llm-tensor from-npy -o s.llmt x=long.npy
sed 's/False/True /' f4.npy >fort.npy
expect "npy fortran order" 1 "fort.npy: .*fortran" -- llm-tensor from-npy -o s.llmt x=fort.npy
sed "s/<f4/<c8/" f4.npy >c8.npy
expect "npy unsupported dtype" 1 "c8.npy: .*<c8" -- llm-tensor from-npy -o s.llmt x=c8.npy
printf 'PK\003\004 not npy' >zip.npy
expect "not npy" 1 "zip.npy: " -- llm-tensor from-npy -o s.llmt x=zip.npy
expect "to-npy no match" 1 "no tensor matches 'zzz'" -- llm-tensor to-npy zzz all.llmt

# an output is written whole or not at all
cp one.llmt keep.llmt
expect "failed cat" 1 "trunc.llmt" -- llm-tensor cat -o keep.llmt all.llmt trunc.llmt
same "failed cat keeps the old output" one.llmt keep.llmt
[ -z "$(ls | grep '\.tmp\.')" ] && pass "no temporary files left" || fail "no temporary files left" "$(ls)"

# killed mid-write by any signal whose default is to end the process: no
# partial output under the real name, no temporary file, the signal's status
# (a script's background jobs ignore SIGINT and SIGQUIT: perl restores them)
ulimit -c 0 # SIGQUIT's core dump
for sig in TERM QUIT USR1 HUP USR2 ALRM; do
    { head -c 100 f4.npy; sleep 5; } |
        perl -e '$SIG{$_} = "DEFAULT" for qw(INT QUIT); exec @ARGV or die' llm-tensor from-npy -o killed.llmt x=- &
    victim=$! # the last command of the background pipeline: llm-tensor
    for i in $(seq 100); do ls | grep -q 'killed.llmt.tmp' && break; sleep 0.05; done
    kill -"$sig" "$victim"
    wait "$victim" 2>/dev/null
    status=$?
    [ "$status" -eq $((128 + $(kill -l "$sig"))) ] && [ ! -e killed.llmt ] && [ -z "$(ls | grep '\.tmp\.')" ] &&
        pass "SIG$sig: killed writer leaves nothing" ||
        fail "SIG$sig: killed writer leaves nothing" "status $status; $(ls | grep -E 'killed|tmp')"
done
# SIGXFSZ: the output outgrows ulimit -f (KiB)
head -c 1048576 /dev/urandom >big.bin && mknpy '|u1' '(1048576,)' big.bin big.npy
(ulimit -f 256; llm-tensor from-npy --raw -o big.llmt x=big.npy; exit $?) 2>/dev/null # the subshell says so, quietly
status=$?
[ "$status" -eq $((128 + $(kill -l XFSZ))) ] && [ ! -e big.llmt ] && [ -z "$(ls | grep '\.tmp\.')" ] &&
    pass "SIGXFSZ: file too large leaves nothing" || fail "SIGXFSZ: file too large leaves nothing" "status $status; $(ls | grep -E 'big|tmp')"

# what -o gets when it is not a regular file: a FIFO's reader gets the data
# and the FIFO stays; a device is written to and stays a device; a symbolic
# link stays and the file it points to is replaced (created if it dangles)
llm-tensor cat all.llmt >cat.llmt
mkfifo fifo
timeout 20 cat fifo >from-fifo.llmt &
reader=$!
expect "-o a FIFO" 0 "" -- timeout 20 llm-tensor cat -o fifo all.llmt
wait "$reader"
same "the FIFO's reader gets the stream" cat.llmt from-fifo.llmt
[ -p fifo ] && [ -z "$(ls | grep '\.tmp\.')" ] && pass "a FIFO stays a FIFO" || fail "a FIFO stays a FIFO" "$(ls -l fifo)"
null=$(chardev null 1 3)
expect "-o a character device" 0 "" -- llm-tensor cat -o "$null" all.llmt
[ -c "$null" ] && pass "$null stays a character device" || fail "$null stays a character device" "$(ls -l "$null")"
mkdir -p sub && cp one.llmt sub/target.llmt
ln -s sub/target.llmt link.llmt && ln -s nowhere.llmt dangling.llmt
expect "-o a symbolic link" 0 "" -- llm-tensor cat -o link.llmt all.llmt
[ -L link.llmt ] && [ "$(readlink link.llmt)" = sub/target.llmt ] && pass "the link stays" || fail "the link stays" "$(ls -l link.llmt)"
same "the link's target is replaced" cat.llmt sub/target.llmt
expect "-o a dangling link" 0 "" -- llm-tensor cat -o dangling.llmt all.llmt
[ -L dangling.llmt ] && cmp -s cat.llmt nowhere.llmt && pass "a dangling link stays, its target made" ||
    fail "a dangling link stays, its target made" "$(ls -l dangling.llmt nowhere.llmt 2>&1)"
expect "-o a directory" 1 "^llm-tensor: sub: is a directory$" -- llm-tensor cat -o sub all.llmt

# every output checked: a full disk is an error that names the output
full "ls to a full disk" stdout -- llm-tensor ls all.llmt
full "stats to a full disk" stdout -- llm-tensor stats --per-channel all.llmt
full "verify to a full disk" stdout -- llm-tensor verify all.llmt
full "cat to a full disk" stdout -- llm-tensor cat all.llmt
full "from-npy to a full disk" stdout -- llm-tensor from-npy x=f4.npy
full "to-npy to a full disk" stdout -- llm-tensor to-npy '*' all.llmt
full "help to a full disk" stdout -- llm-tensor --help
full "version to a full disk" stdout -- llm-tensor --version
dev_full=$(chardev full 1 7)
expect "-o a full device" 1 "^llm-tensor: $dev_full: write: No space left on device$" -- llm-tensor cat -o "$dev_full" all.llmt
[ -c "$dev_full" ] && pass "$dev_full stays a character device" || fail "$dev_full stays a character device" "$(ls -l "$dev_full")"

# option handling inside commands
expect "version after command" 0 "" -- llm-tensor ls --version
expect "unknown option in command" 2 "^llm-tensor: ls: unknown option '--frob'" -- llm-tensor ls --frob
expect "--level with --raw" 2 "exclude each other" -- llm-tensor cat --raw --level 3 all.llmt
expect "a command's --help" 0 "" -- llm-tensor cat --help
grep -q '^usage: llm-tensor cat ' out && grep -q -- '--no-shuffle' out && ! grep -q -- '--per-channel' out &&
    pass "a command's --help lists its own options" || fail "a command's --help lists its own options" "$(cat out)"
# options after the operands, in every command that takes some
llm-tensor cat all.llmt --name '[cd]' -o after.llmt --raw && llm-tensor ls after.llmt >ls.txt &&
    [ "$(cut -d' ' -f1 ls.txt | tr '\n' ' ')" = "c d " ] && llm-tensor verify after.llmt | grep -q '(raw)' &&
    pass "cat: options after the files" || fail "cat: options after the files" "$(cat ls.txt)"
llm-tensor stats all.llmt --name a --per-channel >st.txt && [ "$(wc -l <st.txt)" -eq 6 ] &&
    pass "stats: options after the files" || fail "stats: options after the files" "$(cat st.txt)"
llm-tensor from-npy x=f4.npy --attr k=v -o after.llmt --raw && llm-tensor ls after.llmt | grep -q ' k=v$' &&
    pass "from-npy: options after the operands" || fail "from-npy: options after the operands" "$(llm-tensor ls after.llmt)"
if llm-tensor to-npy a all.llmt -o after.npy 2>err; then same "to-npy: options after the operands" f4.npy after.npy
else fail "to-npy: options after the operands" "$(cat err)"; fi
llm-tensor from-npy --attr "note=a	b" x=f4.npy | llm-tensor ls >ls.txt
grep -q 'note=a\\x09b$' ls.txt && pass "control bytes escaped in ls" || fail "control bytes escaped in ls" "$(cat -A ls.txt)"
rawstream scalar.raw "T:0:s::0000803f" "T:0:e:3,0:"
llm-tensor stats --per-channel scalar.raw >st.txt
[ "$(cut -d' ' -f1 st.txt | tr '\n' ' ')" = "s e " ] && grep -q '^s  *count=1 min=1 max=1 ' st.txt &&
    pass "per-channel skips scalars and empty axes" || fail "per-channel skips scalars and empty axes" "$(cat st.txt)"

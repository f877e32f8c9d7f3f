# lib.sh — helpers sourced by tests/cli/test_*.sh.
# Each check prints "PASS name", "FAIL name: why" or "SKIP name: why";
# tests/run.sh counts those lines.  LLM_BIN points at the tools under test.
set -u
: "${LLM_BIN:?run through tests/run.sh (make check)}"
PATH="$LLM_BIN:$PATH"
. "$LLM_TOP/tests/mknpy.sh"
T=$(mktemp -d "${LLM_TEST_TMP:-/tmp}/cli.XXXXXX")
cd "$T" || exit 2

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# expect NAME STATUS STDERR_REGEX -- COMMAND...: runs COMMAND, checks its exit
# status and that stderr matches the extended regex (empty regex: any).  A
# runtime error (status 1) must be exactly one line.
expect() {
    name=$1 want=$2 pattern=$3; shift 4
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$name" "exit $got, wanted $want; stderr: $(head -c 300 "$T/err")"
    elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$T/err"; then
        fail "$name" "stderr '$(head -c 300 "$T/err")' does not match /$pattern/"
    elif [ "$want" -eq 1 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        fail "$name" "wanted one line on stderr, got: $(head -c 300 "$T/err")"
    else
        pass "$name"
    fi
}

# full NAME OUTPUT -- COMMAND...: COMMAND with its standard output on
# /dev/full must exit 1 with one line on stderr that names OUTPUT and says
# why: "tool: [...: ]OUTPUT: write: No space left on device".
full() {
    name=$1 what=$2; shift 3
    if [ ! -c /dev/full ]; then skip "$name" "no /dev/full"; return; fi
    expect "$name" 1 "^[a-z-]+: (.*: )?$what: (write|close): No space left on device\$" -- sh -c '"$@" >/dev/full' sh "$@"
}

# chardev NAME MAJOR MINOR: prints the path of a character device for -o to
# write to: one made here when mknod is allowed, so that no system file is at
# stake should a tool replace its output (as root it could), else /dev/NAME.
chardev() {
    if mknod "$T/$1" c "$2" "$3" 2>/dev/null; then echo "$T/$1"; else echo "/dev/$1"; fi
}

# same NAME FILE1 FILE2: byte-identical files.
same() {
    if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}

# training_text FILE [BYTES]: text to train on — the GPL-3 every Debian
# system has (its first BYTES bytes when given), or elsewhere 600 lines made up.
training_text() {
    gpl=/usr/share/common-licenses/GPL-3
    if [ ! -r "$gpl" ]; then
        for i in $(seq 600); do echo "line $i: the quick brown fox jumps over the lazy dog"; done >"$1"
    elif [ -n "${2:-}" ]; then
        head -c "$2" "$gpl" >"$1"
    else
        cp "$gpl" "$1"
    fi
}

# llama2c_model FILE VOCAB FLOATS: a llama2.c model file: its header, of the
# caller's D (width), F (hidden), L (layers), H (heads), K (kv heads), VOCAB
# (negative: the classifier is not the embedding) and S (seq_len), then
# FLOATS random floats in [-0.5, 0.5), the same ones every time.
llama2c_model() {
    perl -e 'my ($out, $d, $f, $l, $h, $k, $v, $s, $n) = @ARGV; srand(5);
             open(my $o, ">:raw", $out) or die;
             print $o pack("l<7", $d, $f, $l, $h, $k, $v, $s);
             print $o pack("f<*", map { rand() - 0.5 } 1..$n);' "$1" "$D" "$F" "$L" "$H" "$K" "$2" "$S" "$3"
}

# llama2c_tok FILE PIECES: a llama2.c tokenizer.bin of PIECES pieces: <unk>,
# <s>, </s>, the byte pieces <0x00>.. (as many as fit), then w259...
llama2c_tok() {
    perl -e 'my ($out, $n) = @ARGV; open(my $o, ">:raw", $out) or die;
             print $o pack("l<", 6);
             for my $i (0 .. $n - 1) {
                 my $p = $i == 0 ? "<unk>" : $i == 1 ? "\n<s>\n" : $i == 2 ? "\n</s>\n"
                       : $i < 259 ? sprintf("<0x%02X>", $i - 3) : "w$i";
                 print $o pack("f< l<", -$i, length($p)), $p;
             }' "$1" "$2"
}

# two_bases: text.txt (training_text) cut into a.txt (its first 20000 bytes)
# and b.txt (its last), and two small models: base.llmt, 20 steps on a.txt,
# and other.llmt, another base, 2 steps on b.txt.  Sets tiny, the options of
# such small runs.
two_bases() {
    training_text text.txt
    head -c 20000 text.txt >a.txt
    tail -c 20000 text.txt >b.txt
    tiny="--batch 4 --threads 1"
    llm-train --data a.txt --out base.llmt --dim 32 --layers 2 --heads 4 --seq 32 $tiny --steps 20 -q ||
        fail "base model" "llm-train failed"
    llm-train --data b.txt --out other.llmt --dim 32 --layers 2 --heads 4 --seq 32 $tiny --steps 2 -q
}

# Debian's interpreter, with numpy, or nothing.
numpy_python() {
    if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then echo /usr/bin/python3; fi
}

# rawstream OUT SPEC...: writes an uncompressed stream byte by byte with perl,
# for inputs the tools would never write.  Each SPEC is "kind:dtype:name:dims:
# payload-bytes[:name-length[:attributes[:payload-length]]]" (dims comma-separated,
# payload as \xNN-free hex or zN for N zero bytes, attributes as key=value,key=value;
# an empty or missing length field means the true one: a larger payload length
# with fewer payload bytes is a record whose data never arrives).
# Pieces may be overridden: MAGIC, VERSION, END_COUNT, NO_END (environment).
rawstream() {
    perl -e '
        my $out = shift @ARGV;
        my $s = ($ENV{MAGIC} // "LLMT") . pack("v v", $ENV{VERSION} // 1, 0);
        my $n = 0;
        for my $spec (@ARGV) {
            my ($kind, $dtype, $name, $dims, $hex, $len, $attrs, $plen) = split /:/, $spec;
            my @d = length($dims) ? split(/,/, $dims) : ();
            my @a = length($attrs // "") ? split(/,/, $attrs) : ();
            my $payload = $hex =~ /^z(\d+)$/ ? "\0" x $1 : pack("H*", $hex);
            $len = length($name) unless length($len // "");
            $plen = length($payload) unless length($plen // "");
            $s .= $kind . pack("C C C v", $dtype, scalar(@d), 0, $len) . $name . pack("v", scalar(@a));
            for my $kv (@a) {
                my ($k, $v) = split /=/, $kv, 2;
                $s .= pack("v", length($k)) . $k . pack("V", length($v)) . $v;
            }
            $s .= join("", map { pack("Q<", $_) } @d);
            $s .= pack("Q<", $plen) . $payload;
            $n++;
        }
        $s .= "E" . pack("Q<", $ENV{END_COUNT} // $n) unless $ENV{NO_END};
        open(my $o, ">:raw", $out) or die; print $o $s;
    ' "$@"
}

# bounded NAME STATUS STDERR_REGEX MIB -- COMMAND...: expect, and the command's
# peak resident set (wait4's ru_maxrss, through tests/bench/maxrss.c) stays
# under MIB MiB.  Under ASan, whose shadow memory and quarantine are not the
# program's, only the status and stderr are checked.
bounded() {
    b_name=$1 b_want=$2 b_pattern=$3 b_mib=$4; shift 5
    if [ ! -x "$T/maxrss" ] && ! ${CC:-cc} -O2 -o "$T/maxrss" "$LLM_TOP/tests/bench/maxrss.c" 2>/dev/null; then
        expect "$b_name" "$b_want" "$b_pattern" -- "$@"
        skip "$b_name: peak RSS under $b_mib MiB" "cannot build tests/bench/maxrss.c"
        return
    fi
    rm -f "$T/rss"
    expect "$b_name" "$b_want" "$b_pattern" -- "$T/maxrss" "$T/rss" "$@"
    if nm "$LLM_BIN/llm-tensor" 2>/dev/null | grep -q __asan; then
        skip "$b_name: peak RSS under $b_mib MiB" "peak RSS is not the program's under ASan"
        return
    fi
    b_kib=$(sed -n 's/^maxrss_kib=//p' "$T/rss" 2>/dev/null)
    if [ -n "$b_kib" ] && [ "$b_kib" -lt $((b_mib * 1024)) ]; then
        pass "$b_name: peak RSS under $b_mib MiB"
    else
        fail "$b_name: peak RSS under $b_mib MiB" "peak RSS ${b_kib:-unknown} KiB"
    fi
}

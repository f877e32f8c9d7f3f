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

# Debian's interpreter, with numpy, or nothing.
numpy_python() {
    if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then echo /usr/bin/python3; fi
}

# rawstream OUT SPEC...: writes an uncompressed stream byte by byte with perl,
# for inputs the tools would never write.  Each SPEC is "kind:dtype:name:dims:
# payload-bytes[:attr-count]" (dims comma-separated, payload as \xNN-free hex).
# Pieces may be overridden: MAGIC, VERSION, END_COUNT (environment).
rawstream() {
    perl -e '
        my $out = shift @ARGV;
        my $s = ($ENV{MAGIC} // "LLMT") . pack("v v", $ENV{VERSION} // 1, 0);
        my $n = 0;
        for my $spec (@ARGV) {
            my ($kind, $dtype, $name, $dims, $hex, $len) = split /:/, $spec;
            my @d = length($dims) ? split(/,/, $dims) : ();
            my $payload = pack("H*", $hex);
            $s .= $kind . pack("C C C v", $dtype, scalar(@d), 0, $len // length($name)) . $name;
            $s .= pack("v", 0) . join("", map { pack("Q<", $_) } @d);
            $s .= pack("Q<", length($payload)) . $payload;
            $n++;
        }
        $s .= "E" . pack("Q<", $ENV{END_COUNT} // $n) unless $ENV{NO_END};
        open(my $o, ">:raw", $out) or die; print $o $s;
    ' "$@"
}

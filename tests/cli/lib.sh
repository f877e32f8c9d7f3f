# lib.sh — helpers sourced by tests/cli/test_*.sh.
# Each check prints "PASS name", "FAIL name: why" or "SKIP name: why";
# tests/run.sh counts those lines.  LLM_BIN points at the tools under test.
set -u
: "${LLM_BIN:?run through tests/run.sh (make check)}"
PATH="$LLM_BIN:$PATH"
T=$(mktemp -d "${LLM_TEST_TMP:-/tmp}/cli.XXXXXX")
cd "$T" || exit 2

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# expect NAME STATUS STDERR_REGEX -- COMMAND...: runs COMMAND, checks its exit
# status and that stderr matches the extended regex (empty regex: any).
expect() {
    name=$1 want=$2 pattern=$3; shift 4
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$name" "exit $got, wanted $want; stderr: $(head -c 300 "$T/err")"
    elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$T/err"; then
        fail "$name" "stderr '$(head -c 300 "$T/err")' does not match /$pattern/"
    elif [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        fail "$name" "wanted one line on stderr, got: $(head -c 300 "$T/err")"
    else
        pass "$name"
    fi
}

# same NAME FILE1 FILE2: byte-identical files.
same() {
    if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}

# Debian's interpreter, with numpy, or nothing.
numpy_python() {
    if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then echo /usr/bin/python3; fi
}

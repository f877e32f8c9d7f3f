#!/bin/bash
# make install puts every tool and man page under DESTDIR/PREFIX.
. "$(dirname "$0")/lib.sh"
if make -s -C "$LLM_TOP" install PREFIX=/opt/llmpipe DESTDIR="$T/root" >install.log 2>&1; then
    missing=""
    for t in "$LLM_TOP"/bin/llm-*.c; do
        t=$(basename "$t" .c)
        [ -x "$T/root/opt/llmpipe/bin/$t" ] || missing="$missing bin/$t"
        [ -f "$LLM_TOP/man/man1/$t.1" ] && { [ -f "$T/root/opt/llmpipe/share/man/man1/$t.1" ] || missing="$missing $t.1"; }
    done
    [ -f "$T/root/opt/llmpipe/share/man/man5/llm-tensor.5" ] || missing="$missing llm-tensor.5"
    [ -z "$missing" ] && pass "install puts tools and man pages in place" || fail "install" "missing:$missing"
    "$T/root/opt/llmpipe/bin/llm-tensor" --version | grep -q llmpipe && pass "installed tool runs" ||
        fail "installed tool runs" "no version"
else
    fail "install" "$(tail -n 3 install.log)"
fi

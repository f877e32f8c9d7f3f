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

# every tool has a man page, and every option its --help shows is in it
for src in "$LLM_TOP"/bin/llm-*.c; do
    t=$(basename "$src" .c)
    page="$LLM_TOP/man/man1/$t.1"
    if [ ! -f "$page" ]; then fail "$t man page" "man/man1/$t.1 missing"; continue; fi
    undocumented=""
    for opt in $("$LLM_BIN/$t" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
        grep -qF -- "${opt//-/\\-}" "$page" || grep -qF -- "$opt" "$page" ||
            undocumented="$undocumented $opt"
    done
    [ -z "$undocumented" ] && pass "$t man page covers --help" || fail "$t man page covers --help" "missing:$undocumented"
done

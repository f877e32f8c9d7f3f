#!/bin/bash
# make demo must keep running end to end: run its script against the tools
# under test and check it reaches the end.
. "$(dirname "$0")/lib.sh"
if DEMO_STEPS=5 sh "$LLM_TOP/tests/demo.sh" "$LLM_BIN" >demo.out 2>&1 && grep -q '^demo: ok' demo.out &&
   grep -q '^identical$' demo.out; then
    pass "demo runs end to end"
else
    fail "demo runs end to end" "$(tail -n 5 demo.out)"
fi

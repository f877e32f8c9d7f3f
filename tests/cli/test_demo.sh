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
# every tool took its turn: two evaluations (float, int4), a calibration
# table, a quantized model, an image and attention statistics
[ "$(grep -c '^ppl=' demo.out)" -eq 2 ] && grep -q '^layers.0.attn.wq.in ' demo.out &&
    grep -q 'linear layers to int4' demo.out && grep -q '^P5 ' demo.out && grep -q '^layer	head	entropy' demo.out &&
    pass "demo runs every tool" || fail "demo runs every tool" "$(grep -E '^(ppl=|P5|layer)' demo.out)"
# and the GGUF pipeline: export, import, attention, GPTQ from a pipe, export
[ "$(grep -c '^layer	head	entropy' demo.out)" -eq 2 ] && grep -Eq '^meta general.architecture +string +llama$' demo.out &&
    [ "$(grep -c 'linear layers to int4' demo.out)" -eq 2 ] && pass "demo goes through GGUF" ||
    fail "demo goes through GGUF" "$(grep -E '^(meta general|layer	head)' demo.out)"

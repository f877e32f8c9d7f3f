#!/bin/bash
# CLI tests for llm-gen: greedy output equal to llm-train's own full-recompute
# sample, sampling determinism, evaluation output, and bad input.
. "$(dirname "$0")/lib.sh"

training_text text.txt 30000
llm-train --data text.txt --out m.llmt --dim 32 --layers 2 --heads 4 --kv-heads 2 --seq 48 --batch 4 \
    --steps 30 --eval-every 0 --threads 1 -q --sample 30 --prompt "The" >sample.txt 2>train.err ||
    fail "train a model" "$(cat train.err)"

expect "help" 0 "" -- llm-gen --help
grep -q -- "--rope-scaling" out && grep -q -- "--eval" out && pass "help lists options" || fail "help lists options" "$(head -3 out)"
expect "no model" 2 "no model: give -m" -- llm-gen -p hi
expect "bad scaling" 2 "--rope-scaling: 'big'" -- llm-gen -m m.llmt --rope-scaling big
expect "bad temp" 2 "--temp: '-1'" -- llm-gen -m m.llmt --temp -1

# the KV-cache path and llm-train's full recompute choose the same tokens
expect "greedy" 0 "prompt 4 tokens .* 30 tokens generated" -- llm-gen -m m.llmt -p "The" -n 30 --temp 0
same "greedy equals llm-train's sample" sample.txt out
printf 'The' | llm-gen -m m.llmt -n 30 --temp 0 -q >stdin.txt
same "prompt from stdin" sample.txt stdin.txt
llm-gen -m m.llmt -p "The" -n 40 --seed 7 -q >s1.txt
llm-gen -m m.llmt -p "The" -n 40 --seed 7 -q >s2.txt
llm-gen -m m.llmt -p "The" -n 40 --seed 8 -q >s3.txt
same "same seed, same text" s1.txt s2.txt
cmp -s s1.txt s3.txt && fail "another seed, other text" "identical" || pass "another seed, other text"
llm-gen -m m.llmt -p "The" -n 5 --temp 0 --ids -q >ids.txt 2>&1 && fail "--ids wants ids" "accepted text" || pass "--ids wants ids"
llm-gen -m m.llmt -p "256 84 104 101" -n 30 --temp 0 --ids -q >ids.txt
want=$(tail -c +4 sample.txt | head -c 30 | od -An -tu1 -v | tr -s ' \n' ' ' | sed 's/^ //')
[ "$(cat ids.txt)" = "$want" ] && pass "--ids in and out" || fail "--ids in and out" "'$(cat ids.txt)' vs '$want'"
expect "context full" 0 "context \(48 tokens\) is full" -- llm-gen -m m.llmt -p "The" -n 100

# evaluation: one machine-readable line
expect "eval" 0 "" -- llm-gen -m m.llmt --eval text.txt --stride 24
grep -Eq '^ppl=[0-9.]+ bpb=[0-9.]+ tokens=30000$' out && pass "eval line" || fail "eval line" "$(cat out)"
ppl=$(sed 's/ppl=\([0-9.]*\).*/\1/' out); bpb=$(sed 's/.*bpb=\([0-9.]*\).*/\1/' out)
awk -v p="$ppl" -v b="$bpb" 'BEGIN { d = log(p) / log(2) - b; exit !(d < 0.001 && d > -0.001) }' &&
    pass "bpb = log2(ppl) for bytes" || fail "bpb = log2(ppl) for bytes" "ppl $ppl bpb $bpb"
expect "eval stdin" 0 "" -- sh -c 'llm-gen -m m.llmt --eval - < text.txt'
expect "long context with scaling" 0 "" -- llm-gen -m m.llmt --eval text.txt --ctx 96 --rope-scaling yarn

# bad input
head -c 2000 m.llmt >trunc.llmt
expect "truncated checkpoint" 1 "trunc.llmt: .*truncated" -- llm-gen -m trunc.llmt -p hi
expect "not a checkpoint" 1 "text.txt: .*not a tensor stream" -- llm-gen -m text.txt -p hi
llm-tensor from-npy -o notmodel.llmt x=/dev/null 2>/dev/null || { printf 'LLMT\001\000\000\000E\000\000\000\000\000\000\000\000' >notmodel.llmt; }
expect "a stream that is not a model" 1 "not a model checkpoint" -- llm-gen -m notmodel.llmt -p hi
head -c 100 text.txt >long.txt
expect "prompt longer than the context" 1 "the prompt is 101 tokens; the context holds 48" -- llm-gen -m m.llmt -p "$(cat long.txt)"
expect "token outside the vocabulary" 1 "^llm-gen: -p: token 2 of 2: id 999 outside the vocabulary \(0..257\)$" -- llm-gen -m m.llmt --ids -p "1 999"
llm-train --data text.txt --out wide.llmt --dim 256 --layers 8 --heads 4 --seq 16 --batch 1 --steps 1 \
    --eval-every 0 -q 2>/dev/null
expect "context beyond memory" 1 "context 4000000 needs 61.0 GiB for the KV cache" -- \
    llm-gen -m wide.llmt --ctx 4000000 --rope-scaling linear -p hi

# llm-gen runs as it was started: no re-execution with an environment of its
# own (OpenMP's and OpenBLAS's threads are one pool: llm_cli_threads); read
# while it waits for its prompt on standard input
env_of() { # env_of VAR=VALUE...: llm-gen's own environment, one variable a line
    (sleep 2 | env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT "$@" \
        llm-gen -m m.llmt -n 1 -q >/dev/null 2>&1) &
    sleep 0.5
    for p in $(pgrep -f 'llm-gen -m m.llmt -n 1 -q' 2>/dev/null || true); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -E '^(OMP_WAIT_POLICY|GOMP_SPINCOUNT|OPENBLAS_THREAD_TIMEOUT)='
    done | sort -u
    wait
}
if command -v pgrep >/dev/null 2>&1 && [ -r /proc/self/environ ]; then
    [ -z "$(env_of)" ] && pass "sets no environment of its own" || fail "sets no environment of its own" "$(env_of | tr '\n' ' ')"
    [ "$(env_of OMP_WAIT_POLICY=ACTIVE | tr '\n' ' ')" = "OMP_WAIT_POLICY=ACTIVE " ] &&
        pass "leaves a user's wait policy alone" ||
        fail "leaves a user's wait policy alone" "$(env_of OMP_WAIT_POLICY=ACTIVE | tr '\n' ' ')"
else
    skip "sets no environment of its own" "needs pgrep and /proc"
fi

# dumps: streams for the other tools
expect "dump-attn" 0 "dumped 9 tokens" -- llm-gen -m m.llmt --dump-attn -p "the cat "
cp out attn.llmt
[ "$(llm-tensor ls attn.llmt | awk '{print $1, $3}' | tr '\n' ' ')" = "layers.0.attn.probs [4,9,9] layers.1.attn.probs [4,9,9] " ] &&
    pass "dump-attn records" || fail "dump-attn records" "$(llm-tensor ls attn.llmt)"
llm-tensor ls attn.llmt | grep -q 'tokens=<bos> t h e \\x5cx20 c a t \\x5cx20$' &&
    pass "dump-attn token labels" || fail "dump-attn token labels" "$(llm-tensor ls attn.llmt)"
llm-tensor stats attn.llmt | grep -q '^layers.0.attn.probs  *count=324 min=0 max=1 mean=0.1111111 ' &&
    pass "probabilities: rows sum to 1" || fail "probabilities: rows sum to 1" "$(llm-tensor stats attn.llmt)"
expect "dump-acts" 0 "dumped 101 tokens in 3 sequences" -- sh -c 'head -c 100 text.txt | llm-gen -m m.llmt --dump-acts'
cp out acts.llmt
llm-tensor ls acts.llmt >acts.txt
[ "$(wc -l <acts.txt)" -eq 27 ] && grep -q '^layers.1.mlp.w2.in  *f32  *\[48,96\] .* seq=0$' acts.txt &&
    grep -q '^cls.in  *f32  *\[5,32\] .* seq=2$' acts.txt && pass "dump-acts records" || fail "dump-acts records" "$(cat acts.txt)"
py=$(numpy_python)
if [ -n "$py" ]; then
    llm-tensor to-npy 'layers.1.attn.probs' attn.llmt >p.npy
    "$py" -c "
import numpy as np
p = np.load('p.npy')
assert p.shape == (4, 9, 9)
assert np.allclose(p.sum(-1), 1, atol=1e-5)
assert (np.triu(p, 1) == 0).all(), 'attention to the future'
" && pass "probabilities are causal (numpy)" || fail "probabilities are causal (numpy)" "check failed"
else
    skip "probabilities are causal (numpy)" "Debian python3-numpy not installed"
fi

# --batch: continuous batching gives what each prompt gets alone
printf 'The\nthe \nGNU\nYou may\nprogram\n' >prompts.txt
expect "batch" 0 "5 requests, [0-9.]+ requests/s" -- sh -c 'llm-gen -m m.llmt --batch --slots 3 -n 20 --temp 0 < prompts.txt'
cp out batch.txt
: >single.txt
while IFS= read -r p; do llm-gen -m m.llmt -p "$p" -n 20 --temp 0 -q >>single.txt; done <prompts.txt
same "batch output equals one prompt at a time" single.txt batch.txt
llm-gen -m m.llmt --batch --slots 1 -n 20 --seed 5 -q <prompts.txt >b1.txt
llm-gen -m m.llmt --batch --slots 4 -n 20 --seed 5 -q <prompts.txt >b4.txt
same "sampling does not depend on the slots" b1.txt b4.txt
expect "batch and eval exclude" 2 "exclude each other" -- llm-gen -m m.llmt --batch --eval text.txt
expect "dump-acts takes stdin" 2 "reads its text from stdin" -- llm-gen -m m.llmt --dump-acts -p hi
expect "stride beyond ctx" 2 "--stride 100 is larger than --ctx 48" -- llm-gen -m m.llmt --eval text.txt --ctx 48 --stride 100
head -c 47 text.txt >p47.txt
expect "a prompt filling the context" 0 "context \(48 tokens\) is full" -- llm-gen -m m.llmt -p "$(cat p47.txt)" -n 5
printf 'a\n\nb\n' | llm-gen -m m.llmt --batch -n 30 --temp 0 -q >nl.txt
[ "$(wc -l <nl.txt)" -eq 3 ] && pass "batch: one line per prompt" || fail "batch: one line per prompt" "$(cat -A nl.txt | head -5)"

# every output checked: a full disk is an error that names the output
printf 'the cat\tyes\nthe dog\tno\n' >cls.tsv
full "generation to a full disk" stdout -- llm-gen -m m.llmt -p "The" -n 5 --temp 0 -q
full "generation of ids to a full disk" stdout -- llm-gen -m m.llmt --ids -p "256 84" -n 5 --temp 0 -q
full "eval to a full disk" stdout -- llm-gen -m m.llmt --eval p47.txt -q
full "classify to a full disk" stdout -- llm-gen -m m.llmt --classify cls.tsv -q
full "batch to a full disk" stdout -- sh -c 'llm-gen -m m.llmt --batch -n 5 --temp 0 -q <prompts.txt'
full "dump-acts to a full disk" stdout -- sh -c 'llm-gen -m m.llmt --dump-acts -q <p47.txt'
full "help to a full disk" stdout -- llm-gen --help

#!/bin/bash
# CLI tests for llm-train: options and bad input, the log, resuming bit for
# bit, SIGINT, continual pre-training on new text.
. "$(dirname "$0")/lib.sh"

training_text text.txt
head -c 20000 text.txt >a.txt
tail -c 20000 text.txt >b.txt
tiny="--dim 32 --layers 2 --heads 4 --kv-heads 2 --seq 32 --batch 4 --threads 1"

expect "help" 0 "" -- llm-train --help
grep -q -- "--kv-heads" out && grep -q -- "--optim adamw|adam|lion|sgd" out && pass "help lists options" || fail "help lists options" "$(head -3 out)"
expect "version" 0 "" -- llm-train --version
expect "no data" 2 "no training text" -- llm-train --out m.llmt
expect "no out" 2 "no --out" -- llm-train --data a.txt
expect "bad optimizer" 2 "--optim: 'rmsprop'" -- llm-train --data a.txt --out m.llmt --optim rmsprop
expect "dim not divisible by heads" 2 "dim 30 is not divisible by heads 4" -- llm-train --data a.txt --out m.llmt --dim 30
expect "odd head size" 2 "head size 9 .* is odd" -- llm-train --data a.txt --out m.llmt --dim 36 --heads 4
expect "kv heads" 2 "heads 4 is not a multiple of kv-heads 3" -- llm-train --data a.txt --out m.llmt --kv-heads 3
printf 'tiny' >short.txt
expect "corpus too short" 1 "corpus too short: 5 tokens .* --seq 32 needs at least 33" -- llm-train --data short.txt --out m.llmt $tiny
: >empty.txt
expect "empty corpus" 1 "^llm-train: empty.txt: empty file$" -- llm-train --data empty.txt --out m.llmt $tiny
expect "missing corpus" 1 "nope.txt: No such file" -- llm-train --data nope.txt --out m.llmt $tiny
[ ! -e m.llmt ] && pass "no checkpoint after bad input" || fail "no checkpoint after bad input" "m.llmt exists"

# a short run: checkpoint, log columns, optimizer state printed
expect "train" 0 "optimizer adamw: .* MiB of state \(2 floats per parameter\)" -- \
    llm-train --data a.txt --out m.llmt $tiny --steps 12 --eval-every 6 --log log.tsv
head -1 log.tsv | grep -q "^step	train_loss	val_loss	lr	tokens_per_s	grad_norm$" && [ "$(wc -l <log.tsv)" -eq 13 ] &&
    pass "log has a row per step" || fail "log has a row per step" "$(head -3 log.tsv)"
awk -F'\t' 'NR==7 && $3 != "" {ok=1} END {exit !ok}' log.tsv && pass "log has validation loss at evals" ||
    fail "log has validation loss at evals" "$(sed -n 7p log.tsv)"
llm-tensor ls m.llmt | grep -q '^meta train ' && llm-tensor ls m.llmt | grep -q '^optim.v.layers.1.mlp.w2 ' &&
    pass "checkpoint holds training state" || fail "checkpoint holds training state" "$(llm-tensor ls m.llmt | head)"
expect "lion state" 0 "optimizer lion: .*\(1 floats per parameter\)" -- \
    llm-train --data a.txt --out lion.llmt $tiny --steps 2 --eval-every 0 --optim lion

# N steps, stop, M more == N+M in one run, bit for bit (one thread)
llm-train --data a.txt --out whole.llmt $tiny --steps 16 --eval-every 0 -q
llm-train --data a.txt --out half.llmt $tiny --steps 16 --stop-at 7 --eval-every 0 -q
expect "resume" 0 "resumed" -- llm-train --data a.txt --init half.llmt --out resumed.llmt $tiny --eval-every 0
for t in tok_emb layers.1.attn.wk layers.0.mlp.w2 optim.m.layers.1.attn.wq; do
    llm-tensor to-npy "$t" whole.llmt >w.npy && llm-tensor to-npy "$t" resumed.llmt >r.npy
    same "resumed $t equals one run" w.npy r.npy
done
expect "resume past the end" 1 "already at step 16 of 16" -- llm-train --data a.txt --init whole.llmt --out x.llmt $tiny
expect "incompatible checkpoint" 1 "incompatible checkpoint: it has dim 32, not 64" -- \
    llm-train --data a.txt --init whole.llmt --out x.llmt --dim 64
expect "not a checkpoint" 1 "a.txt: .*not a tensor stream" -- llm-train --data a.txt --init a.txt --out x.llmt

# new text: weights carry on, optimizer and schedule start afresh
expect "continual pre-training" 0 "continued on new text \(fresh optimizer\)" -- \
    llm-train --data b.txt --init whole.llmt --out cont.llmt --steps 3 --eval-every 0 --threads 1

# SIGINT: a checkpoint of the steps done, exit 130
llm-train --data text.txt --out int.llmt --dim 64 --layers 2 --heads 4 --seq 64 --steps 100000 --eval-every 0 -q 2>int.err &
pid=$!
sleep 2
kill -INT $pid
wait $pid
status=$?
[ "$status" -eq 130 ] && grep -q "interrupted: saved step" int.err && llm-tensor ls int.llmt | grep -q '^meta train .*step=' &&
    pass "SIGINT saves and exits 130" || fail "SIGINT saves and exits 130" "status $status"
# SIGTERM while a checkpoint is being written: the temporary file goes, and
# the old checkpoint (none here) is untouched.  The save of a 13M-parameter
# model with its moments (about 150 MB) is long enough to be caught; if this
# machine saves it before the poll sees the file, the check is skipped.
llm-train --data a.txt --out term.llmt --dim 512 --layers 4 --heads 8 --seq 32 --batch 1 --steps 1 \
    --eval-every 0 --threads 1 -q 2>term.err &
pid=$!
seen=0
while kill -0 $pid 2>/dev/null; do
    if ls term.llmt.tmp.* >/dev/null 2>&1; then seen=1; kill -TERM $pid; break; fi
    sleep 0.01
done
wait $pid
status=$?
if [ $seen -eq 0 ]; then
    skip "SIGTERM during a save removes the temporary file" "the save ended before the poll saw it"
elif [ $status -eq 143 ] && ! ls term.llmt* >/dev/null 2>&1; then
    pass "SIGTERM during a save removes the temporary file"
else
    fail "SIGTERM during a save removes the temporary file" "status $status; left: $(ls term.llmt* 2>&1)"
fi
expect "resume ignores new settings, says so" 0 "ignoring the ones given" -- \
    llm-train --data a.txt --init half.llmt --out r2.llmt $tiny --lr 0.5 --eval-every 0
llm-tensor to-npy tok_emb r2.llmt >r2.npy && llm-tensor to-npy tok_emb whole.llmt >w.npy
same "ignored settings change nothing" w.npy r2.npy
expect "progress bar when forced" 0 "\[#+\.*\] step 3/3 loss [0-9.]+ [0-9]+ tok/s ETA 0s" -- \
    llm-train --data a.txt --out p.llmt $tiny --steps 3 --eval-every 0 --progress
grep -q 'step 3/3 train' err && fail "no eval line with --eval-every 0" "$(cat err)" || pass "no eval line with --eval-every 0"

# every output checked: a full log or standard output is an error that names it
dev_full=$(chardev full 1 7)
expect "--log on a full disk" 1 "^llm-train: $dev_full: write: No space left on device$" -- \
    llm-train --data a.txt --out full.llmt $tiny --steps 2 --eval-every 0 -q --log "$dev_full"
full "--sample to a full disk" stdout -- llm-train --data a.txt --out full.llmt $tiny --steps 1 --eval-every 0 -q --sample 5
full "help to a full disk" stdout -- llm-train --help
# the checkpoint onto a FIFO: its reader gets it, the FIFO stays
mkfifo ckpt.fifo
timeout 30 cat ckpt.fifo >from-fifo.llmt &
reader=$!
expect "--out a FIFO" 0 "" -- timeout 30 llm-train --data a.txt --out ckpt.fifo $tiny --steps 1 --eval-every 0 -q
wait "$reader"
[ -p ckpt.fifo ] && llm-tensor ls from-fifo.llmt | grep -q '^meta train ' && pass "the FIFO's reader gets the checkpoint" ||
    fail "the FIFO's reader gets the checkpoint" "$(ls -l ckpt.fifo; llm-tensor ls from-fifo.llmt 2>&1 | head -2)"

#!/bin/bash
# CLI tests for fine-tuning with llm-train and llm-gen: continual
# pre-training from a model checkpoint, prompt tuning and LoRA adapters on a
# frozen base (the base file untouched, the adapter small, refused on another
# base), labelled examples and --classify, bad input, and QLoRA on int4
# and int8 bases (codes untouched, peak RSS below LoRA on the float base).
. "$(dirname "$0")/lib.sh"

two_bases
cp base.llmt base.orig

# usage errors
expect "lora needs a base" 2 "give it with --init BASE" -- llm-train --data b.txt --out a.llmt --lora 4
expect "alpha needs lora" 2 "--lora-alpha and --lora-targets need --lora" -- \
    llm-train --init base.llmt --data b.txt --out a.llmt --lora-alpha 8
expect "bad target" 2 "LoRA target 'wx' is not one of" -- \
    llm-train --init base.llmt --data b.txt --out a.llmt --lora 4 --lora-targets wq,wx
expect "examples and data" 2 "--examples replaces --data" -- \
    llm-train --init base.llmt --data b.txt --examples b.txt --out a.llmt
expect "rank too large" 2 "--lora" -- llm-train --init base.llmt --data b.txt --out a.llmt --lora 100000
[ ! -e a.llmt ] && pass "no output after bad input" || fail "no output after bad input" "a.llmt exists"

# continual pre-training: a fresh optimizer and schedule, validation before and after
expect "continual pre-training" 0 "step 0 val [0-9.]+ \(before training\)" -- \
    llm-train --init base.llmt --data b.txt --out cpt.llmt $tiny --steps 6 --eval-every 6 --log cpt.tsv
grep -q "continued on new text (fresh optimizer)" err && pass "continual run says fresh optimizer" ||
    fail "continual run says fresh optimizer" "$(head -1 err)"
sed -n 2p cpt.tsv | grep -q "^1	" && [ "$(wc -l <cpt.tsv)" -eq 7 ] && pass "continual run counts from step 1" ||
    fail "continual run counts from step 1" "$(head -2 cpt.tsv)"

# prompt tuning: the adapter holds the virtual tokens only; the base is untouched
expect "prompt tuning" 0 "trainable 256 parameters of .*optimizer state 2.0 KiB; peak RSS" -- \
    llm-train --init base.llmt --data b.txt --out pt.llmt --prompt-tune 8 $tiny --steps 8 --eval-every 4 --log pt.tsv
head -1 pt.tsv | grep -q "grad_norm	trainable	peak_rss_mib$" && awk -F'\t' 'NR>1 && ($7 != 256 || $8 <= 0) {bad=1} END {exit bad}' pt.tsv &&
    pass "log has trainable count and peak RSS" || fail "log has trainable count and peak RSS" "$(head -2 pt.tsv)"
grep -q "lr 0.1" <(awk -F'\t' 'NR==2 {print "lr " $4}' pt.tsv) && pass "prompt tuning's default lr 0.1" ||
    fail "prompt tuning's default lr 0.1" "$(sed -n 2p pt.tsv)"
llm-tensor ls pt.llmt | grep -q "^f32 *virtual *\[8, 32\]\|virtual.*8.*32" && pass "adapter holds virtual [8, 32]" ||
    fail "adapter holds virtual [8, 32]" "$(llm-tensor ls pt.llmt)"
same "base untouched by prompt tuning" base.llmt base.orig

# LoRA on every linear
expect "lora" 0 "LoRA rank 2 alpha 4 on wq,wk,wv,wo,w1,w2,w3" -- \
    llm-train --init base.llmt --data b.txt --out lora.llmt --lora 2 --lora-targets all --lr 0.01 $tiny --steps 8 --eval-every 0
same "base untouched by LoRA" base.llmt base.orig
n=$(llm-tensor ls lora.llmt | grep -c "^layers\..*lora_[ab] ")
[ "$n" -eq 28 ] && pass "28 LoRA factors (2 layers x 7 linears x A, B)" || fail "28 LoRA factors" "$n"
bs=$(stat -c %s base.llmt) ls=$(stat -c %s lora.llmt) ps=$(stat -c %s pt.llmt)
[ $((ls * 5)) -lt "$bs" ] && [ $((ps * 50)) -lt "$bs" ] && pass "adapters much smaller than the base" ||
    fail "adapters much smaller than the base" "base $bs, lora $ls, prompt $ps bytes"

# llm-gen with adapters
expect "generate with lora" 0 "" -- llm-gen -m base.llmt --adapter lora.llmt -p "The " -n 8 --temp 0
expect "generate with prompt tokens" 0 "" -- llm-gen -m base.llmt --adapter pt.llmt -p "The " -n 8 --temp 0
llm-gen -m base.llmt --eval b.txt >ppl_base 2>/dev/null
llm-gen -m base.llmt --adapter lora.llmt --eval b.txt >ppl_lora 2>/dev/null
! cmp -s ppl_base ppl_lora && grep -q "^ppl=" ppl_lora && pass "the LoRA adapter changes perplexity" ||
    fail "the LoRA adapter changes perplexity" "$(cat ppl_base ppl_lora)"
expect "adapter on another base" 1 "^llm-gen: lora.llmt: not for other.llmt: the adapter was made for another base model" -- \
    llm-gen -m other.llmt --adapter lora.llmt -p "The " -n 4
expect "adapter on the continued model" 1 "another base model" -- llm-gen -m cpt.llmt --adapter pt.llmt -p "x" -n 2
expect "prompt adapter and eval" 2 "not --eval" -- llm-gen -m base.llmt --adapter pt.llmt --eval b.txt
expect "model as adapter" 1 "base.llmt: not an adapter stream" -- llm-gen -m base.llmt --adapter base.llmt -p x
head -c 300 lora.llmt >cut.llmt
expect "truncated adapter" 1 "^llm-gen: cut.llmt" -- llm-gen -m base.llmt --adapter cut.llmt -p x

# labelled examples: training on labels only, and --classify
awk 'NR % 3 == 1 && length($0) > 20 {print substr($0, 1, 20) " =>\t" (NR % 2 ? " odd" : " even")}' text.txt | head -40 >ex.tsv
expect "examples" 0 "examples \([0-9]+ train, [0-9]+ held out\), windows of 32, loss on the labels only" -- \
    llm-train --init base.llmt --examples ex.tsv --out cls.llmt --lora 2 --lr 0.01 $tiny --steps 4 --eval-every 0
expect "classify" 0 "" -- llm-gen -m base.llmt --adapter cls.llmt --classify ex.tsv
[ "$(grep -c "^ [a-z]*	 [a-z]*$" out)" -eq "$(wc -l <ex.tsv)" ] && tail -1 out | grep -Eq "^accuracy=[01]\.[0-9]{4} correct=[0-9]+ n=$(wc -l <ex.tsv) labels=2$" &&
    pass "classify prints a prediction per example and the accuracy" || fail "classify output" "$(tail -2 out)"
awk -F'\t' '!/^accuracy/ {n++; c += $1 == $2} END {print c}' out >counted
grep -q "correct=$(cat counted) " out && pass "accuracy counts the matches" || fail "accuracy counts the matches" "$(tail -1 out) vs $(cat counted)"
printf 'no tab here\n' >bad.tsv
expect "example without a label" 1 "bad.tsv:1: no tab before a label" -- \
    llm-train --init base.llmt --examples bad.tsv --out x.llmt --lora 2
expect "classify without a label" 1 "bad.tsv:1: no tab before a label" -- llm-gen -m base.llmt --classify bad.tsv
expect "labels need classify" 2 "--labels goes with --classify" -- llm-gen -m base.llmt --labels a,b -p x

# adapters train on one process (Open MPI's own allocations outlive it: no
# leak check for this run under ASan)
expect "no adapters over MPI" 1 "one process only|MPI" -- \
    env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" llm-train --dist --init base.llmt --data b.txt --out m.llmt --lora 2 $tiny --steps 2

# llm-quant --merge-adapter: the merged model scores as the base with the adapter, up to rounding
if [ -x "$LLM_BIN/llm-quant" ]; then
    expect "merge adapter" 0 "merged lora.llmt" -- llm-quant -m base.llmt --merge-adapter lora.llmt -o merged.llmt
    llm-gen -m merged.llmt --eval b.txt >ppl_merged 2>/dev/null
    awk -F'[= ]' 'NR==FNR {a=$2; next} {b=$2} END {d=(a-b)/a; if (d<0) d=-d; exit !(d < 1e-4)}' ppl_lora ppl_merged &&
        pass "merged and unmerged perplexity agree" || fail "merged and unmerged perplexity agree" "$(cat ppl_lora ppl_merged)"
    ! cmp -s ppl_base ppl_merged && pass "the merge changed the weights" || fail "the merge changed the weights" "$(cat ppl_merged)"
    expect "merge on another base" 1 "another base model" -- llm-quant -m other.llmt --merge-adapter lora.llmt -o m2.llmt
    expect "merge prompt tokens" 1 "cannot be folded" -- llm-quant -m base.llmt --merge-adapter pt.llmt -o m2.llmt
    [ ! -e m2.llmt ] && pass "no output after a refused merge" || fail "no output after a refused merge" "m2.llmt exists"
else
    skip "merge adapter" "llm-quant is not built"
fi

# QLoRA: LoRA on an int4 base (its linears dequantized a block of rows at a
# time inside the passes), on a model large enough for the float weights to
# dominate memory: 7.2M parameters, 27 MiB in float, 3.5 MiB in int4
if [ -x "$LLM_BIN/llm-quant" ]; then
    llm-train --data a.txt --out big.llmt --dim 384 --layers 4 --heads 6 --hidden 1024 --seq 32 --batch 1 \
        --steps 1 --eval-every 0 --threads 1 -q || fail "big base" "llm-train failed"
    llm-quant -m big.llmt -o big4.llmt --scheme int4 --group 128 -q || fail "int4 base" "llm-quant failed"
    cp big4.llmt big4.orig
    qlora="--data b.txt --lora 4 --lora-targets all --lr 0.01 --seq 32 --batch 2 --steps 4 --eval-every 4 --threads 1"
    expect "qlora" 0 "frozen quantized base \(QLoRA" -- llm-train --init big4.llmt --out q4.llmt $qlora
    cp err qlora.err
    same "int4 base untouched by QLoRA" big4.llmt big4.orig
    expect "lora on the float base" 0 "adapting a frozen base" -- llm-train --init big.llmt --out f4.llmt $qlora
    cp err lora.err
    peak() { sed -n 's/.*saved .*peak RSS \([0-9.]*\) MiB.*/\1/p' "$1"; }
    pq=$(peak qlora.err) pf=$(peak lora.err)
    # the float linears alone are 27 MiB; QLoRA must save most of them
    # (not measured under ASan: its shadow memory and quarantine swamp it)
    if nm "$LLM_BIN/llm-train" 2>/dev/null | grep -q __asan; then
        skip "QLoRA peak RSS below LoRA on the float base" "peak RSS is not the program's under ASan"
    else
        awk -v q="$pq" -v f="$pf" 'BEGIN {exit !(q > 0 && q + 15 < f)}' && pass "QLoRA peak RSS below LoRA on the float base" ||
            fail "QLoRA peak RSS below LoRA on the float base" "QLoRA $pq MiB, LoRA $pf MiB"
    fi
    grep -q "step 4/4 train [0-9.]* val [0-9.]*" qlora.err && pass "QLoRA trains and validates" ||
        fail "QLoRA trains and validates" "$(tail -2 qlora.err)"
    head -c 3000 b.txt >b3.txt
    llm-gen -m big4.llmt --eval b3.txt >ppl_q_base 2>/dev/null
    expect "generate on int4 with the adapter" 0 "" -- llm-gen -m big4.llmt --adapter q4.llmt -p "The " -n 4 --temp 0
    llm-gen -m big4.llmt --adapter q4.llmt --eval b3.txt >ppl_q 2>/dev/null
    grep -q "^ppl=" ppl_q && ! cmp -s ppl_q_base ppl_q && pass "the QLoRA adapter changes the int4 model's perplexity" ||
        fail "the QLoRA adapter changes the int4 model's perplexity" "$(cat ppl_q_base ppl_q)"
    expect "QLoRA adapter on the float base" 1 "another base model" -- llm-gen -m big.llmt --adapter q4.llmt -p x -n 2
    expect "LoRA adapter on the int4 base" 1 "another base model" -- llm-gen -m big4.llmt --adapter f4.llmt -p x -n 2
    expect "prompt tuning on int4" 0 "trainable 1536 parameters" -- \
        llm-train --init big4.llmt --data b.txt --out qp.llmt --prompt-tune 4 --seq 16 --batch 1 --steps 2 --eval-every 0 --threads 1
    expect "full training of an int4 base" 1 "already quantized \(int4\).*trains adapters only: give --lora R" -- \
        llm-train --init big4.llmt --data b.txt --out x4.llmt --steps 2
    [ ! -e x4.llmt ] && pass "no output after a refused int4 training" || fail "no output after a refused int4 training" "x4.llmt exists"
    llm-quant -m base.llmt -o w8.llmt --scheme int8 -q
    expect "LoRA on an int8 base" 0 "QLoRA" -- llm-train --init w8.llmt --data b.txt --out q8.llmt --lora 2 $tiny --steps 2 --eval-every 0
else
    skip "QLoRA" "llm-quant is not built"
fi

#!/bin/bash
# CLI tests for resuming adapter runs (llm-train --adapter): LoRA, QLoRA on
# an int4 base and prompt tuning on examples, stopped with --stop-at or
# SIGINT and resumed, against one uninterrupted run (the adapter stream byte
# for byte, the log's losses and learning rates line for line); resumes with
# other adapter settings or another base refused; adapters without a
# training state (as written before they had one) still run, and train on
# with a fresh optimizer, saying so.
. "$(dirname "$0")/lib.sh"

two_bases
awk 'NR % 3 == 1 && length($0) > 20 {print substr($0, 1, 20) " =>\t" (NR % 2 ? " odd" : " even")}' text.txt |
    head -40 >ex.tsv

# the step lines of a run's stderr, without the end step and the speed:
# "4 train 4.9410 val 4.9783 lr 0.00868"
steps() { sed -n 's|^llm-train: step \([0-9]*\)/[0-9]* \(train .* lr [^ ]*\) .*|\1 \2|p' "$@"; }

# resume NAME BASE DATA ADAPTER-OPTIONS: 12 steps in one run against 8, then
# --adapter with the data alone (the settings come from the adapter); leaves
# NAME-half.llmt (step 8) and NAME.llmt (step 12) for the checks below
resume() {
    local tag=$1 base=$2 data=$3 opts=$4
    llm-train --init "$base" $data $opts $tiny --out one.llmt --steps 12 --eval-every 4 --log one.tsv 2>one.err ||
        fail "$tag: one run" "$(tail -1 one.err)"
    llm-train --init "$base" $data $opts $tiny --out part.llmt --steps 12 --eval-every 4 --stop-at 8 \
        --log part.tsv 2>part.err || fail "$tag: run to step 8" "$(tail -1 part.err)"
    cp part.llmt "$tag-half.llmt"
    expect "$tag: resumed" 0 "^llm-train: resumed, adapting a frozen" -- \
        llm-train --init "$base" --adapter part.llmt $data $tiny --out part.llmt --eval-every 4 --log part.tsv
    cat err >>part.err
    same "$tag: resumed adapter equals one run" one.llmt part.llmt
    cut -f1-4,6,7 one.tsv >one.cut && cut -f1-4,6,7 part.tsv >part.cut
    [ "$(wc -l <one.cut)" -eq 13 ] && cmp -s one.cut part.cut && pass "$tag: resumed log equals one run's" ||
        fail "$tag: resumed log equals one run's" "$(diff one.cut part.cut | head -4)"
    steps one.err >one.steps && steps part.err >part.steps
    [ "$(wc -l <one.steps)" -eq 3 ] && cmp -s one.steps part.steps && pass "$tag: resumed losses equal one run's" ||
        fail "$tag: resumed losses equal one run's" "$(diff one.steps part.steps | head -4)"
    cp one.llmt "$tag.llmt"
}

resume lora base.llmt "--data b.txt" "--lora 2 --lora-targets all --lr 0.01"
llm-tensor ls lora.llmt >ls.txt
grep -q '^meta train .*step=12 .*optim=adamw' ls.txt && grep -q '^optim.m.layers.1.mlp.w3.lora_b ' ls.txt &&
    grep -q '^optim.v.layers.0.attn.wq.lora_a ' ls.txt && pass "the adapter holds its training state and moments" ||
    fail "the adapter holds its training state and moments" "$(head -3 ls.txt)"
resume prompt base.llmt "--examples ex.tsv" "--prompt-tune 4"
if [ -x "$LLM_BIN/llm-quant" ]; then
    llm-quant -m base.llmt -o base4.llmt --scheme int4 --group 32 -q || fail "int4 base" "llm-quant failed"
    resume qlora base4.llmt "--data b.txt" "--lora 2 --lr 0.01"
    grep -q "resumed, adapting a frozen quantized base (QLoRA" part.err && pass "qlora: says it resumed QLoRA" ||
        fail "qlora: says it resumed QLoRA" "$(grep resumed part.err)"
    expect "QLoRA adapter on the float base" 1 "qlora-half.llmt: not for base.llmt: .*another base model" -- \
        llm-train --init base.llmt --adapter qlora-half.llmt --data b.txt --out x.llmt $tiny
else
    skip "qlora resume" "llm-quant is not built"
fi

# the settings options given with --adapter must agree with it; the
# training options are the adapter's (a warning says the others are ignored)
expect "other rank refused" 1 "^llm-train: lora-half.llmt: incompatible adapter: it has LoRA rank 2, not 4$" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data b.txt --out x.llmt --lora 4
expect "other targets refused" 1 "it has LoRA targets wq,wk,wv,wo,w1,w2,w3, not wq,wv$" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data b.txt --out x.llmt --lora-targets wq,wv
expect "other alpha refused" 1 "it has LoRA alpha 4, not 8$" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data b.txt --out x.llmt --lora-alpha 8
expect "other prompt length refused" 1 "prompt-half.llmt: incompatible adapter: it has 4 virtual tokens, not 2$" -- \
    llm-train --init base.llmt --adapter prompt-half.llmt --examples ex.tsv --out x.llmt --prompt-tune 2
expect "LoRA on a prompt adapter refused" 1 "it has LoRA rank 0, not 2$" -- \
    llm-train --init base.llmt --adapter prompt-half.llmt --examples ex.tsv --out x.llmt --lora 2
expect "another base refused" 1 "^llm-train: lora-half.llmt: not for other.llmt: the adapter was made for another base model" -- \
    llm-train --init other.llmt --adapter lora-half.llmt --data b.txt --out x.llmt
expect "adapter without a base" 2 "give it with --init BASE" -- llm-train --adapter lora-half.llmt --data b.txt --out x.llmt
expect "resume past the end" 1 "^llm-train: lora.llmt: already at step 12 of 12; give a larger --steps$" -- \
    llm-train --init base.llmt --adapter lora.llmt --data b.txt --out x.llmt
expect "model as adapter" 1 "base.llmt: not an adapter stream" -- \
    llm-train --init base.llmt --adapter base.llmt --data b.txt --out x.llmt
[ ! -e x.llmt ] && pass "no output after a refused resume" || fail "no output after a refused resume" "x.llmt exists"
expect "resume ignores new settings, says so" 0 "resuming lora-half.llmt: .* come from the adapter; ignoring the ones given" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data b.txt --out r2.llmt $tiny --lr 0.5 --lora 2 --eval-every 4
same "ignored settings change nothing" lora.llmt r2.llmt
expect "resume with the same settings given" 0 "" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data b.txt --out r3.llmt $tiny --lora 2 --lora-targets all --lr 0.01
grep -q "ignoring" err && fail "same settings, no ignoring warning" "$(cat err)" || pass "same settings, no ignoring warning"
same "the same settings change nothing" lora.llmt r3.llmt
expect "adapter on new text" 0 "continued on new text \(fresh optimizer\), adapting a frozen base" -- \
    llm-train --init base.llmt --adapter lora-half.llmt --data a.txt --out new.llmt $tiny --steps 3 --eval-every 0
grep -q '^meta train .*step=3 ' <(llm-tensor ls new.llmt) && pass "new text starts at step 0" ||
    fail "new text starts at step 0" "$(llm-tensor ls new.llmt | head -2)"
expect "examples at another window" 0 "continued on new examples \(fresh optimizer\)" -- \
    llm-train --init base.llmt --adapter prompt-half.llmt --examples ex.tsv --seq 20 --out new.llmt $tiny --steps 2 --eval-every 0

# full fine-tuning on examples resumes the same way (its fingerprint is of
# the examples as windows of the saved length)
ft="--examples ex.tsv $tiny --steps 12 --eval-every 4"
llm-train --init base.llmt --out ft-one.llmt $ft -q && llm-train --init base.llmt --out ft.llmt $ft --stop-at 8 -q
expect "full fine-tuning on examples resumed" 0 "^llm-train: resumed: " -- \
    llm-train --init ft.llmt --out ft.llmt --examples ex.tsv $tiny --eval-every 4
same "full fine-tuning on examples: resumed equals one run" ft-one.llmt ft.llmt

# an adapter without a training state (written before adapters had one):
# the same stream with the train record and the optim.* tensors left out
strip_state() {
    llm-tensor cat --raw -o raw.llmt "$1" && perl -e '
        local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $s = <$f>;
        my ($out, $p, $n) = (substr($s, 0, 8), 8, 0);
        while (substr($s, $p, 1) ne "E") {
            my $start = $p;
            my ($nd, $nl) = unpack("x2 C x v", substr($s, $p, 6));
            my $name = substr($s, $p + 6, $nl);
            $p += 6 + $nl;
            my $na = unpack("v", substr($s, $p, 2));
            $p += 2;
            for (1 .. $na) { $p += 2 + unpack("v", substr($s, $p, 2)); $p += 4 + unpack("V", substr($s, $p, 4)); }
            $p += 8 * $nd;
            $p += 8 + unpack("Q<", substr($s, $p, 8));
            next if $name eq "train" || $name =~ /^optim\./;
            $out .= substr($s, $start, $p - $start);
            $n++;
        }
        open(my $o, ">:raw", $ARGV[1]) or die; print $o $out, "E", pack("Q<", $n);
    ' raw.llmt "$2"
}
strip_state lora.llmt old.llmt
llm-tensor ls old.llmt >ls.txt
! grep -q "train\|optim\." ls.txt && [ "$(grep -c "lora_[ab] " ls.txt)" -eq 28 ] && pass "old-style adapter made" ||
    fail "old-style adapter made" "$(cat ls.txt)"
llm-gen -m base.llmt --adapter lora.llmt -p "The " -n 12 --temp 0 >gen.new 2>/dev/null
expect "old-style adapter runs" 0 "" -- llm-gen -m base.llmt --adapter old.llmt -p "The " -n 12 --temp 0
same "old-style and stateful adapters generate alike" gen.new out
expect "old-style adapter trains on, fresh" 0 "continued from an adapter without training state \(fresh optimizer\), adapting a frozen base" -- \
    llm-train --init base.llmt --adapter old.llmt --data b.txt --out more.llmt $tiny --steps 3 --eval-every 0
# the state without its moments: runs, but does not resume
llm-tensor cat -o slim.llmt --name virtual --name 'layers.*' lora.llmt
expect "adapter without moments runs" 0 "" -- llm-gen -m base.llmt --adapter slim.llmt -p "The " -n 12 --temp 0
same "adapter without moments generates alike" gen.new out
expect "adapter without moments does not resume" 1 "^llm-train: slim.llmt: optimizer state optim.m.layers.0.attn.wq.lora_a is missing$" -- \
    llm-train --init base.llmt --adapter slim.llmt --data b.txt --out x.llmt --steps 20

# SIGINT: the adapter is saved with its state, and resuming from it equals
# one run to the same step
lora="--data b.txt --lora 2 --lr 0.01 $tiny --steps 100000 --eval-every 0"
llm-train --init base.llmt --out int.llmt $lora -q 2>int.err &
pid=$!
sleep 2
kill -INT $pid
wait $pid
status=$?
k=$(llm-tensor ls int.llmt 2>/dev/null | sed -n 's/^meta train .* step=\([0-9]*\) .*/\1/p')
if [ "$status" -eq 130 ] && grep -q "interrupted: saved step $k to int.llmt" int.err && [ -n "$k" ]; then
    pass "SIGINT saves the adapter with its state and exits 130"
    llm-train --init base.llmt --out one.llmt $lora --stop-at $((k + 3)) -q
    expect "resume after SIGINT" 0 "resumed" -- \
        llm-train --init base.llmt --adapter int.llmt --out int.llmt --data b.txt $tiny --stop-at $((k + 3))
    same "resumed after SIGINT equals one run" one.llmt int.llmt
else
    fail "SIGINT saves the adapter with its state and exits 130" "status $status, step '$k': $(cat int.err)"
fi

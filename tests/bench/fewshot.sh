#!/bin/sh
# Few-shot benchmark: which licence a stretch of text comes from, as a
# continuation scored by the label's log-likelihood (llm-gen --classify), on
# a small base model trained here from /usr/share/common-licenses, so it runs
# offline on any Debian machine.  Rows: zero-shot base, full fine-tuning,
# LoRA, prompt tuning, and QLoRA (the same LoRA on the base quantized to
# int4 and to int8 by llm-quant), with trainable parameters, training time,
# peak RSS and test accuracy; then the memory of LoRA against QLoRA on a
# base large enough for its weights to dominate (7.2M parameters, dim 384);
# then continual pre-training: the base's validation loss on a new domain
# (Debian copyright files) before and after.
#   usage: sh tests/bench/fewshot.sh [TOP]
#   env:   BENCH_THREADS (default 2)  BENCH_BASE_STEPS (600)  BENCH_FT_STEPS (150)
#
# The task: for each of 4 licences (Apache-2.0, GPL-3, MPL-2.0, Artistic),
# the text with whitespace squeezed is cut into 100 stretches of 150 bytes
# at evenly spaced offsets: 60 from its first 60% for training, 40 from its
# last 40% for the test (no text shared between the splits).  An example is
# "<text> => licence:" followed by the label " Apache", " GNU", " Mozilla"
# or " Artistic"; fine-tuning puts the loss on the label only (llm-train
# --examples).  The base sees the licences as plain text (its pre-training
# corpus is every file in /usr/share/common-licenses), never the labels.
# Base: dim 128, 4 layers, 4 heads, seq 128, byte tokens, AdamW lr 2e-3.
#
# The table goes to stdout and to TOP/build/bench/fewshot.md.
set -eu
. "$(dirname "$0")/lib.sh"
bin=$top/bin
threads=$(number BENCH_THREADS 2 1) || exit
base_steps=$(number BENCH_BASE_STEPS 600 1) || exit
ft_steps=$(number BENCH_FT_STEPS 150 1) || exit
L=/usr/share/common-licenses
need llm-train llm-gen llm-quant
tmpdir
cd "$tmp"

# the examples: per licence, 60 train and 40 test stretches
labels="Apache-2.0:Apache GPL-3:GNU MPL-2.0:Mozilla Artistic:Artistic"
: >train.tsv
: >test.tsv
for pair in $labels; do
    file=${pair%%:*} label=${pair#*:}
    tr -s ' \n\t' '   ' <"$L/$file" | awk -v label=" $label" -v w=150 '
        { text = text $0 }
        END {
            n = length(text); cut = int(n * 0.6)
            for (i = 0; i < 60; i++) emit(1 + int(i * (cut - w) / 60), "train.tsv")
            for (i = 0; i < 40; i++) emit(cut + 1 + int(i * (n - cut - w) / 40), "test.tsv")
        }
        function emit(at, out) { print substr(text, at, w) " => licence:\t" label >>out }'
done
# a fixed shuffle of the training examples (llm-train holds out the last 10%)
awk 'BEGIN {srand(7)} {print rand() "\t" $0}' train.tsv | sort -k1,1 | cut -f2- >train.shuf

# run NAME CMD...: times CMD, keeps its stderr in NAME.err
run() {
    name=$1; shift
    t0=$(now)
    "$@" 2>"$name.err" >/dev/null || { cat "$name.err" >&2; exit 1; }
    elapsed "$t0" "$(now)" 1 >"$name.time"
}
trainable() { sed -n 's/.*trainable \([0-9]*\) parameters.*/\1/p' "$1.err"; }
peak() { sed -n 's/.*saved .*peak RSS \([0-9.]*\) MiB.*/\1/p' "$1.err"; }
accuracy() { "$bin/llm-gen" --threads "$threads" "$@" --classify test.tsv 2>/dev/null | sed -n 's/^accuracy=\([0-9.]*\) .*/\1/p'; }

say "base model ($base_steps steps)"
cat "$L"/* >corpus.txt
run base "$bin/llm-train" --data corpus.txt --out base.llmt --dim 128 --layers 4 --heads 4 --seq 128 \
    --batch 8 --steps "$base_steps" --lr 2e-3 --eval-every 0 --threads "$threads"
common="--init base.llmt --examples train.shuf --steps $ft_steps --batch 8 --eval-every 0 --threads $threads"
say "full fine-tuning"
run full "$bin/llm-train" $common --out full.llmt --lr 1e-3
say "LoRA"
run lora "$bin/llm-train" $common --out lora.llmt --lora 8 --lora-targets all --lr 5e-3
say "QLoRA (int4 g32 asymmetric, int8)"
# hidden 352 = 11 x 32: groups of 32 columns divide every linear
"$bin/llm-quant" -m base.llmt -o base-w4.llmt --scheme int4 --group 32 --asym -q
"$bin/llm-quant" -m base.llmt -o base-w8.llmt --scheme int8 -q
run qlora4 "$bin/llm-train" $(echo "$common" | sed 's/base.llmt/base-w4.llmt/') --out qlora4.llmt --lora 8 --lora-targets all --lr 5e-3
run qlora8 "$bin/llm-train" $(echo "$common" | sed 's/base.llmt/base-w8.llmt/') --out qlora8.llmt --lora 8 --lora-targets all --lr 5e-3
say "prompt tuning"
run prompt "$bin/llm-train" $common --out prompt.llmt --prompt-tune 16
say "scoring"
acc_zero=$(accuracy -m base.llmt)
acc_full=$(accuracy -m full.llmt)
acc_lora=$(accuracy -m base.llmt --adapter lora.llmt)
acc_prompt=$(accuracy -m base.llmt --adapter prompt.llmt)
acc_w4=$(accuracy -m base-w4.llmt)
acc_w8=$(accuracy -m base-w8.llmt)
acc_qlora4=$(accuracy -m base-w4.llmt --adapter qlora4.llmt)
acc_qlora8=$(accuracy -m base-w8.llmt --adapter qlora8.llmt)

say "memory, LoRA against QLoRA on a 7.2M-parameter base"
"$bin/llm-train" --data corpus.txt --out big.llmt --dim 384 --layers 4 --heads 6 --hidden 1024 --seq 128 \
    --batch 1 --steps 1 --eval-every 0 --threads "$threads" -q
"$bin/llm-quant" -m big.llmt -o big-w4.llmt --scheme int4 --group 128 -q
big="--examples train.shuf --steps 20 --batch 8 --eval-every 0 --threads $threads --lora 8 --lora-targets all"
run biglora "$bin/llm-train" --init big.llmt $big --out biglora.llmt
run bigqlora "$bin/llm-train" --init big-w4.llmt $big --out bigqlora.llmt

say "continual pre-training"
for f in /usr/share/doc/*/copyright; do cat "$f"; done 2>/dev/null | head -c 300000 >domain.txt
run cpt "$bin/llm-train" --init base.llmt --data domain.txt --out cpt.llmt --steps "$ft_steps" --batch 8 \
    --eval-every "$ft_steps" --threads "$threads"
val_before=$(sed -n 's/.*step 0 val \([0-9.]*\) .*/\1/p' cpt.err)
val_after=$(sed -n "s/.*step $ft_steps\/$ft_steps train [0-9.]* val \([0-9.]*\) .*/\1/p" cpt.err)

size() { stat -c %s "$1" | awk '{printf "%.1f KiB", $1 / 1024}'; }
{
    echo "Few-shot licence classification: 4 classes, 240 training / 160 test examples, chance 0.25;"
    echo "base dim 128, 4 layers, seq 128, $(trainable base) parameters, $base_steps steps ($(cat base.time) s);"
    echo "fine-tuning: $ft_steps steps of batch 8, $threads threads, $(cpu_count) CPUs."
    echo
    echo "| method | trainable parameters | training time (s) | peak RSS (MiB) | output | test accuracy |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| zero-shot base | 0 | - | - | - | $acc_zero |"
    echo "| full fine-tuning (lr 1e-3) | $(trainable full) | $(cat full.time) | $(peak full) | $(size full.llmt) | $acc_full |"
    echo "| LoRA r 8, all linears (lr 5e-3) | $(trainable lora) | $(cat lora.time) | $(peak lora) | $(size lora.llmt) | $acc_lora |"
    echo "| prompt tuning, 16 tokens (lr 0.1) | $(trainable prompt) | $(cat prompt.time) | $(peak prompt) | $(size prompt.llmt) | $acc_prompt |"
    echo "| zero-shot int4 base (g32 asym) | 0 | - | - | - | $acc_w4 |"
    echo "| QLoRA r 8 on the int4 base (lr 5e-3) | $(trainable qlora4) | $(cat qlora4.time) | $(peak qlora4) | $(size qlora4.llmt) | $acc_qlora4 |"
    echo "| zero-shot int8 base | 0 | - | - | - | $acc_w8 |"
    echo "| LoRA r 8 on the int8 base (lr 5e-3) | $(trainable qlora8) | $(cat qlora8.time) | $(peak qlora8) | $(size qlora8.llmt) | $acc_qlora8 |"
    echo
    echo "Memory at 7.2M parameters (dim 384, 4 layers, hidden 1024; $(size big.llmt | sed 's/ KiB//' | awk '{printf "%.1f MiB", $1 / 1024}')"
    echo "float checkpoint with its AdamW moments, $(size big-w4.llmt | sed 's/ KiB//' | awk '{printf "%.1f MiB", $1 / 1024}') int4 g128), LoRA r 8 on all linears,"
    echo "20 steps of batch 8 x seq 128 on the same examples:"
    echo
    echo "| base | trainable parameters | training time (s) | peak RSS (MiB) |"
    echo "|---|---:|---:|---:|"
    echo "| float (LoRA) | $(trainable biglora) | $(cat biglora.time) | $(peak biglora) |"
    echo "| int4 (QLoRA) | $(trainable bigqlora) | $(cat bigqlora.time) | $(peak bigqlora) |"
    echo
    echo "Continual pre-training on Debian copyright files ($ft_steps steps, fresh optimizer):"
    echo "validation loss $val_before nats/token before, $val_after after."
} | tee "$(table_file fewshot)"

#!/bin/bash
# CLI tests for what reaches a model: token ids beyond its vocabulary on every
# path that feeds one (llm-train's text and examples, llm-gen's --ids prompts,
# --batch, --eval, dumps and --classify), with and without adapters, each
# refused in one line that says which id and where; tokenizers that do not fit
# the model; checkpoints whose weights are not finite, refused by every tool
# that loads them with the tensor and element named; and logits that overflow,
# refused where llm-gen scores or chooses.
. "$(dirname "$0")/lib.sh"

# llama2c FILE V: a llama2.c model of vocabulary V (shared classifier), random
# weights (its tokenizer: llama2c_tok FILE V)
D=16 F=24 L=2 H=4 K=2 S=32
llama2c() {
    E=$((D / H)) KE=$((K * D / H))
    llama2c_model "$1" "$2" $(($2 * D + L * D + L * D * D + 2 * L * KE * D + L * D * D + L * D + 3 * L * F * D + D + S * E))
}
# raw_edit IN OUT PERL: a checkpoint re-encoded raw and unshuffled, the perl
# code run on its bytes in $s, written to OUT
raw_edit() {
    llm-tensor cat --raw --no-shuffle -o "$1.raw" "$1" &&
        perl -e 'open(my $f, "<:raw", $ARGV[0]) or die; local $/; our $s = <$f>;
                 eval $ARGV[2]; die $@ if $@;
                 open(my $o, ">:raw", $ARGV[1]) or die; print $o $s;' "$1.raw" "$2" "$3"
}

training_text text.txt 3000
printf 'the cat sat\ta\nthe dog ran\tb\n' >ex.tsv

# three models of 3 ids: no tokenizer (kind=ids), a BPE of 3 pieces (no byte
# pieces: text has no ids at all), and a byte tokenizer (ids to 257), which
# llm-tensor would never write: the ids record's attributes edited in place
llama2c v3.bin 3
llama2c_tok tok3.bin 3
llm-tensor import-llama2c -o ids3.llmt v3.bin && llm-tensor import-llama2c --tokenizer tok3.bin -o bpe3.llmt v3.bin ||
    fail "import the 3-id models" "llm-tensor import-llama2c failed"
attr='sub attr { pack("v", length $_[0]) . $_[0] . pack("V", length $_[1]) . $_[1] }'
raw_edit ids3.llmt bytes3.llmt "$attr;"'
    my $ids = attr("kind", "ids") . attr("vocab", 3) . attr("bos", 1) . attr("eos", 2);
    my $at = index($s, $ids); die "no tokenizer attributes" if $at < 0;
    substr($s, $at, length $ids) = attr("kind", "bytes") . attr("vocab", 258) . attr("bos", 256) . attr("eos", 257);'

# llm-train: text and examples take the model's own tokenizer, which must
# have text and fit the model: never a byte id past a vocabulary of 3
for lora in "" "--lora 2"; do
    for input in "--data text.txt" "--examples ex.tsv"; do
        expect "llm-train $input ${lora:-(full)} on a model without a tokenizer" 1 \
            "^llm-train: ids3.llmt: this model has no tokenizer" -- \
            llm-train --init ids3.llmt $input $lora --out o.llmt --steps 1 --seq 16 --batch 2 -q
    done
    expect "llm-train --data ${lora:-(full)} with 3 BPE pieces" 1 \
        "^llm-train: text.txt: text byte 0 \(0x20\) has no token: the vocabulary of 3 has no byte pieces" -- \
        llm-train --init bpe3.llmt --data text.txt $lora --out o.llmt --steps 1 --seq 16 --batch 2 -q
    expect "llm-train --examples ${lora:-(full)} with 3 BPE pieces" 1 "^llm-train: ex.tsv:1: text byte 0" -- \
        llm-train --init bpe3.llmt --examples ex.tsv $lora --out o.llmt --steps 1 --seq 16 --batch 2 -q
    expect "llm-train ${lora:-(full)}: a byte tokenizer on 3 ids" 1 \
        "^llm-train: bytes3.llmt: the byte-level tokenizer \(ids 0..257\) does not fit the model's vocabulary \(0..2\)$" -- \
        llm-train --init bytes3.llmt --data text.txt $lora --out o.llmt --steps 1 --seq 16 --batch 2 -q
done
expect "llm-gen: a byte tokenizer on 3 ids" 1 "^llm-gen: bytes3.llmt: the byte-level tokenizer" -- \
    llm-gen -m bytes3.llmt --ids -p "1 2"
# a BPE model with byte pieces trains on its own tokens: the dummy-prefix
# space makes one more token than the bytes
llama2c v300.bin 300
llama2c_tok tok300.bin 300
llm-tensor import-llama2c --tokenizer tok300.bin -o bpe300.llmt v300.bin
expect "llm-train --lora on a BPE model" 0 "data: 3002 tokens" -- \
    llm-train --init bpe300.llmt --data text.txt --lora 2 --out o.llmt --steps 1 --seq 16 --batch 2 --eval-every 0

# llm-gen: ids given by the user, on every path, named by where they are
expect "--ids -p" 1 "^llm-gen: -p: token 3 of 3: id 7 outside the vocabulary \(0..2\)$" -- \
    llm-gen -m ids3.llmt --ids -p "1 2 7"
expect "--ids on stdin" 1 "^llm-gen: stdin: token 2 of 2: id -4 outside the vocabulary \(0..2\)$" -- \
    sh -c 'echo 1 -4 | llm-gen -m ids3.llmt --ids'
expect "--ids beyond 32 bits" 1 "^llm-gen: -p: token 1: id 4294967297 outside the vocabulary$" -- \
    llm-gen -m ids3.llmt --ids -p "4294967297"
expect "--batch --ids" 1 "^llm-gen: line 2: token 3 of 3: id 3 outside the vocabulary \(0..2\)$" -- \
    sh -c 'printf "1 2\n1 0 3\n" | llm-gen -m ids3.llmt --ids --batch'
printf '1 2 0 1 2 0 9 1\n' >ids.txt
expect "--eval --ids" 1 "^llm-gen: ids.txt: token 7 of 8: id 9 outside the vocabulary \(0..2\)$" -- \
    llm-gen -m ids3.llmt --ids --eval ids.txt
expect "--dump-acts --ids" 1 "^llm-gen: stdin: token 1 of 2: id 300 outside the vocabulary \(0..2\)$" -- \
    sh -c 'echo 300 1 | llm-gen -m ids3.llmt --ids --dump-acts --force'
printf '1 2 0 1 2 0 2 1\n' >ids.txt
expect "--eval --ids in range" 0 "" -- llm-gen -m ids3.llmt --ids --eval ids.txt -q
expect "--classify on a model without text" 1 "^llm-gen: ex.tsv: example 1: this model has no tokenizer" -- \
    llm-gen -m ids3.llmt --ids --classify ex.tsv

# with adapters on a byte model: ids from 258 would be virtual tokens (or
# past the embeddings, for LoRA): no user id may name them
llm-train --data text.txt --out m.llmt --dim 32 --layers 2 --heads 4 --seq 32 --batch 2 --steps 2 \
    --eval-every 0 -q || fail "train a byte model" "llm-train failed"
llm-train --init m.llmt --data text.txt --out lora.llmt --lora 2 --steps 1 --seq 16 --batch 2 --eval-every 0 -q &&
    llm-train --init m.llmt --data text.txt --out pt.llmt --prompt-tune 2 --steps 1 --seq 16 --batch 2 \
        --eval-every 0 -q || fail "train adapters" "llm-train failed"
for a in lora.llmt pt.llmt; do
    expect "--ids with $a" 1 "^llm-gen: -p: token 2 of 2: id 258 outside the vocabulary \(0..257\)$" -- \
        llm-gen -m m.llmt --adapter $a --ids -p "256 258"
    expect "--batch --ids with $a" 1 "^llm-gen: line 2: token 1 of 1: id 259 outside the vocabulary \(0..257\)$" -- \
        sh -c "printf '256 1\n259\n' | llm-gen -m m.llmt --adapter $a --ids --batch"
    expect "--ids in range with $a" 0 "" -- llm-gen -m m.llmt --adapter $a --ids -p "256 104" -n 3 -q
done

# weights that are not numbers: a NaN gain in the final norm (element 3),
# then an infinite one in layer 0's attention norm, refused by every tool
# that loads a model, before it does anything
nan_at='sub put { my ($name, $i, $bits) = @_; my $at = index($s, pack("v", length $name) . $name);
                 die "no $name" if $at < 0;
                 substr($s, $at + 2 + length($name) + 2 + 8 + 8 + 4 * $i, 4) = pack("V", $bits); }'
rm -f o.llmt q.llmt
raw_edit m.llmt nan.llmt "$nan_at; put(\"norm\", 3, 0x7fc00000);"
raw_edit m.llmt inf.llmt "$nan_at; put(\"layers.0.attn.norm\", 5, 0x7f800000);"
for f in nan inf; do
    [ $f = nan ] && msg="$f.llmt: norm: element 3 is nan, not a finite number" ||
        msg="$f.llmt: layers.0.attn.norm: element 5 is inf, not a finite number"
    expect "llm-gen on $f weights" 1 "^llm-gen: $msg$" -- llm-gen -m $f.llmt -p "The" -n 3
    expect "llm-gen --classify on $f weights" 1 "^llm-gen: $msg$" -- llm-gen -m $f.llmt --classify ex.tsv
    expect "llm-gen --eval on $f weights" 1 "^llm-gen: $msg$" -- llm-gen -m $f.llmt --eval text.txt
    expect "llm-train --init on $f weights" 1 "^llm-train: $msg$" -- \
        llm-train --init $f.llmt --data text.txt --out o.llmt --steps 5 -q
    expect "llm-train --lora on $f weights" 1 "^llm-train: $msg$" -- \
        llm-train --init $f.llmt --data text.txt --lora 2 --out o.llmt --steps 5 -q
    expect "llm-quant on $f weights" 1 "^llm-quant: $msg$" -- llm-quant -m $f.llmt --scheme int8 -o q.llmt
done
[ ! -e q.llmt ] && [ ! -e o.llmt ] && pass "nothing written" || fail "nothing written" "$(ls)"
# finite weights whose activations overflow (the final gain at FLT_MAX): the
# logits are NaN or infinite, and scoring and generating refuse them in one
# line (--classify used to choose labels[-1])
raw_edit m.llmt huge.llmt "$nan_at; put(\"norm\", \$_, 0x7f7fffff) for 0 .. 31;"
overflow="the model's activations are not finite$"
expect "llm-gen on overflowing logits" 1 "^llm-gen: prompt 0: logit [0-9]+ is -?(nan|inf): $overflow" -- \
    llm-gen -m huge.llmt -p "The" -n 3
expect "--batch on overflowing logits" 1 "^llm-gen: prompt 0: logit [0-9]+ is -?(nan|inf): $overflow" -- \
    sh -c 'printf "The\nA\n" | llm-gen -m huge.llmt --batch -n 3'
expect "--classify on overflowing logits" 1 "^llm-gen: ex.tsv: example 1: position [0-9]+: the model's logits are not finite$" -- \
    llm-gen -m huge.llmt --classify ex.tsv
expect "--eval on overflowing logits" 1 "^llm-gen: token 1: the model's logits are not finite$" -- \
    llm-gen -m huge.llmt --eval text.txt
# and a llama2.c model with one: refused at import, named the same way
perl -e 'open(my $f, "+<:raw", $ARGV[0]) or die; seek($f, 28 + 4 * 39, 0);
         print $f pack("V", 0xffc00000); close $f' v3.bin
expect "import-llama2c of a NaN weight" 1 "^llm-tensor: v3.bin: tok_emb: element 39 is -?nan, not a finite number$" -- \
    llm-tensor import-llama2c -o bad.llmt v3.bin

#!/bin/sh
# Writes a few valid inputs for a fuzz target into a corpus directory.
#   usage: tests/fuzz/seeds.sh TARGET CORPUS_DIR BIN_DIR
target=$1 dir=$2 bin=$3
. "$(dirname "$0")/../mknpy.sh"
head -c 60 /dev/urandom >"$dir/f4.bin" && mknpy '<f4' '(3, 5)' "$dir/f4.bin" "$dir/f4.npy"
head -c 7 /dev/urandom >"$dir/i1.bin" && mknpy '|i1' '(7,)' "$dir/i1.bin" "$dir/i1.npy"
head -c 8 /dev/urandom >"$dir/f8.bin" && mknpy '>f8' '()' "$dir/f8.bin" "$dir/f8.npy"
rm -f "$dir"/*.bin
# a tiny llama2.c model (dim 8, hidden 8, 1 layer, 2 heads, 1 kv head, vocab
# 260, seq 4) and a tokenizer.bin with byte pieces and a few merges
perl -e 'print pack("l<7", 8, 8, 1, 2, 1, 260, 4), pack("f<*", map { sin($_) } 1..(260*8 + 8 + 64 + 2*32 + 64 + 8 + 3*64 + 8 + 4*2*2))' >"$dir/m.bin"
perl -e 'print pack("l<", 8);
         for my $i (0..259) { my $p = $i == 0 ? "<unk>" : $i == 1 ? "<s>" : $i == 2 ? "</s>"
                                : $i < 259 ? sprintf("<0x%02X>", $i - 3) : " a";
                              print pack("f< l<", -$i, length($p)), $p; }' >"$dir/t.bin"
if [ "$target" = fuzz_llama2c ]; then
    perl -e 'my $m = do { local $/; open(my $f, "<:raw", $ARGV[0]) or die; <$f> };
             print pack("L<", length($m)), $m;
             open(my $t, "<:raw", $ARGV[1]) or die; local $/; print <$t>;' "$dir/m.bin" "$dir/t.bin" >"$dir/pair.seed"
fi
if [ "$target" = fuzz_tok ]; then
    "$bin/llm-tensor" import-llama2c "$dir/m.bin" --tokenizer "$dir/t.bin" -o "$dir/bpe.llmt" 2>/dev/null
fi
rm -f "$dir/m.bin" "$dir/t.bin"
if [ "$target" = fuzz_tok_text ]; then
    # flags, then the vocabulary (type-and-score byte + piece, or 0xF0 + merge,
    # a line each) and the text, each after a 4-byte length (fuzz_tok_text.c)
    perl -e 'print pack("C V/a* V/a*", 0, "\x01\xe2\x96\x81\n\x02<unk>\n\x01a\n\x01b\n\xffab\n\x01ab\n\x04<sep>\n\x05bb",
                        "ab a<sep>b  \xff\xc3 caf\xc3\xa9 \xf0\x9f\x98\x80\n")' >"$dir/spm.seed"
    perl -e 'print pack("C V/a* V/a*", 3, "\x03<|endoftext|>\n\x04<|user|>\n\x01\xc4\xa0t\n\x01he\n\x01\xc4\xa0the\n\xf0\xc4\xa0 t\n\xf0h e\n\xf0\xc4\xa0t he",
                        " the<|endoftext|>  it\x27s 12345 \xff\xfe the\r\n\n x<|user|>")' >"$dir/gpt2.seed"
fi
if [ "$target" = fuzz_pzstd ]; then # several frames (payloads over 4 MiB compress to little), and raw
    head -c 4300000 /dev/zero >"$dir/zeros.bin" && mknpy '|u1' '(4300000,)' "$dir/zeros.bin" "$dir/zeros.npy"
    "$bin/llm-tensor" from-npy -o "$dir/frames.llmt" a="$dir/f4.npy" z="$dir/zeros.npy" b="$dir/i1.npy"
    "$bin/llm-tensor" from-npy --raw -o "$dir/raw.llmt" a="$dir/f4.npy"
    # recipes (see fuzz_pzstd.c): 0xA5, n, n x (length u16, op, param), then
    # the content, here the raw stream twice: a frame with a 2^30 window, a
    # frame ending inside a record then raw bytes, zstd then raw and raw then
    # zstd at the stream boundary, skippable frames, a frame inside a frame,
    # single-segment frames, and a frame's window just at the limit
    perl -e 'open(my $f, "<:raw", $ARGV[0]) or die; local $/; my $s = <$f>; my $L = length $s;
             my @r = ([[2 * $L, 2, 160]], [[30, 1, 16]], [[$L, 1, 0]], [[$L, 0, 0], [$L, 1, 16]],
                      [[3, 4, 0], [$L, 1, 0], [0, 4, 15]], [[$L, 1, 0], [0, 5, 0]],
                      [[$L, 3, 0], [$L, 3, 0]], [[2 * $L, 2, 136]], [[2 * $L, 2, 0]]);
             for my $i (0 .. $#r) {
                 open(my $o, ">:raw", "$ARGV[1]/recipe$i.seed") or die;
                 print $o pack("CC", 0xA5, scalar @{$r[$i]}), map({ pack("vCC", @$_) } @{$r[$i]}), $s, $s;
             }' "$dir/raw.llmt" "$dir"
    rm -f "$dir"/*.npy "$dir/zeros.bin"
fi
if [ "$target" = fuzz_stream ]; then
    "$bin/llm-tensor" from-npy -o "$dir/z.llmt" a="$dir/f4.npy" b="$dir/i1.npy"
    "$bin/llm-tensor" from-npy --shuffle --raw -o "$dir/raw.llmt" --attr k=v a="$dir/f4.npy"
    rm -f "$dir"/*.npy
fi
if [ "$target" = fuzz_labels ]; then
    # two bytes of T (little-endian), then a tokens attribute as llm-gen writes it
    printf '\005\000<bos> the\\x20 c\\x5ca t #7' >"$dir/labels.seed"
    printf '\001\000\\xc3\\xa9' >"$dir/utf8.seed"
fi
# tiny_model: $dir/f.llmt, a training checkpoint (dim 32, hidden 64, one
# layer, byte vocabulary 258) with its optimizer state, and $dir/text.txt
tiny_model() {
    for i in 1 2 3 4 5 6 7 8; do printf 'the cat sat on the mat. the dog sat on the log. '; done >"$dir/text.txt"
    "$bin/llm-train" --data "$dir/text.txt" --out "$dir/f.llmt" --dim 32 --hidden 64 --layers 1 --heads 2 \
        --seq 16 --batch 2 --steps 1 --eval-every 0 -q 2>/dev/null
}
# prefixed BYTE FILE OUT: OUT is the byte (octal) then FILE
prefixed() { { printf "\\$1"; cat "$2"; } >"$3"; }
# raw FILE: FILE.raw, its raw stream (mutations then hit the records, not zstd)
raw() { "$bin/llm-tensor" cat --raw -o "$1.raw" "$1" 2>/dev/null; }
if [ "$target" = fuzz_gguf ]; then # a tiny model exported, with its int4 twin (Q4_0), and a K-quant one by numpy
    tiny_model
    "$bin/llm-tensor" export-gguf "$dir/f.llmt" -o "$dir/f.gguf" 2>/dev/null
    if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        ref="$(dirname "$0")/../gguf_ref.py"
        /usr/bin/python3 "$ref" make "$dir/k.gguf" "$dir/k.npz" --dim 256 --hidden 256 --vocab 260 --tokenizer llama2c \
            --types token_embd=Q8_0,attn_q=Q4_K,attn_k=Q5_K,attn_v=Q6_K,attn_output=Q3_K,ffn_gate=Q2_K,ffn_down=Q4_1,ffn_up=Q4_0
        "$bin/llm-tensor" import-gguf "$dir/k.gguf" -o "$dir/k.llmt" 2>/dev/null &&
            "$bin/llm-tensor" export-gguf "$dir/k.llmt" -o "$dir/k4.gguf" 2>/dev/null
        rm -f "$dir/k.npz" "$dir/k.llmt"
        if /usr/bin/python3 -c 'import regex' 2>/dev/null; then # a byte-level BPE vocabulary with merges
            mkdir -p "$dir/g" && /usr/bin/python3 "$(dirname "$0")/../tok_ref.py" gpt2 "$dir/g" llama3 &&
                /usr/bin/python3 "$ref" make "$dir/g.gguf" "$dir/g.npz" --dim 32 --hidden 32 --tokenizer "gpt2:$dir/g:llama-bpe"
            rm -rf "$dir/g" "$dir/g.npz"
        fi
    fi
    rm -f "$dir/text.txt" "$dir"/*.llmt
fi
if [ "$target" = fuzz_ckpt ]; then # a tiny training checkpoint, its weights alone, and int8 and int4 twins
    tiny_model
    "$bin/llm-tensor" cat -o "$dir/w.llmt" --name tok_emb --name 'layers.*' --name norm "$dir/f.llmt" 2>/dev/null
    "$bin/llm-quant" -m "$dir/w.llmt" -o "$dir/q8.llmt" --scheme int8 -q 2>/dev/null
    "$bin/llm-quant" -m "$dir/w.llmt" -o "$dir/q4.llmt" --scheme int4 --group 32 --asym -q 2>/dev/null
    raw "$dir/w.llmt" && raw "$dir/q4.llmt"
    rm -f "$dir/text.txt"
fi
if [ "$target" = fuzz_gen ]; then # length, checkpoint, adapter: a LoRA + prompt-tuning pair, an int4 model alone
    tiny_model
    "$bin/llm-train" --init "$dir/f.llmt" --data "$dir/text.txt" --out "$dir/a.llmt" --lora 2 \
        --lora-targets wq,w2 --prompt-tune 2 --steps 1 --seq 16 --batch 2 -q 2>/dev/null
    "$bin/llm-quant" -m "$dir/f.llmt" -o "$dir/q4.llmt" --scheme int4 --group 32 -q 2>/dev/null
    pair() { perl -e 'local $/; open(my $m, "<:raw", $ARGV[0]) or die; my $s = <$m>; print pack("V", length $s), $s;
                      if (@ARGV > 1) { open(my $a, "<:raw", $ARGV[1]) or die; print <$a>; }' "$@"; }
    pair "$dir/f.llmt" "$dir/a.llmt" >"$dir/lora.seed"
    pair "$dir/q4.llmt" >"$dir/q4.seed"
    "$bin/llm-tensor" cat --raw -o "$dir/w.raw" --name tok_emb --name 'layers.*' --name norm "$dir/f.llmt" 2>/dev/null
    raw "$dir/a.llmt" && pair "$dir/w.raw" "$dir/a.llmt.raw" >"$dir/lora-raw.seed"
    rm -f "$dir/text.txt" "$dir"/*.llmt "$dir"/*.raw
fi
if [ "$target" = fuzz_attnmap ]; then # options byte, then attention records with tokens
    tiny_model
    "$bin/llm-gen" -m "$dir/f.llmt" --dump-attn -p "the cat sat" -q >"$dir/attn.llmt" 2>/dev/null
    prefixed 002 "$dir/attn.llmt" "$dir/labels.seed"
    raw "$dir/attn.llmt" && prefixed 025 "$dir/attn.llmt.raw" "$dir/color.seed"
    rm -f "$dir/text.txt" "$dir"/*.llmt "$dir"/*.raw
fi
if [ "$target" = fuzz_calib ] || [ "$target" = fuzz_quant ]; then
    tiny_model
    printf 'the cat sat on the mat.' | "$bin/llm-gen" -m "$dir/f.llmt" --dump-acts -q >"$dir/acts.llmt" 2>/dev/null
    raw "$dir/acts.llmt"
    if [ "$target" = fuzz_calib ]; then # options byte, then activations
        prefixed 000 "$dir/acts.llmt" "$dir/plain.seed"
        prefixed 037 "$dir/acts.llmt.raw" "$dir/all.seed"
    else # options byte, then a calibration table or activations
        "$bin/llm-calib" --per-channel --method all "$dir/acts.llmt" >"$dir/table.llmt" 2>/dev/null
        raw "$dir/table.llmt"
        prefixed 013 "$dir/table.llmt.raw" "$dir/w8a8-smooth.seed"
        prefixed 101 "$dir/table.llmt" "$dir/int8-mse.seed"
        prefixed 024 "$dir/acts.llmt" "$dir/gptq-int4.seed"
        prefixed 040 "$dir/acts.llmt.raw" "$dir/rtn-cls.seed"
    fi
    rm -f "$dir/text.txt" "$dir"/*.llmt "$dir"/*.raw
fi
if [ "$target" = fuzz_text ]; then # options byte, then examples or a corpus
    printf '\001the cat sat\tyes\nthe dog sat on the log\tno\n\nno tab here\n\303\251t\303\251\tmaybe' >"$dir/examples.seed"
    { printf '\026'; for i in 1 2 3 4; do printf 'the cat sat on the mat. the dog sat on the log.\n'; done; } >"$dir/corpus.seed"
fi
if [ "$target" = fuzz_adapter ]; then
    # a tiny base and LoRA + prompt-tuning adapters for it, with their training
    # state (AdamW: two moments; Lion: one), also as raw streams to mutate
    for i in $(seq 60); do echo "line $i of a small text for a small model"; done >"$dir/t.txt"
    "$bin/llm-train" --data "$dir/t.txt" --out "$dir/b.llmt" --dim 8 --layers 1 --heads 2 --seq 8 --steps 1 -q &&
        "$bin/llm-train" --init "$dir/b.llmt" --data "$dir/t.txt" --out "$dir/a.llmt" --lora 1 \
            --lora-targets wq,w2 --prompt-tune 2 --steps 1 -q &&
        "$bin/llm-train" --init "$dir/b.llmt" --data "$dir/t.txt" --out "$dir/lion.llmt" --lora 1 \
            --lora-targets wv --optim lion --steps 1 -q &&
        "$bin/llm-tensor" cat --raw -o "$dir/a-raw.llmt" "$dir/a.llmt" &&
        "$bin/llm-tensor" cat --raw -o "$dir/lion-raw.llmt" "$dir/lion.llmt"
    rm -f "$dir/t.txt" "$dir/b.llmt"
fi
exit 0

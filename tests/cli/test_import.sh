#!/bin/bash
# CLI tests for llm-tensor import-llama2c: small llama2.c models and a
# tokenizer.bin written here with perl, imported to files and through pipes,
# listed with llm-tensor ls, tensors compared byte for byte with the input, and
# bad input that must give one clear line and exit 1 (2 for usage).
. "$(dirname "$0")/lib.sh"

# D width, F hidden, L layers, H heads, K kv heads, V vocab, S seq_len; E = D/H
D=16 F=24 L=2 H=4 K=2 V=300 S=8
E=$((D / H)) KE=$((K * D / H))
# floats before rms_final, and in all (shared classifier)
before_norm=$((V * D + L * D + L * D * D + 2 * L * KE * D + L * D * D + L * D + 3 * L * F * D))
n_shared=$((before_norm + D + S * E))

llama2c_model shared.bin $V $n_shared
llama2c_model unshared.bin -$V $((n_shared + V * D))
llama2c_tok tok.bin $V

expect "help lists import-llama2c" 0 "" -- llm-tensor --help
grep -q "import-llama2c" out && pass "help line" || fail "help line" "$(cat out)"

expect "import shared" 0 "" -- llm-tensor import-llama2c -o shared.llmt shared.bin
expect "ls of the import" 0 "" -- llm-tensor ls shared.llmt
if grep -Eq "^meta config .* format=llmpipe-model vocab=$V dim=$D layers=$L heads=$H kv_heads=$K hidden=$F seq_len=$S tie=1 window=0 " out &&
   grep -Eq "^meta tokenizer +u8 +\[0\] +0 kind=ids vocab=$V bos=1 eos=2$" out &&
   grep -Eq "^tok_emb +f32 +\[$V,$D\] " out && grep -Eq "^layers\.1\.attn\.wk +f32 +\[$KE,$D\] " out &&
   grep -Eq "^layers\.0\.mlp\.w2 +f32 +\[$D,$F\] " out && grep -Eq "^norm +f32 +\[$D\] " out &&
   ! grep -q "^cls " out && [ "$(wc -l <out)" -eq $((3 + 9 * L + 1)) ]; then
    pass "ls lines (shared)"
else
    fail "ls lines (shared)" "$(cat out)"
fi
expect "verify the import" 0 "" -- llm-tensor verify shared.llmt

# tensors hold the file's floats: rms_final, and layer 1's w2
llm-tensor to-npy norm shared.llmt | tail -c $((D * 4)) >norm.got
tail -c +$((28 + 4 * before_norm + 1)) shared.bin | head -c $((D * 4)) >norm.want
same "norm holds rms_final" norm.want norm.got
w2_at=$((V * D + L * D + L * D * D + 2 * L * KE * D + L * D * D + L * D + L * F * D + D * F))
llm-tensor to-npy layers.1.mlp.w2 shared.llmt | tail -c $((D * F * 4)) >w2.got
tail -c +$((28 + 4 * w2_at + 1)) shared.bin | head -c $((D * F * 4)) >w2.want
same "layers.1.mlp.w2 holds w2[1]" w2.want w2.got

# unshared: a cls tensor, the file's last V*D floats; options after the operand
llm-tensor import-llama2c unshared.bin --tokenizer tok.bin >unshared.llmt 2>err
llm-tensor ls unshared.llmt >ls.txt
pieces_bytes=$(perl -e 'my $s = 0; for my $i (0 .. $ARGV[0] - 1) { $s += $i == 0 ? 5 : $i < 3 ? 5 + ($i - 1) : $i < 259 ? 6 : length("w$i") } print $s' $V)
if grep -Eq "^cls +f32 +\[$V,$D\] " ls.txt && grep -q " tie=0 " ls.txt &&
   grep -Eq "^meta tokenizer +u8 +\[$((8 * V + pieces_bytes))\] +$((8 * V + pieces_bytes)) kind=bpe vocab=$V bos=1 eos=2$" ls.txt; then
    pass "unshared with a tokenizer, to stdout"
else
    fail "unshared with a tokenizer, to stdout" "$(cat err ls.txt)"
fi
llm-tensor to-npy cls unshared.llmt | tail -c $((V * D * 4)) >cls.got
tail -c $((V * D * 4)) unshared.bin >cls.want
same "cls holds wcls" cls.want cls.got
llm-tensor import-llama2c --tokenizer=tok.bin -o - unshared.bin | llm-tensor verify - >out 2>&1 &&
    pass "-o - into a pipe" || fail "-o - into a pipe" "$(cat out)"
llm-tensor import-llama2c unshared.bin --tokenizer tok.bin -o again.llmt
same "same input, same bytes" unshared.llmt again.llmt

# bad input: one line, exit 1, nothing left behind
printf 'hello, this is not a model at all\n' >text.bin
expect "not a llama2.c file" 1 "^llm-tensor: text.bin: not a llama2.c checkpoint: header " -- \
    llm-tensor import-llama2c -o x.llmt text.bin
[ ! -e x.llmt ] && pass "no output after an error" || fail "no output after an error" "x.llmt exists"
head -c $((28 + 4 * n_shared - 4)) shared.bin >short.bin
expect "truncated" 1 "^llm-tensor: short.bin: truncated: $((28 + 4 * n_shared - 4)) bytes, but its header \(dim $D, .*\) implies $((28 + 4 * n_shared))$" -- \
    llm-tensor import-llama2c -o x.llmt short.bin
head -c 20 shared.bin >tiny.bin
expect "shorter than the header" 1 "tiny.bin: not a llama2.c checkpoint \(20 bytes, shorter than its 28-byte header\)" -- \
    llm-tensor import-llama2c -o x.llmt tiny.bin
expect "a tensor stream" 1 "shared.llmt: a tensor stream, not a llama2.c checkpoint" -- \
    llm-tensor import-llama2c -o x.llmt shared.llmt
expect "missing file" 1 "^llm-tensor: nope.bin: No such file" -- llm-tensor import-llama2c -o x.llmt nope.bin
llama2c_tok small.bin $((V - 1))
expect "tokenizer too small" 1 "small.bin: truncated: $((V - 1)) of the model's $V pieces" -- \
    llm-tensor import-llama2c -o x.llmt --tokenizer small.bin shared.bin
llama2c_tok big.bin $((V + 1))
expect "tokenizer of another model" 1 "big.bin: more than $V pieces: not the tokenizer of this model" -- \
    llm-tensor import-llama2c -o x.llmt --tokenizer big.bin shared.bin
[ ! -e x.llmt ] && pass "still no output" || fail "still no output" "x.llmt exists"
expect "no model" 2 "import-llama2c: want one MODEL.bin" -- llm-tensor import-llama2c -o x.llmt
expect "two models" 2 "import-llama2c: want one MODEL.bin" -- llm-tensor import-llama2c shared.bin unshared.bin
expect "unknown option" 2 "unknown option" -- llm-tensor import-llama2c --level 3 shared.bin
expect "--tokenizer without a value" 2 "--tokenizer needs a value" -- llm-tensor import-llama2c shared.bin --tokenizer

# the real model, when the shared data holds it
real="$LLM_TOP/../shared/data/stories260K.bin"
if [ -r "$real" ]; then
    llm-tensor import-llama2c -o real.llmt "$real" && llm-tensor ls real.llmt >ls.txt
    grep -Eq "^meta config .* vocab=512 dim=64 layers=5 heads=8 kv_heads=4 hidden=172 seq_len=512 tie=1 .* params=260032$" ls.txt &&
        pass "stories260K imports" || fail "stories260K imports" "$(head -3 ls.txt)"
else
    skip "stories260K imports" "no $real"
fi

# llm-gen on imported models: greedy ids equal to an independent numpy
# implementation of llama2.c's forward pass (tests/llama2c_ref.py)
py=$(numpy_python)
ref="$LLM_TOP/tests/llama2c_ref.py"
llm-tensor import-llama2c -o u.llmt unshared.bin
if [ -n "$py" ]; then
    want=$("$py" "$ref" unshared.bin --ids "1 5 77 200" -n 4 --stop 1)
    got=$(llm-gen -m u.llmt --ids -p "1 5 77 200" -n 4 --temp 0 -q | sed 's/ *$//')
    [ -n "$want" ] && [ "$got" = "$want" ] && pass "llm-gen greedy = numpy reference (random GQA model)" ||
        fail "llm-gen greedy = numpy reference (random GQA model)" "ours '$got', reference '$want'"
    if [ -r "$real" ]; then
        want=$("$py" "$ref" "$real" --ids "1" -n 40 --stop 1)
        got=$(llm-gen -m real.llmt --ids -p "1" -n 40 --temp 0 -q | sed 's/ *$//')
        [ -n "$want" ] && [ "$got" = "$want" ] && pass "llm-gen greedy = numpy reference (stories260K)" ||
            fail "llm-gen greedy = numpy reference (stories260K)" "ours '$got', reference '$want'"
    else
        skip "llm-gen greedy = numpy reference (stories260K)" "no $real"
    fi
else
    skip "llm-gen greedy = numpy reference (random GQA model)" "Debian python3-numpy not installed"
    skip "llm-gen greedy = numpy reference (stories260K)" "Debian python3-numpy not installed"
fi
expect "ids-only model wants --ids" 2 "this model has no tokenizer; give token ids with --ids" -- llm-gen -m u.llmt -p "hello"

#!/bin/bash
# CLI tests for llm-quant: perplexity of each scheme against the float model's
# (llm-gen --eval), quantized runs against their --dequant float twins, GPTQ's
# report against RTN's, SmoothQuant's float equivalence, and bad input.
. "$(dirname "$0")/lib.sh"

training_text text.txt 30000
head -c 8000 text.txt >calib.txt
llm-train --data text.txt --out m.llmt --dim 64 --layers 2 --heads 4 --kv-heads 2 --seq 64 --batch 8 \
    --steps 150 --eval-every 0 --threads 2 -q 2>train.err || fail "train a model" "$(cat train.err)"
llm-gen -m m.llmt --dump-acts --ctx 64 -q <calib.txt >acts.llmt
ppl() { llm-gen -m "$1" --eval text.txt --ctx 64 --stride 64 -q | sed 's/ppl=\([0-9.]*\).*/\1/'; }
# within NAME A B FRAC: |A/B - 1| <= FRAC
within() {
    awk -v a="$2" -v b="$3" -v f="$4" 'BEGIN { d = a / b - 1; exit !(d <= f && d >= -f) }' &&
        pass "$1" || fail "$1" "$2 vs $3: more than $4 apart"
}
base=$(ppl m.llmt)

expect "help" 0 "" -- llm-quant --help
grep -q -- "--act-order" out && pass "help lists options" || fail "help lists options" "$(head -3 out)"
expect "no scheme" 2 "no scheme" -- llm-quant -m m.llmt -o x.llmt
expect "gptq needs acts" 2 "needs --acts" -- llm-quant -m m.llmt -o x.llmt --scheme int4 --method gptq
expect "w8a8 needs calib" 2 "needs --calib" -- llm-quant -m m.llmt -o x.llmt --scheme w8a8
expect "group not a multiple of 32" 2 "--group 48 is not a multiple of 32" -- llm-quant -m m.llmt -o x.llmt --scheme int4 --group 48
expect "group does not divide" 2 "layers.0.attn.wq: group 128 does not divide the width 64" -- \
    llm-quant -m m.llmt -o x.llmt --scheme int4
[ -e x.llmt ] && fail "no output after errors" "x.llmt exists" || pass "no output after errors"

# each scheme: the quantized model's perplexity near the float one's, and
# equal to its dequantized twin's but for the activations' int8 rounding
for s in "int8" "int4 --group 32" "int4 --group 32 --asym" "int4 --group 32 --method gptq --acts acts.llmt" \
         "int4 --group 64 --asym --method gptq --acts acts.llmt --act-order" "int8 --cls"; do
    tag=$(echo "$s" | tr -d ' -' | cut -c1-40)
    expect "quantize $s" 0 "" -- llm-quant -m m.llmt -o "q.$tag.llmt" --scheme $s
    llm-quant -m m.llmt -o "d.$tag.llmt" --scheme $s --dequant -q
    q=$(ppl "q.$tag.llmt"); d=$(ppl "d.$tag.llmt")
    case $s in int8*) tol=0.01 ;; *) tol=0.05 ;; esac
    within "ppl $s near float ($q vs $base)" "$q" "$base" $tol
    within "ppl $s as its dequantized twin ($q vs $d)" "$q" "$d" 0.005
done
sz() { stat -c %s "$1"; }
[ "$(sz q.int4group32.llmt)" -lt "$(sz q.int8.llmt)" ] && [ "$(sz q.int8.llmt)" -lt "$(sz m.llmt)" ] &&
    pass "sizes: int4 < int8 < float" || fail "sizes" "$(sz q.int4group32.llmt) $(sz q.int8.llmt) $(sz m.llmt)"

# the report: GPTQ's output SQNR above RTN's on the calibration activations
llm-quant -m m.llmt -o g.llmt --scheme int4 --group 32 --method gptq --acts acts.llmt --report rep.txt -q
awk '!/^#/ && $4 == "int4" { n++; if ($6 > $7) better++ } END { exit !(n == 14 && better >= 12) }' rep.txt &&
    pass "report: GPTQ beats RTN per layer" || fail "report: GPTQ beats RTN per layer" "$(cat rep.txt)"
grep -q "^# file bytes: $(sz m.llmt) -> $(sz g.llmt)" rep.txt && pass "report: file sizes" ||
    fail "report: file sizes" "$(tail -1 rep.txt)"

# a calibration table (as llm-calib --per-channel writes it): per-channel
# absmax of every input, and its max/127 as the scale of method "max"
llm-tensor stats --per-channel acts.llmt | awk '$1 ~ /\]$/ { split($1, a, "["); sub(/\]/, "", a[2]);
    v = $NF; sub(/absmax=/, "", v); k = a[1] SUBSEP a[2]; if (!(k in m) || v + 0 > m[k]) m[k] = v + 0;
    if (a[2] + 1 > w[a[1]]) w[a[1]] = a[2] + 1 }
    END { for (n in w) { line = n; mx = 0; for (j = 0; j < w[n]; j++) { line = line " " m[n SUBSEP j]; if (m[n SUBSEP j] > mx) mx = m[n SUBSEP j] }
          print line " " mx / 127 } }' >absmax.txt
args=""
while read -r name rest; do
    set -- $rest; scale=${!#}
    perl -e 'print pack("f<*", @ARGV[0..$#ARGV-1])' $rest >"$name.a.bin"
    perl -e 'print pack("f<", $ARGV[0])' "$scale" >"$name.s.bin"
    mknpy '<f4' "($(($# - 1)),)" "$name.a.bin" "$name.a.npy"
    mknpy '<f4' "(1,)" "$name.s.bin" "$name.s.npy"
    args="$args $name.absmax=$name.a.npy $name.scale=$name.s.npy"
done <absmax.txt
llm-tensor from-npy --attr methods=max -o table.llmt $args

expect "smooth, written float" 0 "" -- llm-quant -m m.llmt -o sm.llmt --scheme int8 --smooth 0.5 --calib table.llmt --dequant --skip '*'
within "SmoothQuant keeps the float model's perplexity" "$(ppl sm.llmt)" "$base" 0.0005
expect "w8a8 with smoothing" 0 "" -- llm-quant -m m.llmt -o w8.llmt --scheme w8a8 --smooth 0.5 --calib table.llmt
within "w8a8 ppl near float" "$(ppl w8.llmt)" "$base" 0.03
expect "w8a8" 0 "" -- llm-quant -m m.llmt -o w8b.llmt --scheme w8a8 --calib table.llmt --calib-method max
within "w8a8 (no smoothing) ppl near float" "$(ppl w8b.llmt)" "$base" 0.03

# bad input: nothing written
rm -f x.llmt
expect "already quantized" 1 "q.int8.llmt: layers.0.attn.wq is already quantized \(int8\)" -- \
    llm-quant -m q.int8.llmt -o x.llmt --scheme int4 --group 32
llm-train --data text.txt --out m3.llmt --dim 96 --layers 3 --heads 4 --kv-heads 2 --seq 32 --batch 2 \
    --steps 1 --eval-every 0 -q 2>/dev/null
llm-gen -m m3.llmt --dump-acts --ctx 32 -q <calib.txt >acts3.llmt
expect "activations of another model" 1 "acts3.llmt: layers.0.attn.wq.in is f32\[32,96\], but the model's input is f32 \[tokens, 64\]" -- \
    llm-quant -m m.llmt -o x.llmt --scheme int8 --method gptq --acts acts3.llmt
llm-tensor cat --name 'layers.2.*' -o acts3b.llmt acts3.llmt
expect "activations named for no layer" 1 "record 'layers.2.attn.wq.in' is not the input of a linear layer" -- \
    llm-quant -m m.llmt -o x.llmt --scheme int8 --method gptq --acts acts3b.llmt
llm-tensor cat --name 'layers.0.*' -o part.llmt table.llmt
expect "calibration table missing a layer" 1 "part.llmt: no layers.1.attn.wq.in.absmax" -- \
    llm-quant -m m.llmt -o x.llmt --scheme int8 --smooth 0.5 --calib part.llmt
expect "w8a8 table missing a layer" 1 "part.llmt: no layers.1.attn.wq.in.scale" -- \
    llm-quant -m m.llmt -o x.llmt --scheme w8a8 --calib part.llmt
[ -e x.llmt ] && fail "no output after bad input" "x.llmt exists" || pass "no output after bad input"
ls .x.llmt* >/dev/null 2>&1 && fail "no temporary left" "$(ls -a)" || pass "no temporary left"

# every output checked: a full disk is an error that names the output
full "model to a full disk" stdout -- llm-quant -m m.llmt -o - --scheme int8 -q
full "report to a full disk" stdout -- llm-quant -m m.llmt -o x.llmt --scheme int8 --report - -q
dev_full=$(chardev full 1 7)
expect "-o a full device" 1 "^llm-quant: $dev_full: write: No space left on device$" -- \
    llm-quant -m m.llmt -o "$dev_full" --scheme int8 -q
expect "--report to a full device" 1 "^llm-quant: $dev_full: write: No space left on device$" -- \
    llm-quant -m m.llmt -o x.llmt --scheme int8 --report "$dev_full" -q
[ -c "$dev_full" ] && pass "$dev_full stays a character device" || fail "$dev_full stays a character device" "$(ls -l "$dev_full")"
full "help to a full disk" stdout -- llm-quant --help

#!/bin/bash
# same_outputs.sh — do two builds of llmpipe write the same bytes?  Builds
# revision OLD (and NEW, or the working tree when NEW is omitted) into
# temporary directories, runs one fixed set of jobs with each — training
# (full, LoRA, QLoRA, prompt tuning), generation (greedy, sampled, batched,
# ids, adapters, quantized models), evaluation, dumps, calibration,
# quantization (int8, int4 RTN/GPTQ, w8a8, SmoothQuant, dequant, merge),
# heatmaps and listings — and compares every output file byte for byte.
# For restructurings that must not change results.
#   usage: tests/same_outputs.sh OLD [NEW]      e.g. tests/same_outputs.sh main~3
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
old=${1:?usage: tests/same_outputs.sh OLD [NEW]}
new=${2:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-same.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE

build() { # REV DIR: an export of REV (a commit) or of the working tree ("")
    mkdir -p "$2"
    if [ -n "$1" ]; then
        git -C "$top" archive "$1" | tar -x -C "$2" || return 1
    else
        (cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c) | tar -x -C "$2"
    fi
    make -s -C "$2" -j2 all >"$2.log" 2>&1 || { tail -n 20 "$2.log"; return 1; }
}

# jobs BIN OUT: everything the comparison covers, written under OUT.
jobs() {
    local bin=$1 out=$2
    mkdir -p "$out" && cd "$out" || return 1
    PATH="$bin:$PATH"
    local text=/usr/share/common-licenses/GPL-3
    [ -r "$text" ] || text="$top/README.md"
    head -c 60000 "$text" >a.txt
    tail -c 30000 "$text" >b.txt
    printf 'the cat\t1\nthe dog\t0\na cat sat\t1\na dog ran\t0\n' >ex.tsv
    printf 'This License\nthe program\nyou may\n' >prompts.txt
    local m="--dim 64 --layers 2 --heads 4 --kv-heads 2 --seq 64 --batch 4 --threads 2 -q"
    run() { "$@" 2>>stderr.log || echo "exit $? from: $*" >>failures.log; }
    run llm-train --data a.txt --out base.llmt $m --steps 30 --eval-every 10 --log train.tsv --seed 7
    run llm-train --data a.txt --out win.llmt $m --window 16 --no-tie --optim lion --steps 10 --seed 3
    run llm-train --init base.llmt --data b.txt --out resumed.llmt $m --steps 40 --stop-at 35
    run llm-train --init base.llmt --data b.txt --out lora.llmt --lora 4 --lora-targets all --steps 8 $m
    run llm-train --init base.llmt --data b.txt --out pt.llmt --prompt-tune 4 --steps 8 $m
    run llm-train --init base.llmt --examples ex.tsv --out cls.llmt --lora 2 --steps 6 $m
    run llm-quant -m base.llmt --scheme int4 --group 32 -o q4.llmt -q
    run llm-train --init q4.llmt --data b.txt --out qlora.llmt --lora 2 --steps 6 $m
    run llm-quant -m base.llmt --scheme int8 -o q8.llmt -q
    run llm-quant -m base.llmt --scheme int4 --group 32 --asym --cls -o q4a.llmt -q
    head -c 8000 b.txt | llm-gen -m base.llmt --dump-acts --threads 2 -q >acts.llmt 2>>stderr.log
    run llm-quant -m base.llmt --scheme int4 --group 32 --method gptq --acts acts.llmt -o gptq.llmt \
        --report gptq.report -q
    run llm-calib --method all -o calib.llmt acts.llmt
    run llm-calib --method all --text -o calib.txt acts.llmt
    run llm-calib --per-channel -o calib-pc.llmt acts.llmt
    run llm-calib --curve layers.0.mlp.w2.in -o curve.tsv acts.llmt
    llm-calib --method all --skip-nonfinite --report -o calib-skip.llmt acts.llmt 2>calib-report.txt ||
        echo "exit $? from: llm-calib --report" >>failures.log
    run llm-quant -m base.llmt --scheme w8a8 --calib calib.llmt -o w8a8.llmt -q
    run llm-quant -m base.llmt --scheme int8 --smooth 0.5 --calib calib-pc.llmt -o smooth.llmt -q
    run llm-quant -m base.llmt --scheme int4 --group 32 --method gptq --acts acts.llmt --dequant -o deq.llmt -q
    run llm-quant -m base.llmt --merge-adapter lora.llmt -o merged.llmt -q
    local g="--threads 2 -q"
    for model in base win resumed q4 q8 q4a gptq w8a8 smooth deq merged; do
        [ -e "$model.llmt" ] || continue
        run llm-gen -m "$model.llmt" -p "This License" -n 40 --temp 0 $g >"gen-$model.txt"
        run llm-gen -m "$model.llmt" --eval b.txt --ctx 64 $g >"eval-$model.txt"
    done
    run llm-gen -m base.llmt -p "the " -n 60 --temp 0.9 --top-k 20 --top-p 0.9 --seed 5 $g >sampled.txt
    run llm-gen -m base.llmt --batch --slots 2 -n 20 --temp 0.7 --seed 2 $g <prompts.txt >batch.txt
    run llm-gen -m q4.llmt --batch --slots 3 -n 20 --temp 0 $g <prompts.txt >batch-q4.txt
    run llm-gen -m base.llmt --ids -p "1 2 3" -n 10 --temp 0 $g >ids.txt
    run llm-gen -m base.llmt --adapter lora.llmt -p "This" -n 30 --temp 0 $g >gen-lora.txt
    run llm-gen -m base.llmt --adapter pt.llmt -p "This" -n 30 --temp 0 $g >gen-pt.txt
    run llm-gen -m q4.llmt --adapter qlora.llmt -p "This" -n 30 --temp 0 $g >gen-qlora.txt
    run llm-gen -m base.llmt --adapter cls.llmt --classify ex.tsv $g >classify.txt
    run llm-gen -m base.llmt --eval b.txt --ctx 32 --rope-scaling yarn --rope-factor 2 $g >eval-yarn.txt
    run llm-gen -m base.llmt -p "This License" --dump-attn $g >attn.llmt
    run llm-attnviz --grid -o attn-grid.pgm attn.llmt
    run llm-attnviz --layer 1 --head 2 --ppm --labels -o attn-l1h2.ppm attn.llmt
    run llm-attnviz --stats attn.llmt >attn-stats.txt
    run llm-tensor ls base.llmt q4.llmt >ls.txt
    run llm-tensor stats --per-channel --name 'layers.0.*' base.llmt >stats.txt
    run llm-tensor to-npy 'layers.1.mlp.w2' base.llmt >w2.npy
    if [ -r "$top/../shared/data/stories260K.bin" ]; then
        run llm-tensor import-llama2c -o stories.llmt "$top/../shared/data/stories260K.bin"
        run llm-gen -m stories.llmt --ids -p "1 400 300" -n 40 --temp 0 $g >stories.txt
    fi
    cut -f 5 --complement train.tsv >train-no-speed.tsv && rm -f train.tsv # tokens/s varies
    rm -f stderr.log
    cd "$work" || return 1
}

echo "same_outputs: building $old" >&2
build "$(git -C "$top" rev-parse "$old")" "$work/old" || exit 1
echo "same_outputs: building ${new:-the working tree}" >&2
build "${new:+$(git -C "$top" rev-parse "$new")}" "$work/new" || exit 1
jobs "$work/old/bin" "$work/out-old"
jobs "$work/new/bin" "$work/out-new"
status=0
for side in old new; do
    if [ -e "$work/out-$side/failures.log" ]; then
        echo "FAIL $side build: $(cat "$work/out-$side/failures.log")"; status=1
    fi
done
for f in "$work/out-old"/*; do
    name=$(basename "$f")
    [ "$name" = failures.log ] && continue
    if cmp -s "$f" "$work/out-new/$name"; then echo "same $name"; else echo "DIFFERENT $name"; status=1; fi
done
n=$(ls "$work/out-old" | wc -l)
[ "$status" -eq 0 ] && echo "same_outputs: all $n outputs byte-identical" || echo "same_outputs: outputs differ"
exit $status

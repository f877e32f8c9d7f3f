#!/bin/bash
# CLI tests of what files that declare huge sizes cost: every tool is fed a
# tiny file whose headers claim a huge model, tensor, context or head count,
# and must answer with one line and exit 1 (or do its job), its peak resident
# set staying under 64 MiB: memory follows the bytes that arrive, never what a
# header claims.  Dimensions a tool cannot address are refused by name.
. "$(dirname "$0")/lib.sh"

MIB=64
# a model config's attributes, with overrides: cfg KEY=VALUE...
cfg() {
    local a="format=llmpipe-model,vocab=258,dim=64,layers=1,heads=1,kv_heads=1,hidden=1,seq_len=16"
    a="$a,tie=1,window=0,norm_eps=1e-05,rope_theta=10000"
    for kv in "$@"; do a=$(echo "$a" | sed "s/\(^\|,\)${kv%%=*}=[^,]*/\1$kv/"); done
    echo "$a"
}
bytes_tok="M:4:tokenizer:0:::kind=bytes,vocab=258,bos=256,eos=257"
# tiny_model FILE KEY=VALUE...: a one-layer model of width 64 with zero weights
tiny_model() {
    local out=$1 w="T:0:layers.0"; shift
    rawstream "$out" "M:4:config:0:::$(cfg "$@")" "$bytes_tok" "T:0:tok_emb:258,64:z66048" \
        "$w.attn.norm:64:z256" "$w.attn.wq:64,64:z16384" "$w.attn.wk:64,64:z16384" "$w.attn.wv:64,64:z16384" \
        "$w.attn.wo:64,64:z16384" "$w.mlp.norm:64:z256" "$w.mlp.w1:1,64:z256" "$w.mlp.w2:64,1:z256" \
        "$w.mlp.w3:1,64:z256" "T:0:norm:64:z256"
}

# ---- llm-gen: the checkpoint loader, the RoPE table, the KV cache ----

# the config alone, declaring a context of 2^22 positions of head size 64
rawstream ctx.llmt "M:4:config:0:::$(cfg seq_len=4194304)"
bounded "gen: config of 2^22 positions, no weights" 1 "ctx.llmt: tensor tok_emb is missing" $MIB -- \
    llm-gen -m ctx.llmt -p hi
# a whole model (zero weights) with a context of 2^20 positions: runs, with
# tables and caches for the positions it uses
tiny_model long.llmt seq_len=1048576
bounded "gen: a model of 2^20 positions generates" 0 "" $MIB -- llm-gen -m long.llmt -p hi -n 4 --temp 0 -q
bounded "gen: a model of 2^20 positions evaluates" 0 "" $MIB -- sh -c 'printf "some text" | llm-gen -m long.llmt --eval -'
printf 'a short text\tyes\nanother one\tno\n' >ex.tsv
bounded "gen: a model of 2^20 positions classifies" 0 "" $MIB -- llm-gen -m long.llmt --classify ex.tsv
grep -q '^accuracy=.* n=2 labels=2$' out && pass "gen: classify output" || fail "gen: classify output" "$(cat out)"
# a config of 1 TiB of weights, no weights: refused when mapped, or found empty
rawstream huge.llmt "M:4:config:0:::$(cfg vocab=4194304 dim=65536)" "$bytes_tok"
bounded "gen: config of 1 TiB of weights, none given" 1 \
    "huge.llmt: (tensor tok_emb is missing|model: out of memory for 292058169344 parameters \(1088.0 GiB\))" \
    $MIB -- llm-gen -m huge.llmt -p hi
# 2048 tiny tensors scattered over a 6 GiB arena (each would make a huge page
# resident): the loader takes tensors in the model's order only
specs=("M:4:config:0:::$(cfg dim=2 layers=1024 hidden=262144)")
for l in $(seq 0 1023); do specs+=("T:0:layers.$l.attn.norm:2:0000803f0000803f" "T:0:layers.$l.mlp.norm:2:z8"); done
rawstream scatter.llmt "${specs[@]}"
bounded "gen: tensors out of the model's order" 1 \
    "scatter.llmt: layers.0.attn.norm: tensor tok_emb is missing before it \(a checkpoint's tensors come in the model's order\)" \
    $MIB -- llm-gen -m scatter.llmt -p hi

# adapters: settings declaring 1 TiB of parameters, with no tensor or a
# truncated one; tensors out of their layout's order
tiny_model small.llmt
ad="M:4:adapter:0:::format=llmpipe-adapter,base_hash=0123456789abcdef,vocab=258,dim=65536,layers=1,heads=1"
ad="$ad,kv_heads=1,hidden=1,seq_len=4194304,virtual=4194303,lora_rank=0"
rawstream ad.llmt "$ad"
bounded "gen: adapter of 1 TiB, no tensors" 1 "ad.llmt: tensor virtual is missing" $MIB -- \
    llm-gen -m small.llmt --adapter ad.llmt -p hi
NO_END=1 rawstream adt.llmt "$ad" "T:0:virtual:4194303,65536:0000803f:::1099511365632"
bounded "gen: adapter of 1 TiB, truncated" 1 "adt.llmt: .*truncated" $MIB -- \
    llm-gen -m small.llmt --adapter adt.llmt -p hi
ad="M:4:adapter:0:::format=llmpipe-adapter,base_hash=0123456789abcdef,vocab=258,dim=64,layers=1,heads=1"
ad="$ad,kv_heads=1,hidden=1,seq_len=16,virtual=0,lora_rank=1,lora_alpha=2,lora_targets=wq"
rawstream adr.llmt "$ad" "T:0:layers.0.attn.wq.lora_b:64,1:z256" "T:0:layers.0.attn.wq.lora_a:1,64:z256"
expect "gen: adapter tensors out of order" 1 \
    "adr.llmt: layers.0.attn.wq.lora_b: tensor layers.0.attn.wq.lora_a is missing before it" -- \
    llm-gen -m small.llmt --adapter adr.llmt -p hi

# ---- llm-quant and llm-train: the same loader, activations, tables ----

bounded "quant: config of 2^22 positions, no weights" 1 "ctx.llmt: tensor tok_emb is missing" $MIB -- \
    llm-quant -m ctx.llmt --scheme int8 -o q.llmt
training_text text.txt 2000
bounded "train: --init from a config of 2^22 positions" 1 "ctx.llmt: tensor tok_emb is missing" $MIB -- \
    llm-train --init ctx.llmt --data text.txt --steps 1 --out t.llmt
bounded "train: --lora on a config of 2^22 positions" 1 "ctx.llmt: tensor tok_emb is missing" $MIB -- \
    llm-train --init ctx.llmt --lora 2 --data text.txt --steps 1 --out t.llmt
# activations declaring 2^31 rows (the Hessian's product counts rows in an
# int), and 10^6 rows of which one arrives
NO_END=1 rawstream acts.llmt "T:0:layers.0.attn.wq.in:2147483648,64:0000803f:::549755813888"
bounded "quant: activations of 2^31 rows" 1 \
    "acts.llmt: layers.0.attn.wq.in has 2147483648 rows; a record holds at most 1073741824" $MIB -- \
    llm-quant -m small.llmt --scheme int8 --method gptq --acts acts.llmt -o q.llmt
NO_END=1 rawstream acts6.llmt "T:0:layers.0.attn.wq.in:1000000,64:0000803f:::256000000"
bounded "quant: activations of 10^6 declared rows" 1 "acts6.llmt: .*truncated" $MIB -- \
    llm-quant -m small.llmt --scheme int8 --method gptq --acts acts6.llmt -o q.llmt
# a calibration table declaring 2^30 channels
NO_END=1 rawstream tab.llmt "T:0:layers.0.attn.wq.in.absmax:1073741824:0000803f:::4294967296"
bounded "quant: calibration table of 2^30 declared channels" 1 "tab.llmt: .*truncated" $MIB -- \
    llm-quant -m small.llmt --scheme w8a8 --smooth 0.5 --calib tab.llmt -o q.llmt
[ ! -e q.llmt ] && pass "quant: no output left" || fail "quant: no output left" "q.llmt exists"

# ---- llm-attnviz: head counts beyond an int, per-head state ----

# 2^32 + 1 heads of one query each, a chunk of rows present: the head count once
# became 1 in an int, and the second head drew into a closed image
NO_END=1 rawstream heads.llmt "T:0:layers.0.attn.probs:4294967297,1,1:z1048580:::17179869188"
bounded "attnviz: 2^32+1 heads drawn" 1 \
    "heads.llmt: layers.0.attn.probs: 4294967297 heads: llm-attnviz draws at most 2147483647" $MIB -- \
    llm-attnviz --grid -o 'h-%d.pgm' heads.llmt
[ -z "$(ls h-*.pgm 2>/dev/null)" ] && pass "attnviz: no image left" || fail "attnviz: no image left" "$(ls h-*)"
# 2^26 heads declared, one row present: --stats keeps one head's sums at a time
NO_END=1 rawstream stats.llmt "T:0:layers.0.attn.probs:67108864,1,1:0000803f:::268435456"
bounded "attnviz: --stats of 2^26 declared heads" 1 "stats.llmt: .*truncated" $MIB -- llm-attnviz --stats stats.llmt
bounded "attnviz: --check-causal of 2^26 declared heads" 1 "stats.llmt: .*truncated" $MIB -- \
    llm-attnviz --check-causal stats.llmt
# --head-sim compares every pair: refused beyond the pixel limit before reading
NO_END=1 rawstream sim.llmt "T:0:layers.0.attn.probs:32768,1,1:0000803f:::131072"
bounded "attnviz: --head-sim of 2^15 heads" 1 \
    "sim.llmt: layers.0.attn.probs: --head-sim compares 32768 x 32768 heads, beyond the limit of 268435456 \(--force\)" \
    $MIB -- llm-attnviz --head-sim sim.llmt

# drawing a declared 16384 x 16384 map (the pixel limit) of which one row
# arrives: the band's levels fill only as rows arrive
NO_END=1 rawstream map.llmt "T:0:layers.0.attn.probs:1,16384,16384:z65536:::1073741824"
bounded "attnviz: a declared 16384 x 16384 map drawn" 1 "map.llmt: .*truncated" $MIB -- \
    llm-attnviz --layer 0 --grid -o map.pgm map.llmt
[ ! -e map.pgm ] && pass "attnviz: no partial image" || fail "attnviz: no partial image" "map.pgm exists"

# ---- llm-tensor: per-channel statistics, conversions ----

# 2^25 channels declared, one value present: the channels' sums grow as values arrive
NO_END=1 rawstream wide.llmt "T:0:w:1,33554432:0000803f:::134217728"
bounded "tensor: stats --per-channel of 2^25 declared channels" 1 "wide.llmt: .*truncated" $MIB -- \
    llm-tensor stats --per-channel wide.llmt
NO_END=1 rawstream wider.llmt "T:0:w:2,1099511627776:0000803f:::8796093022208"
bounded "tensor: stats --per-channel of 2^40 declared channels" 1 "wider.llmt: .*truncated" $MIB -- \
    llm-tensor stats --per-channel wider.llmt
bounded "tensor: to-npy of 2^40 declared channels" 1 "wider.llmt: .*truncated" $MIB -- \
    llm-tensor to-npy -o w.npy w wider.llmt
# rows wider than a read (1 MiB): chunks start mid-row, every channel still
# gets exactly its own values (row r holds r + 1 throughout)
perl -e 'print pack("f<*", (1) x 300001, (2) x 300001, (3) x 300001)' >rows.bin
mknpy '<f4' '(3, 300001)' rows.bin rows.npy
llm-tensor from-npy rows=rows.npy | llm-tensor stats --per-channel >rows.txt
n=$(grep -c '^rows\[[0-9]*\]  *count=3 min=1 max=3 mean=2 std=0.8164966 absmax=3$' rows.txt)
[ "$n" -eq 300001 ] && [ "$(wc -l <rows.txt)" -eq 300002 ] &&
    grep -q '^rows  *count=900003 min=1 max=3 mean=2 std=0.8164966 absmax=3$' rows.txt &&
    pass "tensor: per-channel statistics of rows wider than a read" ||
    fail "tensor: per-channel statistics of rows wider than a read" "$n good channel lines; $(head -2 rows.txt)"
# a .npy header declaring 2^40 floats over 4 bytes of data
printf '\000\000\200\077' >one.bin
mknpy '<f4' '(1099511627776,)' one.bin big.npy
bounded "tensor: from-npy of 2^40 declared floats" 1 "big.npy: truncated" $MIB -- \
    llm-tensor from-npy -o big.llmt x=big.npy
# a llama2.c header declaring a 7B model, without its weights
perl -e 'print pack("l<7", 4096, 11008, 32, 32, 32, 32000, 2048)' >l7b.bin
bounded "tensor: import-llama2c of a 7B header alone" 1 "l7b.bin: truncated: 28 bytes, but its header" $MIB -- \
    llm-tensor import-llama2c -o l7b.llmt l7b.bin

# ---- llm-calib: per-channel maxima ----

NO_END=1 rawstream calw.llmt "T:0:x:1,67108864:0000803f:::268435456"
for th in 1 3; do
    bounded "calib: --per-channel --threads $th, 2^26 declared channels" 1 "calw.llmt: .*truncated" $MIB -- \
        llm-calib --per-channel --threads $th calw.llmt
done
# a record of no rows declaring 2^26 channels: no values, no channels held or written
rawstream cal0.llmt "T:0:x:0,67108864:"
bounded "calib: --per-channel, 2^26 channels and no values" 0 "x: no values" $MIB -- \
    llm-calib --per-channel -o cal0.out cal0.llmt
[ "$(llm-tensor ls cal0.out | cut -d' ' -f1 | tr '\n' ' ')" = "x.amax x.scale " ] &&
    pass "calib: no absmax without values" || fail "calib: no absmax without values" "$(llm-tensor ls cal0.out)"

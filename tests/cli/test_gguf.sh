#!/bin/bash
# CLI tests for llm-tensor import-gguf, export-gguf, and ls/stats of GGUF
# files, against tests/gguf_ref.py: a GGUF reader and writer and the block
# decoders written in numpy from ggml's format documentation.  Models it
# writes (random codes in every block format, q and k permuted as llama.cpp's
# converter does) are imported and checked value for value and by a Hugging
# Face-convention forward pass; our exports are read back by it and, where
# npm installed it (.ci/run), by @huggingface/gguf; round trips are compared
# byte for byte; bad files must give one clear line.
. "$(dirname "$0")/lib.sh"

py=$(numpy_python)
ref="$LLM_TOP/tests/gguf_ref.py"
npm_gguf="$LLM_TOP/build/npm/node_modules/@huggingface/gguf/dist/index.mjs"
need_numpy() { [ -n "$py" ] || skip "$1" "Debian python3-numpy not installed"; [ -n "$py" ]; }

# a trained model of ours (byte tokenizer, training state) for the export side
training_text text.txt 20000
llm-train --data text.txt --out m.llmt --dim 32 --hidden 64 --layers 2 --heads 4 --kv-heads 2 --seq 32 \
    --batch 4 --steps 10 --threads 1 -q || fail "train a model" "llm-train failed"

# ---- export, and back ----
expect "export f32" 0 "m.llmt: optimizer state not exported" -- llm-tensor export-gguf m.llmt -o m.gguf
expect "import it back" 0 "" -- llm-tensor import-gguf m.gguf -o back.llmt
llm-tensor ls m.llmt | grep -v '^meta train' | grep -v '^optim\.' >ls.a
llm-tensor ls back.llmt >ls.b
same "config, tokenizer and tensors listed alike" ls.a ls.b
for t in tok_emb layers.1.attn.wk layers.0.mlp.w2 norm; do
    llm-tensor to-npy "$t" m.llmt >a.npy && llm-tensor to-npy "$t" back.llmt >b.npy
    same "$t: the same floats after GGUF" a.npy b.npy
done
want=$(llm-gen -m m.llmt -p "the cat" -n 24 --temp 0 -q)
got=$(llm-gen -m back.llmt -p "the cat" -n 24 --temp 0 -q)
[ -n "$want" ] && [ "$got" = "$want" ] && pass "llm-gen greedy text the same after GGUF" ||
    fail "llm-gen greedy text the same after GGUF" "'$want' vs '$got'"
mkdir -p again && cp back.llmt again/m.llmt && llm-tensor export-gguf again/m.llmt -o again.gguf
same "export of the import: the same GGUF bytes" m.gguf again.gguf

if need_numpy "our export read by the numpy reader"; then
    "$py" "$ref" show m.gguf >show.json
    for t in tok_emb layers.1.attn.wk norm; do llm-tensor to-npy "$t" m.llmt >"ours.$t.npy"; done
    "$py" - "$ref" m.gguf <<'EOF' >check.txt 2>&1 && pass "our export read by the numpy reader" || fail "our export read by the numpy reader" "$(tail -3 check.txt)"
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
version, kv, tensors, order, data, align, start = ref.read_gguf(sys.argv[2])
v = lambda k: kv[k][1]
assert version == 3 and v("general.architecture") == b"llama", (version, kv.get("general.architecture"))
got = [v("llama." + k) for k in ("vocab_size", "context_length", "embedding_length", "block_count", "feed_forward_length",
                                   "attention.head_count", "attention.head_count_kv", "rope.dimension_count")]
assert got == [258, 32, 32, 2, 64, 4, 2, 8], got
assert abs(v("llama.attention.layer_norm_rms_epsilon") - 1e-5) < 1e-10 and v("llama.rope.freq_base") == 10000
toks = [t.decode() for t in v("tokenizer.ggml.tokens")[1]]
want = ["<0x%02X>" % i for i in range(256)] + ["<s>", "</s>"]
want[32] = "\u2581"  # llama.cpp turns spaces into U+2581 before it looks for pieces
assert toks == want, toks[30:34] + toks[250:]
assert v("tokenizer.ggml.token_type")[1] == [6] * 32 + [1] + [6] * 223 + [3, 3]
assert "tokenizer.ggml.unknown_token_id" not in kv and v("tokenizer.ggml.model") == b"llama"
# llama.cpp's SentencePiece tokenizer (llm_tokenizer_spm) on that vocabulary: spaces become U+2581, each
# UTF-8 character a symbol; adjacent symbols merge, best score first, while their concatenation is a
# piece; each symbol is then its piece, or the byte pieces of its bytes.  It must give our ids: the bytes.
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
import tok_ref
ids_of, scores = {t: i for i, t in reversed(list(enumerate(toks)))}, v("tokenizer.ggml.scores")[1]
def llama_cpp_spm(text):
    syms = list(text.replace(" ", "\u2581"))  # add_space_prefix is false
    while True:
        pairs = [(scores[ids_of[a + b]], -i) for i, (a, b) in enumerate(zip(syms, syms[1:])) if a + b in ids_of]
        if not pairs:
            break
        i = -max(pairs)[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    return sum(([ids_of[x]] if x in ids_of else [ids_of["<0x%02X>" % b] for b in x.encode()] for x in syms), [])
texts = [t.decode() for t in tok_ref.AWKWARD if tok_ref.is_utf8(t) and "\u2581" not in t.decode()]
assert len(texts) > 20
for t in texts:
    assert llama_cpp_spm(t) == list(t.encode()), (t, llama_cpp_spm(t)[:20])
assert v("tokenizer.ggml.bos_token_id") == 256 and v("tokenizer.ggml.eos_token_id") == 257
assert v("tokenizer.ggml.add_space_prefix") is False and v("tokenizer.ggml.add_bos_token") is True
assert order[0] == "token_embd.weight" and "output.weight" not in tensors and len(order) == 1 + 9 * 2 + 1
for name, ours in (("token_embd.weight", "tok_emb"), ("blk.1.attn_k.weight", "layers.1.attn.wk"), ("output_norm.weight", "norm")):
    t, ne, off = tensors[name]
    assert t == "F32" and off % 32 == 0, (name, t, off)
    w = np.load("ours.%s.npy" % ours)
    assert list(reversed(ne)) == list(w.shape), (name, ne, w.shape)
    assert np.array_equal(ref.decode(t, data[name]).reshape(w.shape), w), name
EOF
    for type in f16 bf16; do
        llm-tensor export-gguf m.llmt -o "m-$type.gguf" --type "$type" 2>/dev/null
        llm-tensor to-npy layers.0.mlp.w1 m.llmt >w1.npy
        "$py" - "$ref" "m-$type.gguf" "$type" <<'EOF' >check.txt 2>&1 && pass "--type $type: matrices rounded to nearest even, vectors F32" || fail "--type $type: matrices rounded to nearest even, vectors F32" "$(tail -3 check.txt)"
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
_, kv, tensors, _, data, _, _ = ref.read_gguf(sys.argv[2])
w = np.load("w1.npy")
t, ne, _ = tensors["blk.0.ffn_gate.weight"]
want = w.astype("<f2").tobytes() if sys.argv[3] == "f16" else ref.to_bf16(w).astype("<u2").tobytes()
assert t == sys.argv[3].upper() and data["blk.0.ffn_gate.weight"] == want, t
assert tensors["blk.0.ffn_norm.weight"][0] == "F32"
assert kv["general.file_type"][1] == {"f16": 1, "bf16": 32}[sys.argv[3]]
EOF
    done
fi

if [ -r "$npm_gguf" ] && command -v node >/dev/null 2>&1; then
    cat >read.mjs <<EOF
import { gguf } from "$npm_gguf";
const { metadata, tensorInfos } = await gguf(process.argv[2], { allowLocalFile: true });
const n = (x) => typeof x === "bigint" ? Number(x) : x;
const t = tensorInfos.map((i) => [i.name, i.shape.map(n).join("x"), i.dtype].join(" "));
console.log([metadata["general.architecture"], n(metadata["llama.embedding_length"]), n(metadata["llama.block_count"]),
             n(metadata["llama.attention.head_count_kv"]), metadata["tokenizer.ggml.model"],
             metadata["tokenizer.ggml.tokens"]?.length ?? 0, tensorInfos.length].join(" "));
console.log(t.join("\n"));
EOF
    node read.mjs m.gguf >npm.txt 2>&1
    if [ "$(head -1 npm.txt)" = "llama 32 2 2 llama 258 20" ] && grep -qx "token_embd.weight 32x258 0" npm.txt &&
       grep -qx "blk.1.attn_k.weight 32x16 0" npm.txt; then
        pass "@huggingface/gguf reads our F32 export"
    else
        fail "@huggingface/gguf reads our F32 export" "$(head -4 npm.txt)"
    fi
else
    skip "@huggingface/gguf reads our F32 export" "npm package not installed in build/npm (.ci/run installs it)"
fi

# exports that are refused, or need --dequant
llm-quant -m m.llmt -o q4.llmt --scheme int4 --group 32 -q
expect "int4 scales not f16: refused" 1 "^llm-tensor: q4.llmt: layers.0.attn.wq: scale 0 \(.*\) is not an f16 value, as Q4_0 needs; --dequant" -- \
    llm-tensor export-gguf q4.llmt -o x.gguf
[ ! -e x.gguf ] && pass "no output after a refusal" || fail "no output after a refusal" "x.gguf exists"
llm-quant -m m.llmt -o q4a.llmt --scheme int4 --group 32 --asym -q
expect "asymmetric int4 refused" 1 "layers.0.attn.wq is int4 group 32 asymmetric: GGUF holds int4 symmetric with groups of 32 exactly \(llm-quant --scheme int4 --group 32\); --dequant" -- \
    llm-tensor export-gguf q4a.llmt -o x.gguf
expect "--dequant writes floats, reported" 0 "layers.1.mlp.w3: int4 asymmetric dequantized to F32" -- \
    llm-tensor export-gguf q4a.llmt -o q4a.gguf --dequant
expect "--dequant import" 0 "" -- llm-tensor import-gguf q4a.gguf -o q4a-back.llmt
llm-quant -m m.llmt -o q4a-f.llmt --scheme int4 --group 32 --asym --dequant -q
llm-tensor to-npy layers.0.attn.wq q4a-f.llmt >a.npy
llm-tensor to-npy layers.0.attn.wq q4a-back.llmt >b.npy
same "--dequant: the floats llm-quant --dequant gives" a.npy b.npy
expect "export to stdout refused" 2 "export-gguf: give -o OUT.gguf" -- llm-tensor export-gguf m.llmt
head -c 8 /dev/zero >z.bin && mknpy '<f4' '(2,)' z.bin z.npy && llm-tensor from-npy -o s.llmt x=z.npy
expect "export of a non-checkpoint" 1 "^llm-tensor: s.llmt: not a model checkpoint \(first record is 'x'\)$" -- llm-tensor export-gguf -o x.gguf s.llmt

# ---- import of models the numpy writer makes ----
if need_numpy "import: a float model (F32, F16, BF16), greedy = Hugging Face-convention reference"; then
    "$py" "$ref" make f.gguf f.npz --types attn_q=F16,attn_k=BF16,ffn_down=BF16,token_embd=F16 --tokenizer llama2c
    expect "import float model" 0 "blk.0.attn_q.weight: F16 widened \(exactly\) to f32" -- llm-tensor import-gguf f.gguf -o f.llmt
    llm-tensor ls f.llmt >ls.txt
    grep -Eq "^meta config .* vocab=300 dim=256 layers=1 heads=4 kv_heads=2 hidden=256 seq_len=64 tie=0 window=0 norm_eps=9.99999975e-06 rope_theta=10000 " ls.txt &&
        grep -Eq "^meta tokenizer .* kind=spm vocab=300 bos=1 eos=2 unk=0 add_bos=1 add_eos=0 space_prefix=1 merges=0$" ls.txt &&
        pass "config and SentencePiece tokenizer (llama.cpp's defaults)" ||
        fail "config and SentencePiece tokenizer (llama.cpp's defaults)" "$(head -2 ls.txt)"
    want=$("$py" "$ref" greedy f.npz --ids "1 5 77 200" -n 12 --stop 1 --stop 2)
    got=$(llm-gen -m f.llmt --ids -p "1 5 77 200" -n 12 --temp 0 -q | sed 's/ *$//')
    [ -n "$want" ] && [ "$got" = "$want" ] && pass "import: greedy = Hugging Face-convention reference (q, k unpermuted)" ||
        fail "import: greedy = Hugging Face-convention reference (q, k unpermuted)" "ours '$got', reference '$want'"
    printf 'w300' >p.txt # a piece, and bytes through byte fallback
    got=$(llm-gen -m f.llmt -p "w299 é" -n 0 --temp 0 -q 2>&1 | head -c 200)
    [ "$got" = "w299 é" ] && pass "the imported tokenizer encodes and decodes text" || fail "the imported tokenizer encodes and decodes text" "'$got'"

    # every block format, decoded bit for bit as numpy decodes it
    types=token_embd=Q8_0,attn_q=Q4_K,attn_k=Q5_K,attn_v=Q6_K,attn_output=Q3_K,ffn_gate=Q2_K,ffn_down=Q4_1,ffn_up=Q4_0,output=Q8_0
    "$py" "$ref" make k.gguf k.npz --types "$types" --seed 2
    expect "import block formats" 0 "blk.0.attn_q.weight: Q4_K dequantized to f32" -- llm-tensor import-gguf k.gguf -o k.llmt
    for r in Q8_0:token_embd.weight:tok_emb Q4_K:blk.0.attn_q.weight:layers.0.attn.wq Q5_K:blk.0.attn_k.weight:layers.0.attn.wk \
             Q6_K:blk.0.attn_v.weight:layers.0.attn.wv Q3_K:blk.0.attn_output.weight:layers.0.attn.wo \
             Q2_K:blk.0.ffn_gate.weight:layers.0.mlp.w1 Q4_1:blk.0.ffn_down.weight:layers.0.mlp.w2 Q8_0:output.weight:cls; do
        IFS=: read -r type theirs ours <<<"$r"
        grep -q "^llm-tensor: $theirs: $type dequantized to f32$" err || fail "$type reported" "$(grep "$theirs" err)"
        "$py" "$ref" dequant k.gguf "$theirs" want.npy
        llm-tensor to-npy "$ours" k.llmt >got.npy
        "$py" -c 'import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); sys.exit(0 if a.dtype == b.dtype and np.array_equal(a, b) else 1)' want.npy got.npy &&
            pass "$type ($theirs): the floats numpy decodes" || fail "$type ($theirs): the floats numpy decodes" "differ"
    done
    ! grep -q "ffn_up.*dequantized" err && pass "Q4_0 not reported: kept" || fail "Q4_0 not reported: kept" "$(grep ffn_up err)"
    llm-tensor ls k.llmt >ls.txt
    grep -Eq "^layers\.0\.mlp\.w3 +u4 +\[256,256\] .* quant=int4 group=32 sym=1$" ls.txt && grep -q " quant=int4$" <(head -1 ls.txt) &&
        pass "Q4_0 kept as int4 symmetric g32" || fail "Q4_0 kept as int4 symmetric g32" "$(grep w3 ls.txt)"
    llm-tensor to-npy layers.0.mlp.w3 k.llmt >codes.npy
    llm-tensor to-npy layers.0.mlp.w3.scale k.llmt >scales.npy
    "$py" "$ref" dequant k.gguf blk.0.ffn_up.weight want.npy
    "$py" -c '
import numpy as np
u, s, w = np.load("codes.npy").astype(np.int32), np.load("scales.npy"), np.load("want.npy")
assert (s < 0).any() and (s > 0).any()       # both signs, as llama.cpp makes them
got = np.repeat(s, 32, axis=1) * (u - 8).astype(np.float32)
assert np.array_equal(got, w)' && pass "Q4_0: codes and f16 scales the numpy decoding's" || fail "Q4_0: codes and f16 scales the numpy decoding's" "differ"
    want=$(llm-gen -m k.llmt --ids -p "3 1 4 1 5" -n 8 --temp 0 -q)
    [ -n "$want" ] && pass "llm-gen runs the block-format model" || fail "llm-gen runs the block-format model" "no output"

    # round trips: stream -> GGUF -> stream, byte for byte (float, and int4 as Q4_0)
    for m in f k; do
        llm-tensor export-gguf "$m.llmt" -o "$m.out.gguf" 2>/dev/null && llm-tensor import-gguf "$m.out.gguf" -o "$m.2.llmt" 2>/dev/null
        llm-tensor cat --raw "$m.llmt" -o "$m.raw1"; llm-tensor cat --raw "$m.2.llmt" -o "$m.raw2"
        same "round trip $m: stream -> GGUF -> stream identical" "$m.raw1" "$m.raw2"
    done
    "$py" "$ref" raw k.gguf blk.0.ffn_up.weight a.bin && "$py" "$ref" raw k.out.gguf blk.0.ffn_up.weight b.bin
    same "Q4_0 blocks written back unchanged" a.bin b.bin
    got=$(llm-gen -m k.2.llmt --ids -p "3 1 4 1 5" -n 8 --temp 0 -q)
    [ "$got" = "$want" ] && pass "llm-gen greedy the same after the Q4_0 round trip" || fail "llm-gen greedy the same after the Q4_0 round trip" "'$want' vs '$got'"
    if [ -r "$npm_gguf" ] && command -v node >/dev/null 2>&1; then
        node read.mjs k.out.gguf >npm.txt 2>&1
        grep -qx "blk.0.ffn_up.weight 256x256 2" npm.txt && grep -qx "output.weight 256x300 0" npm.txt &&
            pass "@huggingface/gguf reads our Q4_0 export" || fail "@huggingface/gguf reads our Q4_0 export" "$(head -3 npm.txt)"
    else
        skip "@huggingface/gguf reads our Q4_0 export" "npm package not installed in build/npm"
    fi

    # tied, another alignment, ls and stats
    "$py" "$ref" make t.gguf t.npz --tied --seed 3
    llm-tensor import-gguf t.gguf -o t.llmt 2>/dev/null
    grep -q " tie=1 " <(llm-tensor ls t.llmt) && pass "no output.weight: tied" || fail "no output.weight: tied" "$(llm-tensor ls t.llmt | head -1)"
    want=$("$py" "$ref" greedy t.npz --ids "7 8 9" -n 6)
    got=$(llm-gen -m t.llmt --ids -p "7 8 9" -n 6 --temp 0 -q | sed 's/ *$//')
    [ "$got" = "$want" ] && pass "tied model: greedy = reference" || fail "tied model: greedy = reference" "'$got' vs '$want'"
    "$py" "$ref" rewrite t.gguf t64.gguf --alignment 64 --version 2
    llm-tensor import-gguf t64.gguf -o t64.llmt 2>/dev/null
    same "version 2, alignment 64: the same model" t.llmt t64.llmt
    llm-tensor ls k.gguf >ls.txt
    grep -Eq "^blk\.0\.attn_q\.weight +Q4_K +\[256,256\] +36864 offset=" ls.txt && grep -Eq "^meta general.architecture +string llama$" ls.txt &&
        pass "ls reads GGUF" || fail "ls reads GGUF" "$(head -3 ls.txt)"
    llm-tensor stats --name blk.0.attn_v.weight k.gguf >st.txt
    "$py" "$ref" dequant k.gguf blk.0.attn_v.weight v.npy
    want=$("$py" -c 'import numpy as np; v = np.load("v.npy").astype(np.float64); print("count=%d min=%.7g max=%.7g" % (v.size, v.min(), v.max()))')
    grep -q "^blk.0.attn_v.weight *$want " st.txt && pass "stats reads GGUF" || fail "stats reads GGUF" "$(cat st.txt) vs $want"

    # bad files: one line each
    bad() { # NAME REGEX MAKE-ARGS...
        b_name=$1 b_re=$2; shift 2
        "$py" "$ref" make bad.gguf bad.npz "$@" && expect "$b_name" 1 "$b_re" -- llm-tensor import-gguf bad.gguf -o x.llmt
    }
    bad "another architecture" "bad.gguf: architecture gpt2: only llama is imported" --kv general.architecture=str:gpt2
    bad "an unknown llama key" "bad.gguf: llama.attention.sliding_window is not supported" --kv llama.attention.sliding_window=u32:4
    bad "RoPE scaling" "bad.gguf: llama.rope.scaling.type is yarn \(factor 4\): a checkpoint keeps no RoPE scaling" \
        --kv llama.rope.scaling.type=str:yarn --kv llama.rope.scaling.factor=f32:4
    bad "partial RoPE" "bad.gguf: llama.rope.dimension_count is 32, not the head size 64" --kv llama.rope.dimension_count=u32:32
    bad "a missing key" "bad.gguf: llama.block_count is missing" --drop-kv llama.block_count
    bad "a key of the wrong type" "bad.gguf: llama.block_count is string, not a count" --kv llama.block_count=str:one
    bad "an extra tensor" "bad.gguf: tensor rope_freqs.weight is not part of the llama model" --extra-tensor rope_freqs.weight
    bad "shapes that disagree" "bad.gguf: blk.0.ffn_gate.weight has ne 256 x 256 \(2 dimensions\), the config needs 256 x 512" --kv llama.feed_forward_length=u32:512
    bad "heads that do not divide" "not a model llmpipe runs: heads 4 is not a multiple of kv-heads 3" --kv llama.attention.head_count_kv=u32:3
    bad "MoE" "llama.expert_count is 8: a mixture of experts" --kv llama.expert_count=u32:8
    expect "a pre-tokenizer llmpipe lacks: ids only, said" 0 "t.gguf: tokenizer.ggml.pre qwen2 is a pre-tokenizer llmpipe does not have \(default, gpt2, llama-bpe\); the tokenizer is left out: the model takes token ids only" -- \
        sh -c "'$py' '$ref' make t.gguf t.npz --tokenizer gpt2 --kv tokenizer.ggml.pre=str:qwen2 && llm-tensor import-gguf t.gguf -o t.llmt"
    grep -Eq "^meta tokenizer .* kind=ids vocab=300 bos=-1 eos=-1$" <(llm-tensor ls t.llmt) && pass "ids only: kind=ids" || fail "ids only: kind=ids" "$(llm-tensor ls t.llmt | head -2)"
    expect "another tokenizer model: ids only, said" 0 "t.gguf: tokenizer.ggml.model bert is not one llmpipe encodes: the model takes token ids only" -- \
        sh -c "'$py' '$ref' make t.gguf t.npz --tokenizer gpt2 --kv tokenizer.ggml.model=str:bert && llm-tensor import-gguf t.gguf -o t.llmt"
    bad "a merge that is not two pieces" "bad.gguf: tokenizer.ggml.model gpt2: tokenizer: merge 0 't 1' is not two pieces" --tokenizer gpt2
    bad "BOS outside the vocabulary" "bad.gguf: tokenizer.ggml.bos_token_id is 300, outside the vocabulary's 300 ids" --tokenizer llama2c --kv tokenizer.ggml.bos_token_id=u32:300
    bad "token types not an array" "bad.gguf: tokenizer.ggml.token_type is not an array of numbers" --tokenizer llama2c --kv tokenizer.ggml.token_type=str:x
    head -c 300000 f.gguf >short.gguf
    expect "truncated" 1 "short.gguf: .*end past the file's" -- llm-tensor import-gguf short.gguf -o x.llmt
    head -c 2000 f.gguf >short.gguf
    expect "truncated in the metadata" 1 "short.gguf: tokenizer.ggml.tokens: an array of 300 values of type string, more than the file has left" -- llm-tensor import-gguf short.gguf -o x.llmt
    "$py" "$ref" rewrite f.gguf v1.gguf --version 1
    expect "version 1" 1 "v1.gguf: GGUF version 1 \(versions 2 and 3 are read\)" -- llm-tensor import-gguf v1.gguf -o x.llmt
    expect "from a pipe" 1 "-: a GGUF file is read from a regular file" -- sh -c 'cat f.gguf | llm-tensor import-gguf - -o x.llmt'
    [ ! -e x.llmt ] && pass "no output after bad input" || fail "no output after bad input" "x.llmt exists"

    # memory: an 80 MB F32 model imports in a fraction of it
    "$py" "$ref" make big.gguf big.npz --dim 1024 --hidden 2048 --layers 2 --heads 8 --kv-heads 8 --vocab 8192
    bounded "import of an 80 MB model" 0 "" 40 -- llm-tensor import-gguf big.gguf -o big.llmt
    bounded "export of it" 0 "" 40 -- llm-tensor export-gguf big.llmt -o big2.gguf
fi
# ---- tokenizers from GGUF metadata: sentencepiece's ids, GPT-2's BPE ----
# tok_model NAME KIND DIR [PRE]: tests/tok_ref.py's vocabulary in DIR written
# by the numpy writer into a model and imported.  Every awkward string of its
# cases (those without NUL), encoded by llm-gen from stdin (--dump-acts) and
# from -p (--dump-attn), must give the dump the reference's ids give with
# --ids; greedy text from -p must be the prompt and then the continuation as
# the reference decodes it; export -> import keeps the tokenizer record, and
# the numpy reader finds every tokenizer.ggml.* key of the input unchanged.
tok_model() {
    tm_name=$1 tm_kind=$2 tm_dir=$3 tm_pre=${4:-}
    "$py" "$ref" make "$tm_dir.gguf" "$tm_dir.npz" --tokenizer "$tm_kind:$tm_dir${tm_pre:+:$tm_pre}" --dim 32 \
        --hidden 64 --layers 1 --heads 2 --kv-heads 1 --ctx 1024 --seed 4
    expect "$tm_name: import" 0 "" -- llm-tensor import-gguf "$tm_dir.gguf" -o "$tm_dir.llmt"
    bos=$(llm-tensor ls "$tm_dir.llmt" | sed -n 's/^meta tokenizer .* bos=\(-*[0-9]*\) .* add_bos=1 .*/\1/p')
    "$py" - "$tm_dir" "${bos:--1}" <<'EOF'
import sys
d, bos = sys.argv[1], int(sys.argv[2])
for k, line in enumerate(open(d + "/cases")):
    text, ids, _ = line.rstrip("\n").split("\t")
    text = b"" if text == "-empty-" else bytes.fromhex(text)
    ids = ([bos] if bos >= 0 else []) + ([] if ids == "-" else [int(x) for x in ids.split()])
    if text and b"\0" not in text:
        open("%s/case%02d.txt" % (d, k), "wb").write(text)
        open("%s/case%02d.ids" % (d, k), "w").write(" ".join(map(str, ids)))
EOF
    n=0 differ="" m="$tm_dir.llmt"
    for f in "$tm_dir"/case*.txt; do
        c=${f%.txt}
        llm-gen -m "$m" --dump-acts -q <"$f" >a.llmt && llm-gen -m "$m" --dump-acts --ids -q <"$c.ids" >b.llmt &&
            [ -s a.llmt ] && cmp -s a.llmt b.llmt || differ="$differ ${c##*/}(stdin)"
        IFS= read -r -d '' t <"$f"
        llm-gen -m "$m" --dump-attn -q -p "$t" >a.llmt && llm-gen -m "$m" --dump-attn -q --ids -p "$(cat "$c.ids")" >b.llmt &&
            [ -s a.llmt ] && cmp -s a.llmt b.llmt || differ="$differ ${c##*/}(-p)"
        llm-gen -m "$m" -q -p "$t" -n 8 --temp 0 >"$c.out" &&
            llm-gen -m "$m" -q --ids -p "$(cat "$c.ids")" -n 8 --temp 0 >"$c.cont" || differ="$differ ${c##*/}(generate)"
        n=$((n + 1))
    done
    printf '%s 5' "$(cat "$tm_dir/case03.ids")" | llm-gen -m "$m" --dump-acts --ids -q >b.llmt
    llm-gen -m "$m" --dump-acts --ids -q <"$tm_dir/case03.ids" >a.llmt
    cmp -s a.llmt b.llmt && differ="$differ (one more id, the same dump: the comparison sees nothing)"
    [ "$n" -gt 20 ] && [ -z "$differ" ] && pass "$tm_name: $n awkward strings, stdin and -p, to the reference's ids" ||
        fail "$tm_name: $n awkward strings, stdin and -p, to the reference's ids" "differ:$differ"
    "$py" - "$tm_kind" "$tm_dir" "$LLM_TOP/tests" <<'EOF' >check.txt 2>&1 && pass "$tm_name: -p text decodes as the reference" || fail "$tm_name: -p text decodes as the reference" "$(tail -3 check.txt)"
import glob, sys
kind, d = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
import tok_ref
rows = [line.split() for line in open(d + "/vocab")]
if kind == "spm":
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=d + "/spm.model")
    def piece(i):  # sentencepiece's pieces, byte by byte
        p = sp.id_to_piece(i)
        return (bytes.fromhex(p[3:5]) if sp.is_byte(i) else b"" if sp.is_control(i) else
                " \u2047 ".encode() if sp.is_unknown(i) else p.replace("\u2581", " ").encode())
else:
    u2b = {c: b for b, c in tok_ref.bytes_to_unicode().items()}
    def piece(i):
        t, p = int(rows[i][0]), bytes.fromhex(rows[i][2])
        return b"" if t == tok_ref.CONTROL else p if t == tok_ref.USER else bytes(u2b[c] for c in p.decode())
checked = 0
for f in sorted(glob.glob(d + "/case*.txt")):
    c = f[:-4]
    text, out = open(f, "rb").read(), open(c + ".out", "rb").read()
    ids = [int(x) for x in open(c + ".ids").read().split()]
    cont = [int(x) for x in open(c + ".cont").read().split()]
    want = text + b"".join(piece(i) for i in cont) + b"\n"
    assert out == want, (c, out, want)
    checked += 1
    if kind == "spm" and tok_ref.is_utf8(text):  # and as sentencepiece decodes, where it is UTF-8
        ids = [i for i in ids if i != sp.bos_id()]
        whole, head = sp.decode(ids + cont), sp.decode(ids)
        if "\ufffd" not in whole:
            assert whole.startswith(head) and out == text + whole[len(head):].encode() + b"\n", (c, out, whole)
assert checked > 20, checked
EOF
    llm-tensor export-gguf "$m" -o "$tm_dir.out.gguf" 2>/dev/null && llm-tensor import-gguf "$tm_dir.out.gguf" -o "$tm_dir.2.llmt" 2>/dev/null
    llm-tensor cat --raw --name tokenizer "$m" -o tok1.raw && llm-tensor cat --raw --name tokenizer "$tm_dir.2.llmt" -o tok2.raw
    [ -s tok1.raw ] && same "$tm_name: export -> import keeps the tokenizer record byte for byte" tok1.raw tok2.raw ||
        fail "$tm_name: export -> import keeps the tokenizer record byte for byte" "no record"
    "$py" - "$ref" "$tm_dir.gguf" "$tm_dir.out.gguf" <<'EOF' >check.txt 2>&1 && pass "$tm_name: tokenizer.ggml.* written back unchanged" || fail "$tm_name: tokenizer.ggml.* written back unchanged" "$(tail -3 check.txt)"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
a, b = ref.read_gguf(sys.argv[2])[1], ref.read_gguf(sys.argv[3])[1]
for k, v in a.items():
    if k.startswith("tokenizer."):
        assert b.get(k) == v, (k, str(b.get(k))[:200], str(v)[:200])
flags = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"}
extra = [k for k in b if k.startswith("tokenizer.") and k not in a and k not in flags]
assert not extra, extra
EOF
}
if ! need_numpy "tokenizers from GGUF metadata"; then
    :
elif ! "$py" -c "import sentencepiece" 2>/dev/null; then
    skip "SentencePiece vocabulary in GGUF = sentencepiece's ids" "Debian python3-sentencepiece not installed"
else
    mkdir -p spm && "$py" "$LLM_TOP/tests/tok_ref.py" spm spm && tok_model "SentencePiece vocabulary in GGUF" spm spm
fi
if [ -n "$py" ] && ! "$py" -c "import regex" 2>/dev/null; then
    skip "gpt2 vocabularies in GGUF = GPT-2's BPE" "Debian python3-regex not installed"
elif [ -n "$py" ]; then
    for pre in gpt2:gpt2 llama3:llama-bpe; do
        mkdir -p "g-${pre%:*}" && "$py" "$LLM_TOP/tests/tok_ref.py" gpt2 "g-${pre%:*}" "${pre%:*}" &&
            tok_model "gpt2 vocabulary, pre ${pre#*:}, in GGUF" gpt2 "g-${pre%:*}" "${pre#*:}"
    done
fi

expect "not GGUF" 1 "text.txt: not a GGUF file \(no GGUF magic\)" -- llm-tensor import-gguf text.txt -o x.llmt
expect "no model" 2 "import-gguf: want one MODEL.gguf" -- llm-tensor import-gguf -o x.llmt

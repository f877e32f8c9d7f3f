/* gguf_model — Llama models between GGUF files and our checkpoints, one
 * tensor at a time (llm-tensor import-gguf, export-gguf).
 *
 * Names: token_embd.weight = tok_emb; blk.L.attn_norm, attn_q, attn_k,
 * attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up (each ".weight")
 * = layers.L.attn.norm, attn.wq, attn.wk, attn.wv, attn.wo, mlp.norm, mlp.w1,
 * mlp.w2, mlp.w3; output_norm.weight = norm; output.weight = cls (absent:
 * tied).  A GGUF matrix of ne = {cols, rows} is our [rows, cols], element
 * for element.  llama.cpp's converter stores q and k with the rows of each
 * head in the interleaved-pair RoPE order (it undoes Hugging Face's
 * half-split permutation), which is ours (rope.h), so they map unchanged.
 *
 * Import takes general.architecture = llama and these keys (L. = llama.):
 * L.context_length (seq_len), L.embedding_length (dim), L.block_count,
 * L.feed_forward_length (hidden), L.attention.head_count,
 * L.attention.head_count_kv (default: head_count),
 * L.attention.layer_norm_rms_epsilon, L.rope.freq_base (default 10000),
 * L.vocab_size (if given, the embedding's rows), and, where given,
 * L.rope.dimension_count, L.attention.key_length and value_length equal to
 * the head size, L.rope.scaling.type none (or linear with factor 1),
 * L.expert_count 0.  Any other llama.* key, another architecture, a tensor
 * that is not one of the above or not of its shape, are refused by name: each
 * would change the math.  Tensors: Q4_0 linears become int4 symmetric with
 * groups of 32 (quant.h) code for code, the f16 scale as a float;
 * everything else is decoded to f32 (gguf_blocks.h), and each tensor not
 * kept exactly (anything but F32 and those Q4_0 ones) is reported.  Every
 * float must be finite.  The tokenizer (tokenizer.ggml.*) is gguf_tok.h's;
 * one llmpipe cannot encode as the model's own makes the model take token
 * ids only, reported.
 *
 * Export writes general.architecture = llama, general.name, general.
 * description, general.file_type, the llama.* keys above, and the
 * tokenizer (gguf_tok.h: imported ones as they came, ours as byte pieces
 * llama.cpp encodes to our ids).  Float matrices become opts->type (F32,
 * F16 or BF16; vectors stay F32); int4 symmetric group-32 linears become Q4_0 when every scale is
 * an f16 value; other quantized linears are refused unless opts->dequant
 * (then decoded to floats, reported).  A sliding window is refused: llama.cpp's
 * llama has none.  Optimizer state is skipped.
 *
 *     LLM_TRY(llm_gguf_import(&g, w, report, ctx, &err));             // g open, w a stream writer
 *     LLM_TRY(llm_gguf_export(r, "m.llmt", fd, "m.gguf", &opts, report, ctx, &err));
 */
#ifndef LLM_GGUF_MODEL_H
#define LLM_GGUF_MODEL_H

#include "err.h"
#include "gguf.h"
#include "stream.h"

/* Receives each report (one line, no newline). */
typedef void (*llm_gguf_report)(void *ctx, const char *line);

/* Writes the model in g as a checkpoint to w (not closed). */
int llm_gguf_import(const llm_gguf *g, llm_writer *w, llm_gguf_report report, void *ctx, llm_error *err);

typedef struct llm_gguf_export_opts {
    int type;                /* LLM_GGML_F32 (0 is F32), LLM_GGML_F16 or LLM_GGML_BF16 */
    int dequant;             /* quantized linears GGUF cannot hold exactly: to floats */
    const char *name;        /* general.name */
    const char *description; /* general.description; NULL: a default */
} llm_gguf_export_opts;

/* Reads the checkpoint from r (label names it) and writes it as GGUF to fd
 * (a regular file; out_label names it). */
int llm_gguf_export(llm_reader *r, const char *label, int fd, const char *out_label,
                    const llm_gguf_export_opts *opts, llm_gguf_report report, void *ctx, llm_error *err);

#endif

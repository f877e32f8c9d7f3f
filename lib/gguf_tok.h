/* gguf_tok — tokenizers between GGUF metadata (tokenizer.ggml.*) and lib/tok
 * (llm-tensor import-gguf and export-gguf; a vocabulary-only GGUF file, one
 * without tensors, reads the same way).
 *
 * Import, by tokenizer.ggml.model:
 *   llama  SentencePiece BPE (llm_tok_spm) of tokens (strings), scores (f32;
 *          absent: all 0), token_type (integers; absent: all normal),
 *          bos_token_id, eos_token_id, unknown_token_id (absent: 1, 2, 0 as
 *          llama.cpp assumes), add_bos_token (absent: true), add_eos_token
 *          (false), add_space_prefix (true).  Our own byte-level vocabulary
 *          as export writes it (below) becomes the byte-level tokenizer.
 *   gpt2   byte-level BPE (llm_tok_gpt2) of tokens, token_type, scores (kept
 *          to be written back), merges ("LEFT RIGHT" strings), the ids as
 *          above (absent: none), add_bos_token (absent: false),
 *          add_eos_token (false), and the pre-tokenizer tokenizer.ggml.pre
 *          names (absent: "default"; llm_tok_pre_from_name).  "llama-bpe"
 *          also sets ignore_merges, as llama.cpp does.
 *   A model of another name (bert, t5, rwkv, ...) or a pre-tokenizer
 *   llmpipe does not have (qwen2, deepseek-llm, ...) makes the model take
 *   token ids only: the tokenizer is left out, and *why says so (the model
 *   still runs, quantizes and exports, without it).
 * A tokenizer of a kind llmpipe encodes must be whole: an array of the wrong
 * type or length (tokens must be as many as the model's vocabulary), an id
 * outside it, a piece longer than LLM_TOK_MAX_PIECE, a type outside 0..6, a
 * merge that is not two pieces, are refused (LLM_ERR_FORMAT) naming the key.
 *
 * Export writes the tokenizer back: SPM and GPT2 ones as they were imported
 * (pieces, scores, types, merges, ids, flags; pre as "gpt2" or
 * "llama-bpe"); a llama2.c one (BPE) as a "llama" vocabulary with its spaces
 * as U+2581; ours (bytes) as a "llama" vocabulary that makes llama.cpp
 * produce our ids: id b < 256 is the byte piece "<0xNN>" (type byte), except
 * id 32 (the space), which is "▁" (U+2581, normal), then "<s>" (256, BOS)
 * and "</s>" (257, EOS), with add_space_prefix false.  llama.cpp's
 * SentencePiece tokenizer turns every space into "▁" and merges only
 * symbols whose concatenation is a piece; no two characters make one of
 * these pieces, so each character stays a symbol: "▁" is id 32, and any
 * other character falls back to the byte pieces of its bytes, ids equal to
 * the bytes.  Only a literal "▁" in the text differs (llama.cpp: 32; ours:
 * its three bytes), and llama.cpp may read "<s>" in a prompt as BOS where
 * llm-gen reads text.
 *
 *     char why[160];
 *     LLM_TRY(llm_gguf_tok_import(&g, vocab, &tok, why, sizeof why, &err));  // why: "" or the reason for ids only
 *     LLM_TRY(llm_gguf_tok_export(out, &tok, vocab, "m.llmt", &err));
 */
#ifndef LLM_GGUF_TOK_H
#define LLM_GGUF_TOK_H

#include <stddef.h>

#include "err.h"
#include "gguf.h"
#include "tok.h"

/* The tokenizer of g into t (freed by the caller): vocab ids (the model's
 * vocabulary; 0: as many as tokenizer.ggml.tokens holds, for a vocabulary
 * without a model).  A tokenizer llmpipe cannot encode as its model does
 * gives an ids-only t and the reason in why (else why is ""). */
int llm_gguf_tok_import(const llm_gguf *g, int vocab, llm_tok *t, char *why, size_t why_size, llm_error *err);

/* Adds t's tokenizer.ggml.* keys to o, for a model of vocab ids (label
 * names the checkpoint in messages).  An ids-only t adds nothing. */
int llm_gguf_tok_export(llm_gguf_out *o, const llm_tok *t, int vocab, const char *label, llm_error *err);

#endif

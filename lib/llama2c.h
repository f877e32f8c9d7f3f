/* llama2c — models and tokenizers in the formats of Karpathy's llama2.c.
 *
 * A legacy (version 0) llama2.c checkpoint, as export.py's legacy_export and
 * the published TinyStories models (stories15M.bin, stories260K.bin, ...)
 * write it, is little-endian, with no padding:
 *
 *     int32 dim D, hidden_dim F, n_layers L, n_heads H, n_kv_heads K,
 *           vocab_size V (negative: an unshared classifier follows), seq_len S
 *     f32 token_embedding [V, D]
 *     f32 rms_att [L, D]      wq [L, D, D]     wk [L, K*E, D]   wv [L, K*E, D]
 *     f32 wo [L, D, D]        rms_ffn [L, D]
 *     f32 w1 [L, F, D]        w2 [L, D, F]     w3 [L, F, D]
 *     f32 rms_final [D]
 *     f32 freq_cis_real [S, E/2], freq_cis_imag [S, E/2]   (skipped: RoPE is recomputed)
 *     f32 wcls [V, D]         only when vocab_size < 0
 *
 * with E = D/H the head size; matrices are [out, in], as ours.  The model
 * maps onto llm_model (model.h) with norm eps 1e-5, RoPE base 10000 on
 * interleaved pairs (as run.c), no sliding window, and tie = 1 for a shared
 * classifier.  The file's size must be exactly what the header implies, and
 * every weight a finite number.
 * Newer llama2.c exports (magic "ak42", versions 1 and 2) are refused with a
 * message saying so.
 *
 * tokenizer.bin: int32 max_token_length, then V times { f32 score, int32
 * len, len bytes }; V comes from the model.  It becomes a BPE tokenizer
 * (tok.h) with BOS 1 and EOS 2, as llama2.c's SentencePiece models have.
 *
 *     llm_model m;
 *     LLM_TRY(llm_llama2c_load("stories15M.bin", "tokenizer.bin", &m, &err));  // tokenizer may be NULL
 *     LLM_TRY(llm_ckpt_save("stories15M.llmt", &m, NULL, NULL, &err));
 *     llm_tok_free(&m.tok);
 *     llm_model_free(&m);
 */
#ifndef LLM_LLAMA2C_H
#define LLM_LLAMA2C_H

#include "err.h"
#include "model.h"
#include "tok.h"

/* BOS and EOS ids of llama2.c's tokenizers. */
#define LLM_LLAMA2C_BOS 1
#define LLM_LLAMA2C_EOS 2

/* Reads the tokenizer.bin at path, of exactly vocab pieces, into t (owned by
 * the caller: llm_tok_free).  Pieces longer than LLM_TOK_MAX_PIECE, a file
 * that ends early or holds more than vocab pieces are errors. */
int llm_llama2c_read_tokenizer(const char *path, int vocab, llm_tok *t, llm_error *err);

/* Loads the model at model_path (a regular file) into m (allocated here:
 * free m->tok with llm_model_free, which frees its tokenizer too) with the
 * tokenizer at tokenizer_path, or, when it is NULL, an ids-only tokenizer
 * (BOS 1, EOS 2).  The header's values and the file size they imply are
 * checked before anything is allocated: LLM_ERR_IO / LLM_ERR_FORMAT /
 * LLM_ERR_TRUNCATED with a message naming the path. */
int llm_llama2c_load(const char *model_path, const char *tokenizer_path, llm_model *m,
                     llm_error *err);

#endif

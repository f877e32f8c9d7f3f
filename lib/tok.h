/* tok — tokenizers: text to token ids and back.
 *
 * The default is byte-level: every byte of the text is one token (0..255),
 * plus BOS (256) and EOS (257), so any text encodes and a model needs nothing
 * but its checkpoint to read and write text.  The tokenizer is described in
 * the checkpoint's metadata (llm_tok_to_attrs / llm_tok_from_attrs).
 *
 *     llm_tok t;
 *     llm_tok_bytes(&t);
 *     int64_t n = llm_tok_encode(&t, "hi", 2, ids);   // ids = {104, 105}
 *     char piece[LLM_TOK_MAX_PIECE];
 *     int len = llm_tok_decode(&t, ids[0], piece);    // "h", 1
 */
#ifndef LLM_TOK_H
#define LLM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"

#define LLM_TOK_MAX_PIECE 64

typedef enum llm_tok_kind { LLM_TOK_BYTES } llm_tok_kind;

typedef struct llm_tok {
    llm_tok_kind kind;
    int vocab; /* ids are 0..vocab-1 */
    int bos, eos;
} llm_tok;

/* The byte-level tokenizer: vocab 258, BOS 256, EOS 257. */
void llm_tok_bytes(llm_tok *t);

/* Encodes len bytes of text into ids (room for len ids: byte-level never
 * makes more tokens than bytes); returns the number of ids. */
int64_t llm_tok_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids);

/* Writes the text of token id into piece (at most LLM_TOK_MAX_PIECE bytes,
 * not terminated); returns its length: 0 for BOS, EOS and ids out of range. */
int llm_tok_decode(const llm_tok *t, int32_t id, char *piece);

/* Attributes describing t, for a metadata record ("kind", "vocab", "bos",
 * "eos"); the strings live in buf (at least 128 bytes).  Returns the count
 * written to attrs (at most 4). */
int llm_tok_to_attrs(const llm_tok *t, llm_attr *attrs, char *buf, size_t size);
/* Rebuilds a tokenizer from a metadata record's attributes. */
int llm_tok_from_attrs(llm_tok *t, const llm_record *rec, llm_error *err);

#endif

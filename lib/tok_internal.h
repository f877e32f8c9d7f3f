/* tok_internal — what the tokenizer kinds share: tok.c (the vocabulary, the
 * record, byte-level, llama2.c BPE and ids), tok_spm.c (SentencePiece BPE)
 * and tok_gpt2.c (byte-level BPE).  Not part of the library's API. */
#ifndef LLM_TOK_INTERNAL_H
#define LLM_TOK_INTERNAL_H

#include "tok.h"

/* The type bit of a piece type, for lookups that accept some types. */
#define LLM_TOK_MASK(type) (1u << (type))
#define LLM_TOK_ANY 0xFFFFFFFFu

typedef struct llm_tok_gpt2_table llm_tok_gpt2_table;

/* Tables SPM and GPT2 derive from the pieces when made or read. */
struct llm_tok_aux {
    int32_t byte_id[256];     /* SPM: piece "<0xNN>" of type byte; GPT2: byte's piece; -1: none */
    int byte_fallback;        /* SPM: the vocabulary has byte pieces */
    int32_t *specials;        /* ids matched in the text first, by first byte then longest first */
    uint32_t special_at[257]; /* specials starting with byte b: [special_at[b], special_at[b+1]) */
    llm_tok_gpt2_table *gpt2; /* GPT2: merges and the pre-tokenizer */
};

static inline uint32_t llm_tok_len(const llm_tok *t, int32_t id)
{
    return t->offset[id + 1] - t->offset[id];
}

static inline int llm_tok_type_of(const llm_tok *t, int32_t id)
{
    return t->types ? t->types[id] : LLM_TOKT_NORMAL;
}

/* The lowest id of a type in mask whose piece is the n bytes at s, or -1. */
int32_t llm_tok_lookup(const llm_tok *t, const char *s, uint32_t n, uint32_t mask);

/* The length (1..4) of the well-formed UTF-8 character at s (n > 0 bytes
 * there), or 0 when s[0] starts none. */
int llm_tok_utf8_len(const unsigned char *s, size_t n);

/* The longest special piece (aux->specials) that the n bytes at s start
 * with, or -1. */
int32_t llm_tok_special_at(const llm_tok *t, const char *s, size_t n);

/* Builds t->aux's specials of the types in mask, and byte_id as
 * byte_piece(b) says. */
int llm_tok_aux_make(llm_tok *t, uint32_t special_mask, llm_error *err);

int64_t llm_tok_spm_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                           llm_error *err);
int llm_tok_spm_decode(const llm_tok *t, int32_t prev, int32_t id, char *piece);
int llm_tok_spm_finish(llm_tok *t, llm_error *err);

/* Compiles the regex and the merge table of t (its pieces and merges set). */
int llm_tok_gpt2_finish(llm_tok *t, llm_error *err);
void llm_tok_gpt2_free(llm_tok_gpt2_table *g);
int64_t llm_tok_gpt2_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err);
int llm_tok_gpt2_decode(const llm_tok *t, int32_t id, char *piece);

#endif

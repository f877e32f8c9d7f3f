/* tok_ref — what the tokenizer tests share: checking one text's ids, the
 * tokenizer record's round trip, and running tests/tok_ref.py (the
 * independent references: sentencepiece itself, GPT-2's BPE in Python) and
 * reading what it wrote. */
#ifndef LLM_TOK_REF_H
#define LLM_TOK_REF_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

typedef struct tok_ref_case {
    char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
    char *decoded; /* NULL where the reference cannot decode */
    size_t decoded_len;
} tok_ref_case;

typedef struct tok_ref {
    llm_tok_spec spec; /* vocab, pieces, lens, scores, types, bos, eos, unk, merges */
    int n_cases;
    tok_ref_case *cases;
} tok_ref;

/* Runs tok_ref.py with args ("spm", "gpt2 llama3") in a fresh directory
 * when /usr/bin/python3 can import module; fills r and returns 1, or returns
 * 0 after check_skip (no python, no module, no LLM_TOP), or -1 after a
 * failed CHECK. */
int tok_ref_run(tok_ref *r, const char *args, const char *module);
void tok_ref_free(tok_ref *r);

/* Encodes every case with t and checks its ids; decodes the ids (after
 * BOS when after_bos) and checks the reference's decoding, or the text
 * itself where the reference has none and decodes_to_text is set.
 * Returns the number of cases that differ. */
int tok_ref_check(const llm_tok *t, const tok_ref *r, int after_bos, int decodes_to_text);

/* Encodes len bytes of text with t; checks the ids are want[0..n) (a CHECK
 * failure showing both otherwise).  Returns 1 when they are. */
int tok_encodes_to(const llm_tok *t, const char *text, size_t len, const int32_t *want, int n);
/* ENC(t, "literal", id, id, ...): the literal's bytes encode to those ids. */
#define ENC(t, text, ...)                                                                    \
    do {                                                                                     \
        const int32_t want_[] = {__VA_ARGS__};                                               \
        tok_encodes_to(t, text, sizeof text - 1, want_, (int)(sizeof want_ / sizeof want_[0])); \
    } while (0)

/* Writes t as a tokenizer record to a file of the test's directory and
 * reads it back into out; 0, a negative LLM_ERR_*, or -100 when the
 * record read is not the tokenizer. */
int tok_round_trip(const llm_tok *t, llm_tok *out, llm_error *err);

#endif

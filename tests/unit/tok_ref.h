/* tok_ref — runs tests/tok_ref.py (the independent tokenizer references:
 * sentencepiece itself, GPT-2's BPE in Python) and reads what it wrote, for
 * test_tok_spm.c and test_tok_gpt2.c. */
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

#endif

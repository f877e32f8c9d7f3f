/* bpe — the byte-pair merge loop the tokenizers share.
 *
 * A text is cut into symbols (spans of it, each with an id); the caller says,
 * for two adjacent symbols, whether they merge, into which id and with what
 * priority.  The loop merges the pair of highest priority (the leftmost of
 * equals), asks again about the merged symbol's two new pairs, and repeats
 * until no pair merges: SentencePiece's BPE (priority = the piece's score),
 * llama2.c's (the same, with a floor) and GPT-2's (priority = minus the
 * merge's rank) are all this loop.  It takes O(n log n) for n symbols: an
 * indexed heap of the candidate pairs, a linked list of the symbols.
 *
 *     static int32_t pair(void *ctx, const llm_bpe_sym *a, const llm_bpe_sym *b, double *prio);
 *     int64_t k = llm_bpe_merge(syms, n, pair, ctx, &err);  // syms[0..k) are the result
 */
#ifndef LLM_BPE_H
#define LLM_BPE_H

#include <stdint.h>

#include "err.h"

/* A symbol: the span text[start .. start+len) with an id (its meaning is the
 * caller's; -1 is allowed). */
typedef struct llm_bpe_sym {
    int32_t id;
    uint32_t start, len;
} llm_bpe_sym;

/* The id the adjacent symbols a, b (a's span is right before b's) merge into,
 * with its priority in *prio (higher merges first); or -1 when they do not
 * merge. */
typedef int32_t (*llm_bpe_pair_fn)(void *ctx, const llm_bpe_sym *a, const llm_bpe_sym *b,
                                   double *prio);

/* Merges the n symbols in place: a merged symbol spans both and takes the
 * pair's id.  Returns the new count, or LLM_ERR_NOMEM / LLM_ERR_LIMIT (more
 * than 2^31 - 1 symbols); uses 20 bytes of scratch per symbol. */
int64_t llm_bpe_merge(llm_bpe_sym *syms, int64_t n, llm_bpe_pair_fn pair, void *ctx,
                      llm_error *err);

#endif

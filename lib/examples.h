/* examples — a labelled task as continuation: each example is a text and a
 * label that follows it, and only the label's tokens are scored.
 *
 * A file of examples has one per line, "text<TAB>label" (the last tab
 * separates them).  An example becomes one window of T positions: the
 * tokens BOS (when the tokenizer adds one), text, label (the text's start
 * cut off when they do not fit),
 * inputs = tokens[0..], targets = tokens[1..] where the target is a label
 * token and -1 elsewhere, padding after the end.  Training on such windows
 * is fine-tuning for classification; a classifier scores each candidate
 * label by its log-likelihood after the text (llm_examples_logp) and picks
 * the highest.
 *
 *     llm_examples ex;
 *     LLM_TRY(llm_examples_load(&ex, "train.tsv", &tok, 128, 0.1, &err));
 *     llm_examples_batch(&ex, &rng, B, inputs, targets);      // [B, T] each
 */
#ifndef LLM_EXAMPLES_H
#define LLM_EXAMPLES_H

#include <stdint.h>

#include "err.h"
#include "infer.h"
#include "rng.h"
#include "tok.h"

typedef struct llm_examples {
    int T;                     /* positions per example */
    int64_t n, n_train;        /* examples [0, n_train) train, the rest held out */
    int32_t *inputs, *targets; /* [n, T] */
} llm_examples;

/* Splits a line (modified in place) at its last tab: *label points after
 * it.  Returns -1 when the line has no tab or an empty label. */
int llm_example_split(char *line, char **label);

/* Encodes one example into inputs and targets [T]; returns the positions
 * used (the rest is padding: input 0, target -1).  An empty text with a
 * tokenizer that adds no BOS is refused: nothing would precede the label. */
int llm_example_encode(const llm_tok *tok, const char *text, size_t text_len, const char *label,
                       size_t label_len, int T, int32_t *inputs, int32_t *targets, llm_error *err);

/* Reads a file of examples ("-": stdin); the last val_frac of them (at
 * least one when val_frac > 0 and there are two or more) is held out. */
int llm_examples_load(llm_examples *ex, const char *path, const llm_tok *tok, int T, double val_frac,
                      llm_error *err);
void llm_examples_free(llm_examples *ex);

/* B training examples drawn at random with rng, into inputs, targets [B, T]. */
void llm_examples_batch(const llm_examples *ex, llm_rng *rng, int B, int32_t *inputs, int32_t *targets);

/* The log-likelihood (nats) of the targets >= 0 of an encoded example, each
 * given what precedes it, after n_prefix ids (an adapter's virtual tokens;
 * may be 0).  s is reset first; n_prefix + n must fit in one pass.  The
 * targets are checked (llm_model_check_ids, LLM_IDS_UNSCORED) and the inputs
 * by the pass (LLM_ERR_ARG); logits that are not finite give LLM_ERR_FORMAT,
 * never a NaN log-likelihood. */
int llm_examples_logp(llm_infer *s, const int32_t *prefix, int n_prefix, const int32_t *inputs,
                      const int32_t *targets, int n, double *logp, llm_error *err);

#endif

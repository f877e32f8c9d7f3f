/* data — a training corpus as token ids, its held-out split, and batches.
 *
 * Files (or stdin, "-") are read whole and tokenized, each starting with BOS
 * (when the tokenizer adds one; a tokenizer without text is an error).
 * The last val_frac of the tokens is held out for validation.  Training
 * batches are random windows of T+1 tokens drawn from the training part with a
 * seeded generator (the generator's state is the data position, saved in
 * checkpoints); validation walks the held-out part in fixed windows.
 *
 *     llm_data d;
 *     LLM_TRY(llm_data_load(&d, paths, n, &tok, 0.1, &err));
 *     LLM_TRY(llm_data_check(&d, T, &err));                // long enough for --seq T?
 *     llm_data_train_batch(&d, &rng, B, T, inputs, targets);   // [B, T] each
 *     llm_data_free(&d);
 */
#ifndef LLM_DATA_H
#define LLM_DATA_H

#include <stdint.h>

#include "err.h"
#include "rng.h"
#include "tok.h"

typedef struct llm_data {
    int32_t *tokens;  /* [n_tokens] */
    int64_t n_tokens;
    int64_t n_train;  /* tokens [0, n_train) train; [n_train, n_tokens) validation */
    int64_t n_bytes;  /* text bytes read (for bits per byte) */
} llm_data;

/* Reads a whole file ("-": stdin, read until its end) into a new buffer
 * (*text, owned by the caller, NUL-terminated after its *len bytes). */
int llm_data_read_text(const char *path, char **text, size_t *len, llm_error *err);

/* Reads and tokenizes n_paths files ("-" is stdin); val_frac in [0, 0.5]. */
int llm_data_load(llm_data *d, const char *const *paths, int n_paths, const llm_tok *tok,
                  double val_frac, llm_error *err);
/* Makes a corpus from text in memory (for tests and embedded defaults). */
int llm_data_from_text(llm_data *d, const char *text, size_t len, const llm_tok *tok,
                       double val_frac, llm_error *err);
void llm_data_free(llm_data *d);

/* Checks that both parts hold at least one window of T+1 tokens, with a
 * message that says how long the corpus is and what --seq needs. */
int llm_data_check(const llm_data *d, int T, llm_error *err);

/* B random training windows: inputs[b*T + t] and targets[b*T + t] =
 * inputs shifted by one token. */
void llm_data_train_batch(const llm_data *d, llm_rng *rng, int B, int T, int32_t *inputs,
                          int32_t *targets);

/* The number of validation windows of T+1 tokens (non-overlapping, stride T). */
int64_t llm_data_val_windows(const llm_data *d, int T);
/* Validation window w (0 <= w < llm_data_val_windows) into inputs/targets [T]. */
void llm_data_val_window(const llm_data *d, int T, int64_t w, int32_t *inputs, int32_t *targets);

#endif

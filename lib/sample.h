/* sample — choosing the next token from logits: greedy, temperature, top-k
 * and nucleus (top-p) sampling with a seeded generator.
 *
 *     llm_sampler sp;
 *     LLM_TRY(llm_sampler_init(&sp, V, &(llm_sample_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f}, &err));
 *     int id = llm_sampler_pick(&sp, logits, &rng);
 *     llm_sampler_free(&sp);
 */
#ifndef LLM_SAMPLE_H
#define LLM_SAMPLE_H

#include "err.h"
#include "rng.h"

typedef struct llm_sample_opts {
    float temp;  /* 0: greedy (argmax); else logits are divided by temp */
    int top_k;   /* keep the k most likely (0: all) */
    float top_p; /* then keep the smallest set of those whose probability,
                  * renormalized over the top-k, reaches p (1: all) */
} llm_sample_opts;

typedef struct llm_sampler {
    int vocab;
    llm_sample_opts o;
    float *prob;  /* [V] scratch */
    int *order;   /* [V] scratch */
} llm_sampler;

int llm_sampler_init(llm_sampler *sp, int vocab, const llm_sample_opts *o, llm_error *err);
void llm_sampler_free(llm_sampler *sp);
/* The next token for logits [V]: argmax when temp is 0 (lowest id on ties),
 * else a draw from the tempered softmax restricted by top-k, then top-p.
 * Always an id in 0..V-1: a NaN logit has probability 0, and when every
 * logit is NaN the choice is llm_sample_argmax's, 0 (callers that must not
 * go on with such logits test the chosen id's logit with isnan). */
int llm_sampler_pick(llm_sampler *sp, const float *logits, llm_rng *rng);

/* The index of the largest of x[0..n-1] (n >= 1) that is not NaN, the lowest
 * on ties; 0 when all are NaN.  Every argmax over logits goes through it. */
int llm_sample_argmax(const float *x, int n);

#endif

/* sample — choosing the next token from logits: greedy, temperature, top-k
 * and nucleus (top-p) sampling with a seeded generator.
 *
 *     llm_sampler sp;
 *     TRY(llm_sampler_init(&sp, V, &(llm_sample_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f}, &err));
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
    float top_p; /* keep the smallest set whose probability reaches p (1: all) */
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
 * else a draw from the tempered softmax restricted by top-k, then top-p. */
int llm_sampler_pick(llm_sampler *sp, const float *logits, llm_rng *rng);

#endif

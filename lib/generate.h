/* generate — continuing prompts: one or many sequences, decoded together
 * with continuous batching.
 *
 * Up to s->slots sequences are active at once.  Each step feeds one token of
 * every active sequence through the model together (llm_infer_decode); when a
 * sequence ends (EOS, max_new tokens, or a full context) its slot is reset at
 * once and the next waiting prompt is prefilled into it; prompts admitted at
 * the same step are prefilled together in one pass when they fit in one
 * (llm_infer_prefill), so they share the reading of the weights.  Every sequence has
 * its own generator seeded from seed and its index, so what it produces does
 * not depend on the number of slots or on scheduling.
 *
 *     llm_gen_opts go = {.max_new = 64, .sample = {.temp = 0.8f, .top_p = 0.95f}, .seed = 1};
 *     LLM_TRY(llm_generate(&s, prompts, lens, n, &go, on_token, ctx, &stats, &err));
 */
#ifndef LLM_GENERATE_H
#define LLM_GENERATE_H

#include <stdint.h>

#include "infer.h"
#include "sample.h"

typedef struct llm_gen_opts {
    int max_new;            /* tokens to generate per prompt */
    llm_sample_opts sample;
    uint64_t seed;
    int stop[2];            /* a sequence ends when it picks either id (-1: none); not emitted */
} llm_gen_opts;

typedef struct llm_gen_stats {
    int64_t prompt_tokens, new_tokens;
    int full;               /* sequences cut short by a full context */
    double prefill_s, decode_s; /* seconds in prompt passes and in decode steps */
} llm_gen_stats;

/* Called with each new token of sequence seq (0..n-1) as it is chosen, and
 * once more with token -1 when the sequence ends.  A negative return stops
 * the generation with that error. */
typedef int (*llm_gen_emit)(void *ctx, int seq, int32_t token);

/* Continues n prompts (prompts[i]: lens[i] >= 1 token ids, shorter than the
 * context).  s is reset first.  Logits that are not finite (NaN or
 * infinite: the model's activations overflowed) stop it with LLM_ERR_FORMAT
 * rather than choosing among them. */
int llm_generate(llm_infer *s, const int32_t *const *prompts, const int64_t *lens, int n,
                 const llm_gen_opts *o, llm_gen_emit emit, void *ctx, llm_gen_stats *stats,
                 llm_error *err);

#endif

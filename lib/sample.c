/* sample — greedy, temperature, top-k and top-p token choice. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int llm_sampler_init(llm_sampler *sp, int vocab, const llm_sample_opts *o, llm_error *err)
{
    memset(sp, 0, sizeof *sp);
    if (!(o->temp >= 0) || o->top_k < 0 || !(o->top_p > 0 && o->top_p <= 1))
        return llm_error_set(err, LLM_ERR_ARG, "sampling: temp %g, top-k %d, top-p %g out of range",
                             (double)o->temp, o->top_k, (double)o->top_p);
    sp->vocab = vocab;
    sp->o = *o;
    sp->prob = malloc((size_t)vocab * sizeof *sp->prob);
    sp->order = malloc((size_t)vocab * sizeof *sp->order);
    if (!sp->prob || !sp->order) {
        llm_sampler_free(sp);
        return llm_error_set(err, LLM_ERR_NOMEM, "sampler: out of memory");
    }
    return 0;
}

void llm_sampler_free(llm_sampler *sp)
{
    if (!sp) return;
    free(sp->prob);
    free(sp->order);
    memset(sp, 0, sizeof *sp);
}

static int by_prob_desc(const void *a, const void *b, void *prob)
{
    const float *p = prob;
    float x = p[*(const int *)a], y = p[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b; /* ties: lower id first, deterministic */
}

int llm_sample_argmax(const float *x, int n)
{
    int best = 0;
    while (best < n - 1 && isnan(x[best])) best++;
    for (int j = best + 1; j < n; j++)
        if (x[j] > x[best]) best = j; /* false for a NaN x[j] */
    return isnan(x[best]) ? 0 : best;
}

int llm_sampler_pick(llm_sampler *sp, const float *logits, llm_rng *rng)
{
    int V = sp->vocab, best = llm_sample_argmax(logits, V);
    float top = logits[best];
    if (sp->o.temp == 0 || isnan(top)) return best;
    double sum = 0;
    for (int j = 0; j < V; j++) {
        /* d is NaN for a NaN logit (probability 0) and for inf - inf (the
         * largest logit is infinite: its equals share all the mass), so no
         * probability is ever NaN and the sort below stays consistent */
        float d = logits[j] - top;
        sum += sp->prob[j] = !isnan(d) ? expf(d / sp->o.temp) : logits[j] == top ? 1.0f : 0.0f;
    }
    for (int j = 0; j < V; j++) sp->prob[j] = (float)(sp->prob[j] / sum);
    int keep = V;
    if (sp->o.top_k > 0 && sp->o.top_k < V) keep = sp->o.top_k;
    if (keep < V || sp->o.top_p < 1) {
        for (int j = 0; j < V; j++) sp->order[j] = j;
        qsort_r(sp->order, (size_t)V, sizeof *sp->order, by_prob_desc, sp->prob);
        if (sp->o.top_p < 1) { /* over the top-k renormalized, as transformers and llama.cpp do */
            double kept = 0, cum = 0;
            for (int i = 0; i < keep; i++) kept += sp->prob[sp->order[i]];
            for (int i = 0; i < keep; i++)
                if ((cum += sp->prob[sp->order[i]]) >= sp->o.top_p * kept) {
                    keep = i + 1;
                    break;
                }
        }
    } else {
        for (int j = 0; j < V; j++) sp->order[j] = j;
    }
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += sp->prob[sp->order[i]];
    double u = llm_rng_double(rng) * mass, cum = 0;
    for (int i = 0; i < keep; i++)
        if ((cum += sp->prob[sp->order[i]]) > u) return sp->order[i];
    return sp->order[keep - 1];
}

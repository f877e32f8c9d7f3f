/* generate — the continuous-batching loop over an llm_infer's slots. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct slot {
    int seq;      /* the sequence it holds, -1: free */
    int made;     /* tokens generated so far */
    int32_t next; /* the token to feed at the next step */
    llm_rng rng;
} slot;

/* Prefills prompt `seq` into slot k and picks its first token. */
static int start(llm_infer *s, slot *sl, int k, int seq, const int32_t *prompt, int64_t len,
                 const llm_gen_opts *o, llm_sampler *sp, llm_gen_stats *st, llm_error *err)
{
    if (len < 1 || len > s->ctx)
        return llm_error_set(err, LLM_ERR_ARG, "prompt %d is %lld tokens; the context holds %d", seq,
                             (long long)len, s->ctx);
    double t0 = now();
    llm_infer_reset_slot(s, k);
    for (int64_t at = 0; at < len;) {
        int c = len - at < s->chunk ? (int)(len - at) : s->chunk;
        TRY(llm_infer_feed_slot(s, k, prompt + at, c, 0, err));
        at += c;
    }
    st->prefill_s += now() - t0;
    st->prompt_tokens += len;
    sl->seq = seq;
    sl->made = 0;
    llm_rng_seed(&sl->rng, o->seed + 0x9e3779b97f4a7c15ull * (uint64_t)seq);
    sl->next = llm_sampler_pick(sp, s->last, &sl->rng);
    return 0;
}

int llm_generate(llm_infer *s, const int32_t *const *prompts, const int64_t *lens, int n,
                 const llm_gen_opts *o, llm_gen_emit emit, void *ctx, llm_gen_stats *st,
                 llm_error *err)
{
    memset(st, 0, sizeof *st);
    llm_sampler sp;
    TRY(llm_sampler_init(&sp, s->m->cfg.vocab, &o->sample, err));
    int S = s->slots, rc = 0, waiting = 0;
    slot *sl = calloc((size_t)S, sizeof *sl);
    int *ids = malloc((size_t)S * sizeof *ids);
    int32_t *tok = malloc((size_t)S * sizeof *tok);
    if (!sl || !ids || !tok) rc = llm_error_set(err, LLM_ERR_NOMEM, "generation: out of memory");
    llm_infer_reset(s);
    for (int k = 0; k < S; k++) sl[k].seq = -1;
    for (;;) {
        /* hand a token to each active sequence; finished ones make room */
        for (int k = 0; rc == 0 && k < S; k++) {
            while (rc == 0 && sl[k].seq < 0 && waiting < n) {
                rc = start(s, &sl[k], k, waiting, prompts[waiting], lens[waiting], o, &sp, st, err);
                waiting++;
            }
            if (rc || sl[k].seq < 0) continue;
            slot *x = &sl[k];
            int stop = x->made == o->max_new || x->next == o->stop[0] || x->next == o->stop[1];
            if (!stop) {
                rc = emit(ctx, x->seq, x->next);
                x->made++;
                st->new_tokens++;
                stop = x->made == o->max_new;
                if (!stop && s->slot_pos[k] == s->ctx) stop = 1, st->full++;
            }
            if (rc == 0 && stop) {
                rc = emit(ctx, x->seq, -1);
                x->seq = -1;
                k--; /* refill this slot now */
            }
        }
        if (rc) break;
        int B = 0;
        for (int k = 0; k < S; k++)
            if (sl[k].seq >= 0) ids[B] = k, tok[B] = sl[k].next, B++;
        if (B == 0) break;
        double t0 = now();
        rc = llm_infer_decode(s, ids, tok, B, err);
        st->decode_s += now() - t0;
        if (rc) break;
        for (int b = 0; b < B; b++)
            sl[ids[b]].next = llm_sampler_pick(&sp, s->logits + (size_t)b * s->m->cfg.vocab, &sl[ids[b]].rng);
    }
    free(sl);
    free(ids);
    free(tok);
    llm_sampler_free(&sp);
    return rc;
}

/* generate — the continuous-batching loop over an llm_infer's slots. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor.h"

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
    int fresh;    /* next is new: not yet handed to emit */
    llm_rng rng;
} slot;

/* The next token of sequence x from its logits [V] into x->next; an error
 * when a logit is NaN or infinite (the model's activations overflowed),
 * where any choice would be noise, as scoring refuses such logits too. */
static int pick(llm_sampler *sp, const float *logits, slot *x, llm_error *err)
{
    int64_t bad = llm_f32_find_nonfinite(logits, sp->vocab);
    if (bad >= 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "prompt %d: logit %lld is %g: the model's activations are "
                             "not finite", x->seq, (long long)bad, (double)logits[bad]);
    x->next = llm_sampler_pick(sp, logits, &x->rng);
    x->fresh = 1;
    return 0;
}

/* Slot k takes sequence seq: an empty cache and the sequence's generator. */
static void take(llm_infer *s, slot *x, int k, int seq, const llm_gen_opts *o)
{
    llm_infer_reset_slot(s, k);
    x->seq = seq;
    x->made = 0;
    llm_rng_seed(&x->rng, o->seed + 0x9e3779b97f4a7c15ull * (uint64_t)seq);
}

/* The prompts of one prefill pass, as llm_infer_prefill takes them: their
 * slots, tokens and lengths, [S] each. */
typedef struct pass {
    int *slots, *lens;
    const int32_t **prompts;
} pass;

/* Fills every free slot with the next waiting prompts and prefills them: the
 * short ones together, as many per pass as fit in a chunk, a long one alone
 * in chunks.  Each gets its first token picked.  pa is scratch. */
static int admit(llm_infer *s, slot *sl, int *waiting, const int32_t *const *prompts,
                 const int64_t *lens, int n, const llm_gen_opts *o, llm_sampler *sp,
                 llm_gen_stats *st, const pass *pa, llm_error *err)
{
    int S = s->slots, *ks = pa->slots, *lens_b = pa->lens;
    const int32_t **ps = pa->prompts;
    for (int k = 0; k < S;) {
        int B = 0, rows = 0; /* one pass: slots from k on */
        for (; k < S && *waiting < n; k++) {
            if (sl[k].seq >= 0) continue;
            int seq = *waiting;
            int64_t len = lens[seq];
            if (len < 1 || len > s->ctx)
                return llm_error_set(err, LLM_ERR_ARG, "prompt %d is %lld tokens; the context holds %d",
                                     seq, (long long)len, s->ctx);
            if (len > s->chunk - rows) {
                if (B) break; /* this pass is full: the prompt starts the next */
                double t0 = now();
                take(s, &sl[k], k, seq, o);
                for (int64_t at = 0; at < len;) { /* too long for one pass: alone, in chunks */
                    int c = len - at < s->chunk ? (int)(len - at) : s->chunk;
                    LLM_TRY(llm_infer_feed_slot(s, k, prompts[seq] + at, c, 0, err));
                    at += c;
                }
                st->prefill_s += now() - t0;
                st->prompt_tokens += len;
                LLM_TRY(pick(sp, s->last, &sl[k], err));
                (*waiting)++;
                continue;
            }
            take(s, &sl[k], k, seq, o);
            ks[B] = k, ps[B] = prompts[seq], lens_b[B] = (int)len, B++;
            rows += (int)len;
            (*waiting)++;
        }
        if (B == 0) break;
        double t0 = now();
        LLM_TRY(llm_infer_prefill(s, ks, ps, lens_b, B, err));
        st->prefill_s += now() - t0;
        st->prompt_tokens += rows;
        for (int b = 0; b < B; b++) LLM_TRY(pick(sp, s->logits + (size_t)b * s->m->cfg.vocab, &sl[ks[b]], err));
    }
    return 0;
}

int llm_generate(llm_infer *s, const int32_t *const *prompts, const int64_t *lens, int n,
                 const llm_gen_opts *o, llm_gen_emit emit, void *ctx, llm_gen_stats *st,
                 llm_error *err)
{
    memset(st, 0, sizeof *st);
    llm_sampler sp;
    LLM_TRY(llm_sampler_init(&sp, s->m->cfg.vocab, &o->sample, err));
    int S = s->slots, rc = 0, waiting = 0;
    slot *sl = calloc((size_t)S, sizeof *sl);
    int *ids = malloc((size_t)S * sizeof *ids);
    int32_t *tok = malloc((size_t)S * sizeof *tok);
    pass pa = {malloc((size_t)S * sizeof *pa.slots), malloc((size_t)S * sizeof *pa.lens),
               malloc((size_t)S * sizeof *pa.prompts)};
    if (!sl || !ids || !tok || !pa.slots || !pa.lens || !pa.prompts)
        rc = llm_error_set(err, LLM_ERR_NOMEM, "generation: out of memory");
    llm_infer_reset(s);
    for (int k = 0; rc == 0 && k < S; k++) sl[k].seq = -1;
    while (rc == 0) {
        /* hand each new token to its sequence; finished ones make room, and
         * the prompts that take their slots are admitted before the step */
        int freed = 1;
        while (rc == 0 && freed) {
            freed = 0;
            rc = admit(s, sl, &waiting, prompts, lens, n, o, &sp, st, &pa, err);
            for (int k = 0; rc == 0 && k < S; k++) {
                slot *x = &sl[k];
                if (x->seq < 0 || !x->fresh) continue;
                x->fresh = 0;
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
                    freed = waiting < n;
                }
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
        for (int b = 0; rc == 0 && b < B; b++)
            rc = pick(&sp, s->logits + (size_t)b * s->m->cfg.vocab, &sl[ids[b]], err);
    }
    free(sl);
    free(ids);
    free(tok);
    free(pa.slots), free(pa.lens), free(pa.prompts);
    llm_sampler_free(&sp);
    return rc;
}

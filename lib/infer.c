/* infer — prefill and decode with a KV cache, and windowed log-likelihood. */
#include "infer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "attn.h"
#include "lora.h"
#include "matvec.h"
#include "model_internal.h"
#include "pages.h"
#include "qmatmul.h"

/* A run of rows that continue one slot's sequence from position pos0. */
typedef struct llm_infer_segment segment;
struct llm_infer_segment {
    int slot, pos0, row0, n;
};

int llm_infer_init(llm_infer *s, const llm_model *m, const llm_infer_opts *o, llm_error *err)
{
    memset(s, 0, sizeof *s);
    const llm_config *c = &m->cfg;
    int ctx = o && o->ctx ? o->ctx : c->seq_len;
    int chunk = o && o->chunk ? o->chunk : ctx;
    int slots = o && o->slots ? o->slots : 1;
    if (ctx < 1 || ctx > (1 << 22) || chunk < 1)
        return llm_error_set(err, LLM_ERR_ARG, "context %d out of range 1..%d", ctx, 1 << 22);
    if (slots < 1 || slots > 4096)
        return llm_error_set(err, LLM_ERR_ARG, "%d sequences at once (1..4096)", slots);
    if (chunk > ctx) chunk = ctx;
    int rows = chunk > slots ? chunk : slots;
    size_t L = (size_t)c->n_layers, E = (size_t)c->dim / (size_t)c->n_heads,
           KE = (size_t)c->n_kv_heads * E, S = (size_t)slots;
    s->cache_bytes = 2 * S * L * (size_t)ctx * KE * sizeof(float);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double have = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (have > 0 && (double)s->cache_bytes > 0.9 * have)
        return llm_error_set(err, LLM_ERR_LIMIT,
                             "context %d needs %.1f GiB for the KV cache; this machine has %.1f GiB",
                             ctx, (double)s->cache_bytes / 1073741824.0, have / 1073741824.0);
    s->m = m;
    s->ctx = ctx;
    s->chunk = chunk;
    s->slots = slots;
    s->rows = rows;
    s->window = o && o->window ? o->window : c->window;
    s->threads = omp_get_max_threads();
    s->attn_scale = llm_rope_attn_scale(o ? o->rope : NULL);
    int rc = llm_rope_init_scaled(&s->rope, (int)E, ctx, c->rope_theta, o ? o->rope : NULL, err);
    if (rc < 0) return rc;
    s->slot_pos = calloc(S, sizeof *s->slot_pos);
    s->seg = calloc(S, sizeof *s->seg);
    s->cache = calloc(S, sizeof *s->cache);
    s->cache_map = calloc(S, sizeof *s->cache_map);
    s->cache_ready = calloc(S, sizeof *s->cache_ready);
    if (!s->slot_pos || !s->seg || !s->cache || !s->cache_map || !s->cache_ready) {
        llm_infer_free(s);
        return llm_error_set(err, LLM_ERR_NOMEM, "inference state for %d sequences: out of memory", slots);
    }
    return 0;
}

void llm_infer_free(llm_infer *s)
{
    if (!s) return;
    free(s->probs);
    free(s->slot_pos);
    free(s->seg);
    for (int i = 0; s->cache && s->cache_map && i < s->slots; i++) llm_pages_free(s->cache[i], s->cache_map[i]);
    free(s->cache);
    free(s->cache_map);
    free(s->cache_ready);
    float *all[] = {s->x,  s->xn, s->q,   s->att,    s->kn,    s->vn,
                    s->h1, s->h3, s->lse, s->logits, s->scores};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    llm_qact_free(&s->xq);
    llm_rope_free(&s->rope);
    memset(s, 0, sizeof *s);
}

/* Grows *p to n floats (contents kept); 0 or -1. */
static int grow(float **p, size_t n)
{
    float *q = realloc(*p, n * sizeof *q);
    if (!q) return -1;
    *p = q;
    return 0;
}

/* The room a buffer of `have` items needs for `need`: doubling, at most `most`. */
static int room(int have, int need, int most)
{
    int cap = have > most / 2 ? most : 2 * have;
    return cap < need ? need : cap;
}

/* 1 when some linear of m is quantized. */
static int quantized(const llm_model *m)
{
    for (int i = 0; i < llm_linear_count(m->cfg.n_layers); i++)
        if (m->lin[i].q) return 1;
    return 0;
}

/* Makes room for a pass of R rows in segments seg: per-row buffers for R
 * rows, each segment's slot's caches and the RoPE table up to its last
 * position, and scores for as many keys.  What earlier passes wrote into
 * the caches is kept.  0 or LLM_ERR_NOMEM (with everything still usable). */
static int fit(llm_infer *s, const segment *seg, int n_seg, int R, llm_error *err)
{
    const llm_config *c = &s->m->cfg;
    const size_t L = (size_t)c->n_layers, D = (size_t)c->dim, E = D / (size_t)c->n_heads,
                 HE = (size_t)c->n_heads * E, KE = (size_t)c->n_kv_heads * E, F = (size_t)c->hidden,
                 V = (size_t)c->vocab;
    if (R > s->rows_cap) {
        int cap = room(s->rows_cap, R, s->rows);
        size_t n = (size_t)cap;
        struct {
            float **p;
            size_t n;
        } f[] = {{&s->x, n * D},   {&s->xn, n * D},  {&s->q, n * HE},  {&s->att, n * HE},
                 {&s->kn, n * KE}, {&s->vn, n * KE}, {&s->h1, n * F},  {&s->h3, n * F},
                 {&s->lse, n * (size_t)c->n_heads}, {&s->logits, n * V}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (grow(f[i].p, f[i].n) < 0)
                return llm_error_set(err, LLM_ERR_NOMEM, "buffers for %d tokens in one pass: out of memory", cap);
        size_t widest = F; /* the widest input of the products: D, H*E or F */
        if (HE > widest) widest = HE;
        if (D > widest) widest = D;
        if (quantized(s->m) && llm_qact_reserve(&s->xq, cap, (int)widest) < 0)
            return llm_error_set(err, LLM_ERR_NOMEM, "quantized inputs of %d tokens: out of memory", cap);
        s->rows_cap = cap;
    }
    int end = 0;
    for (int g = 0; g < n_seg; g++) {
        int need = seg[g].pos0 + seg[g].n, slot = seg[g].slot;
        if (need > end) end = need;
        if (!s->cache[slot]) {
            s->cache[slot] = llm_pages_alloc(2 * L * (size_t)s->ctx * KE * sizeof(float), 0, &s->cache_map[slot]);
            if (!s->cache[slot])
                return llm_error_set(err, LLM_ERR_NOMEM, "KV cache for %d positions: out of memory", s->ctx);
        }
        /* the pages of the positions ahead made resident in one call per layer's keys and values,
         * doubling: a page fault at each first write cost 12x as much */
        int ready = s->cache_ready[slot];
        if (need <= ready || !s->cache_map[slot]) continue;
        int upto = room(ready, need, s->ctx);
        for (size_t r = 0; r < 2 * L; r++)
            llm_pages_populate(s->cache[slot] + (r * (size_t)s->ctx + (size_t)ready) * KE,
                               (size_t)(upto - ready) * KE * sizeof(float));
        s->cache_ready[slot] = upto;
    }
    if (end > s->scores_cap) {
        int cap = room(s->scores_cap, end, s->ctx);
        if (grow(&s->scores, (size_t)s->threads * (size_t)cap) < 0)
            return llm_error_set(err, LLM_ERR_NOMEM, "attention scores for %d positions: out of memory", cap);
        s->scores_cap = cap;
    }
    return llm_rope_reserve(&s->rope, end, err);
}

void llm_infer_reset(llm_infer *s)
{
    for (int i = 0; i < s->slots; i++) s->slot_pos[i] = 0;
    s->pos = 0;
}

void llm_infer_reset_slot(llm_infer *s, int slot)
{
    s->slot_pos[slot] = 0;
    if (slot == 0) s->pos = 0;
}

/* Reports rows x cols floats to the tap as "layers.<layer>.<what>", or as
 * "<what>" when layer < 0. */
static int report(llm_infer *s, const char *what, int layer, const float *data, int rows, int cols,
                  llm_error *err)
{
    char name[64];
    if (layer >= 0) snprintf(name, sizeof name, "layers.%d.%s", layer, what);
    else snprintf(name, sizeof name, "%s", what);
    llm_shape shape = llm_shape_make(2, (int64_t[]){rows, cols});
    return s->tap.fn(s->tap.ctx, name, data, &shape, err);
}

/* The attention probabilities of every head for the tokens just fed. */
static int report_probs(llm_infer *s, int layer, const llm_attn_shape *shape, const float *q,
                        const float *kc, llm_error *err)
{
    const llm_config *c = &s->m->cfg;
    int H = c->n_heads, E = c->dim / H, G = H / c->n_kv_heads, KE = c->n_kv_heads * E;
    size_t per_head = (size_t)shape->n_q * shape->n_kv, need = (size_t)H * per_head;
    if (need > s->probs_cap) {
        float *p = realloc(s->probs, need * sizeof *p);
        if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "attention probabilities: out of memory");
        s->probs = p;
        s->probs_cap = need;
    }
    for (int h = 0; h < H; h++)
        llm_attn_probs(shape, q + (size_t)h * E, H * E, kc + (size_t)(h / G) * E, KE,
                       s->probs + (size_t)h * per_head, NULL);
    char name[64];
    snprintf(name, sizeof name, "layers.%d.attn.probs", layer);
    llm_shape dims = llm_shape_make(3, (int64_t[]){H, shape->n_q, shape->n_kv});
    return s->tap.fn(s->tap.ctx, name, s->probs, &dims, err);
}

/* The keys (kv 0) or values (kv 1) of one layer of one slot: [P, K*E]. */
static float *cache_of(const llm_infer *s, int kv, int slot, int layer)
{
    const llm_config *c = &s->m->cfg;
    size_t KE = (size_t)c->n_kv_heads * (size_t)(c->dim / c->n_heads);
    return s->cache[slot] + ((size_t)layer * 2 + (size_t)kv) * (size_t)s->ctx * KE;
}

/* Without all_logits only the last row of each segment needs logits: those
 * rows of x move to the front (row g: segment g's last), in order, so the
 * classifier runs on n_seg rows.  Returns the rows to classify. */
static int gather_last_rows(llm_infer *s, const segment *seg, int n_seg, int R, int all_logits)
{
    if (all_logits) return R;
    size_t D = (size_t)s->m->cfg.dim;
    for (int g = 0; g < n_seg; g++) { /* the source row is never before row g */
        int from = seg[g].row0 + seg[g].n - 1;
        if (from != g) memcpy(s->x + (size_t)g * D, s->x + (size_t)from * D, D * sizeof(float));
    }
    return n_seg;
}

/* The attention of a segment's queries: its keys at 0..pos0+n-1. */
static llm_attn_shape shape_of(const llm_infer *s, const segment *sg)
{
    const int E = s->m->cfg.dim / s->m->cfg.n_heads;
    return (llm_attn_shape){.n_q = sg->n, .n_kv = sg->pos0 + sg->n, .q_pos0 = sg->pos0, .head_dim = E,
                            .window = s->window, .scale = s->attn_scale / sqrtf((float)E)};
}

/* RoPE at each row's position, then each segment's new keys and values into
 * its slot's cache of layer l. */
static void rope_into_cache(llm_infer *s, const segment *seg, int n_seg, int l)
{
    const llm_config *c = &s->m->cfg;
    const int H = c->n_heads, K = c->n_kv_heads, E = c->dim / H, HE = H * E, KE = K * E;
    for (int g = 0; g < n_seg; g++) {
        const segment *sg = &seg[g];
        size_t r0 = (size_t)sg->row0;
        llm_rope_apply(&s->rope, s->q + r0 * HE, sg->n, HE, H, sg->n, sg->pos0, 0);
        llm_rope_apply(&s->rope, s->kn + r0 * KE, sg->n, KE, K, sg->n, sg->pos0, 0);
        float *kc = cache_of(s, 0, sg->slot, l), *vc = cache_of(s, 1, sg->slot, l);
        memcpy(kc + (size_t)sg->pos0 * KE, s->kn + r0 * KE, (size_t)sg->n * KE * sizeof(float));
        memcpy(vc + (size_t)sg->pos0 * KE, s->vn + r0 * KE, (size_t)sg->n * KE * sizeof(float));
    }
}

/* Head h of a segment in layer l (R rows in the pass): a single query
 * without tiling when scores (its scratch, [P]) is given, else the tiled
 * forward, which also leaves the rows' log-sum-exp. */
static void attend(llm_infer *s, const segment *sg, int l, int h, int R, float *scores)
{
    const llm_config *c = &s->m->cfg;
    const int H = c->n_heads, E = c->dim / H, HE = H * E, KE = c->n_kv_heads * E, G = H / c->n_kv_heads;
    llm_attn_shape shape = shape_of(s, sg);
    size_t q0 = (size_t)sg->row0 * HE + (size_t)h * E;
    const float *kc = cache_of(s, 0, sg->slot, l) + (size_t)(h / G) * E,
                *vc = cache_of(s, 1, sg->slot, l) + (size_t)(h / G) * E;
    if (scores && sg->n == 1)
        llm_attn_one_query(&shape, s->q + q0, kc, vc, KE, s->att + q0, scores);
    else
        llm_attn_forward(&shape, s->q + q0, HE, kc, vc, KE, s->att + q0, HE, s->lse + (size_t)h * R + sg->row0);
}

/* Rows of one token each, with no tap: the decode step.  Every matrix
 * product streams its weights once for all R rows (matvec.h), split by
 * output rows among the threads of one parallel region that lasts the whole
 * step; the few element-wise pieces between products run on one thread.
 * Attention goes by (segment, head).  A product out of memory (a quantized
 * one, llm_linear_rows) is noted by its thread and reported after the
 * region, which every thread runs to its end. */
static int run_rows(llm_infer *s, const segment *seg, int n_seg, int R, int all_logits, llm_error *err)
{
    const llm_model *m = s->m;
    const llm_config *c = &m->cfg;
    const int D = c->dim, H = c->n_heads, K = c->n_kv_heads, E = D / H, HE = H * E, KE = K * E,
              F = c->hidden, V = c->vocab, QKV = HE + 2 * KE;
    /* tiny models run on one thread: waking the others costs more */
    const int parallel = (size_t)D * (size_t)(QKV + D + 3 * (size_t)F) >= 8 * LLM_PARALLEL_MIN;
    int failed = 0; /* set by any thread with a product out of memory */
    int have_xq = 0; /* s->xq holds the input of the products at hand (set in a single) */
#pragma omp parallel num_threads(s->threads) if (parallel)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int r0, r1, bad = 0;
        for (int l = 0; l < c->n_layers; l++) {
            const llm_layer_params *w = &m->p.layers[l];
            const llm_linear *lin = &m->lin[llm_linear_index(l, 0)];
#pragma omp single
            {
                llm_rmsnorm(s->x, w->attn_norm, s->xn, NULL, R, D, c->norm_eps);
                have_xq = llm_linear_quantize_input(&lin[LLM_LIN_WQ], s->xn, R, &s->xq);
            }
            /* q, k and v as one [HE + 2 KE, D] product split among the threads */
            llm_matvec_split(QKV, t, nt, &r0, &r1);
            float *yt[3] = {s->q, s->kn, s->vn};
            const int base[4] = {0, HE, HE + KE, QKV}, ld[3] = {HE, KE, KE};
            const llm_qact *xq = have_xq ? &s->xq : NULL;
            for (int i = 0; i < 3; i++) {
                int a = r0 > base[i] ? r0 : base[i], b = r1 < base[i + 1] ? r1 : base[i + 1];
                if (a < b)
                    bad |= llm_linear_rows(&lin[LLM_LIN_WQ + i], s->xn, xq, R, yt[i], ld[i], a - base[i],
                                           b - base[i], 0, NULL) < 0;
            }
#pragma omp barrier
#pragma omp single
            rope_into_cache(s, seg, n_seg, l);
#pragma omp for collapse(2) schedule(dynamic)
            for (int g = 0; g < n_seg; g++)
                for (int h = 0; h < H; h++) attend(s, &seg[g], l, h, R, s->scores + (size_t)t * (size_t)s->scores_cap);
            if (lin[LLM_LIN_WO].q) {
#pragma omp single
                have_xq = llm_linear_quantize_input(&lin[LLM_LIN_WO], s->att, R, &s->xq);
            }
            llm_matvec_split(D, t, nt, &r0, &r1);
            xq = have_xq ? &s->xq : NULL;
            bad |= llm_linear_rows(&lin[LLM_LIN_WO], s->att, xq, R, s->x, D, r0, r1, 1, s->xn) < 0;
#pragma omp barrier
#pragma omp single
            {
                llm_rmsnorm(s->x, w->mlp_norm, s->xn, NULL, R, D, c->norm_eps);
                have_xq = llm_linear_quantize_input(&lin[LLM_LIN_W1], s->xn, R, &s->xq);
            }
            /* w1 and w3 by the same rows, so each thread gates its own */
            llm_matvec_split(F, t, nt, &r0, &r1);
            xq = have_xq ? &s->xq : NULL;
            bad |= llm_linear_rows(&lin[LLM_LIN_W1], s->xn, xq, R, s->h1, F, r0, r1, 0, NULL) < 0;
            bad |= llm_linear_rows(&lin[LLM_LIN_W3], s->xn, xq, R, s->h3, F, r0, r1, 0, NULL) < 0;
            for (int i = 0; i < R; i++)
                for (int j = r0; j < r1; j++) {
                    size_t at = (size_t)i * F + (size_t)j;
                    s->h1[at] = llm_silu(s->h1[at]) * s->h3[at];
                }
#pragma omp barrier
            if (lin[LLM_LIN_W2].q) {
#pragma omp single
                have_xq = llm_linear_quantize_input(&lin[LLM_LIN_W2], s->h1, R, &s->xq);
            }
            llm_matvec_split(D, t, nt, &r0, &r1);
            xq = have_xq ? &s->xq : NULL;
            bad |= llm_linear_rows(&lin[LLM_LIN_W2], s->h1, xq, R, s->x, D, r0, r1, 1, s->xn) < 0;
#pragma omp barrier
        }
        const llm_linear *cls = &m->lin[llm_linear_index(c->n_layers, 0)];
#pragma omp single
        {
            s->logit_rows = gather_last_rows(s, seg, n_seg, R, all_logits);
            llm_rmsnorm(s->x, m->p.norm, s->xn, NULL, s->logit_rows, D, c->norm_eps);
            have_xq = llm_linear_quantize_input(cls, s->xn, s->logit_rows, &s->xq);
        }
        llm_matvec_split(V, t, nt, &r0, &r1);
        bad |= llm_linear_rows(cls, s->xn, have_xq ? &s->xq : NULL, s->logit_rows, s->logits, V, r0, r1, 0,
                               NULL) < 0;
        if (bad) {
#pragma omp atomic write
            failed = 1;
        }
    }
    if (failed) return llm_error_set(err, LLM_ERR_NOMEM, "decode step: out of memory for a quantized product");
    return 0;
}

/* Many rows (a prompt), or any rows with a tap: every matrix product through
 * sgemm (OpenBLAS's threads), attention by (segment, head) in parallel. */
static int run_batched(llm_infer *s, const segment *seg, int n_seg, int R, int all_logits,
                       llm_error *err)
{
    const llm_model *m = s->m;
    const llm_config *c = &m->cfg;
    int D = c->dim, H = c->n_heads, E = D / H, HE = H * E, F = c->hidden;
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer_params *w = &m->p.layers[l];
        const llm_linear *lin = &m->lin[llm_linear_index(l, 0)];
        llm_rmsnorm(s->x, w->attn_norm, s->xn, NULL, R, D, c->norm_eps);
        if (s->tap.acts) LLM_TRY(report(s, "attn.wq.in", l, s->xn, R, D, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_WQ], s->xn, R, s->q, 0, NULL, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_WK], s->xn, R, s->kn, 0, NULL, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_WV], s->xn, R, s->vn, 0, NULL, err));
        rope_into_cache(s, seg, n_seg, l);
        /* the work is about rows x keys x E per head: small steps run on one thread */
        size_t work = (size_t)R * (size_t)(seg[n_seg - 1].pos0 + seg[n_seg - 1].n) * (size_t)HE;
#pragma omp parallel for collapse(2) schedule(dynamic) if (work >= 8 * LLM_PARALLEL_MIN)
        for (int g = 0; g < n_seg; g++)
            for (int h = 0; h < H; h++) attend(s, &seg[g], l, h, R, NULL);
        if (s->tap.probs)
            for (int g = 0; g < n_seg; g++) {
                llm_attn_shape shape = shape_of(s, &seg[g]);
                LLM_TRY(report_probs(s, l, &shape, s->q + (size_t)seg[g].row0 * HE,
                                 cache_of(s, 0, seg[g].slot, l), err));
            }
        if (s->tap.acts) LLM_TRY(report(s, "attn.wo.in", l, s->att, R, HE, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_WO], s->att, R, s->x, 1, s->xn, err));
        llm_rmsnorm(s->x, w->mlp_norm, s->xn, NULL, R, D, c->norm_eps);
        if (s->tap.acts) LLM_TRY(report(s, "mlp.w1.in", l, s->xn, R, D, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_W1], s->xn, R, s->h1, 0, NULL, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_W3], s->xn, R, s->h3, 0, NULL, err));
        size_t nf = (size_t)R * F;
#pragma omp parallel for schedule(static) if (nf >= LLM_PARALLEL_MIN)
        for (size_t i = 0; i < nf; i++) s->h1[i] = llm_silu(s->h1[i]) * s->h3[i];
        if (s->tap.acts) LLM_TRY(report(s, "mlp.w2.in", l, s->h1, R, F, err));
        LLM_TRY(llm_linear_apply(&lin[LLM_LIN_W2], s->h1, R, s->x, 1, s->xn, err));
    }
    int rows = s->logit_rows = gather_last_rows(s, seg, n_seg, R, all_logits);
    llm_rmsnorm(s->x, m->p.norm, s->xn, NULL, rows, D, c->norm_eps);
    if (s->tap.acts) LLM_TRY(report(s, "cls.in", -1, s->xn, rows, D, err));
    return llm_linear_apply(&m->lin[llm_linear_index(c->n_layers, 0)], s->xn, rows, s->logits, 0, NULL, err);
}

/* Runs R rows of tokens, grouped in segments, through the model. */
static int run(llm_infer *s, const segment *seg, int n_seg, const int32_t *tokens, int R,
               int all_logits, llm_error *err)
{
    const llm_model *m = s->m;
    const int D = m->cfg.dim, V = m->cfg.vocab;
    LLM_TRY(llm_model_check_ids(m, tokens, R, LLM_IDS_VIRTUAL, err));
    for (int i = 0; i < n_seg; i++)
        if (seg[i].pos0 + seg[i].n > s->ctx)
            return llm_error_set(err, LLM_ERR_LIMIT, "context full: %d + %d tokens > --ctx %d",
                                 seg[i].pos0, seg[i].n, s->ctx);
    LLM_TRY(fit(s, seg, n_seg, R, err));
    for (int i = 0; i < R; i++) /* ids from V: the adapter's virtual tokens */
        memcpy(s->x + (size_t)i * D,
               tokens[i] < V ? m->p.tok_emb + (size_t)tokens[i] * D
                             : m->adapter->arena + m->adapter->virt + (size_t)(tokens[i] - V) * D,
               (size_t)D * sizeof(float));
    if (R <= LLM_INFER_ROWS && !s->tap.acts && !s->tap.probs) LLM_TRY(run_rows(s, seg, n_seg, R, all_logits, err));
    else LLM_TRY(run_batched(s, seg, n_seg, R, all_logits, err));
    s->last = s->logits + (size_t)(s->logit_rows - 1) * V;
    for (int g = 0; g < n_seg; g++) s->slot_pos[seg[g].slot] += seg[g].n;
    s->pos = s->slot_pos[0];
    return 0;
}

int llm_infer_feed_slot(llm_infer *s, int slot, const int32_t *tokens, int n, int all_logits,
                        llm_error *err)
{
    if (slot < 0 || slot >= s->slots)
        return llm_error_set(err, LLM_ERR_ARG, "slot %d of %d", slot, s->slots);
    if (n < 1 || n > s->chunk)
        return llm_error_set(err, LLM_ERR_ARG, "%d tokens in one pass (1..%d)", n, s->chunk);
    segment sg = {slot, s->slot_pos[slot], 0, n};
    return run(s, &sg, 1, tokens, n, all_logits, err);
}

int llm_infer_feed(llm_infer *s, const int32_t *tokens, int n, int all_logits, llm_error *err)
{
    return llm_infer_feed_slot(s, 0, tokens, n, all_logits, err);
}

int llm_infer_decode(llm_infer *s, const int *slots, const int32_t *tokens, int B, llm_error *err)
{
    if (B < 1 || B > s->slots)
        return llm_error_set(err, LLM_ERR_ARG, "%d sequences in one step (1..%d)", B, s->slots);
    segment *seg = s->seg;
    for (int b = 0; b < B; b++) {
        if (slots[b] < 0 || slots[b] >= s->slots)
            return llm_error_set(err, LLM_ERR_ARG, "slot %d of %d", slots[b], s->slots);
        seg[b] = (segment){slots[b], s->slot_pos[slots[b]], b, 1};
    }
    return run(s, seg, B, tokens, B, 1, err);
}

int llm_infer_prefill(llm_infer *s, const int *slots, const int32_t *const *prompts,
                      const int *lens, int B, llm_error *err)
{
    if (B < 1 || B > s->slots)
        return llm_error_set(err, LLM_ERR_ARG, "%d prompts in one pass (1..%d)", B, s->slots);
    segment *seg = s->seg;
    int R = 0;
    for (int b = 0; b < B; b++) {
        if (slots[b] < 0 || slots[b] >= s->slots)
            return llm_error_set(err, LLM_ERR_ARG, "slot %d of %d", slots[b], s->slots);
        if (lens[b] < 1 || lens[b] > s->chunk - R)
            return llm_error_set(err, LLM_ERR_ARG, "prompts of %d tokens in all, more than one pass (%d)",
                                 R + lens[b], s->chunk);
        seg[b] = (segment){slots[b], s->slot_pos[slots[b]], R, lens[b]};
        R += lens[b];
    }
    int32_t *tokens = malloc((size_t)R * sizeof *tokens);
    if (!tokens) return llm_error_set(err, LLM_ERR_NOMEM, "prefill: out of memory");
    for (int b = 0; b < B; b++) memcpy(tokens + seg[b].row0, prompts[b], (size_t)lens[b] * sizeof *tokens);
    int rc = run(s, seg, B, tokens, R, 0, err);
    free(tokens);
    return rc;
}

int llm_infer_nll(llm_infer *s, const int32_t *tokens, int64_t n, int stride, double *nats,
                  int64_t *scored, llm_error *err)
{
    int V = s->m->cfg.vocab, ctx = s->ctx < s->chunk ? s->ctx : s->chunk;
    if (stride < 1 || stride > ctx)
        return llm_error_set(err, LLM_ERR_ARG, "stride %d out of range 1..%d", stride, ctx);
    LLM_TRY(llm_model_check_ids(s->m, tokens, n, 0, err)); /* targets too: no virtual tokens */
    double total = 0;
    int64_t count = 0, done = 0; /* targets 1..done are scored */
    for (int64_t begin = 0; done < n - 1; begin += stride) {
        int64_t end = begin + ctx < n - 1 ? begin + ctx : n - 1; /* inputs [begin, end) */
        llm_infer_reset(s);
        LLM_TRY(llm_infer_feed(s, tokens + begin, (int)(end - begin), 1, err));
        for (int64_t t = done + 1; t <= end; t++) { /* target t, predicted by input t-1 */
            const float *z = s->logits + (size_t)(t - 1 - begin) * V;
            float mx = z[0];
            for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
            double sum = 0;
            for (int j = 0; j < V; j++) sum += exp((double)z[j] - mx);
            double nll = log(sum) + mx - z[tokens[t]];
            if (!isfinite(nll)) /* a logit is NaN or infinite: the activations overflowed */
                return llm_error_set(err, LLM_ERR_FORMAT, "token %lld: the model's logits are not finite",
                                     (long long)t);
            total += nll;
            count++;
        }
        done = end;
    }
    *nats = total;
    *scored = count;
    return 0;
}

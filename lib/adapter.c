/* adapter — layout, initialisation, identity, attaching, merging, and the
 * stream form of prompt-tuning and LoRA adapters. */
#include "adapter.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"
#include "quant.h"
#include "rng.h"
#include "stream.h"

#define FORMAT_NAME "llmpipe-adapter"

/* "wq" for "attn.wq": a site's short name in --lora-targets lists. */
static const char *short_name(int site)
{
    const char *name = llm_linear_site_name(site);
    return name + strlen(name) - 2;
}

int llm_adapter_parse_targets(const char *list, unsigned *targets, llm_error *err)
{
    *targets = 0;
    if (!strcmp(list, "all")) {
        *targets = LLM_LORA_ALL;
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int s = 0; s < LLM_LIN_PER_LAYER; s++)
            if (len == 2 && !strncmp(p, short_name(s), 2)) found = s;
        if (found < 0)
            return llm_error_set(err, LLM_ERR_ARG, "LoRA target '%.*s' is not one of wq,wk,wv,wo,w1,w2,w3",
                                 (int)len, p);
        *targets |= 1u << found;
        p += len + (p[len] == ',');
    }
    if (!*targets) return llm_error_set(err, LLM_ERR_ARG, "no LoRA targets in '%s'", list);
    return 0;
}

void llm_adapter_targets_name(unsigned targets, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int s = 0; s < LLM_LIN_PER_LAYER; s++)
        if (targets & (1u << s) && at < n) at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? "," : "", short_name(s));
}

static void add_tensor(llm_adapter *ad, const char *name, int64_t d0, int64_t d1)
{
    llm_param_tensor *t = &ad->tensors[ad->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->shape = llm_shape_make(2, (int64_t[]){d0, d1});
    t->offset = ad->n_params;
    t->count = d0 * d1;
    ad->spans[ad->n_tensors] = (llm_param_span){t->offset, t->count, 0};
    ad->n_params += t->count;
    ad->n_tensors++;
}

#define GROW_FLOATS (1 << 18) /* the loader's first arena, then doubled as tensors arrive */

/* Lays out an adapter of settings c for architecture base and, with
 * arena, allocates its parameters (zeroed); without, the loader grows them
 * as their tensors arrive. */
static int alloc_layout(llm_adapter *ad, const llm_config *base, const llm_adapter_config *c, int arena,
                        llm_error *err)
{
    memset(ad, 0, sizeof *ad);
    if (c->n_virtual < 0 || c->n_virtual >= base->seq_len)
        return llm_error_set(err, LLM_ERR_ARG, "%d virtual tokens: the context holds %d", c->n_virtual,
                             base->seq_len);
    int max_rank = base->dim < LLM_LORA_MAX_RANK ? base->dim : LLM_LORA_MAX_RANK;
    if (c->rank < 0 || (c->rank && (c->rank > max_rank || !c->targets || c->targets > LLM_LORA_ALL)))
        return llm_error_set(err, LLM_ERR_ARG, "LoRA rank %d (1..%d) or targets 0x%x", c->rank, max_rank,
                             c->targets);
    if (c->rank && !(c->alpha > 0 && c->alpha < 1e6))
        return llm_error_set(err, LLM_ERR_ARG, "LoRA alpha %g out of range", (double)c->alpha);
    if (!c->n_virtual && !c->rank)
        return llm_error_set(err, LLM_ERR_ARG, "an adapter needs virtual tokens or a LoRA rank");
    ad->cfg = *c;
    ad->base = *base;
    ad->scale = c->rank ? c->alpha / (float)c->rank : 0;
    int L = base->n_layers, cap = 1 + 2 * L * LLM_LIN_PER_LAYER;
    ad->tensors = calloc((size_t)cap, sizeof *ad->tensors);
    ad->spans = calloc((size_t)cap, sizeof *ad->spans);
    ad->sites = calloc((size_t)L * LLM_LIN_PER_LAYER, sizeof *ad->sites);
    if (!ad->tensors || !ad->spans || !ad->sites) goto nomem;
    if (c->n_virtual) add_tensor(ad, "virtual", c->n_virtual, base->dim);
    for (int l = 0; l < L; l++)
        for (int s = 0; s < LLM_LIN_PER_LAYER; s++) {
            llm_lora_site *site = &ad->sites[llm_linear_index(l, s)];
            site->a = site->b = -1;
            if (!c->rank || !(c->targets & (1u << s))) continue;
            llm_config_linear_shape(base, s, &site->out, &site->in);
            char name[48];
            snprintf(name, sizeof name, "layers.%d.%s.lora_a", l, llm_linear_site_name(s));
            site->a = ad->n_params;
            add_tensor(ad, name, c->rank, site->in);
            snprintf(name, sizeof name, "layers.%d.%s.lora_b", l, llm_linear_site_name(s));
            site->b = ad->n_params;
            add_tensor(ad, name, site->out, c->rank);
        }
    if (arena && !(ad->arena = calloc((size_t)ad->n_params, sizeof *ad->arena))) goto nomem;
    return 0;
nomem:
    llm_adapter_free(ad);
    return llm_error_set(err, LLM_ERR_NOMEM, "adapter: out of memory");
}

int llm_adapter_init(llm_adapter *ad, const llm_model *base, const llm_adapter_config *c,
                     uint64_t seed, llm_error *err)
{
    LLM_TRY(alloc_layout(ad, &base->cfg, c, 1, err));
    ad->base_hash = llm_model_content_hash(base);
    llm_rng rng;
    llm_rng_seed(&rng, seed);
    int D = base->cfg.dim;
    for (int i = 0; i < c->n_virtual; i++) {
        uint64_t id = llm_rng_below(&rng, (uint64_t)base->cfg.vocab);
        memcpy(ad->arena + ad->virt + (size_t)i * D, base->p.tok_emb + id * (uint64_t)D, (size_t)D * sizeof(float));
    }
    for (int i = 0; i < base->cfg.n_layers * LLM_LIN_PER_LAYER; i++) {
        const llm_lora_site *s = &ad->sites[i];
        if (s->a < 0) continue;
        float sd = 1.0f / sqrtf((float)s->in);
        for (int64_t j = 0; j < (int64_t)c->rank * s->in; j++) ad->arena[s->a + j] = sd * llm_rng_normal(&rng);
    }
    return 0;
}

void llm_adapter_free(llm_adapter *ad)
{
    if (!ad) return;
    free(ad->arena);
    free(ad->tensors);
    free(ad->spans);
    free(ad->sites);
    memset(ad, 0, sizeof *ad);
}

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_qlinear(uint64_t h, const llm_qlinear *q)
{
    int32_t form[5] = {(int32_t)q->f.scheme, q->f.group, q->f.sym, q->rows, q->cols};
    h = fnv(h, form, sizeof form);
    size_t n = (size_t)q->rows * (size_t)q->cols, g = (size_t)q->rows * (size_t)q->groups;
    h = q->q4 ? fnv(h, q->q4, n / 2) : fnv(h, q->q8, n);
    h = fnv(h, q->scale, g * sizeof *q->scale);
    if (q->zero) h = fnv(h, q->zero, g);
    return fnv(h, &q->act_scale, sizeof q->act_scale);
}

uint64_t llm_model_content_hash(const llm_model *m)
{
    const llm_config *c = &m->cfg;
    int32_t dims[9] = {c->vocab, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->hidden, c->seq_len, c->tie, c->window};
    uint64_t h = fnv(0xcbf29ce484222325ull, dims, sizeof dims);
    if (!llm_model_quantized(m)) return fnv(h, m->arena, (size_t)m->n_params * sizeof(float));
    /* a quantized base: its float tensors in arena order, each quantized
     * linear's format, codes, scales and zero points in its place (its
     * unused float view is never read), a quantized tied classifier last */
    const llm_qlinear *cls = m->lin[llm_linear_index(c->n_layers, 0)].q;
    for (int i = 0; i < m->n_tensors; i++) {
        const llm_param_tensor *t = &m->tensors[i];
        int at = llm_linear_find(t->name, c->n_layers);
        h = at >= 0 && m->lin[at].q ? fnv_qlinear(h, m->lin[at].q)
                                    : fnv(h, m->arena + t->offset, (size_t)t->count * sizeof(float));
    }
    if (c->tie && cls) h = fnv_qlinear(h, cls);
    return h;
}

/* Same architecture as far as the adapter's shapes go. */
static int same_arch(const llm_config *a, const llm_config *b)
{
    return a->vocab == b->vocab && a->dim == b->dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->hidden == b->hidden;
}

int llm_adapter_attach(llm_model *m, llm_adapter *ad, llm_error *err)
{
    if (!same_arch(&m->cfg, &ad->base))
        return llm_error_set(err, LLM_ERR_ARG,
                             "the adapter was made for another architecture (dim %d, layers %d, vocab %d; "
                             "this model: dim %d, layers %d, vocab %d)",
                             ad->base.dim, ad->base.n_layers, ad->base.vocab, m->cfg.dim, m->cfg.n_layers,
                             m->cfg.vocab);
    uint64_t h = llm_model_content_hash(m);
    if (h != ad->base_hash)
        return llm_error_set(err, LLM_ERR_ARG,
                             "the adapter was made for another base model (base_hash %016" PRIx64
                             ", this model's %016" PRIx64 ")", ad->base_hash, h);
    if (ad->cfg.n_virtual >= m->cfg.seq_len)
        return llm_error_set(err, LLM_ERR_ARG, "%d virtual tokens fill the model's context of %d",
                             ad->cfg.n_virtual, m->cfg.seq_len);
    m->adapter = ad;
    for (int i = 0; i < m->cfg.n_layers * LLM_LIN_PER_LAYER; i++) { /* the LoRA factors on their linears */
        const llm_lora_site *site = &ad->sites[i];
        if (site->a < 0) continue;
        llm_linear *lin = &m->lin[i];
        lin->lora_a = ad->arena + site->a;
        lin->lora_b = ad->arena + site->b;
        lin->rank = ad->cfg.rank;
        lin->lora_scale = ad->scale;
    }
    return 0;
}

void llm_adapter_detach(llm_model *m)
{
    for (int i = 0; m->lin && i < llm_linear_count(m->cfg.n_layers); i++) {
        llm_linear *lin = &m->lin[i];
        lin->lora_a = lin->lora_b = NULL;
        lin->rank = 0;
        lin->lora_scale = 0;
    }
    m->adapter = NULL;
}

int llm_adapter_merge(llm_model *m, const llm_adapter *ad, llm_error *err)
{
    if (ad->cfg.n_virtual)
        return llm_error_set(err, LLM_ERR_ARG, "a prompt-tuning adapter (%d virtual tokens) cannot be "
                             "folded into weights", ad->cfg.n_virtual);
    if (!same_arch(&m->cfg, &ad->base))
        return llm_error_set(err, LLM_ERR_ARG, "the adapter was made for another architecture");
    for (int i = 0; i < m->cfg.n_layers * LLM_LIN_PER_LAYER; i++) {
        const llm_lora_site *site = &ad->sites[i];
        if (site->a >= 0)
            llm_lora_merge(ad->arena + site->a, ad->arena + site->b, ad->cfg.rank, site->in, site->out,
                           ad->scale, m->lin[i].w);
    }
    return 0;
}

/* ---- the stream ---- */

/* The records after the "adapter" one: training state, tensors, moments. */
static int save_records(llm_writer *w, const llm_adapter *ad, const llm_optim *o,
                        const llm_ckpt_train *train, llm_error *err)
{
    if (train) LLM_TRY(llm_ckpt_write_train(w, train, o ? o->t : 0, err));
    for (int i = 0; i < ad->n_tensors; i++) {
        const llm_param_tensor *t = &ad->tensors[i];
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = t->name, .dtype = LLM_DTYPE_F32,
                          .shape = t->shape, .flags = LLM_FLAG_SHUFFLE};
        LLM_TRY(llm_writer_record(w, &rec, ad->arena + t->offset, err));
    }
    if (!train || !o) return 0;
    if (o->n != ad->n_params)
        return llm_error_set(err, LLM_ERR_ARG, "optimizer state for %lld floats, the adapter has %lld",
                             (long long)o->n, (long long)ad->n_params);
    const float *moments[2] = {o->m, o->v};
    for (int k = 0; k < 2; k++)
        for (int i = 0; moments[k] && i < ad->n_tensors; i++) {
            const llm_param_tensor *t = &ad->tensors[i];
            char name[64];
            snprintf(name, sizeof name, "optim.%c.%s", "mv"[k], t->name);
            llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32,
                              .shape = t->shape, .flags = LLM_FLAG_SHUFFLE};
            LLM_TRY(llm_writer_record(w, &rec, moments[k] + t->offset, err));
        }
    return 0;
}

int llm_adapter_save(const char *path, const llm_adapter *ad, const llm_optim *o,
                     const llm_ckpt_train *train, llm_error *err)
{
    char text[12][40], targets[40];
    const llm_config *b = &ad->base;
    llm_adapter_targets_name(ad->cfg.rank ? ad->cfg.targets : 0, targets, sizeof targets);
    snprintf(text[0], sizeof text[0], "%016" PRIx64, ad->base_hash);
    snprintf(text[1], sizeof text[1], "%d", ad->cfg.n_virtual);
    snprintf(text[2], sizeof text[2], "%d", ad->cfg.rank);
    snprintf(text[3], sizeof text[3], "%.9g", (double)ad->cfg.alpha);
    const int dims[7] = {b->vocab, b->dim, b->n_layers, b->n_heads, b->n_kv_heads, b->hidden, b->seq_len};
    for (int i = 0; i < 7; i++) snprintf(text[4 + i], sizeof text[0], "%d", dims[i]);
    llm_attr attrs[] = {{"format", FORMAT_NAME}, {"base_hash", text[0]}, {"virtual", text[1]},
                        {"lora_rank", text[2]},  {"lora_alpha", text[3]}, {"lora_targets", targets},
                        {"vocab", text[4]},      {"dim", text[5]},        {"layers", text[6]},
                        {"heads", text[7]},      {"kv_heads", text[8]},   {"hidden", text[9]},
                        {"seq_len", text[10]}};
    llm_writer *w;
    LLM_TRY(llm_writer_open(&w, path, NULL, err));
    llm_record meta = {.kind = LLM_RECORD_META, .name = "adapter", .dtype = LLM_DTYPE_U8,
                       .shape = llm_shape_make(1, (int64_t[]){0}), .attrs = attrs,
                       .n_attrs = (int)(sizeof attrs / sizeof attrs[0])};
    int rc = llm_writer_record(w, &meta, "", err);
    if (rc >= 0) rc = save_records(w, ad, o, train, err);
    if (rc < 0) {
        llm_writer_abort(w);
        return rc;
    }
    return llm_writer_close(w, err);
}

static int attr_int(const llm_record *rec, const char *key, long min, long max, long *out, llm_error *err)
{
    const char *v = llm_record_attr(rec, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || x < min || x > max)
        return llm_error_set(err, LLM_ERR_FORMAT, "adapter: attribute %s is %s (want %ld..%ld)", key,
                             v ? v : "missing", min, max);
    *out = x;
    return 0;
}

/* The "adapter" record's settings and base architecture. */
static int parse_meta(const llm_record *rec, llm_config *base, llm_adapter_config *c, uint64_t *hash,
                      llm_error *err)
{
    const char *fmt = llm_record_attr(rec, "format");
    if (rec->kind != LLM_RECORD_META || strcmp(rec->name, "adapter") || !fmt || strcmp(fmt, FORMAT_NAME))
        return llm_error_set(err, LLM_ERR_FORMAT, "not an adapter stream (first record '%s')", rec->name);
    static const char *const keys[7] = {"vocab", "dim", "layers", "heads", "kv_heads", "hidden", "seq_len"};
    long v[7], virt, rank;
    for (int i = 0; i < 7; i++) LLM_TRY(attr_int(rec, keys[i], 1, 1 << 22, &v[i], err));
    *base = (llm_config){.vocab = (int)v[0], .dim = (int)v[1], .n_layers = (int)v[2], .n_heads = (int)v[3],
                         .n_kv_heads = (int)v[4], .hidden = (int)v[5], .seq_len = (int)v[6],
                         .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    LLM_TRY(llm_config_check(base, err));
    LLM_TRY(attr_int(rec, "virtual", 0, 1 << 22, &virt, err));
    LLM_TRY(attr_int(rec, "lora_rank", 0, 1 << 16, &rank, err));
    *c = (llm_adapter_config){.n_virtual = (int)virt, .rank = (int)rank};
    const char *h = llm_record_attr(rec, "base_hash"), *alpha = llm_record_attr(rec, "lora_alpha"),
               *targets = llm_record_attr(rec, "lora_targets");
    char *end;
    if (!h || strlen(h) != 16 || (*hash = strtoull(h, &end, 16), *end))
        return llm_error_set(err, LLM_ERR_FORMAT, "adapter: attribute base_hash is %s", h ? h : "missing");
    if (rank) {
        if (!alpha || (c->alpha = strtof(alpha, &end), *end || end == alpha))
            return llm_error_set(err, LLM_ERR_FORMAT, "adapter: attribute lora_alpha is %s", alpha ? alpha : "missing");
        if (!targets) return llm_error_set(err, LLM_ERR_FORMAT, "adapter: attribute lora_targets is missing");
        LLM_TRY(llm_adapter_parse_targets(targets, &c->targets, err));
    }
    return 0;
}

/* The adapter tensor named name, or NULL. */
static const llm_param_tensor *find_tensor(const llm_adapter *ad, const char *name)
{
    for (int i = 0; i < ad->n_tensors; i++)
        if (!strcmp(ad->tensors[i].name, name)) return &ad->tensors[i];
    return NULL;
}

/* Where loading stands: the training state found so far and the optimizer
 * state wanted (o NULL: a load for running the adapter). */
typedef struct load_state {
    llm_optim *o;
    llm_ckpt_train *train;
    int has_train, o_ready;
    int64_t optim_t;
    char *seen; /* [3 * n_tensors]: weights, first moments, second moments */
    int next;    /* the weight tensor that comes next (layout order) */
    int64_t cap; /* floats the arena holds so far */
} load_state;

/* The "train" record: parsed, and checked against the adapter's settings. */
static int read_train(const llm_record *rec, const llm_adapter *ad, load_state *ls, llm_error *err)
{
    if (ls->has_train) return llm_error_set(err, LLM_ERR_FORMAT, "train: given twice");
    LLM_TRY(llm_ckpt_parse_train(rec, ls->train, &ls->optim_t, err));
    int room = ad->base.seq_len - ad->cfg.n_virtual;
    if (ls->train->seq > room)
        return llm_error_set(err, LLM_ERR_FORMAT, "train: seq %d, but %d virtual tokens leave %d positions "
                             "of the base's context %d", ls->train->seq, ad->cfg.n_virtual, room, ad->base.seq_len);
    ls->has_train = 1;
    return 0;
}

/* The current record's payload, f32 of t's shape, into dst (NULL: skipped). */
static int read_tensor(llm_reader *r, const llm_record *rec, const llm_param_tensor *t, float *dst,
                       llm_error *err)
{
    int same = rec->dtype == LLM_DTYPE_F32 && rec->shape.ndim == 2 && rec->shape.dim[0] == t->shape.dim[0] &&
               rec->shape.dim[1] == t->shape.dim[1];
    if (!same) {
        char want[64], got[64];
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s%s, but the settings need f32%s", rec->name,
                             llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, got, sizeof got),
                             llm_shape_format(&t->shape, want, sizeof want));
    }
    if (!dst) return 0;
    int64_t n = llm_reader_read(r, dst, (size_t)t->count * sizeof(float), err);
    if (n < 0) return (int)n;
    for (int64_t i = 0; i < t->count; i++)
        if (!isfinite(dst[i]))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: element %lld is not finite", rec->name, (long long)i);
    return 0;
}

/* The optimizer state of the training state read, zeroed (once). */
static int ready_optim(const llm_adapter *ad, load_state *ls, llm_error *err)
{
    if (ls->o_ready) return 0;
    LLM_TRY(llm_optim_init(ls->o, &ls->train->optim, ad->n_params, err));
    ls->o->t = ls->optim_t;
    ls->o_ready = 1;
    return 0;
}

/* An optimizer moment, "optim.m.NAME" or "optim.v.NAME" (which 1 or 2). */
static int read_moment(llm_reader *r, const llm_record *rec, const llm_adapter *ad, int which,
                       load_state *ls, llm_error *err)
{
    const llm_param_tensor *t = find_tensor(ad, rec->name + 8);
    if (!t) return llm_error_set(err, LLM_ERR_FORMAT, "%s: not a tensor of this adapter", rec->name);
    if (!ls->has_train)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: optimizer state without training state", rec->name);
    if (ls->next < ad->n_tensors) /* the moments' memory is earned by the weights' bytes */
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: optimizer state before tensor %s", rec->name,
                             ad->tensors[ls->next].name);
    float *dst = NULL;
    if (ls->o) {
        /* allocated once the first moment arrives, not on the train record's word */
        LLM_TRY(ready_optim(ad, ls, err));
        float *base = which == 1 ? ls->o->m : ls->o->v;
        if (!base)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: optimizer %s keeps no such moment", rec->name,
                                 llm_optim_name(ls->train->optim.kind));
        dst = base + t->offset;
    }
    LLM_TRY(read_tensor(r, rec, t, dst, err));
    for (int64_t i = 0; dst && which == 2 && i < t->count; i++)
        if (dst[i] < 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: element %lld is negative", rec->name, (long long)i);
    ls->seen[(size_t)which * ad->n_tensors + (size_t)(t - ad->tensors)] = 1;
    return 0;
}

/* A weight tensor (the current record) into the arena, which grows as the
 * tensors arrive (in layout order, each once), so the sizes the settings
 * declare cost nothing before their bytes. */
static int read_weights(llm_reader *r, const llm_record *rec, llm_adapter *ad, const llm_param_tensor *t,
                        load_state *ls, llm_error *err)
{
    int i = (int)(t - ad->tensors);
    if (i != ls->next)
        return i > ls->next ? llm_error_set(err, LLM_ERR_FORMAT, "%s: tensor %s is missing before it (an adapter's "
                                            "tensors come in its layout's order)", rec->name, ad->tensors[ls->next].name)
                            : llm_error_set(err, LLM_ERR_FORMAT, "%s: out of order or given twice", rec->name);
    LLM_TRY(read_tensor(r, rec, t, NULL, err)); /* the shape */
    for (int64_t at = t->offset, end = t->offset + t->count; at < end;) {
        if (at == ls->cap) { /* room for what comes next, doubling */
            int64_t grown = ls->cap < GROW_FLOATS ? GROW_FLOATS : 2 * ls->cap;
            if (grown > ad->n_params) grown = ad->n_params;
            float *p = realloc(ad->arena, (size_t)grown * sizeof *p);
            if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "adapter: out of memory");
            ad->arena = p, ls->cap = grown;
        }
        int64_t want = (end < ls->cap ? end : ls->cap) - at;
        int64_t n = llm_reader_read(r, ad->arena + at, (size_t)want * sizeof(float), err);
        if (n < 0) return (int)n;
        at += want;
    }
    for (int64_t k = 0; k < t->count; k++)
        if (!isfinite(ad->arena[t->offset + k]))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: element %lld is not finite", rec->name, (long long)k);
    ls->next++;
    return 0;
}

static int load_records(llm_reader *r, llm_adapter *ad, load_state *ls, llm_error *err)
{
    const llm_record *rec;
    int rc;
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        if (rec->kind == LLM_RECORD_META && !strcmp(rec->name, "train")) {
            LLM_TRY(read_train(rec, ad, ls, err));
            continue;
        }
        int which = !strncmp(rec->name, "optim.m.", 8) ? 1 : !strncmp(rec->name, "optim.v.", 8) ? 2 : 0;
        const llm_param_tensor *t = which ? NULL : find_tensor(ad, rec->name);
        if (rec->kind != LLM_RECORD_TENSOR || (!which && !t))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: not a tensor of this adapter", rec->name);
        if (which) {
            LLM_TRY(read_moment(r, rec, ad, which, ls, err));
            continue;
        }
        LLM_TRY(read_weights(r, rec, ad, t, ls, err));
        ls->seen[t - ad->tensors] = 1;
    }
    if (rc < 0) return rc;
    for (int i = 0; i < ad->n_tensors; i++)
        if (!ls->seen[i]) return llm_error_set(err, LLM_ERR_FORMAT, "tensor %s is missing", ad->tensors[i].name);
    if (!ls->o || !ls->has_train) return 0;
    LLM_TRY(ready_optim(ad, ls, err)); /* when no moment came: which are missing? */
    for (int k = 1; k <= 2; k++)
        for (int i = 0; (k == 1 ? ls->o->m : ls->o->v) && i < ad->n_tensors; i++)
            if (!ls->seen[(size_t)k * ad->n_tensors + i])
                return llm_error_set(err, LLM_ERR_FORMAT, "optimizer state optim.%c.%s is missing", "mv"[k - 1],
                                     ad->tensors[i].name);
    return 0;
}

static int load_all(llm_reader *r, llm_adapter *ad, load_state *ls, llm_error *err)
{
    const llm_record *rec;
    int rc = llm_reader_next(r, &rec, err);
    if (rc == 0) return llm_error_set(err, LLM_ERR_FORMAT, "empty stream: not an adapter");
    if (rc < 0) return rc;
    llm_config base;
    llm_adapter_config c;
    uint64_t hash = 0;
    LLM_TRY(parse_meta(rec, &base, &c, &hash, err));
    LLM_TRY(alloc_layout(ad, &base, &c, 0, err));
    ad->base_hash = hash;
    ls->seen = calloc(3 * (size_t)ad->n_tensors, 1);
    if (!ls->seen) return llm_error_set(err, LLM_ERR_NOMEM, "adapter: out of memory");
    rc = load_records(r, ad, ls, err);
    free(ls->seen);
    return rc;
}

/* Loads from an open reader, which it closes; label names the input.  o,
 * train and has_train: NULL, or the training state wanted. */
static int load_from(llm_reader *r, const char *path, llm_adapter *ad, llm_optim *o, llm_ckpt_train *train,
                     int *has_train, llm_error *err)
{
    llm_ckpt_train scratch;
    load_state ls = {.o = o, .train = train ? train : &scratch};
    int rc = load_all(r, ad, &ls, err);
    llm_reader_close(r);
    if (has_train) *has_train = rc == 0 && ls.has_train;
    if (rc < 0) {
        llm_adapter_free(ad);
        if (o) llm_optim_free(o);
        if (strncmp(err->msg, path, strlen(path)) != 0) llm_error_prefix(err, "%s", path);
    }
    return rc;
}

/* Opens path (or the buffer) and loads it. */
static int load_path(const char *path, const void *buf, size_t len, llm_adapter *ad, llm_optim *o,
                     llm_ckpt_train *train, int *has_train, llm_error *err)
{
    memset(ad, 0, sizeof *ad);
    if (o) memset(o, 0, sizeof *o);
    if (has_train) *has_train = 0;
    llm_reader *r;
    LLM_TRY(buf ? llm_reader_open_mem(&r, buf, len, path, err) : llm_reader_open(&r, path, err));
    return load_from(r, path, ad, o, train, has_train, err);
}

int llm_adapter_load(const char *path, llm_adapter *ad, llm_error *err)
{
    return load_path(path, NULL, 0, ad, NULL, NULL, NULL, err);
}

int llm_adapter_load_train(const char *path, llm_adapter *ad, llm_optim *o, llm_ckpt_train *train,
                           int *has_train, llm_error *err)
{
    return load_path(path, NULL, 0, ad, o, train, has_train, err);
}

int llm_adapter_load_mem(const void *buf, size_t len, const char *label, llm_adapter *ad, llm_optim *o,
                         llm_ckpt_train *train, int *has_train, llm_error *err)
{
    return load_path(label, buf ? buf : "", len, ad, o, train, has_train, err);
}

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

/* Lays out and allocates (zeroed) an adapter of settings c for architecture base. */
static int alloc_layout(llm_adapter *ad, const llm_config *base, const llm_adapter_config *c,
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
    ad->arena = calloc((size_t)ad->n_params, sizeof *ad->arena);
    if (!ad->arena) goto nomem;
    return 0;
nomem:
    llm_adapter_free(ad);
    return llm_error_set(err, LLM_ERR_NOMEM, "adapter: out of memory");
}

int llm_adapter_init(llm_adapter *ad, const llm_model *base, const llm_adapter_config *c,
                     uint64_t seed, llm_error *err)
{
    TRY(alloc_layout(ad, &base->cfg, c, err));
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

int llm_adapter_save(const char *path, const llm_adapter *ad, llm_error *err)
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
    TRY(llm_writer_open(&w, path, NULL, err));
    llm_record meta = {.kind = LLM_RECORD_META, .name = "adapter", .dtype = LLM_DTYPE_U8,
                       .shape = llm_shape_make(1, (int64_t[]){0}), .attrs = attrs,
                       .n_attrs = (int)(sizeof attrs / sizeof attrs[0])};
    int rc = llm_writer_record(w, &meta, "", err);
    for (int i = 0; rc >= 0 && i < ad->n_tensors; i++) {
        const llm_param_tensor *t = &ad->tensors[i];
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = t->name, .dtype = LLM_DTYPE_F32,
                          .shape = t->shape, .flags = LLM_FLAG_SHUFFLE};
        rc = llm_writer_record(w, &rec, ad->arena + t->offset, err);
    }
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
    for (int i = 0; i < 7; i++) TRY(attr_int(rec, keys[i], 1, 1 << 22, &v[i], err));
    *base = (llm_config){.vocab = (int)v[0], .dim = (int)v[1], .n_layers = (int)v[2], .n_heads = (int)v[3],
                         .n_kv_heads = (int)v[4], .hidden = (int)v[5], .seq_len = (int)v[6],
                         .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    TRY(llm_config_check(base, err));
    TRY(attr_int(rec, "virtual", 0, 1 << 22, &virt, err));
    TRY(attr_int(rec, "lora_rank", 0, 1 << 16, &rank, err));
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
        TRY(llm_adapter_parse_targets(targets, &c->targets, err));
    }
    return 0;
}

static int load_all(llm_reader *r, llm_adapter *ad, llm_error *err)
{
    const llm_record *rec;
    int rc = llm_reader_next(r, &rec, err);
    if (rc == 0) return llm_error_set(err, LLM_ERR_FORMAT, "empty stream: not an adapter");
    if (rc < 0) return rc;
    llm_config base;
    llm_adapter_config c;
    uint64_t hash = 0;
    TRY(parse_meta(rec, &base, &c, &hash, err));
    TRY(alloc_layout(ad, &base, &c, err));
    ad->base_hash = hash;
    char *seen = calloc((size_t)ad->n_tensors, 1);
    if (!seen) return llm_error_set(err, LLM_ERR_NOMEM, "adapter: out of memory");
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        const llm_param_tensor *t = NULL;
        for (int i = 0; i < ad->n_tensors && !t; i++)
            if (!strcmp(ad->tensors[i].name, rec->name)) t = &ad->tensors[i];
        if (!t || rec->kind != LLM_RECORD_TENSOR) {
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: not a tensor of this adapter", rec->name);
            break;
        }
        int same = rec->dtype == LLM_DTYPE_F32 && rec->shape.ndim == 2 &&
                   rec->shape.dim[0] == t->shape.dim[0] && rec->shape.dim[1] == t->shape.dim[1];
        if (!same) {
            char want[64], got[64];
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: %s%s, but the settings need f32%s", rec->name,
                               llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, got, sizeof got),
                               llm_shape_format(&t->shape, want, sizeof want));
            break;
        }
        int64_t n = llm_reader_read(r, ad->arena + t->offset, (size_t)t->count * sizeof(float), err);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        seen[t - ad->tensors] = 1;
    }
    for (int i = 0; rc == 0 && i < ad->n_tensors; i++)
        if (!seen[i]) rc = llm_error_set(err, LLM_ERR_FORMAT, "tensor %s is missing", ad->tensors[i].name);
    for (int64_t i = 0; rc == 0 && i < ad->n_params; i++)
        if (!isfinite(ad->arena[i])) rc = llm_error_set(err, LLM_ERR_FORMAT, "a weight is not finite");
    free(seen);
    return rc;
}

/* Loads from an open reader, which it closes; label names the input. */
static int load_from(llm_reader *r, const char *path, llm_adapter *ad, llm_error *err)
{
    int rc = load_all(r, ad, err);
    llm_reader_close(r);
    if (rc < 0) {
        llm_adapter_free(ad);
        if (strncmp(err->msg, path, strlen(path)) != 0) llm_error_prefix(err, "%s", path);
    }
    return rc;
}

int llm_adapter_load(const char *path, llm_adapter *ad, llm_error *err)
{
    memset(ad, 0, sizeof *ad);
    llm_reader *r;
    TRY(llm_reader_open(&r, path, err));
    return load_from(r, path, ad, err);
}

int llm_adapter_load_mem(const void *buf, size_t len, const char *label, llm_adapter *ad, llm_error *err)
{
    memset(ad, 0, sizeof *ad);
    llm_reader *r;
    TRY(llm_reader_open_mem(&r, buf, len, label, err));
    return load_from(r, label, ad, err);
}

/* ckpt — saving and loading model and training checkpoints as streams. */
#include "ckpt.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "stream.h"

#define FORMAT_NAME "llmpipe-model"

/* Attribute table built from printf-formatted values (kept in `text`). */
typedef struct attr_list {
    llm_attr a[32];
    char text[32][64];
    int n;
} attr_list;

static void add(attr_list *l, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(attr_list *l, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text[l->n], sizeof l->text[0], fmt, ap);
    va_end(ap);
    l->a[l->n] = (llm_attr){key, l->text[l->n]};
    l->n++;
}

static int write_meta(llm_writer *w, const char *name, const attr_list *l, llm_error *err)
{
    llm_record rec = {.kind = LLM_RECORD_META, .name = name, .dtype = LLM_DTYPE_U8,
                      .shape = llm_shape_make(1, (int64_t[]){0}), .attrs = l->a, .n_attrs = l->n};
    return llm_writer_record(w, &rec, "", err);
}

static llm_record float_record(const char *name, const llm_shape *shape)
{
    return (llm_record){.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32, .shape = *shape,
                        .flags = LLM_FLAG_SHUFFLE};
}

int llm_ckpt_begin_floats(llm_writer *w, const char *name, const llm_shape *shape, llm_error *err)
{
    llm_record rec = float_record(name, shape);
    return llm_writer_begin(w, &rec, err);
}

static int write_floats(llm_writer *w, const char *name, const llm_shape *shape, const float *data,
                        llm_error *err)
{
    llm_record rec = float_record(name, shape);
    return llm_writer_record(w, &rec, data, err);
}

/* A quantized linear: its codes (i8, or u4 with group and sym), with the
 * scheme in attributes, then "<name>.scale" and, for asymmetric int4,
 * "<name>.zero". */
int llm_ckpt_begin_qcodes(llm_writer *w, const char *name, const llm_qformat *f, int rows, int cols,
                          float act_scale, llm_error *err)
{
    attr_list l = {0};
    add(&l, "quant", "%s", llm_qscheme_name(f->scheme));
    if (f->scheme == LLM_Q_INT4) {
        add(&l, "group", "%d", f->group);
        add(&l, "sym", "%d", f->sym);
    }
    if (f->scheme == LLM_Q_W8A8) add(&l, "act_scale", "%.9g", (double)act_scale);
    llm_shape shape = llm_shape_make(2, (int64_t[]){rows, cols});
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name,
                      .dtype = f->scheme == LLM_Q_INT4 ? LLM_DTYPE_U4 : LLM_DTYPE_I8, .shape = shape,
                      .attrs = l.a, .n_attrs = l.n};
    return llm_writer_begin(w, &rec, err);
}

static int write_qlinear(llm_writer *w, const char *name, const llm_qlinear *q, llm_error *err)
{
    LLM_TRY(llm_ckpt_begin_qcodes(w, name, &q->f, q->rows, q->cols, q->act_scale, err));
    size_t bytes = q->q4 ? (size_t)q->rows * q->cols / 2 : (size_t)q->rows * q->cols;
    LLM_TRY(llm_writer_write(w, q->q4 ? (const void *)q->q4 : (const void *)q->q8, bytes, err));
    LLM_TRY(llm_writer_end_record(w, err));
    char cname[96];
    llm_shape gshape = llm_shape_make(2, (int64_t[]){q->rows, q->groups});
    snprintf(cname, sizeof cname, "%s.scale", name);
    LLM_TRY(write_floats(w, cname, &gshape, q->scale, err));
    if (!q->zero) return 0;
    snprintf(cname, sizeof cname, "%s.zero", name);
    llm_record z = {.kind = LLM_RECORD_TENSOR, .name = cname, .dtype = LLM_DTYPE_U8, .shape = gshape};
    return llm_writer_record(w, &z, q->zero, err);
}

int llm_ckpt_write_train(llm_writer *w, const llm_ckpt_train *t, int64_t optim_t, llm_error *err)
{
    const llm_optim_config *oc = &t->optim;
    attr_list tr = {0};
    add(&tr, "step", "%" PRId64, t->step);
    add(&tr, "tokens", "%" PRId64, t->tokens);
    add(&tr, "optim", "%s", llm_optim_name(oc->kind));
    add(&tr, "lr", "%a", (double)oc->lr);
    add(&tr, "min_lr", "%a", (double)oc->min_lr);
    add(&tr, "warmup", "%" PRId64, oc->warmup);
    add(&tr, "steps", "%" PRId64, oc->steps);
    add(&tr, "beta1", "%a", (double)oc->beta1);
    add(&tr, "beta2", "%a", (double)oc->beta2);
    add(&tr, "eps", "%a", (double)oc->eps);
    add(&tr, "weight_decay", "%a", (double)oc->weight_decay);
    add(&tr, "clip", "%a", (double)oc->clip);
    add(&tr, "optim_t", "%" PRId64, optim_t);
    add(&tr, "batch", "%d", t->batch);
    add(&tr, "seq", "%d", t->seq);
    add(&tr, "accum", "%d", t->accum);
    add(&tr, "seed", "%" PRIu64, t->seed);
    add(&tr, "data_hash", "%016" PRIx64, t->data_hash);
    add(&tr, "val_frac", "%a", t->val_frac);
    for (int i = 0; i < 4; i++) {
        static const char *const keys[4] = {"rng0", "rng1", "rng2", "rng3"};
        add(&tr, keys[i], "%016" PRIx64, t->rng.s[i]);
    }
    return write_meta(w, "train", &tr, err);
}

int llm_ckpt_write_config(llm_writer *w, const llm_config *c, int64_t n_params, llm_qscheme quant,
                          llm_error *err)
{
    attr_list l = {0};
    add(&l, "format", FORMAT_NAME);
    add(&l, "vocab", "%d", c->vocab);
    add(&l, "dim", "%d", c->dim);
    add(&l, "layers", "%d", c->n_layers);
    add(&l, "heads", "%d", c->n_heads);
    add(&l, "kv_heads", "%d", c->n_kv_heads);
    add(&l, "hidden", "%d", c->hidden);
    add(&l, "seq_len", "%d", c->seq_len);
    add(&l, "tie", "%d", c->tie);
    add(&l, "window", "%d", c->window);
    add(&l, "norm_eps", "%.9g", (double)c->norm_eps);
    add(&l, "rope_theta", "%.9g", (double)c->rope_theta);
    add(&l, "params", "%" PRId64, n_params);
    if (quant != LLM_Q_NONE) add(&l, "quant", "%s", llm_qscheme_name(quant));
    return write_meta(w, "config", &l, err);
}

static int save_all(llm_writer *w, const llm_model *m, const llm_optim *o,
                    const llm_ckpt_train *t, llm_error *err)
{
    const llm_config *c = &m->cfg;
    llm_qscheme quant = LLM_Q_NONE;
    for (int i = 0; i < llm_linear_count(c->n_layers); i++)
        if (m->lin[i].q) { /* the scheme, for listings; each tensor carries its own */
            quant = m->lin[i].q->f.scheme;
            break;
        }
    LLM_TRY(llm_ckpt_write_config(w, c, m->n_params, quant, err));
    LLM_TRY(llm_tok_write(&m->tok, w, err));
    if (t) LLM_TRY(llm_ckpt_write_train(w, t, o ? o->t : 0, err));
    for (int i = 0; i < m->n_tensors; i++) {
        const llm_param_tensor *pt = &m->tensors[i];
        int at = llm_linear_find(pt->name, c->n_layers);
        if (at >= 0 && m->lin[at].q) LLM_TRY(write_qlinear(w, pt->name, m->lin[at].q, err));
        else LLM_TRY(write_floats(w, pt->name, &pt->shape, m->arena + pt->offset, err));
    }
    const llm_qlinear *cls = m->lin[llm_linear_index(c->n_layers, 0)].q;
    if (c->tie && cls) LLM_TRY(write_qlinear(w, "cls", cls, err)); /* its own classifier */
    if (t && o) {
        const float *moments[2] = {o->m, o->v};
        const char *prefix[2] = {"optim.m.", "optim.v."};
        for (int k = 0; k < 2; k++) {
            if (!moments[k]) continue;
            for (int i = 0; i < m->n_tensors; i++) {
                const llm_param_tensor *pt = &m->tensors[i];
                char name[80];
                snprintf(name, sizeof name, "%s%s", prefix[k], pt->name);
                LLM_TRY(write_floats(w, name, &pt->shape, moments[k] + pt->offset, err));
            }
        }
    }
    return 0;
}

int llm_ckpt_save(const char *path, const llm_model *m, const llm_optim *o,
                  const llm_ckpt_train *train, llm_error *err)
{
    llm_writer *w;
    LLM_TRY(llm_writer_open(&w, path, NULL, err));
    int rc = save_all(w, m, o, train, err);
    if (rc < 0) {
        llm_writer_abort(w);
        return rc;
    }
    return llm_writer_close(w, err);
}

/* ---- loading ---- */

static int attr_long(const llm_record *rec, const char *key, long long min, long long max,
                     long long *out, llm_error *err)
{
    const char *v = llm_record_attr(rec, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || end == v || x < min || x > max)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: attribute %s is %s%s%s (want %lld..%lld)",
                             rec->name, key, v ? "'" : "missing", v ? v : "", v ? "'" : "", min, max);
    *out = x;
    return 0;
}

static int attr_double(const llm_record *rec, const char *key, double *out, llm_error *err)
{
    const char *v = llm_record_attr(rec, key);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: attribute %s is %s", rec->name, key,
                             v ? "not a number" : "missing");
    *out = x;
    return 0;
}

static int attr_u64(const llm_record *rec, const char *key, int base, uint64_t *out, llm_error *err)
{
    const char *v = llm_record_attr(rec, key);
    char *end;
    unsigned long long x = v ? strtoull(v, &end, base) : 0;
    if (!v || *end || end == v)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: attribute %s is %s", rec->name, key,
                             v ? "malformed" : "missing");
    *out = x;
    return 0;
}

int llm_ckpt_parse_config(const llm_record *rec, llm_config *c, llm_error *err)
{
    const char *fmt = llm_record_attr(rec, "format");
    if (!fmt || strcmp(fmt, FORMAT_NAME) != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "not a model checkpoint (config format '%s')",
                             fmt ? fmt : "missing");
    long long v[10];
    static const char *const keys[10] = {"vocab", "dim",     "layers", "heads", "kv_heads",
                                         "hidden", "seq_len", "tie",    "window", NULL};
    for (int i = 0; i < 9; i++) LLM_TRY(attr_long(rec, keys[i], 0, 1 << 22, &v[i], err));
    double eps, theta;
    LLM_TRY(attr_double(rec, "norm_eps", &eps, err));
    LLM_TRY(attr_double(rec, "rope_theta", &theta, err));
    *c = (llm_config){.vocab = (int)v[0], .dim = (int)v[1], .n_layers = (int)v[2],
                      .n_heads = (int)v[3], .n_kv_heads = (int)v[4], .hidden = (int)v[5],
                      .seq_len = (int)v[6], .tie = (int)v[7], .window = (int)v[8],
                      .norm_eps = (float)eps, .rope_theta = (float)theta};
    return llm_config_check(c, err);
}

int llm_ckpt_parse_train(const llm_record *rec, llm_ckpt_train *t, int64_t *optim_t, llm_error *err)
{
    memset(t, 0, sizeof *t);
    long long v;
    double d;
    LLM_TRY(attr_long(rec, "step", 0, INT64_MAX, &v, err));
    t->step = v;
    LLM_TRY(attr_long(rec, "tokens", 0, INT64_MAX, &v, err));
    t->tokens = v;
    const char *name = llm_record_attr(rec, "optim");
    int kind = name ? llm_optim_parse(name) : -1;
    if (kind < 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "train: unknown optimizer '%s'", name ? name : "");
    llm_optim_config *oc = &t->optim;
    llm_optim_defaults(oc, (llm_optim_kind)kind);
    struct {
        const char *key;
        float *dst;
    } floats[] = {{"lr", &oc->lr},         {"min_lr", &oc->min_lr},
                  {"beta1", &oc->beta1},   {"beta2", &oc->beta2},
                  {"eps", &oc->eps},       {"weight_decay", &oc->weight_decay},
                  {"clip", &oc->clip}};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        LLM_TRY(attr_double(rec, floats[i].key, &d, err));
        *floats[i].dst = (float)d;
    }
    LLM_TRY(attr_long(rec, "warmup", 0, INT64_MAX, &v, err));
    oc->warmup = v;
    LLM_TRY(attr_long(rec, "steps", 1, INT64_MAX, &v, err));
    oc->steps = v;
    LLM_TRY(attr_long(rec, "optim_t", 0, INT64_MAX, &v, err));
    *optim_t = v;
    LLM_TRY(attr_long(rec, "batch", 1, 1 << 20, &v, err));
    t->batch = (int)v;
    LLM_TRY(attr_long(rec, "seq", 1, 1 << 22, &v, err));
    t->seq = (int)v;
    LLM_TRY(attr_long(rec, "accum", 1, 1 << 20, &v, err));
    t->accum = (int)v;
    LLM_TRY(attr_u64(rec, "seed", 10, &t->seed, err));
    LLM_TRY(attr_u64(rec, "data_hash", 16, &t->data_hash, err));
    LLM_TRY(attr_double(rec, "val_frac", &t->val_frac, err));
    for (int i = 0; i < 4; i++) {
        static const char *const keys[4] = {"rng0", "rng1", "rng2", "rng3"};
        LLM_TRY(attr_u64(rec, keys[i], 16, &t->rng.s[i], err));
    }
    if (llm_optim_check(oc, err) < 0) {
        err->code = LLM_ERR_FORMAT;
        return llm_error_prefix(err, "%s", rec->name);
    }
    return 0;
}

/* Reads the current record's payload into dst, checking its dtype and shape. */
static int read_into(llm_reader *r, const llm_record *rec, const llm_param_tensor *pt, float *dst,
                     llm_error *err)
{
    int same = rec->dtype == LLM_DTYPE_F32 && rec->shape.ndim == pt->shape.ndim;
    for (int d = 0; same && d < pt->shape.ndim; d++) same = rec->shape.dim[d] == pt->shape.dim[d];
    if (!same) {
        char want[64], got[64];
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s%s, but the config needs f32%s", rec->name,
                             llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, got, sizeof got),
                             llm_shape_format(&pt->shape, want, sizeof want));
    }
    size_t bytes = (size_t)pt->count * sizeof(float);
    int64_t n = llm_reader_read(r, dst, bytes, err);
    if (n < 0) return (int)n;
    int64_t bad = llm_f32_find_nonfinite(dst, pt->count); /* a NaN would reach every output */
    if (bad >= 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: element %lld is %g, not a finite number", rec->name,
                             (long long)bad, (double)dst[bad]);
    return 0;
}

/* A quantized linear's codes (the current record) into its m->lin[].q. */
static int read_qlinear(llm_reader *r, const llm_record *rec, llm_model *m, llm_error *err)
{
    const llm_config *c = &m->cfg;
    const char *name = llm_record_attr(rec, "quant");
    int scheme = llm_qscheme_parse(name);
    if (scheme < 0) return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown quantization '%s'", rec->name, name);
    int at = llm_linear_find(rec->name, c->n_layers);
    if (at < 0) return llm_error_set(err, LLM_ERR_FORMAT, "%s: quantized, but not a linear layer", rec->name);
    const llm_param_tensor *pt = llm_model_tensor(m, rec->name);
    llm_shape want = pt ? pt->shape : llm_shape_make(2, (int64_t[]){c->vocab, c->dim});
    llm_qformat f = {.scheme = (llm_qscheme)scheme, .sym = 1};
    if (scheme == LLM_Q_INT4) {
        long long group, sym;
        LLM_TRY(attr_long(rec, "group", 1, 1 << 22, &group, err));
        LLM_TRY(attr_long(rec, "sym", 0, 1, &sym, err));
        f.group = (int)group, f.sym = (int)sym;
    }
    llm_dtype dtype = scheme == LLM_Q_INT4 ? LLM_DTYPE_U4 : LLM_DTYPE_I8;
    if (rec->dtype != dtype || rec->shape.ndim != 2 || rec->shape.dim[0] != want.dim[0] ||
        rec->shape.dim[1] != want.dim[1]) {
        char a[64], b[64];
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s%s, but %s needs %s%s", rec->name,
                             llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, a, sizeof a),
                             name, llm_dtype_name(dtype), llm_shape_format(&want, b, sizeof b));
    }
    if (m->lin[at].q) return llm_error_set(err, LLM_ERR_FORMAT, "%s: given twice", rec->name);
    llm_qlinear *q = calloc(1, sizeof *q);
    if (!q) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    m->lin[at].q = q;
    int rc = llm_qlinear_alloc(q, &f, (int)want.dim[0], (int)want.dim[1], err);
    if (rc < 0) return llm_error_prefix(err, "%s", rec->name);
    if (scheme == LLM_Q_W8A8) {
        double a;
        LLM_TRY(attr_double(rec, "act_scale", &a, err));
        if (!(a > 0 && a < 1e30)) return llm_error_set(err, LLM_ERR_FORMAT, "%s: act_scale %g", rec->name, a);
        q->act_scale = (float)a;
    }
    size_t bytes = q->q4 ? (size_t)q->rows * q->cols / 2 : (size_t)q->rows * q->cols;
    int64_t n = llm_reader_read(r, q->q4 ? (void *)q->q4 : (void *)q->q8, bytes, err);
    return n < 0 ? (int)n : 0;
}

/* A quantized linear's companion ("<name>.scale", "<name>.zero"): 1 when
 * rec is one (read into the linear; got gets bit 1 or 2), 0 when not. */
static int read_companion(llm_reader *r, const llm_record *rec, llm_model *m, unsigned char *got,
                          llm_error *err)
{
    const char *dot = strrchr(rec->name, '.');
    if (!dot || (strcmp(dot, ".scale") && strcmp(dot, ".zero"))) return 0;
    char base[96];
    if ((size_t)(dot - rec->name) >= sizeof base) return 0;
    memcpy(base, rec->name, (size_t)(dot - rec->name));
    base[dot - rec->name] = 0;
    int at = llm_linear_find(base, m->cfg.n_layers);
    if (at < 0 || !m->lin[at].q) return 0;
    llm_qlinear *q = m->lin[at].q;
    int is_scale = !strcmp(dot, ".scale");
    llm_dtype dtype = is_scale ? LLM_DTYPE_F32 : LLM_DTYPE_U8;
    if (!is_scale && !q->zero)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: zero points for a symmetric format", rec->name);
    if (rec->dtype != dtype || rec->shape.ndim != 2 || rec->shape.dim[0] != q->rows ||
        rec->shape.dim[1] != q->groups) {
        char a[64];
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s%s, but needs %s[%d,%d]", rec->name,
                             llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, a, sizeof a),
                             llm_dtype_name(dtype), q->rows, q->groups);
    }
    size_t n = (size_t)q->rows * q->groups;
    int64_t got_bytes = llm_reader_read(r, is_scale ? (void *)q->scale : (void *)q->zero,
                                        n * (is_scale ? sizeof(float) : 1), err);
    if (got_bytes < 0) return (int)got_bytes;
    for (size_t i = 0; i < n; i++)
        if (is_scale ? !(fabsf(q->scale[i]) < 1e30f) : q->zero[i] > 15) /* GGUF's Q4_0 has scales < 0 */
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: element %zu is %g", rec->name, i,
                                 is_scale ? (double)q->scale[i] : (double)q->zero[i]);
    got[at] |= is_scale ? 1 : 2;
    return 1;
}

/* Checks that rec, which holds tensor pt (a weight, or one of its moments),
 * is the one its sequence expects next (*next, an index into m->tensors),
 * and advances it.  Tensors come once each in the model's order: so they
 * fill the arenas front to back and the pages they touch are the pages their
 * bytes fill (with transparent huge pages, tensors scattered over a large
 * arena would each make a 2 MiB page resident for a few bytes). */
static int in_order(const llm_model *m, const llm_record *rec, const llm_param_tensor *pt, int *next,
                    llm_error *err)
{
    int i = (int)(pt - m->tensors);
    if (i > *next)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: tensor %s%s is missing before it (a checkpoint's "
                             "tensors come in the model's order)", rec->name,
                             strncmp(rec->name, "optim.", 6) ? "" : rec->name[6] == 'm' ? "optim.m." : "optim.v.",
                             m->tensors[*next].name);
    if (i < *next)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: out of order or given twice (a checkpoint's tensors "
                             "come once each, in the model's order)", rec->name);
    (*next)++;
    return 0;
}

static int load_all(llm_reader *r, llm_model *m, llm_optim *o, llm_ckpt_train *train,
                    int *has_train, int allow_quant, llm_error *err)
{
    const llm_record *rec;
    int rc = llm_reader_next(r, &rec, err);
    if (rc == 0) return llm_error_set(err, LLM_ERR_FORMAT, "empty stream: not a model checkpoint");
    if (rc < 0) return rc;
    if (rec->kind != LLM_RECORD_META || strcmp(rec->name, "config") != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "not a model checkpoint (first record is '%s')",
                             rec->name);
    llm_config cfg;
    LLM_TRY(llm_ckpt_parse_config(rec, &cfg, err));
    LLM_TRY(llm_model_alloc(m, &cfg, err));
    if (allow_quant && llm_record_attr(rec, "quant")) llm_model_sparse_arena(m);
    *has_train = 0;
    int64_t optim_t = 0;
    int next[3] = {0, 0, 0}; /* the tensor each sequence expects next: params, optim.m, optim.v */
    char *seen = calloc((size_t)m->n_tensors * 3, 1); /* params, m, v */
    int slots = llm_linear_count(cfg.n_layers);
    unsigned char *qgot = calloc((size_t)slots, 1); /* companions of quantized linears */
    if (!seen || !qgot) {
        free(seen), free(qgot);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        if (rec->kind == LLM_RECORD_META) {
            if (!strcmp(rec->name, "tokenizer")) rc = llm_tok_read(&m->tok, r, rec, err);
            else if (!strcmp(rec->name, "train")) {
                rc = llm_ckpt_parse_train(rec, train, &optim_t, err);
                *has_train = rc == 0;
                if (rc == 0 && o) {
                    rc = llm_optim_init(o, &train->optim, m->n_params, err);
                    o->t = optim_t;
                }
            }
            if (rc < 0) break;
            continue;
        }
        const char *quant = llm_record_attr(rec, "quant");
        if (quant && !allow_quant) {
            rc = llm_error_set(err, LLM_ERR_FORMAT,
                               "%s is already quantized (%s): this needs a float checkpoint",
                               rec->name, quant);
            break;
        }
        if (quant) {
            const llm_param_tensor *pt = llm_model_tensor(m, rec->name);
            if ((pt && (rc = in_order(m, rec, pt, &next[0], err)) < 0) ||
                (rc = read_qlinear(r, rec, m, err)) < 0)
                break;
            if (pt) seen[pt - m->tensors] = 1;
            continue;
        }
        if ((rc = read_companion(r, rec, m, qgot, err)) < 0) break;
        if (rc == 1) {
            rc = 0;
            continue;
        }
        int which = 0;
        const char *name = rec->name;
        if (!strncmp(name, "optim.m.", 8)) which = 1, name += 8;
        else if (!strncmp(name, "optim.v.", 8)) which = 2, name += 8;
        const llm_param_tensor *pt = llm_model_tensor(m, name);
        if (!pt) {
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: not a tensor of this model", rec->name);
            break;
        }
        if ((rc = in_order(m, rec, pt, &next[which], err)) < 0) break;
        float *base = which == 0 ? m->arena : NULL;
        if (which && o && *has_train) base = which == 1 ? o->m : o->v;
        if (which && !*has_train) {
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: optimizer state without training state", rec->name);
            break;
        }
        seen[(size_t)which * m->n_tensors + (size_t)(pt - m->tensors)] = 1;
        if (!base) continue; /* moments the caller does not want, or this optimizer lacks */
        rc = read_into(r, rec, pt, base + pt->offset, err);
        if (rc < 0) break;
    }
    if (rc == 0 && m->tok.kind != LLM_TOK_BYTES && m->tok.vocab != m->cfg.vocab)
        rc = llm_error_set(err, LLM_ERR_FORMAT, "the tokenizer has %d tokens, the model %d",
                           m->tok.vocab, m->cfg.vocab);
    if (rc == 0 && m->tok.kind == LLM_TOK_BYTES && m->tok.vocab > m->cfg.vocab) /* text would give ids past it */
        rc = llm_error_set(err, LLM_ERR_FORMAT, "the byte-level tokenizer (ids 0..%d) does not fit the "
                           "model's vocabulary (0..%d)", m->tok.vocab - 1, m->cfg.vocab - 1);
    for (int i = 0; rc == 0 && i < m->n_tensors; i++)
        if (!seen[i]) rc = llm_error_set(err, LLM_ERR_FORMAT, "tensor %s is missing", m->tensors[i].name);
    for (int k = 1; rc == 0 && o && *has_train && k <= 2; k++) {
        if (!(k == 1 ? o->m : o->v)) continue;
        for (int i = 0; rc == 0 && i < m->n_tensors; i++)
            if (!seen[(size_t)k * m->n_tensors + i])
                rc = llm_error_set(err, LLM_ERR_FORMAT, "optimizer state optim.%c.%s is missing",
                                   k == 1 ? 'm' : 'v', m->tensors[i].name);
    }
    for (int i = 0; rc == 0 && i < slots; i++) {
        char name[64];
        llm_linear_name(i, cfg.n_layers, name, sizeof name);
        if (m->lin[i].q && !(qgot[i] & 1)) rc = llm_error_set(err, LLM_ERR_FORMAT, "%s.scale is missing", name);
        else if (m->lin[i].q && m->lin[i].q->zero && !(qgot[i] & 2))
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s.zero is missing", name);
    }
    free(seen);
    free(qgot);
    return rc;
}

int llm_ckpt_load(const char *path, llm_model *m, llm_optim *o, llm_ckpt_train *train,
                  int *has_train, llm_error *err)
{
    llm_reader *r;
    memset(m, 0, sizeof *m);
    if (o) memset(o, 0, sizeof *o);
    LLM_TRY(llm_reader_open(&r, path, err));
    llm_ckpt_train scratch;
    int rc = load_all(r, m, o, train ? train : &scratch, has_train, 0, err);
    llm_reader_close(r);
    if (rc < 0) {
        if (strncmp(err->msg, path, strlen(path)) != 0) llm_error_prefix(err, "%s", path);
        llm_tok_free(&m->tok);
        llm_model_free(m);
        if (o) llm_optim_free(o);
    }
    return rc;
}

int llm_ckpt_load_model(const char *path, llm_model *m, llm_error *err)
{
    llm_reader *r;
    memset(m, 0, sizeof *m);
    LLM_TRY(llm_reader_open(&r, path, err));
    llm_ckpt_train scratch;
    int has_train;
    int rc = load_all(r, m, NULL, &scratch, &has_train, 1, err);
    llm_reader_close(r);
    if (rc < 0) {
        if (strncmp(err->msg, path, strlen(path)) != 0) llm_error_prefix(err, "%s", path);
        llm_model_free(m);
    }
    return rc;
}

uint64_t llm_ckpt_hash_tokens(const int32_t *tokens, int64_t n)
{
    uint64_t h = 14695981039346656037u;
    for (int64_t i = 0; i < n; i++) {
        uint32_t t = (uint32_t)tokens[i];
        for (int k = 0; k < 4; k++) h = (h ^ ((t >> (8 * k)) & 0xff)) * 1099511628211u;
    }
    return h;
}

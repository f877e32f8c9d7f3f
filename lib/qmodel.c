/* qmodel — a whole model's linears quantized: their inputs, Hessians from
 * activations, SmoothQuant, the RTN / GPTQ / w8a8 loop and the dequantized
 * twin (qmodel.h, llm-quant(1)). */
#include "qmodel.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smooth.h"

enum { PER_LAYER = LLM_QMODEL_INPUTS_PER_LAYER };

/* The input (of a layer's four) that each of wq, wk, wv, wo, w1, w2, w3 reads. */
static const int input_of_linear[LLM_LIN_PER_LAYER] = {0, 0, 0, 1, 2, 3, 2};
static const char *const input_names[PER_LAYER] = {"attn.wq.in", "attn.wo.in", "mlp.w1.in", "mlp.w2.in"};

/* Is input k the output of a norm (attn.wq.in or mlp.w1.in of a layer), so
 * that SmoothQuant can fold its scales? */
static int norm_input(const llm_qmodel *q, int k)
{
    return k < PER_LAYER * q->m->cfg.n_layers && k % PER_LAYER % 2 == 0;
}

/* The smoothing scales [D] of input k, or NULL. */
static const float *smooth_of(const llm_qmodel *q, int k)
{
    if (!q->smooth_s || !norm_input(q, k)) return NULL;
    return q->smooth_s + ((size_t)(k / PER_LAYER) * 2 + (size_t)(k % PER_LAYER) / 2) * (size_t)q->m->cfg.dim;
}

int llm_qmodel_init(llm_qmodel *q, llm_model *m, const char *model_label, const llm_qmodel_opts *opts,
                    llm_error *err)
{
    const llm_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, E = D / c->n_heads, HE = c->n_heads * E;
    *q = (llm_qmodel){.m = m, .model_label = model_label, .o = *opts};
    q->n_lin = llm_linear_count(L);
    q->n_in = PER_LAYER * L + 1;
    q->lin = calloc((size_t)q->n_lin, sizeof *q->lin);
    q->in_name = calloc((size_t)q->n_in, sizeof *q->in_name);
    q->in_width = calloc((size_t)q->n_in, sizeof *q->in_width);
    q->h = calloc((size_t)q->n_in, sizeof *q->h);
    if (!q->lin || !q->in_name || !q->in_width || !q->h) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < q->n_lin; i++) {
        const llm_linear *lin = &m->lin[i];
        int layer = i / LLM_LIN_PER_LAYER, site = i % LLM_LIN_PER_LAYER; /* layer L: the classifier */
        q->lin[i] = (llm_qmodel_linear){.w = lin->w, .rows = lin->out, .cols = lin->in,
                                        .input = PER_LAYER * layer + (layer < L ? input_of_linear[site] : 0)};
    }
    for (int l = 0; l < L; l++) {
        int widths[PER_LAYER] = {D, HE, D, c->hidden};
        for (int k = 0; k < PER_LAYER; k++) {
            snprintf(q->in_name[PER_LAYER * l + k], sizeof q->in_name[0], "layers.%d.%s", l, input_names[k]);
            q->in_width[PER_LAYER * l + k] = widths[k];
        }
    }
    snprintf(q->in_name[PER_LAYER * L], sizeof q->in_name[0], "cls.in");
    q->in_width[PER_LAYER * L] = D;
    for (int i = 0; i < q->n_lin; i++) {
        llm_qmodel_linear *li = &q->lin[i];
        llm_linear_name(i, L, li->name, sizeof li->name);
        li->quantize = i < LLM_LIN_PER_LAYER * L || opts->cls;
        for (int k = 0; li->quantize && k < opts->n_skip; k++)
            if (fnmatch(opts->skip[k], li->name, 0) == 0) li->quantize = 0;
        li->w_sqnr = li->out_sqnr = li->rtn_out_sqnr = NAN;
        q->todo += li->quantize;
    }
    return 0;
}

void llm_qmodel_free(llm_qmodel *q)
{
    if (!q) return;
    for (int k = 0; q->h && k < q->n_in; k++) llm_hessian_free(&q->h[k]);
    free(q->h), free(q->lin), free(q->in_name), free(q->in_width), free(q->smooth_s);
    *q = (llm_qmodel){0};
}

int llm_qmodel_check_format(const llm_qmodel *q, llm_error *err)
{
    for (int i = 0; i < q->n_lin; i++)
        if (q->lin[i].quantize && llm_qformat_check(&q->o.f, q->lin[i].cols, err) < 0)
            return llm_error_prefix(err, "%s", q->lin[i].name);
    return 0;
}

/* ---- the calibration table and SmoothQuant ---- */

static int smooth(llm_qmodel *q, llm_error *err)
{
    int L = q->m->cfg.n_layers, D = q->m->cfg.dim;
    const float **absmax = malloc((size_t)2 * L * sizeof *absmax);
    q->smooth_s = malloc((size_t)2 * L * D * sizeof *q->smooth_s);
    if (!absmax || !q->smooth_s) {
        free(absmax);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 2; k++)
            absmax[2 * l + k] = llm_calib_table_find(q->table, q->in_name[PER_LAYER * l + 2 * k], "absmax")->data;
    int rc = llm_smooth_model(q->m, absmax, q->o.smooth, q->smooth_s, err);
    free(absmax);
    return rc < 0 ? llm_error_prefix(err, "%s", q->table->path) : 0;
}

int llm_qmodel_calibrate(llm_qmodel *q, const llm_calib_table *table, llm_error *err)
{
    const char *path = table->path;
    for (int k = 0; k < q->n_in; k++) {
        const char *in = q->in_name[k];
        int needs_absmax = q->o.smooth && norm_input(q, k);
        int reads = 0; /* does a quantized linear read it? */
        for (int i = 0; i < q->n_lin; i++) reads |= q->lin[i].quantize && q->lin[i].input == k;
        const llm_calib_table_entry *a = llm_calib_table_find(table, in, "absmax");
        if (needs_absmax && !a)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: no %s.absmax for --smooth (llm-calib --per-channel)",
                                 path, in);
        if (needs_absmax && a->n != q->in_width[k])
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s.absmax has %" PRId64 " channels, the model's input %d",
                                 path, in, a->n, q->in_width[k]);
        if (q->o.f.scheme == LLM_Q_W8A8 && reads && !needs_absmax && !llm_calib_table_find(table, in, "scale"))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: no %s.scale for w8a8: the table misses a layer", path, in);
    }
    q->table = table;
    return q->o.smooth ? smooth(q, err) : 0;
}

/* The w8a8 step of input k: the table's scale by the chosen method, or, for
 * a smoothed input, max_j absmax_j / s_j / 127. */
static int act_step(const llm_qmodel *q, int k, float *step, llm_error *err)
{
    const float *s = smooth_of(q, k);
    if (!s) return llm_calib_table_scale(q->table, q->in_name[k], q->o.calib_method, step, err);
    const llm_calib_table_entry *a = llm_calib_table_find(q->table, q->in_name[k], "absmax");
    float amax = 0;
    for (int j = 0; j < q->in_width[k]; j++) amax = fmaxf(amax, a->data[j] / s[j]);
    *step = amax > 0 ? amax / 127.0f : 1.0f;
    return 0;
}

/* ---- activations into Hessians ---- */

/* Adds the current record of r to the Hessian of its input. */
static int add_record(llm_qmodel *q, llm_reader *r, const llm_record *rec, const char *label, llm_error *err)
{
    int k = 0;
    while (k < q->n_in && strcmp(q->in_name[k], rec->name)) k++;
    if (k == q->n_in)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: record '%s' is not the input of a linear layer of %s", label,
                             rec->name, q->model_label);
    if (rec->dtype != LLM_DTYPE_F32 || rec->shape.ndim != 2 || rec->shape.dim[1] != q->in_width[k]) {
        char s[64];
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s%s, but the model's input is f32 [tokens, %d]", label,
                             rec->name, llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, s, sizeof s),
                             q->in_width[k]);
    }
    if (!q->h[k].sum) return 0; /* an input no quantized linear reads */
    if (rec->shape.dim[0] > LLM_HESSIAN_MAX_ROWS) /* before reading it whole */
        return llm_error_set(err, LLM_ERR_LIMIT, "%s: %s has %" PRId64 " rows; a record holds at most %d", label,
                             rec->name, rec->shape.dim[0], LLM_HESSIAN_MAX_ROWS);
    llm_tensor t;
    if (llm_reader_read_tensor(r, &t, err) < 0) return llm_error_prefix(err, "%s", label);
    int rc = llm_hessian_add(&q->h[k], t.data, rec->shape.dim[0], err);
    llm_tensor_free(&t);
    return rc < 0 ? llm_error_prefix(err, "%s: %s", label, rec->name) : 0;
}

int llm_qmodel_hessians(llm_qmodel *q, llm_reader *r, const char *label, llm_error *err)
{
    for (int i = 0; i < q->n_lin; i++) {
        int k = q->lin[i].input;
        if (q->lin[i].quantize && !q->h[k].sum) LLM_TRY(llm_hessian_init(&q->h[k], q->in_width[k], err));
    }
    const llm_record *rec;
    int rc;
    while ((rc = llm_reader_next(r, &rec, err)) > 0)
        if (rec->kind == LLM_RECORD_TENSOR) LLM_TRY(add_record(q, r, rec, label, err));
    if (rc < 0) return rc;
    for (int k = 0; k < q->n_in; k++)
        if (q->h[k].sum && q->h[k].count == 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: no activations for %s", label, q->in_name[k]);
    for (int k = 0; k < q->n_in; k++) { /* the smoothed model's inputs are x / s */
        const float *s = smooth_of(q, k);
        if (!s || !q->h[k].sum) continue;
        float *inv = malloc((size_t)q->in_width[k] * sizeof *inv);
        if (!inv) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        for (int j = 0; j < q->in_width[k]; j++) inv[j] = 1.0f / s[j];
        llm_hessian_scale(&q->h[k], inv);
        free(inv);
    }
    return 0;
}

/* ---- the per-linear loop ---- */

/* *sqnr = 10 log10 of the output energy over that of the output error of
 * W - Ŵ; diff is scratch [rows, cols].  0 or LLM_ERR_NOMEM. */
static int out_sqnr(const llm_hessian *h, const llm_qmodel_linear *li, const llm_qlinear *qw, double energy,
                    float *diff, double *sqnr, llm_error *err)
{
    size_t n = (size_t)li->rows * li->cols;
    llm_dequantize(qw, diff);
    for (size_t j = 0; j < n; j++) diff[j] = li->w[j] - diff[j];
    double noise;
    LLM_TRY(llm_hessian_energy(h, diff, li->rows, &noise, err));
    *sqnr = 10 * log10(energy / noise);
    return 0;
}

/* Quantizes linear li into *qw (RTN, or GPTQ with RTN measured beside it)
 * and fills its measurements.  Messages of the quantizers name the linear;
 * those of the table name the table. */
static int quantize_linear(llm_qmodel *q, llm_qmodel_linear *li, llm_qlinear *qw, llm_error *err)
{
    llm_hessian *h = q->h[li->input].sum ? &q->h[li->input] : NULL;
    if (q->o.gptq && !h)
        return llm_error_set(err, LLM_ERR_STATE, "%s: GPTQ needs the Hessian of %s", li->name, q->in_name[li->input]);
    if (q->o.f.scheme == LLM_Q_W8A8 && !q->table)
        return llm_error_set(err, LLM_ERR_STATE, "%s: w8a8 needs a calibration table", li->name);
    llm_qlinear rtn = {0};
    if (llm_quantize_rtn(li->w, li->rows, li->cols, &q->o.f, &rtn, err) < 0)
        return llm_error_prefix(err, "%s", li->name);
    int rc = 0;
    if (q->o.gptq && (rc = llm_gptq(li->w, li->rows, li->cols, h, &q->o.f, &q->o.gptq_opts, qw, err)) < 0) {
        llm_error_prefix(err, "%s", li->name);
    } else if (!q->o.gptq) {
        *qw = rtn;
        rtn = (llm_qlinear){0};
    }
    if (rc == 0 && q->o.f.scheme == LLM_Q_W8A8) rc = act_step(q, li->input, &qw->act_scale, err);
    size_t n = (size_t)li->rows * li->cols;
    float *wh = rc == 0 ? malloc(n * sizeof *wh) : NULL;
    if (rc == 0 && !wh) rc = llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    if (rc == 0) {
        llm_dequantize(qw, wh);
        li->w_sqnr = llm_sqnr_db(li->w, wh, n);
        double energy = 0;
        if (h) rc = llm_hessian_energy(h, li->w, li->rows, &energy, err);
        if (h && rc == 0) rc = out_sqnr(h, li, qw, energy, wh, &li->out_sqnr, err);
        if (h && rc == 0 && q->o.gptq) rc = out_sqnr(h, li, &rtn, energy, wh, &li->rtn_out_sqnr, err);
        if (rc < 0) llm_error_prefix(err, "%s", li->name);
    }
    free(wh);
    llm_qlinear_free(&rtn);
    return rc;
}

int llm_qmodel_quantize(llm_qmodel *q, llm_qmodel_progress progress, void *ctx, llm_error *err)
{
    llm_model *m = q->m;
    int done = 0;
    for (int i = 0; i < q->n_lin; i++) {
        llm_qmodel_linear *li = &q->lin[i];
        if (!li->quantize) continue;
        if (progress) progress(done, q->todo, li->name, ctx);
        llm_qlinear *qw = calloc(1, sizeof *qw);
        if (!qw) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        int rc = quantize_linear(q, li, qw, err);
        if (rc < 0) {
            llm_qlinear_free(qw);
            free(qw);
            return rc;
        }
        m->lin[i].q = qw;
        done++;
    }
    for (int k = 0; k < q->n_in; k++) llm_hessian_free(&q->h[k]);
    q->table = NULL;
    return 0;
}

/* ---- the dequantized twin ---- */

int llm_qmodel_dequantize(llm_model *m, llm_model *out, llm_error *err)
{
    int L = m->cfg.n_layers, cls = llm_linear_index(L, 0);
    int untie = m->cfg.tie && m->lin[cls].q;
    llm_config cfg = m->cfg;
    cfg.tie = untie ? 0 : cfg.tie;
    LLM_TRY(llm_model_alloc(out, &cfg, err));
    llm_tok_free(&out->tok);
    out->tok = m->tok;
    m->tok = (llm_tok){0};
    for (int i = 0; i < out->n_tensors; i++) {
        const llm_param_tensor *t = &out->tensors[i];
        const llm_param_tensor *src = llm_model_tensor(m, !strcmp(t->name, "cls") && untie ? "tok_emb" : t->name);
        memcpy(out->arena + t->offset, m->arena + src->offset, (size_t)t->count * sizeof(float));
    }
    for (int i = 0; i <= cls; i++)
        if (m->lin[i].q) llm_dequantize(m->lin[i].q, out->lin[i].w);
    return 0;
}

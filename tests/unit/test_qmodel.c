/* Unit tests for lib/qmodel: the linears' views and inputs against the
 * model's named tensors and a table written here; each quantized linear
 * against llm_quantize_rtn / llm_gptq called on that weight alone; Hessians
 * from a stream against x xᵀ summed here in double; output SQNRs against the
 * layer outputs computed here in double; SmoothQuant's scales and the w8a8
 * steps against the formulas of smooth.h evaluated here; the dequantized
 * twin; and the error messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "qmodel.h"

static const llm_config cfg = {.vocab = 50, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                               .hidden = 96, .seq_len = 16, .tie = 1, .norm_eps = 1e-5f, .rope_theta = 10000};

enum { N_IN = 4 * 2 + 1, N_LIN = 7 * 2 + 1, RECORDS = 2 };
static const int record_rows[RECORDS] = {5, 7};
enum { ROWS = 12 }; /* activation rows per input: the sum of record_rows */

/* The input each linear reads, as llm-quant(1) states it. */
static const char *input_of(const char *linear, char *buf, size_t size)
{
    if (!strcmp(linear, "cls")) return "cls.in";
    int l = linear[7] - '0';
    const char *tail = linear + 9; /* after "layers.N." */
    const char *in = !strcmp(tail, "attn.wo") ? "attn.wo.in"
                     : !strcmp(tail, "mlp.w2") ? "mlp.w2.in"
                     : !strncmp(tail, "attn.", 5) ? "attn.wq.in"
                                                  : "mlp.w1.in";
    snprintf(buf, size, "layers.%d.%s", l, in);
    return buf;
}

/* Random activations per input, [ROWS, width], and their stream file
 * (records interleaved across inputs). */
typedef struct acts {
    float *x[N_IN];
    char path[4096];
} acts;

static void make_acts(acts *a, const llm_qmodel *q, const char *file, unsigned long long seed)
{
    llm_error err = {0};
    for (int k = 0; k < N_IN; k++) {
        a->x[k] = malloc((size_t)ROWS * q->in_width[k] * sizeof *a->x[k]);
        for (int i = 0; i < ROWS * q->in_width[k]; i++) a->x[k][i] = (float)check_normal(&seed) * (1 + i % 3);
    }
    snprintf(a->path, sizeof a->path, "%s/%s", check_tmpdir(), file);
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, a->path, NULL, &err), err);
    for (int r = 0, row0 = 0; r < RECORDS; row0 += record_rows[r++])
        for (int k = 0; k < N_IN; k++) {
            llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = q->in_name[k], .dtype = LLM_DTYPE_F32,
                              .shape = llm_shape_make(2, (int64_t[]){record_rows[r], q->in_width[k]})};
            CHECK_OK(llm_writer_record(w, &rec, a->x[k] + (size_t)row0 * q->in_width[k], &err), err);
        }
    CHECK_OK(llm_writer_close(w, &err), err);
}

static void free_acts(acts *a)
{
    for (int k = 0; k < N_IN; k++) free(a->x[k]);
}

static int read_hessians(llm_qmodel *q, const char *path, llm_error *err)
{
    llm_reader *r;
    LLM_TRY(llm_reader_open(&r, path, err));
    int rc = llm_qmodel_hessians(q, r, path, err);
    llm_reader_close(r);
    return rc;
}

/* 10 log10(|X Wᵀ|^2 / |X (W - Ŵ)ᵀ|^2) in double. */
static double ref_out_sqnr(const float *x, int n, const float *w, const float *w_hat, int rows, int cols)
{
    double sig = 0, noise = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double y = 0, e = 0;
            for (int j = 0; j < cols; j++) {
                y += (double)x[(size_t)t * cols + j] * w[(size_t)r * cols + j];
                e += (double)x[(size_t)t * cols + j] * ((double)w[(size_t)r * cols + j] - w_hat[(size_t)r * cols + j]);
            }
            sig += y * y, noise += e * e;
        }
    return 10 * log10(sig / noise);
}

static double ref_sqnr(const float *w, const float *w_hat, size_t n)
{
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) sig += (double)w[i] * w[i], noise += ((double)w[i] - w_hat[i]) * ((double)w[i] - w_hat[i]);
    return 10 * log10(sig / noise);
}

static int same_qlinear(const llm_qlinear *a, const llm_qlinear *b)
{
    size_t n = (size_t)a->rows * a->cols, ng = (size_t)a->rows * a->groups;
    if (a->rows != b->rows || a->cols != b->cols || a->groups != b->groups || a->f.scheme != b->f.scheme) return 0;
    if (a->q8 && (!b->q8 || memcmp(a->q8, b->q8, n))) return 0;
    if (a->q4 && (!b->q4 || memcmp(a->q4, b->q4, n / 2))) return 0;
    if (a->zero && (!b->zero || memcmp(a->zero, b->zero, ng))) return 0;
    return !memcmp(a->scale, b->scale, ng * sizeof *a->scale);
}

typedef struct progress_log {
    int calls, in_order;
    char names[N_LIN][64];
} progress_log;

static void log_progress(int done, int todo, const char *name, void *ctx)
{
    progress_log *p = ctx;
    p->in_order &= done == p->calls && todo == 11;
    snprintf(p->names[p->calls++], sizeof p->names[0], "%s", name);
}

/* The views are the model's named tensors with their shapes, each reads the
 * input the man page names, skipped linears and the classifier stay float,
 * each quantized one is llm_quantize_rtn of its weight, its weight SQNR
 * matches one computed here, and progress is reported once per linear (11:
 * 14 less layer 1's mlp). */
static void test_layout_and_rtn(void)
{
    llm_error err = {0};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &cfg, 5, &err), err);
    const char *skip[] = {"layers.1.mlp.*"};
    llm_qmodel_opts o = {.f = {.scheme = LLM_Q_INT8}, .skip = skip, .n_skip = 1};
    llm_qmodel q;
    CHECK_OK(llm_qmodel_init(&q, &m, "m", &o, &err), err);
    CHECK(q.n_lin == N_LIN && q.n_in == N_IN && q.todo == 11);
    int views_ok = 1, inputs_ok = 1;
    for (int i = 0; i < q.n_lin; i++) {
        const llm_qmodel_linear *li = &q.lin[i];
        /* the tied classifier is tok_emb */
        const llm_param_tensor *t = llm_model_tensor(&m, !strcmp(li->name, "cls") ? "tok_emb" : li->name);
        views_ok &= t && li->w == m.arena + t->offset && t->shape.ndim == 2 && t->shape.dim[0] == li->rows &&
                    t->shape.dim[1] == li->cols;
        char buf[64];
        inputs_ok &= !strcmp(q.in_name[li->input], input_of(li->name, buf, sizeof buf)) &&
                     q.in_width[li->input] == li->cols;
        int skipped = !strcmp(li->name, "cls") || !strncmp(li->name, "layers.1.mlp.", 13);
        CHECK_MSG(li->quantize == !skipped, "%s: quantize %d", li->name, li->quantize);
    }
    CHECK_MSG(views_ok, "a linear's view is not its named tensor");
    CHECK_MSG(inputs_ok, "a linear reads the wrong input");
    CHECK_OK(llm_qmodel_check_format(&q, &err), err);
    progress_log p = {.in_order = 1};
    CHECK_OK(llm_qmodel_quantize(&q, log_progress, &p, &err), err);
    CHECK(p.calls == 11 && p.in_order);
    for (int i = 0, c = 0; i < q.n_lin; i++) {
        const llm_qmodel_linear *li = &q.lin[i];
        if (!li->quantize) {
            CHECK_MSG(!m.lin[i].q && isnan(li->w_sqnr), "%s: skipped but quantized", li->name);
            continue;
        }
        CHECK_MSG(!strcmp(p.names[c], li->name), "progress named %s for %s", p.names[c], li->name);
        c++;
        llm_qlinear want;
        CHECK_OK(llm_quantize_rtn(li->w, li->rows, li->cols, &o.f, &want, &err), err);
        CHECK_MSG(m.lin[i].q && same_qlinear(m.lin[i].q, &want), "%s: not llm_quantize_rtn of its weight", li->name);
        size_t n = (size_t)li->rows * li->cols;
        float *wh = malloc(n * sizeof *wh);
        llm_dequantize(&want, wh);
        CHECK_NEAR(li->w_sqnr, ref_sqnr(li->w, wh, n), 1e-6);
        CHECK(isnan(li->out_sqnr) && isnan(li->rtn_out_sqnr));
        free(wh);
        llm_qlinear_free(&want);
    }
    llm_qmodel_free(&q);
    llm_model_free(&m);
}

/* Hessians from a stream equal x xᵀ summed here in double and
 * llm_hessian_add on the same rows; an input only skipped linears read gets
 * none; RTN's and GPTQ's output SQNRs equal those of the layer outputs
 * computed here; GPTQ's codes equal llm_gptq's on the same Hessian. */
static void test_hessians_rtn_and_gptq(void)
{
    llm_error err = {0};
    for (int gptq = 0; gptq < 2; gptq++) {
        llm_model m;
        CHECK_OK(llm_model_init(&m, &cfg, 7, &err), err);
        const char *skip[] = {"layers.1.attn.wo"};
        llm_qmodel_opts o = {.f = {.scheme = LLM_Q_INT4, .group = 32, .sym = gptq}, .skip = skip, .n_skip = 1,
                             .cls = 1, .gptq = gptq, .gptq_opts = {.damp = 0.01, .block = 16}};
        llm_qmodel q;
        CHECK_OK(llm_qmodel_init(&q, &m, "m", &o, &err), err);
        acts a;
        make_acts(&a, &q, gptq ? "acts_g.llmt" : "acts_r.llmt", 11);
        CHECK_OK(read_hessians(&q, a.path, &err), err);
        llm_hessian direct[N_IN];
        for (int k = 0; k < N_IN; k++) {
            int n = q.in_width[k];
            if (!strcmp(q.in_name[k], "layers.1.attn.wo.in")) {
                CHECK_MSG(!q.h[k].sum, "a Hessian for an input no quantized linear reads");
                direct[k] = (llm_hessian){0};
                continue;
            }
            CHECK(q.h[k].n == n && q.h[k].count == ROWS);
            double worst = 0;
            for (int i = 0; i < n; i++)
                for (int j = i; j < n; j++) {
                    double s = 0;
                    for (int t = 0; t < ROWS; t++) s += (double)a.x[k][t * n + i] * a.x[k][t * n + j];
                    worst = fmax(worst, fabs(s - q.h[k].sum[(size_t)i * n + j]) / (1 + fabs(s)));
                }
            CHECK_MSG(worst < 1e-5, "%s: Hessian off a direct sum by %.3g", q.in_name[k], worst);
            CHECK_OK(llm_hessian_init(&direct[k], n, &err), err);
            for (int r = 0, row0 = 0; r < RECORDS; row0 += record_rows[r++])
                CHECK_OK(llm_hessian_add(&direct[k], a.x[k] + (size_t)row0 * n, record_rows[r], &err), err);
            int same = 1;
            for (int i = 0; i < n; i++)
                for (int j = i; j < n; j++) same &= direct[k].sum[(size_t)i * n + j] == q.h[k].sum[(size_t)i * n + j];
            CHECK_MSG(same, "%s: Hessian differs from llm_hessian_add on the same rows", q.in_name[k]);
        }
        CHECK_OK(llm_qmodel_quantize(&q, NULL, NULL, &err), err);
        for (int i = 0; i < q.n_lin; i++) {
            const llm_qmodel_linear *li = &q.lin[i];
            if (!li->quantize) continue;
            llm_qlinear want, rtn;
            CHECK_OK(llm_quantize_rtn(li->w, li->rows, li->cols, &o.f, &rtn, &err), err);
            if (gptq) CHECK_OK(llm_gptq(li->w, li->rows, li->cols, &direct[li->input], &o.f, &o.gptq_opts, &want, &err), err);
            CHECK_MSG(same_qlinear(m.lin[i].q, gptq ? &want : &rtn), "%s: not the %s of its weight", li->name,
                      gptq ? "llm_gptq" : "llm_quantize_rtn");
            size_t n = (size_t)li->rows * li->cols;
            float *wh = malloc(n * sizeof *wh);
            llm_dequantize(m.lin[i].q, wh);
            const float *x = a.x[li->input];
            CHECK_NEAR(li->out_sqnr, ref_out_sqnr(x, ROWS, li->w, wh, li->rows, li->cols), 1e-3);
            if (gptq) {
                llm_dequantize(&rtn, wh);
                CHECK_NEAR(li->rtn_out_sqnr, ref_out_sqnr(x, ROWS, li->w, wh, li->rows, li->cols), 1e-3);
                llm_qlinear_free(&want);
            } else {
                CHECK(isnan(li->rtn_out_sqnr));
            }
            free(wh);
            llm_qlinear_free(&rtn);
        }
        CHECK_MSG(!q.h[0].sum, "the Hessians outlive the quantization");
        for (int k = 0; k < N_IN; k++) llm_hessian_free(&direct[k]);
        free_acts(&a);
        llm_qmodel_free(&q);
        llm_model_free(&m);
    }
}

/* A table in memory: N.absmax [width] of absmax[k] and N.scale
 * methods=max,entropy of {0.1 (k + 1), 0.01 (k + 1)} for every input. */
typedef struct mem_table {
    llm_calib_table t;
    llm_calib_table_entry e[2 * N_IN];
    char names[2 * N_IN][64];
    float scales[N_IN][2];
} mem_table;

static void make_table(mem_table *mt, const llm_qmodel *q, float *const *absmax)
{
    *mt = (mem_table){.t = {.path = "mem.llmt", .e = mt->e, .n = 2 * N_IN}};
    for (int k = 0; k < N_IN; k++) {
        mt->scales[k][0] = 0.1f * (float)(k + 1), mt->scales[k][1] = 0.01f * (float)(k + 1);
        snprintf(mt->names[2 * k], sizeof mt->names[0], "%s.absmax", q->in_name[k]);
        snprintf(mt->names[2 * k + 1], sizeof mt->names[0], "%s.scale", q->in_name[k]);
        mt->e[2 * k] = (llm_calib_table_entry){.name = mt->names[2 * k], .data = absmax[k], .n = q->in_width[k]};
        mt->e[2 * k + 1] = (llm_calib_table_entry){.name = mt->names[2 * k + 1], .data = mt->scales[k], .n = 2,
                                                   .methods = "max,entropy"};
    }
}

/* w8a8 steps are the table's (entropy by default, or the method asked for);
 * with smoothing, the weights of wq, wk, wv, w1, w3 are scaled by
 * s_j = absmax_j^α / max|W_j|^(1-α) (evaluated here from the weights before),
 * a smoothed input's step is max_j absmax_j / s_j / 127, and its Hessian is
 * that of x / s. */
static void test_w8a8_and_smoothing(void)
{
    llm_error err = {0};
    const float alpha = 0.5f;
    for (int smooth = 0; smooth < 2; smooth++) {
        llm_model m, before;
        CHECK_OK(llm_model_init(&m, &cfg, 9, &err), err);
        CHECK_OK(llm_model_init(&before, &cfg, 9, &err), err);
        llm_qmodel_opts o = {.f = {.scheme = LLM_Q_W8A8}, .smooth = smooth ? alpha : 0,
                             .calib_method = smooth ? NULL : "max"};
        llm_qmodel q;
        CHECK_OK(llm_qmodel_init(&q, &m, "m", &o, &err), err);
        unsigned long long seed = 3;
        float *absmax[N_IN];
        for (int k = 0; k < N_IN; k++) {
            absmax[k] = malloc((size_t)q.in_width[k] * sizeof *absmax[k]);
            for (int j = 0; j < q.in_width[k]; j++) absmax[k][j] = (float)(0.5 + 4 * check_uniform(&seed));
        }
        mem_table mt;
        make_table(&mt, &q, absmax);
        acts a;
        make_acts(&a, &q, smooth ? "acts_s.llmt" : "acts_n.llmt", 13);
        CHECK_OK(llm_qmodel_calibrate(&q, &mt.t, &err), err);
        CHECK_OK(read_hessians(&q, a.path, &err), err);
        /* the smoothing scales of the norm inputs, and the Hessians of x / s */
        int D = cfg.dim;
        double s[2][2][64]; /* [layer][attn, mlp][D] */
        for (int l = 0; l < 2; l++)
            for (int g = 0; g < 2; g++) {
                const llm_layer_params *p = &before.p.layers[l];
                const float *ws[3] = {g ? p->w1 : p->wq, g ? p->w3 : p->wk, g ? p->w3 : p->wv};
                int rows[3] = {g ? cfg.hidden : D, g ? cfg.hidden : D / 2, g ? cfg.hidden : D / 2};
                int k = 4 * l + 2 * g;
                for (int j = 0; j < D; j++) {
                    double wmax = 0;
                    for (int i = 0; i < 3; i++)
                        for (int r = 0; r < rows[i]; r++) wmax = fmax(wmax, fabs(ws[i][r * D + j]));
                    s[l][g][j] = smooth ? pow(absmax[k][j], alpha) / pow(wmax, 1 - alpha) : 1;
                }
                double worst = 0, worst_h = 0;
                const float *now = g ? m.p.layers[l].w1 : m.p.layers[l].wq;
                for (int r = 0; r < rows[0]; r++)
                    for (int j = 0; j < D; j++)
                        worst = fmax(worst, fabs(now[r * D + j] - ws[0][r * D + j] * s[l][g][j]) / fabs(ws[0][r * D + j] * s[l][g][j]));
                for (int i = 0; i < D; i++)
                    for (int j = i; j < D; j++) {
                        double h = 0;
                        for (int t = 0; t < ROWS; t++)
                            h += a.x[k][t * D + i] / s[l][g][i] * a.x[k][t * D + j] / s[l][g][j];
                        worst_h = fmax(worst_h, fabs(h - q.h[k].sum[i * D + j]) / (1 + fabs(h)));
                    }
                CHECK_MSG(worst < 1e-5, "layer %d %s: weights off W s by %.3g", l, g ? "w1" : "wq", worst);
                CHECK_MSG(worst_h < 1e-4, "%s: Hessian off that of x / s by %.3g", q.in_name[k], worst_h);
            }
        CHECK_OK(llm_qmodel_quantize(&q, NULL, NULL, &err), err);
        for (int i = 0; i < q.n_lin; i++) {
            const llm_qmodel_linear *li = &q.lin[i];
            if (!li->quantize) continue;
            int k = li->input, l = k / 4, g = k % 4 / 2;
            double want = mt.scales[k][smooth ? 1 : 0];
            if (smooth && k < 8 && k % 2 == 0) {
                double amax = 0;
                for (int j = 0; j < D; j++) amax = fmax(amax, absmax[k][j] / s[l][g][j]);
                want = amax / 127;
            }
            CHECK_MSG(fabs(m.lin[i].q->act_scale - want) <= 1e-6 * want, "%s: step %g, want %g", li->name,
                      (double)m.lin[i].q->act_scale, want);
            llm_qlinear rtn;
            CHECK_OK(llm_quantize_rtn(li->w, li->rows, li->cols, &o.f, &rtn, &err), err);
            CHECK_MSG(same_qlinear(m.lin[i].q, &rtn), "%s: not llm_quantize_rtn of its (smoothed) weight", li->name);
            llm_qlinear_free(&rtn);
        }
        for (int k = 0; k < N_IN; k++) free(absmax[k]);
        free_acts(&a);
        llm_qmodel_free(&q);
        llm_model_free(&m);
        llm_model_free(&before);
    }
}

/* The twin holds each quantized linear dequantized and every other tensor
 * copied; a quantized tied classifier unties it. */
static void test_dequantize(void)
{
    llm_error err = {0};
    for (int cls = 0; cls < 2; cls++) {
        llm_model m, out;
        CHECK_OK(llm_model_init(&m, &cfg, 21, &err), err);
        const char *skip[] = {"layers.0.attn.wk"};
        llm_qmodel_opts o = {.f = {.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, .cls = cls, .skip = skip,
                             .n_skip = 1};
        llm_qmodel q;
        CHECK_OK(llm_qmodel_init(&q, &m, "m", &o, &err), err);
        CHECK_OK(llm_qmodel_quantize(&q, NULL, NULL, &err), err);
        llm_tok tok = m.tok;
        CHECK_OK(llm_qmodel_dequantize(&m, &out, &err), err);
        CHECK(out.cfg.tie == !cls && out.tok.text == tok.text && !m.tok.text);
        int ok = 1;
        for (int i = 0; i < out.n_tensors; i++) {
            const llm_param_tensor *t = &out.tensors[i];
            int slot = llm_linear_find(t->name, cfg.n_layers);
            float *want = malloc((size_t)t->count * sizeof *want);
            if (slot >= 0 && m.lin[slot].q) llm_dequantize(m.lin[slot].q, want);
            else memcpy(want, m.arena + llm_model_tensor(&m, !strcmp(t->name, "cls") ? "tok_emb" : t->name)->offset,
                        (size_t)t->count * sizeof *want);
            int same = !memcmp(out.arena + t->offset, want, (size_t)t->count * sizeof *want);
            CHECK_MSG(same, "%s differs (cls quantized: %d)", t->name, cls);
            ok &= same;
            free(want);
        }
        CHECK(ok && out.n_tensors == m.n_tensors + cls);
        llm_model_free(&out);
        llm_qmodel_free(&q);
        llm_model_free(&m);
    }
}

/* Each failure names what failed, as llm-quant prints it. */
static void test_errors(void)
{
    llm_error err = {0};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &cfg, 1, &err), err);
    llm_qmodel q;
    llm_qmodel_opts o = {.f = {.scheme = LLM_Q_INT4, .group = 128, .sym = 1}};
    CHECK_OK(llm_qmodel_init(&q, &m, "m.llmt", &o, &err), err);
    int rc = llm_qmodel_check_format(&q, &err);
    CHECK_MSG(rc == LLM_ERR_ARG && !strcmp(err.msg, "layers.0.attn.wq: group 128 does not divide the width 64"), "%s",
              err.msg);
    llm_qmodel_free(&q);

    /* tables missing a layer, or of the wrong width */
    float *absmax[N_IN];
    for (int k = 0; k < N_IN; k++) absmax[k] = calloc(96, sizeof *absmax[k]);
    o = (llm_qmodel_opts){.f = {.scheme = LLM_Q_W8A8}, .smooth = 0.5f};
    CHECK_OK(llm_qmodel_init(&q, &m, "m.llmt", &o, &err), err);
    mem_table mt;
    make_table(&mt, &q, absmax);
    mt.e[2 * 4].name = "other"; /* layers.1.attn.wq.in.absmax */
    rc = llm_qmodel_calibrate(&q, &mt.t, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && !strcmp(err.msg, "mem.llmt: no layers.1.attn.wq.in.absmax for --smooth (llm-calib --per-channel)"),
              "%s", err.msg);
    make_table(&mt, &q, absmax);
    mt.e[2 * 2].n = 32;
    rc = llm_qmodel_calibrate(&q, &mt.t, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && !strcmp(err.msg, "mem.llmt: layers.0.mlp.w1.in.absmax has 32 channels, the model's input 64"),
              "%s", err.msg);
    make_table(&mt, &q, absmax);
    mt.e[2 * 3 + 1].name = "other"; /* layers.0.mlp.w2.in.scale */
    rc = llm_qmodel_calibrate(&q, &mt.t, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && !strcmp(err.msg, "mem.llmt: no layers.0.mlp.w2.in.scale for w8a8: the table misses a layer"),
              "%s", err.msg);
    llm_qmodel_free(&q);
    for (int k = 0; k < N_IN; k++) free(absmax[k]);

    /* activations: named for no input, of another width, missing an input */
    o = (llm_qmodel_opts){.f = {.scheme = LLM_Q_INT8}, .gptq = 1, .gptq_opts = {.damp = 0.01, .block = 128}};
    CHECK_OK(llm_qmodel_init(&q, &m, "m.llmt", &o, &err), err);
    rc = llm_qmodel_quantize(&q, NULL, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_STATE && strstr(err.msg, "layers.0.attn.wq: GPTQ needs the Hessian"), "%s", err.msg);
    const char *names[3] = {"layers.2.attn.wq.in", "layers.0.mlp.w2.in", "layers.0.attn.wq.in"};
    const int widths[3] = {64, 64, 64};
    const char *want[3] = {"x.llmt: record 'layers.2.attn.wq.in' is not the input of a linear layer of m.llmt",
                           "x.llmt: layers.0.mlp.w2.in is f32[3,64], but the model's input is f32 [tokens, 96]",
                           "x.llmt: no activations for layers.0.attn.wo.in"};
    float x[3 * 64] = {0};
    for (int c = 0; c < 3; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/x.llmt", check_tmpdir());
        llm_writer *w;
        CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = names[c], .dtype = LLM_DTYPE_F32,
                          .shape = llm_shape_make(2, (int64_t[]){3, widths[c]})};
        CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
        CHECK_OK(llm_writer_close(w, &err), err);
        llm_qmodel_free(&q);
        CHECK_OK(llm_qmodel_init(&q, &m, "m.llmt", &o, &err), err);
        rc = read_hessians(&q, path, &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, want[c]), "%s", err.msg);
    }
    llm_qmodel_free(&q);
    llm_qmodel_free(NULL);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_layout_and_rtn);
    RUN(test_hessians_rtn_and_gptq);
    RUN(test_w8a8_and_smoothing);
    RUN(test_dequantize);
    RUN(test_errors);
    return check_done();
}

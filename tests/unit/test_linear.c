/* Unit tests for lib/linear: the names and indices of a model's linears, and
 * every product of a linear layer — float, int8 and int4 (symmetric and
 * asymmetric) weights, with and without LoRA factors — against double-
 * precision products written here from the weights the codes stand for
 * (rebuilt from codes and scales in the test, not by llm_dequantize):
 * the training forward with its LoRA u, the weight, LoRA and input
 * gradients, inference over one row and many, and row ranges split as
 * threads split them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linear.h"
#include "qmatmul.h"

static void test_names(void)
{
    const int L = 3;
    CHECK(llm_linear_count(L) == 22);
    for (int i = 0; i < llm_linear_count(L); i++) {
        char name[64];
        llm_linear_name(i, L, name, sizeof name);
        CHECK_MSG(llm_linear_find(name, L) == i, "%s: index %d, found %d", name, i, llm_linear_find(name, L));
    }
    char name[64];
    llm_linear_name(llm_linear_index(2, LLM_LIN_W2), L, name, sizeof name);
    CHECK(!strcmp(name, "layers.2.mlp.w2"));
    llm_linear_name(llm_linear_index(L, 0), L, name, sizeof name);
    CHECK(!strcmp(name, "cls"));
    CHECK(!strcmp(llm_linear_site_name(LLM_LIN_WO), "attn.wo"));
    const char *bad[] = {"tok_emb", "norm", "layers.3.attn.wq", "layers.-1.attn.wq", "layers.+1.attn.wq",
                         "layers.01.attn.wq", "layers.1.attn.norm", "layers.1.attn.wq.lora_a", "layers.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(llm_linear_find(bad[i], L) == -1, "%s found as %d", bad[i], llm_linear_find(bad[i], L));
}

/* One layer under test, and its weights in double. */
typedef struct fixture {
    llm_linear lin;
    llm_qlinear q;
    double *w;       /* [out, in] what W stands for */
    float *wf;       /* [out, in] the float weights */
    float *a, *b;    /* LoRA [R, in], [out, R], or NULL */
} fixture;

/* f NULL: float weights. */
static void fixture_init(fixture *fx, const llm_qformat *f, int out, int in, int rank, unsigned long long *rng)
{
    llm_error err = {0};
    memset(fx, 0, sizeof *fx);
    fx->wf = check_randn((size_t)out * in, 0.05, rng);
    fx->w = malloc(sizeof(double) * (size_t)out * in);
    fx->lin = (llm_linear){.out = out, .in = in, .w = fx->wf};
    if (f) {
        CHECK_OK(llm_quantize_rtn(fx->wf, out, in, f, &fx->q, &err), err);
        fx->lin.q = &fx->q;
        int gs = in / fx->q.groups;
        for (int r = 0; r < out; r++)
            for (int k = 0; k < in; k++)
                fx->w[(size_t)r * in + k] = (double)fx->q.scale[(size_t)r * fx->q.groups + k / gs] *
                                            (llm_qlinear_code(&fx->q, r, k) - llm_qlinear_zero(&fx->q, r, k / gs));
        for (size_t i = 0; i < (size_t)out * in; i++) fx->wf[i] = NAN; /* a quantized W's floats are never read */
    } else {
        for (size_t i = 0; i < (size_t)out * in; i++) fx->w[i] = fx->wf[i];
    }
    if (rank) {
        fx->a = check_randn((size_t)rank * in, 0.3, rng);
        fx->b = check_randn((size_t)out * rank, 0.3, rng);
        fx->lin.lora_a = fx->a, fx->lin.lora_b = fx->b, fx->lin.rank = rank, fx->lin.lora_scale = 1.5f;
    }
}

static void fixture_free(fixture *fx)
{
    llm_qlinear_free(&fx->q);
    free(fx->w), free(fx->wf), free(fx->a), free(fx->b);
}

/* worst |got - want| / (scale + 1e-3) over n values, want and scale in double */
static double rel_err(const float *got, const double *want, const double *scale, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]) / (scale[i] + 1e-3));
    return worst;
}

/* y = x W^T + beta y0 + s (x A^T) B^T in double, with |terms| in mag. */
static void ref_forward(const fixture *fx, const float *x, int n, const float *y0, double beta, double *y,
                        double *mag, double *u)
{
    const llm_linear *l = &fx->lin;
    int R = l->rank;
    for (int i = 0; i < n; i++) {
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int k = 0; k < l->in; k++) s += (double)x[(size_t)i * l->in + k] * fx->a[(size_t)r * l->in + k];
            u[(size_t)i * R + r] = s;
        }
        for (int o = 0; o < l->out; o++) {
            double s = beta * y0[(size_t)i * l->out + o], m = fabs(s);
            for (int k = 0; k < l->in; k++) {
                double t = (double)x[(size_t)i * l->in + k] * fx->w[(size_t)o * l->in + k];
                s += t, m += fabs(t);
            }
            for (int r = 0; r < R; r++) {
                double t = l->lora_scale * u[(size_t)i * R + r] * fx->b[(size_t)o * R + r];
                s += t, m += fabs(t);
            }
            y[(size_t)i * l->out + o] = s, mag[(size_t)i * l->out + o] = m;
        }
    }
}

/* The training products of one layer against the double reference. */
static void check_training(const llm_qformat *f, int out, int in, int rank, int n)
{
    unsigned long long rng = 41 + (unsigned long long)out;
    fixture fx;
    fixture_init(&fx, f, out, in, rank, &rng);
    const llm_linear *l = &fx.lin;
    float *x = check_randn((size_t)n * in, 1, &rng), *dy = check_randn((size_t)n * out, 1, &rng);
    float *y = check_randn((size_t)n * out, 1, &rng), *y0 = malloc(sizeof(float) * (size_t)n * out);
    float *dx = check_randn((size_t)n * in, 1, &rng), *dx0 = malloc(sizeof(float) * (size_t)n * in);
    float *u = malloc(sizeof(float) * (size_t)n * (rank + 1)), *du = malloc(sizeof(float) * (size_t)n * (rank + 1));
    float *scratch = malloc(sizeof(float) * LLM_QROWS * (size_t)in);
    memcpy(y0, y, sizeof(float) * (size_t)n * out);
    memcpy(dx0, dx, sizeof(float) * (size_t)n * in);
    double *yr = malloc(sizeof(double) * (size_t)n * out), *mag = malloc(sizeof(double) * (size_t)n * out);
    double *ur = malloc(sizeof(double) * (size_t)n * (rank + 1));
    llm_linear_forward(l, x, n, y, 0.5f, scratch, rank ? u : NULL);
    ref_forward(&fx, x, n, y0, 0.5, yr, mag, ur);
    const char *kind = f ? llm_qscheme_name(f->scheme) : "f32";
    double e = rel_err(y, yr, mag, (size_t)n * out);
    CHECK_MSG(e < 1e-5, "%s %dx%d rank %d: forward off by %g", kind, out, in, rank, e);

    /* input gradient: dx = dy W + dx0 (+ du A, du = s dy B) */
    llm_linear_input_grad(l, dy, n, dx, 1, scratch);
    int has_lora = llm_linear_lora_grad(l, x, u, dy, n, du, NULL, NULL);
    CHECK(has_lora == (rank > 0));
    llm_linear_lora_input_grad(l, du, n, dx);
    double *dxr = malloc(sizeof(double) * (size_t)n * in), *dmag = malloc(sizeof(double) * (size_t)n * in);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < in; k++) {
            double s = dx0[(size_t)i * in + k], m = fabs(s);
            for (int o = 0; o < out; o++) {
                double t = (double)dy[(size_t)i * out + o] * fx.w[(size_t)o * in + k];
                s += t, m += fabs(t);
            }
            for (int r = 0; r < rank; r++) {
                double dur = 0;
                for (int o = 0; o < out; o++) dur += l->lora_scale * (double)dy[(size_t)i * out + o] * fx.b[(size_t)o * rank + r];
                double t = dur * fx.a[(size_t)r * in + k];
                s += t, m += fabs(t);
            }
            dxr[(size_t)i * in + k] = s, dmag[(size_t)i * in + k] = m;
        }
    e = rel_err(dx, dxr, dmag, (size_t)n * in);
    CHECK_MSG(e < 1e-5, "%s %dx%d rank %d: input gradient off by %g", kind, out, in, rank, e);

    if (rank) { /* the factors' gradients: ga += du^T x, gb += s dy^T u */
        float *ga = calloc((size_t)rank * in, sizeof *ga), *gb = calloc((size_t)out * rank, sizeof *gb);
        llm_linear_lora_grad(l, x, u, dy, n, du, ga, gb);
        double worst = 0;
        for (int r = 0; r < rank; r++)
            for (int k = 0; k < in; k++) {
                double s = 0, m = 0;
                for (int i = 0; i < n; i++) {
                    double dur = 0;
                    for (int o = 0; o < out; o++) dur += l->lora_scale * (double)dy[(size_t)i * out + o] * fx.b[(size_t)o * rank + r];
                    s += dur * x[(size_t)i * in + k], m += fabs(dur * x[(size_t)i * in + k]);
                }
                worst = fmax(worst, fabs(ga[(size_t)r * in + k] - s) / (m + 1e-3));
            }
        for (int o = 0; o < out; o++)
            for (int r = 0; r < rank; r++) {
                double s = 0, m = 0;
                for (int i = 0; i < n; i++) {
                    double t = l->lora_scale * (double)dy[(size_t)i * out + o] * ur[(size_t)i * rank + r];
                    s += t, m += fabs(t);
                }
                worst = fmax(worst, fabs(gb[(size_t)o * rank + r] - s) / (m + 1e-3));
            }
        CHECK_MSG(worst < 1e-5, "%s rank %d: LoRA factor gradients off by %g", kind, rank, worst);
        free(ga), free(gb);
    }
    if (!f) { /* a float W's gradient: gw += dy^T x */
        float *gw = malloc(sizeof(float) * (size_t)out * in);
        for (size_t i = 0; i < (size_t)out * in; i++) gw[i] = 1.0f;
        llm_linear_weight_grad(l, x, dy, n, gw);
        double worst = 0;
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) {
                double s = 1, m = 1;
                for (int i = 0; i < n; i++) {
                    double t = (double)dy[(size_t)i * out + o] * x[(size_t)i * in + k];
                    s += t, m += fabs(t);
                }
                worst = fmax(worst, fabs(gw[(size_t)o * in + k] - s) / m);
            }
        CHECK_MSG(worst < 1e-5, "%dx%d: weight gradient off by %g", out, in, worst);
        free(gw);
    }
    fixture_free(&fx);
    free(x), free(dy), free(y), free(y0), free(dx), free(dx0), free(u), free(du), free(scratch);
    free(yr), free(mag), free(ur), free(dxr), free(dmag);
}

static void test_training_products(void)
{
    llm_qformat sym4 = {.scheme = LLM_Q_INT4, .group = 64, .sym = 1};
    llm_qformat asym4 = {.scheme = LLM_Q_INT4, .group = 32, .sym = 0};
    llm_qformat i8 = {.scheme = LLM_Q_INT8};
    for (int rank = 0; rank <= 3; rank += 3) {
        check_training(NULL, 70, 48, rank, 6);
        check_training(&sym4, 2 * LLM_QROWS + 37, 128, rank, 9); /* blocks of rows and a partial one */
        check_training(&asym4, LLM_QROWS, 96, rank, 5);
        check_training(&i8, LLM_QROWS + 1, 64, rank, 7);
    }
}

/* Inference: llm_linear_apply over 1 and M rows, and llm_linear_rows over
 * ranges as threads split them, beta 0 and 1.  A float W is checked against
 * the double product; a quantized one, whose integer kernels round the
 * input (test_qmatmul bounds that), against llm_qlinear_matmul's own
 * product plus the LoRA update in double; the pieces, from x itself or
 * from x quantized once for all of them, must assemble to what one whole
 * call gives. */
static void check_inference(const llm_qformat *f, int out, int in, int rank, int M)
{
    unsigned long long rng = 7 + (unsigned long long)in;
    fixture fx;
    fixture_init(&fx, f, out, in, rank, &rng);
    const llm_linear *l = &fx.lin;
    const char *kind = f ? llm_qscheme_name(f->scheme) : "f32";
    float *x = check_randn((size_t)M * in, 1, &rng), *y0 = check_randn((size_t)M * out, 1, &rng);
    float *y = malloc(sizeof(float) * (size_t)M * out), *pieces = malloc(sizeof(float) * (size_t)M * out);
    float *scratch = malloc(sizeof(float) * (size_t)M * out), *base = malloc(sizeof(float) * (size_t)M * out);
    double *want = malloc(sizeof(double) * (size_t)M * out), *mag = malloc(sizeof(double) * (size_t)M * out);
    double *u = malloc(sizeof(double) * (size_t)M * (rank + 1));
    for (int beta = 0; beta <= 1; beta++)
        for (int rows = 1; rows <= M; rows += M - 1) {
            size_t n = (size_t)rows * out;
            memcpy(y, y0, n * sizeof *y);
            llm_error err = {0};
            CHECK_OK(llm_linear_apply(l, x, rows, y, (float)beta, scratch, &err), err);
            if (!f) {
                ref_forward(&fx, x, rows, y0, beta, want, mag, u);
            } else { /* the integer product as the kernels give it, the rest in double */
                CHECK_OK(llm_qlinear_matmul(l->q, x, rows, base, out, &err), err);
                fixture no_w = fx;
                no_w.w = calloc((size_t)out * in, sizeof(double));
                ref_forward(&no_w, x, rows, y0, beta, want, mag, u);
                for (size_t i = 0; i < n; i++) want[i] += base[i], mag[i] += fabs(base[i]);
                free(no_w.w);
            }
            double e = rel_err(y, want, mag, n);
            CHECK_MSG(e < 1e-5, "%s %dx%d rank %d, %d rows, beta %d: apply off by %g", kind, out, in, rank, rows, beta, e);
            /* the same by row ranges, 3 "threads", x quantized by each call
             * and then once for all of them */
            llm_qact xq = {0};
            CHECK(llm_qact_reserve(&xq, rows, in) == 0);
            CHECK(llm_linear_quantize_input(l, x, rows, &xq) == (f != NULL));
            for (int shared = 0; shared <= 1; shared++) {
                memcpy(pieces, y0, n * sizeof *pieces);
                for (int t = 0; t < 3; t++)
                    CHECK((llm_linear_rows(l, x, shared ? &xq : NULL, rows, pieces, out, out * t / 3,
                                           out * (t + 1) / 3, (float)beta, scratch)) >= 0);
                e = rel_err(pieces, want, mag, n);
                CHECK_MSG(e < 1e-5, "%s %dx%d rank %d, %d rows, beta %d, shared %d: rows off by %g", kind, out,
                          in, rank, rows, beta, shared, e);
                if (f) CHECK_MSG(!memcmp(pieces, y, n * sizeof *y), "%s: row ranges differ from one call", kind);
            }
            llm_qact_free(&xq);
        }
    fixture_free(&fx);
    free(x), free(y0), free(y), free(pieces), free(scratch), free(base), free(want), free(mag), free(u);
}

static void test_inference_products(void)
{
    llm_qformat sym4 = {.scheme = LLM_Q_INT4, .group = 32, .sym = 1};
    llm_qformat asym4 = {.scheme = LLM_Q_INT4, .group = 64, .sym = 0};
    llm_qformat i8 = {.scheme = LLM_Q_INT8};
    for (int rank = 0; rank <= 2; rank += 2) {
        check_inference(NULL, 37, 72, rank, 5);
        check_inference(&sym4, 40, 64, rank, 4);
        check_inference(&asym4, 33, 128, rank, 6);
        check_inference(&i8, 29, 40, rank, 3);
    }
}

int main(void)
{
    RUN(test_names);
    RUN(test_training_products);
    RUN(test_inference_products);
    return check_done();
}

/* Unit tests for lib/qmatmul: every scheme's product against a double-
 * precision product of the dequantized weights (values rebuilt here from the
 * codes and scales), within the bound the activation rounding allows, which
 * the test computes itself from each block's max |x|; the AVX2 and portable
 * kernels against each other; row ranges; batches wider than one chunk;
 * rows too wide for the stack's buffer and no memory for them: an error,
 * never a made-up result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nomem.h"
#include "qmatmul.h"

/* Ŵ[r,k] from the codes, in double. */
static double what(const llm_qlinear *q, int r, int k)
{
    int g = k / (q->cols / q->groups);
    return (double)q->scale[(size_t)r * q->groups + g] *
           (llm_qlinear_code(q, r, k) - llm_qlinear_zero(q, r, g));
}

/* Checks Y [M, rows] against the double product, with the rounding bound. */
static void check_product(const llm_qlinear *q, const float *X, int M, const float *Y, int ldy)
{
    int bad = 0;
    double worst = 0;
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * q->cols;
        for (int r = 0; r < q->rows; r++) {
            double ref = 0, bound = 0, mag = 0;
            for (int k0 = 0; k0 < q->cols; k0 += 32) {
                int n = q->cols - k0 < 32 ? q->cols - k0 : 32;
                double step = 0;
                for (int k = 0; k < n; k++) step = fmax(step, fabs(x[k0 + k]) / 127);
                if (q->f.scheme == LLM_Q_W8A8) step = q->act_scale;
                for (int k = k0; k < k0 + n; k++) {
                    double wk = what(q, r, k), xk = x[k];
                    if (q->f.scheme == LLM_Q_W8A8) { /* the input's own clipping is exact */
                        xk = fmin(fmax(nearbyint(xk / step), -127), 127) * step;
                        ref += wk * xk;
                        mag += fabs(wk * xk);
                    } else {
                        ref += wk * xk;
                        bound += fabs(wk) * step / 2;
                        mag += fabs(wk * xk);
                    }
                }
            }
            double e = fabs(Y[(size_t)m * ldy + r] - ref), tol = bound + 1e-5 * mag + 1e-30;
            worst = fmax(worst, e / tol);
            if (e > tol) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d of %d outputs beyond the bound (worst %.3g of it)", bad, M * q->rows, worst);
}

static void run_scheme(const llm_qformat *f, int rows, int cols, int M)
{
    llm_error err = {0};
    float *w = check_randn((size_t)rows * cols, 0.05, &(unsigned long long){11 + (unsigned)cols});
    float *X = check_randn((size_t)M * cols, 1.0, &(unsigned long long){5 + (unsigned)rows});
    for (int i = 0; i < M * cols; i += 13) X[i] *= 8; /* outliers in some blocks */
    llm_qlinear q;
    CHECK_OK(llm_quantize_rtn(w, rows, cols, f, &q, &err), err);
    if (f->scheme == LLM_Q_W8A8) q.act_scale = 4.0f / 127; /* clips the outliers */
    int ldy = rows + 3;
    float *Y = malloc((size_t)M * ldy * sizeof *Y);
    CHECK_OK(llm_qlinear_matmul(&q, X, M, Y, ldy, &err), err);
    check_product(&q, X, M, Y, ldy);
    if (llm_qmatmul_avx2()) { /* the portable kernel: same integer sums */
        float *Yp = malloc((size_t)M * ldy * sizeof *Yp);
        CHECK((llm_qlinear_rows_portable(&q, X, M, Yp, ldy, 0, rows)) >= 0);
        double worst = 0;
        for (int m = 0; m < M; m++)
            for (int r = 0; r < rows; r++) {
                double a = Y[(size_t)m * ldy + r], b = Yp[(size_t)m * ldy + r];
                worst = fmax(worst, fabs(a - b) / (fabs(a) + 1e-3));
            }
        CHECK_MSG(worst < 1e-4, "AVX2 and portable differ by %.3g relative", worst);
        free(Yp);
    }
    free(w), free(X), free(Y);
    llm_qlinear_free(&q);
}

static void test_int8(void)
{
    run_scheme(&(llm_qformat){.scheme = LLM_Q_INT8}, 37, 96, 3);
    run_scheme(&(llm_qformat){.scheme = LLM_Q_INT8}, 19, 100, 2); /* a partial last block */
}

static void test_int4_sym(void) { run_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 33, 128, 4); }

static void test_int4_asym(void) { run_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 64, .sym = 0}, 21, 192, 2); }

static void test_w8a8(void) { run_scheme(&(llm_qformat){.scheme = LLM_Q_W8A8}, 17, 160, 3); }

/* More rows of X than one chunk of quantized activations holds. */
static void test_wide_batch(void)
{
    run_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 128, .sym = 1}, 9, 1024, 70);
    run_scheme(&(llm_qformat){.scheme = LLM_Q_INT8}, 5, 40000, 2); /* a row wider than a chunk */
}

/* Rows r0..r1 only: what a thread of a decode step computes. */
static void test_row_range(void)
{
    llm_error err = {0};
    enum { R = 40, C = 64, M = 2 };
    float *w = check_randn(R * C, 0.1, &(unsigned long long){1}), *X = check_randn(M * C, 1, &(unsigned long long){2});
    llm_qlinear q;
    CHECK_OK(llm_quantize_rtn(w, R, C, &(llm_qformat){.scheme = LLM_Q_INT4, .group = 32}, &q, &err), err);
    float full[M * R], part[M * R];
    CHECK_OK(llm_qlinear_matmul(&q, X, M, full, R, &err), err);
    for (int i = 0; i < M * R; i++) part[i] = -99;
    CHECK((llm_qlinear_rows(&q, X, M, part, R, 10, 25)) >= 0);
    int ok = 1;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < R; r++) {
            float v = part[m * R + r];
            ok &= r >= 10 && r < 25 ? v == full[m * R + r] : v == -99;
        }
    CHECK_MSG(ok, "rows outside 10..24 written, or inside differ");
    free(w), free(X);
    llm_qlinear_free(&q);
}

/* A NaN or an infinity in an input row makes that row's outputs non-finite
 * (the float product would; w8a8 clips an infinity to its largest step, as
 * it clips every value beyond), on the AVX2 and the portable kernels; the
 * other rows are as without it.  A NaN weight gets a code, never an
 * undefined cast (UBSan's float-cast-overflow would say so). */
static void test_nonfinite_inputs(void)
{
    llm_error err = {0};
    enum { R = 12, C = 96, M = 3 };
    const llm_qformat formats[] = {{.scheme = LLM_Q_INT8}, {.scheme = LLM_Q_INT4, .group = 32, .sym = 1},
                                   {.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, {.scheme = LLM_Q_W8A8}};
    const float bad[2] = {NAN, INFINITY};
    float *w = check_randn(R * C, 0.1, &(unsigned long long){3});
    for (size_t fi = 0; fi < sizeof formats / sizeof formats[0]; fi++)
        for (int b = 0; b < 2; b++)
            for (int portable = 0; portable <= 1; portable++) {
                llm_qlinear q;
                CHECK_OK(llm_quantize_rtn(w, R, C, &formats[fi], &q, &err), err);
                if (formats[fi].scheme == LLM_Q_W8A8) q.act_scale = 2.0f / 127;
                float *X = check_randn(M * C, 1, &(unsigned long long){4}), clean[M * R], Y[M * R];
                int (*rows)(const llm_qlinear *, const float *, int, float *, int, int, int) =
                    portable ? llm_qlinear_rows_portable : llm_qlinear_rows;
                CHECK((rows(&q, X, M, clean, R, 0, R)) >= 0);
                X[1 * C + 40] = bad[b]; /* row 1 only */
                CHECK((rows(&q, X, M, Y, R, 0, R)) >= 0);
                /* w8a8's fixed step clips an infinity as it clips any large value */
                int clipped = b == 1 && formats[fi].scheme == LLM_Q_W8A8, ok = 1;
                for (int r = 0; r < R; r++)
                    ok &= isfinite(Y[R + r]) == clipped && Y[r] == clean[r] && Y[2 * R + r] == clean[2 * R + r];
                CHECK_MSG(ok, "%s, %s in row 1, %s kernel: not just row 1's outputs non-finite",
                          llm_qscheme_name(formats[fi].scheme), b ? "Inf" : "NaN", portable ? "portable" : "best");
                free(X);
                llm_qlinear_free(&q);
            }
    llm_qformat i4 = {.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, i8 = {.scheme = LLM_Q_INT8};
    CHECK(llm_qcode(&i4, NAN, 1.0f, 8) == 0 && llm_qcode(&i8, NAN, 1.0f, 0) == -127);
    free(w);
}

/* Rows wider than 32768 values are quantized on the heap: without memory
 * for them, llm_qlinear_rows and llm_qlinear_matmul say LLM_ERR_NOMEM and
 * leave Y alone (no NaN left in it as a result); narrower rows need no heap
 * and still work. */
static void test_out_of_memory(void)
{
    llm_error err = {0};
    enum { R = 6, M = 2 };
    for (int cols = 32768; cols <= 32800; cols += 32) {
        int wide = cols > 32768;
        float *w = check_randn((size_t)R * cols, 0.05, &(unsigned long long){21}),
              *X = check_randn((size_t)M * cols, 1, &(unsigned long long){22});
        llm_qlinear q;
        CHECK_OK(llm_quantize_rtn(w, R, cols, &(llm_qformat){.scheme = LLM_Q_INT8}, &q, &err), err);
        float Y[M * R], Yr[M * R];
        for (int i = 0; i < M * R; i++) Y[i] = Yr[i] = -99;
        err = (llm_error){0};
        nomem_fail(1);
        int rc = llm_qlinear_matmul(&q, X, M, Y, R, &err), rc_rows = llm_qlinear_rows(&q, X, M, Yr, R, 0, R);
        nomem_fail(0);
        int untouched = 1;
        for (int i = 0; i < M * R; i++) untouched &= Y[i] == -99 && Yr[i] == -99;
        if (wide) {
            CHECK_MSG(rc == LLM_ERR_NOMEM && strstr(err.msg, "out of memory"), "%d cols: %d, %s", cols, rc, err.msg);
            CHECK_MSG(rc_rows == LLM_ERR_NOMEM && untouched, "%d cols: rows %d, Y written", cols, rc_rows);
        } else {
            CHECK_MSG(rc == 0 && rc_rows == 0 && !untouched, "%d cols: %d %d without the heap", cols, rc, rc_rows);
        }
        free(w), free(X);
        llm_qlinear_free(&q);
    }
}

int main(void)
{
    RUN(test_int8);
    RUN(test_int4_sym);
    RUN(test_int4_asym);
    RUN(test_w8a8);
    RUN(test_wide_batch);
    RUN(test_row_range);
    RUN(test_nonfinite_inputs);
    RUN(test_out_of_memory);
    return check_done();
}

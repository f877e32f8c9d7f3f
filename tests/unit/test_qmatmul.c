/* Unit tests for lib/qmatmul: every scheme's product (int8, w8a8, int4 in
 * groups of 32, 64 and 128, symmetric and asymmetric), for 1 to 16 rows of
 * X and weight row counts that leave every tail of the 4-row kernels,
 * against a double-precision product of the dequantized weights (values
 * rebuilt here from the codes and scales), within the bound the activation
 * rounding allows, which the test computes itself from each block's max
 * |x|; with power-of-two steps and scales, where every float operation is
 * exact, both kernels must give the double product exactly (so the same
 * integer sums); the AVX2 and portable quantizers bit for bit; X quantized
 * once (llm_qact) against X quantized by each call; many rows of X at once
 * (the batched kernel) against one at a time, bit for bit; row ranges; batches
 * wider than one chunk; rows too wide for the stack's buffer and no memory
 * for them: an error, never a made-up result. */
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

/* The product of q and X [M, cols] by llm_qlinear_matmul against the
 * bound; the portable kernels against it (the same integer sums: their
 * difference is float rounding, far below one step of any block); X
 * quantized once and shared by row ranges, bit for bit as from X. */
static void check_kernels(const llm_qlinear *q, const float *X, int M)
{
    llm_error err = {0};
    int rows = q->rows, ldy = rows + 3;
    size_t n = (size_t)M * ldy;
    float *Y = malloc(n * sizeof *Y), *Yp = malloc(n * sizeof *Yp), *Ys = malloc(n * sizeof *Ys);
    CHECK_OK(llm_qlinear_matmul(q, X, M, Y, ldy, &err), err);
    check_product(q, X, M, Y, ldy);
    CHECK((llm_qlinear_rows_portable(q, X, M, Yp, ldy, 0, rows)) >= 0);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < rows; r++) {
            double mag = 0;
            for (int k = 0; k < q->cols; k++) mag += fabs(what(q, r, k) * X[(size_t)m * q->cols + k]);
            size_t i = (size_t)m * ldy + r;
            worst = fmax(worst, fabs((double)Y[i] - Yp[i]) / (mag + 1e-30));
        }
    CHECK_MSG(worst < 1e-6, "%s: best and portable kernels differ by %.3g of sum |w x|",
              llm_qscheme_name(q->f.scheme), worst);
    llm_qact a = {0};
    CHECK(llm_qact_reserve(&a, M, q->cols) == 0);
    llm_qact_quantize(&a, q, X, M);
    CHECK(llm_qact_fits(&a, q));
    for (int r0 = 0; r0 < rows; r0 += 5) llm_qlinear_rows_q(q, &a, Ys, ldy, r0, r0 + 5 < rows ? r0 + 5 : rows);
    int same = 1;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < rows; r++) same &= Ys[(size_t)m * ldy + r] == Y[(size_t)m * ldy + r];
    CHECK_MSG(same, "%s: X quantized once, rows by 5, differs from llm_qlinear_matmul",
              llm_qscheme_name(q->f.scheme));
    for (int m = 0; m < M; m++) /* one row of X at a time: a decode step's kernels */
        CHECK(llm_qlinear_rows(q, X + (size_t)m * q->cols, 1, Ys + (size_t)m * ldy, ldy, 0, rows) >= 0);
    for (int m = 0; m < M; m++)
        for (int r = 0; r < rows; r++) same &= Ys[(size_t)m * ldy + r] == Y[(size_t)m * ldy + r];
    CHECK_MSG(same, "%s group %d, %d rows of X: row by row differs from all at once",
              llm_qscheme_name(q->f.scheme), q->f.group, M);
    llm_qact_free(&a);
    free(Y), free(Yp), free(Ys);
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
    check_kernels(&q, X, M);
    free(w), free(X);
    llm_qlinear_free(&q);
}

/* The formats of the kernels, each with a width it divides. */
static const struct {
    llm_qformat f;
    int cols;
} formats[] = {
    {{.scheme = LLM_Q_INT8}, 100}, /* a partial last block */
    {{.scheme = LLM_Q_INT8}, 96},
    {{.scheme = LLM_Q_W8A8}, 72},
    {{.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 96},
    {{.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, 96},
    {{.scheme = LLM_Q_INT4, .group = 64, .sym = 1}, 192},
    {{.scheme = LLM_Q_INT4, .group = 64, .sym = 0}, 128},
    {{.scheme = LLM_Q_INT4, .group = 128, .sym = 1}, 256},
    {{.scheme = LLM_Q_INT4, .group = 128, .sym = 0}, 384},
};
enum { N_FORMATS = sizeof formats / sizeof formats[0] };

/* Every format, 1 to 16 rows of X (a decode step's batch), weight rows
 * from 1 to 13: whole tiles of 4 and every tail after them. */
static void test_shapes(void)
{
    for (int fi = 0; fi < N_FORMATS; fi++)
        for (int M = 1; M <= 16; M++) run_scheme(&formats[fi].f, 1 + (M * 5 + fi) % 13, formats[fi].cols, M);
}

/* Many rows of X at once (the batched kernel, from 16 rows): rows of X
 * not a multiple of its tile and more than one chunk of them (64), weight
 * rows with a tail, widths of more than one chunk of blocks (32), with a
 * partial last block (int8), a group wider than a chunk; against the double product, the portable
 * kernels, and X row by row (the decode kernels) bit for bit. */
static void test_batched(void)
{
    static const struct {
        llm_qformat f;
        int cols;
    } wide[] = {
        {{.scheme = LLM_Q_INT8}, 1100},
        {{.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 1088},
        {{.scheme = LLM_Q_INT4, .group = 128, .sym = 0}, 1280},
        {{.scheme = LLM_Q_INT4, .group = 64, .sym = 1}, 1152},
        {{.scheme = LLM_Q_INT4, .group = 2048, .sym = 1}, 2048}, /* a group wider than a chunk */
    };
    const int Ms[] = {16, 23, 70};
    for (int fi = 0; fi < N_FORMATS; fi++)
        for (int i = 0; i < 3; i++) run_scheme(&formats[fi].f, i == 1 ? 4 : 9 + i, formats[fi].cols, Ms[i]);
    for (size_t fi = 0; fi < sizeof wide / sizeof wide[0]; fi++) run_scheme(&wide[fi].f, 6, wide[fi].cols, 67);
}

/* Power-of-two weight scales (2^-4, 2^-5), steps (2^-5, 2^-6: each block's
 * largest |x| is 127 steps) and inputs on those steps: every product and
 * partial sum is a float exactly, so both kernels must give the double
 * product of the codes bit for bit, whatever order they sum in. */
static void test_exact_sums(void)
{
    llm_error err = {0};
    unsigned long long rng = 99;
    for (int M = 3; M <= 18; M += 15) { /* 18: the batched kernel */
        for (int fi = 0; fi < N_FORMATS; fi++) {
            const llm_qformat *f = &formats[fi].f;
            int rows = 7, cols = formats[fi].cols;
            float *w = check_randn((size_t)rows * cols, 0.05, &(unsigned long long){31 + (unsigned)fi}),
                  *X = malloc(sizeof(float) * M * cols);
            llm_qlinear q;
            CHECK_OK(llm_quantize_rtn(w, rows, cols, f, &q, &err), err);
            for (int i = 0; i < rows * q.groups; i++) q.scale[i] = i % 3 ? 0.0625f : 0.03125f;
            if (f->scheme == LLM_Q_W8A8) q.act_scale = 0.015625f;
            for (int m = 0; m < M; m++)
                for (int k0 = 0; k0 < cols; k0 += 32) {
                    float step = (k0 / 32 + m) % 2 ? 0.03125f : 0.015625f;
                    for (int k = k0; k < k0 + 32 && k < cols; k++) {
                        int code = (int)(check_uniform(&rng) * 255) - 127;
                        if (f->scheme == LLM_Q_W8A8 && k % 7 == 0) code *= 3; /* beyond ±127 steps: clipped */
                        X[(size_t)m * cols + k] = (float)(k == k0 ? 127 : code) * step;
                    }
                }
            float Y[18 * 7], Yp[18 * 7];
            CHECK((llm_qlinear_rows(&q, X, M, Y, rows, 0, rows)) >= 0);
            CHECK((llm_qlinear_rows_portable(&q, X, M, Yp, rows, 0, rows)) >= 0);
            int bad = 0;
            for (int m = 0; m < M; m++)
                for (int r = 0; r < rows; r++) {
                    double ref = 0;
                    for (int k = 0; k < cols; k++) {
                        double x = X[(size_t)m * cols + k];
                        if (f->scheme == LLM_Q_W8A8) x = fmin(fmax(x, -127 * 0.015625), 127 * 0.015625);
                        ref += what(&q, r, k) * x;
                    }
                    bad += Y[m * rows + r] != ref || Yp[m * rows + r] != ref;
                }
            CHECK_MSG(bad == 0, "%s group %d sym %d: %d of %d outputs not the exact product",
                      llm_qscheme_name(f->scheme), q.f.group, q.f.sym, bad, M * rows);
            free(w), free(X);
            llm_qlinear_free(&q);
        }
    }
}

/* The AVX2 quantizer against the portable one, codes and steps bit for
 * bit: blocks whole and partial, split (int4) and not, a fixed step that
 * clips (w8a8), ties (x exactly half a step off a code), NaN, infinities,
 * zeros. */
static void test_quantizer(void)
{
    enum { M = 3, C = 200 };
    float *X = check_randn(M * C, 1, &(unsigned long long){41});
    for (int i = 0; i < M * C; i += 17) X[i] *= 40;
    for (int k = 0; k < 32; k++) X[C + 64 + k] = 0;                             /* an all-zero block */
    for (int k = 0; k < 32; k++) X[k] = (float)(k - 16) + 0.5f, X[31] = 127;    /* ties at step 1 */
    X[2 * C + 5] = NAN, X[2 * C + 40] = INFINITY, X[2 * C + 70] = -INFINITY;
    const llm_qformat kinds[] = {{.scheme = LLM_Q_INT8}, {.scheme = LLM_Q_INT4, .group = 40, .sym = 1},
                                 {.scheme = LLM_Q_W8A8}};
    for (int i = 0; i < 3; i++)
        for (int cols = C; cols >= C - 40; cols -= 40) { /* 200: a partial block; 160: none */
            llm_qlinear w = {.f = kinds[i], .cols = cols, .act_scale = i == 2 ? 0.03f : 0};
            llm_qact a = {0}, b = {0};
            CHECK(llm_qact_reserve(&a, M, cols) == 0 && llm_qact_reserve(&b, M, cols) == 0);
            llm_qact_quantize(&a, &w, X, M);
            llm_qact_quantize_portable(&b, &w, X, M);
            size_t pairs = (size_t)M * ((a.nb + 1) / 2);
            int same = a.nb == b.nb && !memcmp(a.q, b.q, pairs * 64) && !memcmp(a.d, b.d, pairs * 2 * sizeof(float));
            if (i == 1) same &= !memcmp(a.dv, b.dv, pairs * 8 * sizeof(float)) && !memcmp(a.x8, b.x8, pairs * 32);
            CHECK_MSG(same, "%s, %d columns: the quantizers differ", llm_qscheme_name(kinds[i].scheme), cols);
            if (i == 1) /* step 1; evens -15.5 -13.5, odds -14.5 -12.5 (after a pair's 32 evens): ties to even */
                CHECK(a.d[0] == 1.0f && a.q[0] == -16 && a.q[1] == -14 && a.q[32] == -14 && a.q[33] == -12);
            llm_qact_free(&a), llm_qact_free(&b);
        }
    free(X);
}

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
    RUN(test_shapes);
    RUN(test_exact_sums);
    RUN(test_batched);
    RUN(test_quantizer);
    RUN(test_wide_batch);
    RUN(test_row_range);
    RUN(test_nonfinite_inputs);
    RUN(test_out_of_memory);
    return check_done();
}

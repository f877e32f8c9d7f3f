/* Unit tests for lib/quant: round-to-nearest codes against a grid the test
 * builds itself from the format's definition (scale from the row's or group's
 * range, nearest code by search), the half-step error bound per scheme, and
 * the format checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant.h"

/* Weights: Gaussian with a few large outliers, as trained layers have. */
static float *weights(int rows, int cols, unsigned long long seed)
{
    float *w = malloc((size_t)rows * cols * sizeof *w);
    for (int i = 0; i < rows * cols; i++) {
        w[i] = (float)(0.02 * check_normal(&seed));
        if (i % 97 == 5) w[i] *= 20;
    }
    return w;
}

/* The test's own grid for the group of values v[0..n-1]: step and zero. */
static void ref_grid(const llm_qformat *f, const float *v, int n, double *step, int *zero, int *lo,
                     int *hi)
{
    double mn = 0, mx = 0;
    for (int k = 0; k < n; k++) mn = fmin(mn, v[k]), mx = fmax(mx, v[k]);
    double amax = fmax(-mn, mx);
    if (f->scheme != LLM_Q_INT4) *step = amax / 127, *zero = 0, *lo = -127, *hi = 127;
    else if (f->sym) *step = amax / 7.5, *zero = 8, *lo = 0, *hi = 15;
    else {
        *step = (mx - mn) / 15, *lo = 0, *hi = 15;
        *zero = (int)nearbyint(-mn / *step);
    }
}

static void check_scheme(const llm_qformat *f, int rows, int cols)
{
    llm_error err = {0};
    float *w = weights(rows, cols, 7 + (unsigned)f->scheme * 3 + (unsigned)f->sym);
    llm_qlinear q;
    CHECK_OK(llm_quantize_rtn(w, rows, cols, f, &q, &err), err);
    float *wh = malloc((size_t)rows * cols * sizeof *wh);
    llm_dequantize(&q, wh);
    int gs = f->scheme == LLM_Q_INT4 ? f->group : cols, bad = 0, not_nearest = 0;
    double worst = 0;
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < cols / gs; g++) {
            const float *v = w + (size_t)r * cols + (size_t)g * gs;
            double step;
            int zero, lo, hi;
            ref_grid(f, v, gs, &step, &zero, &lo, &hi);
            if (fabs(q.scale[(size_t)r * q.groups + g] - step) > 1e-6 * step) bad++;
            if (llm_qlinear_zero(&q, r, g) != zero) bad++;
            for (int k = 0; k < gs; k++) {
                int code = llm_qlinear_code(&q, r, g * gs + k);
                double value = step * (code - zero), e = fabs(v[k] - value);
                if (code < lo || code > hi) bad++;
                worst = fmax(worst, e / step);
                for (int c = lo; c <= hi; c++) /* no other code is nearer */
                    if (fabs(v[k] - step * (c - zero)) < e - 1e-6 * step) not_nearest++;
                if (fabs(wh[(size_t)r * cols + g * gs + k] - value) > 1e-6 * (step + fabs(value))) bad++;
            }
        }
    CHECK_MSG(bad == 0, "%d scales, zeros, codes or dequantized values differ", bad);
    CHECK_MSG(not_nearest == 0, "%d codes are not the nearest", not_nearest);
    CHECK_MSG(worst <= 0.5 + 1e-5, "error %.6f steps > 1/2", worst);
    free(w), free(wh);
    llm_qlinear_free(&q);
}

static void test_int8_per_channel(void)
{
    check_scheme(&(llm_qformat){.scheme = LLM_Q_INT8}, 24, 100);
}

static void test_int4_symmetric_groups(void)
{
    check_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 16, 128);
    check_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 128, .sym = 1}, 8, 256);
}

static void test_int4_asymmetric_groups(void)
{
    check_scheme(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 64, .sym = 0}, 16, 128);
}

/* Quantize-dequantize error of a Gaussian layer in SQNR: int8 about
 * 6 dB/bit more than int4, both near what a uniform grid predicts. */
static void test_sqnr_per_scheme(void)
{
    llm_error err = {0};
    enum { R = 64, C = 256 };
    unsigned long long seed = 3;
    float *w = malloc(R * C * sizeof *w), *wh = malloc(R * C * sizeof *wh);
    for (int i = 0; i < R * C; i++) w[i] = (float)check_normal(&seed);
    llm_qformat fs[3] = {{.scheme = LLM_Q_INT8}, {.scheme = LLM_Q_INT4, .group = 32, .sym = 1},
                         {.scheme = LLM_Q_INT4, .group = 32, .sym = 0}};
    double sq[3];
    for (int i = 0; i < 3; i++) {
        llm_qlinear q;
        CHECK_OK(llm_quantize_rtn(w, R, C, &fs[i], &q, &err), err);
        llm_dequantize(&q, wh);
        sq[i] = llm_sqnr_db(w, wh, R * C);
        llm_qlinear_free(&q);
    }
    /* uniform rounding noise step^2/12 against unit variance: int8 with
     * max|w| ~ 3.5 sigma per 256: step ~ 3.5/127 -> ~40 dB; int4 g32 with
     * max ~ 2.2 sigma: step ~ 2.2/7.5 -> ~21 dB */
    CHECK_MSG(sq[0] > 36 && sq[0] < 44, "int8 %.1f dB", sq[0]);
    CHECK_MSG(sq[1] > 18 && sq[1] < 24, "int4 sym %.1f dB", sq[1]);
    CHECK_MSG(sq[2] > sq[1] - 1, "int4 asym %.1f dB vs sym %.1f", sq[2], sq[1]);
    float a[2] = {1, 0}, b[2] = {0.9f, 0};
    CHECK_NEAR(llm_sqnr_db(a, b, 2), 20.0, 1e-5);
    CHECK(isinf(llm_sqnr_db(a, a, 2)));
    free(w), free(wh);
}

static void test_zero_group_and_bad_formats(void)
{
    llm_error err = {0};
    float w[64] = {0};
    w[40] = -0.5f;
    llm_qlinear q;
    CHECK_OK(llm_quantize_rtn(w, 1, 64, &(llm_qformat){.scheme = LLM_Q_INT4, .group = 32}, &q, &err), err);
    float wh[64];
    llm_dequantize(&q, wh);
    for (int k = 0; k < 32; k++) CHECK(wh[k] == 0);
    CHECK(wh[40] == -0.5f);
    llm_qlinear_free(&q);
    CHECK(llm_quantize_rtn(w, 1, 64, &(llm_qformat){.scheme = LLM_Q_INT4, .group = 48}, &q, &err) ==
          LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "not a multiple of 32") != NULL, "%s", err.msg);
    CHECK(llm_quantize_rtn(w, 1, 64, &(llm_qformat){.scheme = LLM_Q_INT4, .group = 128}, &q, &err) ==
          LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "does not divide the width 64") != NULL, "%s", err.msg);
    CHECK(llm_qscheme_parse("int4") == LLM_Q_INT4 && llm_qscheme_parse("fp8") < 0);
}

int main(void)
{
    RUN(test_int8_per_channel);
    RUN(test_int4_symmetric_groups);
    RUN(test_int4_asymmetric_groups);
    RUN(test_sqnr_per_scheme);
    RUN(test_zero_group_and_bad_formats);
    return check_done();
}

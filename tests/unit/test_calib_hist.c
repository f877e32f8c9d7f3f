/* Unit tests for lib/calib_hist: the growing histogram of |x| against one
 * counted directly in double precision with the final range known in
 * advance, bin for bin; the density's re-binning over [0, max|x|] against
 * the histogram TensorRT Model Optimizer counts straight from the data; and
 * the edge cases (no values, all zero, one repeated value).  Data and
 * references: calib_ref.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_hist.h"
#include "calib_ref.h"
#include "check.h"
#include "nomem.h"

enum { N = 60000, N_BIG = 1000000, BINS = 2048 };

/* The growing histogram equals the one counted with the final range known in
 * advance, bin for bin.  Why there is no re-binning error at all: the range
 * only ever doubles, so every edge of the coarser bins is an edge of the finer
 * ones and a merged pair holds exactly the values of the coarse bin; and
 * |x| * fine / range is exact in a double (a float's 24 significant bits times
 * a power of two times fine <= 2^24), so no value sits on the wrong side of an
 * edge.  The feed order below makes the range grow many times: values sorted
 * by |x| ascending, from 1e-3 of the data's scale, then the rest shuffled. */
static void test_growing_histogram_is_exact(void)
{
    for (int d = 0; d <= CALIB_OUTLIERS; d++) {
        float *x = calib_data(d, N);
        size_t n = N;
        double *mag = malloc(n * sizeof *mag);
        for (size_t i = 0; i < n; i++) mag[i] = fabs(x[i]);
        qsort(mag, n, sizeof *mag, cmp_double);
        float *order = malloc(n * sizeof *order);
        for (size_t i = 0; i < n; i++) order[i] = (float)(i % 2 ? mag[i] : -mag[i]) * (i < n / 2 ? 1e-3f : 1);
        llm_calib_hist h;
        hist_of(&h, order, n, BINS);
        CHECK(h.bins == BINS && h.fine == LLM_CALIB_FINE * BINS);
        double absmax = ref_absmax(order, n), range = ref_range(absmax);
        double *want = ref_hist(order, n, h.fine, range);
        int same = 1;
        for (int j = 0; j < h.fine; j++) same &= (double)h.count[j] == want[j];
        CHECK_MSG(h.range == range && same, "%s: range %g vs %g, bins differ: %d", calib_dist_names[d], h.range, range,
                  !same);
        CHECK(h.total == n && h.absmax == absmax);
        /* the cumulative counts at every edge equal the exact number of values below it */
        uint64_t below = 0;
        size_t k = 0;
        double *sorted = malloc(n * sizeof *sorted);
        for (size_t i = 0; i < n; i++) sorted[i] = fabs(order[i]);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        int cdf_ok = 1;
        for (int j = 0; j < h.fine; j++) {
            below += h.count[j];
            double edge = (j + 1) * range / h.fine;
            while (k < n && sorted[k] < edge) k++;
            cdf_ok &= below == k;
        }
        CHECK_MSG(cdf_ok, "%s: cumulative counts differ from exact counts below the edges", calib_dist_names[d]);
        llm_calib_hist_free(&h);
        free(want), free(mag), free(order), free(sorted), free(x);
    }
}

/* The histogram over [0, max] the entropy method compares, against the one
 * counted directly: each bin within the counts of the two fine bins holding
 * its edges (the bound llm_calib_hist_rebin states), and the same total. */
static void test_rebin_against_direct_count(void)
{
    for (int d = 0; d < CALIB_DISTS; d++) {
        size_t n = d <= CALIB_OUTLIERS ? N : N_BIG;
        llm_calib_hist h;
        float *x = calib_data_hist(&h, d, n, BINS);
        double absmax = ref_absmax(x, n), *want = ref_hist_max(x, n, BINS, absmax);
        double *got = malloc(BINS * sizeof *got), sum = 0, worst = 0;
        llm_calib_hist_rebin(&h, got);
        int ok = 1, worst_k = 0;
        for (int k = 0; k < BINS; k++) {
            /* the fine bins holding edges k and k + 1 (the last edge is absmax: exact) */
            double slack = 0;
            for (int e = k; e <= k + 1 && e < BINS; e++) {
                int j = (int)floor(e * absmax / BINS * h.fine / h.range);
                slack += (double)h.count[j] + (j > 0 ? (double)h.count[j - 1] : 0); /* an edge on a fine edge */
            }
            double diff = fabs(got[k] - want[k]);
            if (diff > slack + 1e-9 * n) ok = 0;
            if (diff > worst) worst = diff, worst_k = k;
            sum += got[k];
        }
        CHECK_MSG(ok && fabs(sum - (double)n) <= 1e-9 * n, "%s: re-binned counts off by up to %g (bin %d), total %.17g",
                  calib_dist_names[d], worst, worst_k, sum);
        llm_calib_hist_free(&h);
        free(want), free(got), free(x);
    }
}

/* The density's edges: fine bin j spans [j, j + 1) * range / fine, the one
 * holding absmax ends there. */
static void test_density_edges(void)
{
    llm_calib_hist h;
    float x[3] = {0.25f, -3, 1};
    hist_of(&h, x, 3, LLM_CALIB_MIN_BINS);
    int top = llm_calib_hist_fine_top(&h);
    CHECK(h.range == 4 && h.fine == LLM_CALIB_FINE * LLM_CALIB_MIN_BINS && top == 3 * h.fine / 4);
    double lo, hi;
    llm_calib_hist_edges(&h, top, 5, &lo, &hi);
    CHECK(lo == 5 * 4.0 / h.fine && hi == 6 * 4.0 / h.fine);
    llm_calib_hist_edges(&h, top, top, &lo, &hi);
    CHECK(lo == 3 && hi == 3); /* the top bin holds only the max */
    float y = 3.0001f;
    llm_calib_hist_add(&h, &y, 1);
    llm_calib_hist_edges(&h, llm_calib_hist_fine_top(&h), top, &lo, &hi);
    CHECK(lo == 3 && hi == y);
    llm_calib_hist_free(&h);
}

/* Degenerate inputs have defined histograms. */
static void test_degenerate_histograms(void)
{
    llm_error err = {0};
    llm_calib_hist h;
    double rebinned[BINS];
    CHECK_OK(llm_calib_hist_init(&h, BINS, &err), err);
    CHECK(llm_calib_hist_top(&h) == 0 && h.total == 0 && h.min == INFINITY && h.max == -INFINITY);
    llm_calib_hist_rebin(&h, rebinned); /* empty: all zero */
    int zero = 1;
    for (int k = 0; k < BINS; k++) zero &= rebinned[k] == 0;
    CHECK(zero);
    float zeros[100] = {0};
    llm_calib_hist_add(&h, zeros, 100);
    CHECK(h.range == 0 && h.count[0] == 100 && h.absmax == 0);
    CHECK(llm_calib_hist_top(&h) == 0);
    llm_calib_hist_rebin(&h, rebinned);
    CHECK(rebinned[0] == 100 && rebinned[1] == 0 && rebinned[BINS - 1] == 0);
    /* the values of the top fine bin all equal the max: re-binned into the last bin */
    float rep[64];
    for (int i = 0; i < 64; i++) rep[i] = -0.3f;
    llm_calib_hist_free(&h);
    CHECK_OK(llm_calib_hist_init(&h, BINS, &err), err);
    llm_calib_hist_add(&h, rep, 64);
    CHECK(llm_calib_hist_top(&h) == BINS && h.absmax == 0.3f && h.min == -0.3f && h.max == -0.3f);
    llm_calib_hist_rebin(&h, rebinned);
    CHECK(rebinned[BINS - 1] == 64 && rebinned[BINS - 2] == 0);
    /* zeros first, then a value: the zeros stay in bin 0 */
    llm_calib_hist_free(&h);
    CHECK_OK(llm_calib_hist_init(&h, BINS, &err), err);
    llm_calib_hist_add(&h, zeros, 10);
    llm_calib_hist_add(&h, rep, 1);
    CHECK(h.range == 0.5 && h.count[0] == 10 && h.count[(int)(0.3f * h.fine / 0.5)] == 1);
    llm_calib_hist_free(&h);
    llm_calib_hist_free(&h); /* freeing twice is harmless, and NULL too */
    llm_calib_hist_free(NULL);
    /* bin counts outside the limits; no memory */
    CHECK(llm_calib_hist_init(&h, LLM_CALIB_MIN_BINS - 1, &err) == LLM_ERR_ARG && !h.count);
    CHECK(llm_calib_hist_init(&h, LLM_CALIB_MAX_BINS + 1, &err) == LLM_ERR_ARG && !h.count);
}

static int init_hist(void *ctx, llm_error *err)
{
    llm_calib_hist *h = ctx;
    int rc = llm_calib_hist_init(h, BINS, err);
    CHECK(rc < 0 ? !h->count : h->count && h->fine == LLM_CALIB_FINE * BINS);
    llm_calib_hist_free(h);
    return rc;
}

/* Without memory for its counts, a histogram is LLM_ERR_NOMEM and holds
 * nothing to free. */
static void test_out_of_memory(void)
{
    llm_calib_hist h;
    CHECK(nomem_sweep("llm_calib_hist_init", init_hist, &h) == 1);
}

int main(void)
{
    RUN(test_growing_histogram_is_exact);
    RUN(test_rebin_against_direct_count);
    RUN(test_density_edges);
    RUN(test_degenerate_histograms);
    RUN(test_out_of_memory);
    return check_done();
}

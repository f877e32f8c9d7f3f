/* calib_amax — the max, percentile, MSE and entropy (KL) thresholds of a
 * histogram of |x|, and the MSE and KL curves they come from (llm-calib(1)). */
#include "calib_amax.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[LLM_CALIB_METHODS] = {"max", "percentile", "mse", "entropy"};

const char *llm_calib_method_name(int method)
{
    return method >= 0 && method < LLM_CALIB_METHODS ? method_names[method] : NULL;
}

int llm_calib_method_from_name(const char *name)
{
    for (int m = 0; m < LLM_CALIB_METHODS; m++)
        if (strcmp(name, method_names[m]) == 0) return m;
    return -1;
}

/* Smallest value v with at least p% of the values at or below it under the
 * density (within one fine bin of the order statistic). */
static double percentile_amax(const llm_calib_hist *h, double p)
{
    double target = p / 100.0 * (double)h->total, lo, hi;
    int top = llm_calib_hist_fine_top(h);
    uint64_t below = 0;
    for (int j = 0; j <= top; j++) {
        if (h->count[j] && (double)(below + h->count[j]) >= target) {
            double frac = (target - (double)below) / (double)h->count[j];
            llm_calib_hist_edges(h, top, j, &lo, &hi);
            return lo + (frac > 0 ? frac : 0) * (hi - lo);
        }
        below += h->count[j];
    }
    return h->absmax;
}

/* Prefix sums of the density's moments: m[k][j] = the integral of x^k over
 * fine bins 0..j-1, k = 0, 1, 2, j = 0..top+1. */
typedef struct moments {
    const llm_calib_hist *h;
    int top;
    double *m[3];
} moments;

static int moments_init(moments *mo, const llm_calib_hist *h, llm_error *err)
{
    mo->h = h, mo->top = llm_calib_hist_fine_top(h);
    size_t n = (size_t)mo->top + 2;
    for (int k = 0; k < 3; k++) mo->m[k] = malloc(n * sizeof *mo->m[k]);
    if (!mo->m[0] || !mo->m[1] || !mo->m[2]) {
        for (int k = 0; k < 3; k++) free(mo->m[k]);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for %zu prefix sums", 3 * n);
    }
    mo->m[0][0] = mo->m[1][0] = mo->m[2][0] = 0;
    for (int j = 0; j <= mo->top; j++) {
        double c = (double)h->count[j], lo, hi;
        llm_calib_hist_edges(h, mo->top, j, &lo, &hi);
        mo->m[0][j + 1] = mo->m[0][j] + c;
        mo->m[1][j + 1] = mo->m[1][j] + c * (lo + hi) / 2;
        mo->m[2][j + 1] = mo->m[2][j] + c * (lo * lo + lo * hi + hi * hi) / 3;
    }
    return 0;
}

static void moments_free(moments *mo)
{
    for (int k = 0; k < 3; k++) free(mo->m[k]);
}

/* The density's count, sum and sum of squares below x >= 0 (out[0..2]). */
static void moments_below(const moments *mo, double x, double *out)
{
    const llm_calib_hist *h = mo->h;
    int j = x < h->absmax ? (int)(x * h->fine / h->range) : mo->top + 1;
    if (j > mo->top) {
        for (int k = 0; k < 3; k++) out[k] = mo->m[k][mo->top + 1];
        return;
    }
    double lo, hi;
    llm_calib_hist_edges(h, mo->top, j, &lo, &hi);
    x = fmin(fmax(x, lo), hi); /* x * fine / range may round across an edge */
    double c = hi > lo ? (double)h->count[j] * (x - lo) / (hi - lo) : 0;
    out[0] = mo->m[0][j] + c;
    out[1] = mo->m[1][j] + c * (lo + x) / 2;
    out[2] = mo->m[2][j] + c * (lo * lo + lo * x + x * x) / 3;
}

/* Mean squared error of symmetric int8 quantize-dequantize with threshold t
 * over the density: q(v) = s * min(round(v / s), 127), s = t / 127, so level
 * k takes the values in [k - 1/2, k + 1/2) * s (level 127 every one from
 * 126.5 s up, the clipped ones too) and costs S2 - 2 k s S1 + (k s)^2 S0
 * over them. */
static double mse_at(const moments *mo, double t)
{
    double s = t / (LLM_CALIB_LEVELS - 1), sum = 0, prev[3] = {0, 0, 0}, cur[3];
    for (int k = 0; k < LLM_CALIB_LEVELS; k++) {
        moments_below(mo, k < LLM_CALIB_LEVELS - 1 ? (k + 0.5) * s : INFINITY, cur);
        double L = k * s;
        sum += (cur[2] - prev[2]) - 2 * L * (cur[1] - prev[1]) + L * L * (cur[0] - prev[0]);
        memcpy(prev, cur, sizeof prev);
    }
    return sum > 0 ? sum / (double)mo->h->total : 0;
}

static double xlogx(double x)
{
    return x > 0 ? x * log(x) : 0;
}

/* KL(P || Q) for every candidate i in LLM_CALIB_LEVELS..bins (kl[i - 1]) over
 * the counts h[0..bins), as TensorRT Model Optimizer computes it.  P: the
 * first i bins, the mass above them added to bin i - 1.  Q: the first i bins
 * without that mass, merged into 128 groups (bin j into group j * 128 / i),
 * each group's mass spread evenly over its non-empty bins.  Both normalised,
 * KL = sum over P > 0 of p log(p / q); infinite where P > 0 and Q = 0 (mass
 * clipped onto an empty bin i - 1) or when no mass lies below bin i.  Q is
 * constant inside a group, so with prefix sums of counts, of non-empty bins
 * and of c log c, each candidate costs one step per group:
 *   total * KL = sum_j P_j log P_j - sum_g PG_g log Q_g + total * log(sumQ / total)
 * where PG_g is P's mass in group g, Q_g the value Q has on its bins and
 * sumQ the mass below bin i. */
static int kl_curve(const double *h, int bins, double *kl, llm_error *err)
{
    size_t n = (size_t)bins + 1;
    double *cum = malloc(n * sizeof *cum), *above = malloc(n * sizeof *above), *clogc = malloc(n * sizeof *clogc);
    int *nz = malloc(n * sizeof *nz);
    if (!cum || !above || !clogc || !nz) {
        free(cum), free(above), free(clogc), free(nz);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-point curve", bins);
    }
    cum[0] = clogc[0] = 0, nz[0] = 0;
    for (int j = 0; j < bins; j++) {
        cum[j + 1] = cum[j] + h[j];
        clogc[j + 1] = clogc[j] + xlogx(h[j]);
        nz[j + 1] = nz[j] + (h[j] > 0);
    }
    above[bins] = 0; /* summed from the top: exactly 0 when nothing is beyond */
    for (int j = bins - 1; j >= 0; j--) above[j] = above[j + 1] + h[j];
    double total = above[0];
    for (int i = 1; i < bins && i < LLM_CALIB_LEVELS; i++) kl[i - 1] = NAN;
    for (int i = LLM_CALIB_LEVELS; i <= bins; i++) {
        double clipped = above[i], last = h[i - 1];
        if (cum[i] <= 0 || (clipped > 0 && last == 0)) {
            kl[i - 1] = INFINITY;
            continue;
        }
        /* sum of P log P: the clipped bins, the last one with the clipped mass added */
        double plogp = clogc[i - 1] + xlogx(last + clipped), pg_logq = 0;
        for (int g = 0; g < LLM_CALIB_LEVELS; g++) {
            int a = (g * i + LLM_CALIB_LEVELS - 1) / LLM_CALIB_LEVELS;
            int b = ((g + 1) * i + LLM_CALIB_LEVELS - 1) / LLM_CALIB_LEVELS;
            int support = nz[b] - nz[a]; /* Q's non-empty bins, P's too */
            if (support == 0) continue;
            double mass = cum[b] - cum[a];
            if (!(mass > 0)) /* a sliver of mass lost to rounding in the prefix sums */
                for (int k = a; k < b; k++) mass += h[k];
            pg_logq += (b == i ? mass + clipped : mass) * log(mass / support);
        }
        double v = (plogp - pg_logq) / total + log(cum[i] / total);
        kl[i - 1] = v > 0 ? v : 0; /* KL >= 0; rounding may leave -1e-17 */
    }
    free(cum), free(above), free(clogc), free(nz);
    return 0;
}

int llm_calib_amax_curves(const llm_calib_hist *h, double *mse, double *kl, llm_error *err)
{
    int top = llm_calib_hist_top(h);
    if (top == 0) return 0;
    if (mse) {
        moments mo;
        LLM_TRY(moments_init(&mo, h, err));
        for (int j = 1; j <= top; j++) mse[j - 1] = mse_at(&mo, (double)j * h->absmax / h->bins);
        moments_free(&mo);
    }
    if (kl) {
        double *coarse = malloc((size_t)h->bins * sizeof *coarse);
        if (!coarse) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-bin histogram", h->bins);
        llm_calib_hist_rebin(h, coarse);
        int rc = kl_curve(coarse, h->bins, kl, err);
        free(coarse);
        return rc;
    }
    return 0;
}

/* The index of the smallest value, among equals the first (or the last when
 * `last`), or -1 when none is a number. */
static int argmin(const double *v, int n, int last)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]) && (best < 0 || v[i] < v[best] || (last && v[i] == v[best]))) best = i;
    return best;
}

int llm_calib_amax(const llm_calib_hist *h, llm_calib_method method, double percentile, double *amax,
                   llm_error *err)
{
    *amax = 0;
    if (method < 0 || method >= LLM_CALIB_METHODS)
        return llm_error_set(err, LLM_ERR_ARG, "unknown calibration method %d", (int)method);
    if (method == LLM_CALIB_PERCENTILE && !(percentile > 0 && percentile <= 100))
        return llm_error_set(err, LLM_ERR_ARG, "percentile %g outside (0, 100]", percentile);
    if (h->total == 0 || h->absmax == 0) return 0;
    /* one repeated value: every method agrees, and bins would only blur it */
    if (method == LLM_CALIB_MAX || h->min == h->max) {
        *amax = h->absmax;
        return 0;
    }
    double t;
    if (method == LLM_CALIB_PERCENTILE) {
        t = percentile_amax(h, percentile);
    } else {
        double *curve = malloc((size_t)h->bins * sizeof *curve);
        if (!curve) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-point curve", h->bins);
        int rc = llm_calib_amax_curves(h, method == LLM_CALIB_MSE ? curve : NULL,
                                       method == LLM_CALIB_ENTROPY ? curve : NULL, err);
        int best = rc < 0 ? -1 : argmin(curve, h->bins, method == LLM_CALIB_ENTROPY);
        free(curve);
        if (rc < 0) return rc;
        t = best < 0 ? h->absmax : (double)(best + 1) * h->absmax / h->bins;
    }
    *amax = t < h->absmax ? t : h->absmax;
    return 0;
}

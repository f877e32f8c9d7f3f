/* calib_hist — histograms of |x| that grow by exact doubling, read as a
 * density; re-binned over [0, max|x|] for the entropy method. */
#include "calib_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The smallest power of two strictly above a (a > 0). */
static double pow2_above(double a)
{
    int e;
    frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 */
    return ldexp(1.0, e);
}

int llm_calib_hist_init(llm_calib_hist *h, int bins, llm_error *err)
{
    memset(h, 0, sizeof *h);
    if (bins < LLM_CALIB_MIN_BINS || bins > LLM_CALIB_MAX_BINS)
        return llm_error_set(err, LLM_ERR_ARG, "bin count %d outside %d..%d", bins, LLM_CALIB_MIN_BINS,
                             LLM_CALIB_MAX_BINS);
    int fine = bins * LLM_CALIB_FINE;
    h->count = calloc((size_t)fine, sizeof *h->count);
    if (!h->count) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-bin histogram", fine);
    h->bins = bins, h->fine = fine;
    h->min = INFINITY, h->max = -INFINITY;
    return 0;
}

void llm_calib_hist_free(llm_calib_hist *h)
{
    if (!h) return;
    free(h->count);
    memset(h, 0, sizeof *h);
}

/* Widens the range to `range`, a power of two above the current one, merging
 * bins.  Bin j covers [j, j+1) * range / fine; after s doublings it lies
 * inside bin j >> s, whose edges are also edges of the old bins: the merge is
 * exact.  Destinations j >> s < j are already read, so this works in place. */
static void grow(llm_calib_hist *h, double range)
{
    if (h->range == 0) { /* every value so far was zero: bin 0 stays bin 0 */
        h->range = range;
        return;
    }
    int s = ilogb(range) - ilogb(h->range);
    for (int j = 1; j < h->fine; j++) { /* empty bins are left alone: their pages may never be touched */
        uint64_t c = h->count[j];
        if (!c) continue;
        h->count[j] = 0;
        h->count[s >= 31 ? 0 : j >> s] += c;
    }
    h->range = range;
}

void llm_calib_hist_add(llm_calib_hist *h, const float *x, size_t n)
{
    if (n == 0) return;
    double range = h->range, inv = range > 0 ? h->fine / range : 0;
    float mn = INFINITY, mx = -INFINITY;
    uint64_t *count = h->count;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        /* |x| * fine / range is exact in a double (24 + 24 significant bits at
         * most), so a value's bin never depends on rounding */
        double a = fabsf(v);
        if (a >= range && a > 0) {
            grow(h, pow2_above(a));
            range = h->range, inv = h->fine / range;
        }
        count[(size_t)(a * inv)]++;
    }
    h->total += n;
    if (mn < h->min) h->min = mn;
    if (mx > h->max) h->max = mx;
    h->absmax = fmax(-h->min, h->max);
}

int llm_calib_hist_top(const llm_calib_hist *h)
{
    return h->total > 0 && h->absmax > 0 ? h->bins : 0;
}

/* ---------- the histogram as a density ----------
 *
 * Fine bin j holds its count spread evenly over [lo_j, hi_j): lo_j =
 * j * range / fine, hi_j = lo_{j+1}, except that the bin holding absmax (top)
 * ends at absmax.  The percentile, MSE and entropy methods read the
 * histogram through this density. */

int llm_calib_hist_fine_top(const llm_calib_hist *h)
{
    return (int)(h->absmax * h->fine / h->range); /* exact, as when counting */
}

void llm_calib_hist_edges(const llm_calib_hist *h, int top, int j, double *lo, double *hi)
{
    *lo = j * h->range / h->fine;
    *hi = j == top ? h->absmax : (j + 1) * h->range / h->fine;
}

void llm_calib_hist_rebin(const llm_calib_hist *h, double *count)
{
    memset(count, 0, (size_t)h->bins * sizeof *count);
    if (h->total == 0) return;
    if (h->absmax == 0) {
        count[0] = (double)h->total;
        return;
    }
    int top = llm_calib_hist_fine_top(h), last = h->bins - 1;
    double per = h->bins / h->absmax; /* coarse bins per unit of |x| */
    for (int j = 0; j <= top; j++) {
        if (!h->count[j]) continue;
        double c = (double)h->count[j], lo, hi;
        llm_calib_hist_edges(h, top, j, &lo, &hi);
        if (!(hi > lo)) { /* the values of the top bin all equal absmax */
            count[last] += c;
            continue;
        }
        /* a fine bin is at most 1/16 of a coarse one: it overlaps one or two */
        int k = (int)(lo * per);
        if (k > last) k = last;
        if (k > 0 && (double)k * h->absmax / h->bins > lo) k--; /* lo * per rounded up to an edge */
        for (; k <= last; k++) {
            double a = (double)k * h->absmax / h->bins, b = k == last ? hi : (double)(k + 1) * h->absmax / h->bins;
            double part = fmin(hi, b) - fmax(lo, a);
            if (part > 0) count[k] += c * part / (hi - lo);
            if (b >= hi) break;
        }
    }
}

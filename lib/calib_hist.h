/* calib_hist — a bounded-memory histogram of |x| for INT8 calibration, and
 * the density the threshold searches (calib_amax) read from it.
 *
 * The histogram has a fixed number of fine bins (LLM_CALIB_FINE per
 * candidate bin) over [0, range), range a power of two above every |x|
 * seen: when a larger value arrives the range doubles (as often as needed)
 * and pairs of bins merge, so the histogram is exactly the one that would
 * have been counted had the final range been known from the start, and
 * memory never grows with the data.  Running min, max and |x| max come from
 * the same pass.  The searches work over [0, max|x|], not over the
 * power-of-two range: they read the fine bins as a density (the values of a
 * fine bin spread evenly across it, llm_calib_hist_edges), and the entropy
 * method re-bins that density into `bins` equal bins of [0, max|x|]
 * (llm_calib_hist_rebin).
 *
 *     llm_calib_hist h;
 *     LLM_TRY(llm_calib_hist_init(&h, LLM_CALIB_BINS, &err));
 *     llm_calib_hist_add(&h, x, n);                 // finite values, as often as needed
 *     llm_calib_hist_rebin(&h, count);              // double count[h.bins]
 *     llm_calib_hist_free(&h);
 */
#ifndef LLM_CALIB_HIST_H
#define LLM_CALIB_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LLM_CALIB_BINS 2048          /* default bin count: candidate thresholds over [0, absmax] */
#define LLM_CALIB_MIN_BINS 256       /* so the entropy method always has candidates */
#define LLM_CALIB_MAX_BINS (1 << 20) /* keeps |x| * fine / range exact in a double */
#define LLM_CALIB_FINE 32            /* counting bins per bin: [0, absmax] spans at least 16 */

/* A histogram of |x| counted in `fine` = LLM_CALIB_FINE * bins equal bins
 * over [0, range): fine bin j counts the values with
 * j <= |x| * fine / range < j + 1.  range is 0 while every value seen was
 * zero (they are all in fine bin 0); otherwise absmax >= range / 2, so
 * [0, absmax] spans at least fine / 2 fine bins.  The methods read it as a
 * density: the values of a fine bin spread evenly across it, those of the bin
 * holding absmax across [its lower edge, absmax]. */
typedef struct llm_calib_hist {
    int bins;         /* candidate thresholds j * absmax / bins, j = 1..bins */
    int fine;         /* counting bins, LLM_CALIB_FINE * bins */
    double range;     /* 0 or a power of two strictly above absmax */
    uint64_t *count;  /* [fine] */
    uint64_t total;   /* values counted */
    double absmax;    /* largest |x| */
    double min, max;  /* smallest and largest x; +inf and -inf while total is 0 */
} llm_calib_hist;

/* An empty histogram of `bins` bins (LLM_CALIB_MIN_BINS..LLM_CALIB_MAX_BINS):
 * LLM_CALIB_FINE * bins counts, 256 bytes per bin (512 KiB for 2048).
 * 0, LLM_ERR_ARG or LLM_ERR_NOMEM; h is always safe to free. */
int llm_calib_hist_init(llm_calib_hist *h, int bins, llm_error *err);
/* Frees the counts; h may be NULL. */
void llm_calib_hist_free(llm_calib_hist *h);
/* Counts x[0..n) (every one finite: the caller filters NaN and Inf). */
void llm_calib_hist_add(llm_calib_hist *h, const float *x, size_t n);

/* The number of candidate thresholds: h->bins, or 0 when no value is
 * non-zero. */
int llm_calib_hist_top(const llm_calib_hist *h);

/* The fine bin holding absmax, the last one the density covers (only when
 * absmax > 0). */
int llm_calib_hist_fine_top(const llm_calib_hist *h);
/* The edges of fine bin j (0 <= j <= top, top = llm_calib_hist_fine_top(h))
 * under the density: [j, j + 1) * range / fine, except that bin top ends at
 * absmax (so *lo == *hi when its values all equal absmax). */
void llm_calib_hist_edges(const llm_calib_hist *h, int top, int j, double *lo, double *hi);

/* The histogram over [0, absmax] in h->bins equal bins that the entropy
 * method compares: count[k] is the mass of the fine histogram's density in
 * [k, k + 1) * absmax / bins (the last bin includes absmax).  Each differs
 * from the exact count of the values by less than the counts of the two fine
 * bins holding its edges.  count has h->bins entries, owned by the caller;
 * all the values are in count[0] when absmax is 0. */
void llm_calib_hist_rebin(const llm_calib_hist *h, double *count);

#endif

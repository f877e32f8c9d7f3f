/* calib_amax — the four ways of choosing an INT8 clipping threshold (amax)
 * from a histogram of |x| (calib_hist): max, percentile, MSE (the int8
 * quantize-dequantize error) and entropy (TensorRT's KL method, as TensorRT
 * Model Optimizer computes it).
 *
 * The searches work over [0, max|x|]: the candidate thresholds are
 * j * absmax / bins, j = 1..bins, and the histogram's density gives the
 * counts, errors and percentiles there.  llm_calib_amax_curves gives the
 * curves the MSE and entropy methods minimise, for plotting (llm-calib
 * --curve); llm-calib(1) states every rule exactly.
 *
 *     double amax, *kl = malloc(h.bins * sizeof *kl);
 *     LLM_TRY(llm_calib_amax(&h, LLM_CALIB_ENTROPY, 0, &amax, &err));
 *     LLM_TRY(llm_calib_amax(&h, LLM_CALIB_PERCENTILE, 99.99, &amax, &err));
 *     if (llm_calib_hist_top(&h) > 0) LLM_TRY(llm_calib_amax_curves(&h, NULL, kl, &err));
 *     printf("%s: %g (step %g)\n", llm_calib_method_name(LLM_CALIB_PERCENTILE), amax, amax / 127);
 */
#ifndef LLM_CALIB_AMAX_H
#define LLM_CALIB_AMAX_H

#include "calib_hist.h"
#include "err.h"

#define LLM_CALIB_LEVELS 128 /* int8 levels on one side of zero */

typedef enum llm_calib_method {
    LLM_CALIB_MAX = 0,
    LLM_CALIB_PERCENTILE,
    LLM_CALIB_MSE,
    LLM_CALIB_ENTROPY,
    LLM_CALIB_METHODS
} llm_calib_method;

/* "max", "percentile", "mse", "entropy"; NULL for another value. */
const char *llm_calib_method_name(int method);
/* The method named `name`, or -1. */
int llm_calib_method_from_name(const char *name);

/* The threshold of `method` for the values in h, in the units of x, never
 * above h->absmax; percentile (for LLM_CALIB_PERCENTILE) is in (0, 100].
 * An empty or all-zero histogram gives 0, one repeated value gives |value|.
 * 0, LLM_ERR_ARG, or LLM_ERR_NOMEM for the search's scratch (up to 24
 * bytes per fine bin); *amax is 0 after an error. */
int llm_calib_amax(const llm_calib_hist *h, llm_calib_method method, double percentile, double *amax,
                   llm_error *err);

/* The curves the MSE and entropy methods minimise, for plotting: for each
 * candidate j = 1..llm_calib_hist_top(h), threshold t = j * absmax / bins,
 * mse[j - 1] is the mean squared int8 quantize-dequantize error with
 * threshold t (over the fine histogram's density) and kl[j - 1] is
 * KL(P || Q) for candidate j over llm_calib_hist_rebin's bins (NAN for
 * j < LLM_CALIB_LEVELS, INFINITY when the threshold leaves no values below
 * it, or clips values onto an empty bin).  Either array may be NULL.  Both
 * have llm_calib_hist_top(h) entries, owned by the caller.  0 or
 * LLM_ERR_NOMEM. */
int llm_calib_amax_curves(const llm_calib_hist *h, double *mse, double *kl, llm_error *err);

#endif
